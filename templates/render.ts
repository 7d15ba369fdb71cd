/**
 * The one logic-less renderer for line-based files (redis.conf, users.acl, …).
 *
 * `{{name}}` is replaced by `vars[name]`. There are no conditionals, loops or
 * escapes: a template is data. A placeholder without a value, or a value that
 * would break the line structure (a newline), is a programming error and
 * throws, naming every offending variable at once.
 *
 * Version gating: a line that starts with `@since X.Y ` is kept (without the
 * marker) only when the target server version is at least X.Y. This is how a
 * template targets Redis 8.4 and still starts Debian's 7.0.
 */
import * as fs from "fs";
import * as path from "path";

export type TemplateVars = Record<string, string | number | boolean>;

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
const SINCE = /^@since\s+(\d+)\.(\d+)\s+/;

export class TemplateError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "TemplateError";
    }
}

/** Renders `template` with `vars`. Throws a TemplateError naming missing or unsafe variables. */
export function render(template: string, vars: TemplateVars, templateName = "template"): string {
    const missing = new Set<string>();
    const unsafe = new Set<string>();
    const out = template.replace(PLACEHOLDER, (_m, key: string) => {
        if (!Object.prototype.hasOwnProperty.call(vars, key) || vars[key] === undefined || vars[key] === null) {
            missing.add(key);
            return "";
        }
        const value = String(vars[key]);
        if (/[\r\n]/.test(value)) unsafe.add(key);
        return value;
    });
    const problems: string[] = [];
    if (missing.size) problems.push(`missing variable(s) ${[...missing].sort().join(", ")}`);
    if (unsafe.size) problems.push(`variable(s) ${[...unsafe].sort().join(", ")} contain a newline`);
    if (problems.length) throw new TemplateError(`${templateName}: ${problems.join("; ")}`);
    return out;
}

/** A parsed `major.minor.patch` server version. */
export interface ServerVersion {
    major: number;
    minor: number;
    patch: number;
}

export function parseVersion(v: string): ServerVersion {
    const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
    if (!m) throw new Error(`cannot parse a Redis version from "${v}"`);
    return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

export function versionAtLeast(v: ServerVersion, major: number, minor: number): boolean {
    return v.major > major || (v.major === major && v.minor >= minor);
}

/** Keeps `@since X.Y` lines only for servers at least X.Y, stripping the marker. */
export function gateForVersion(text: string, version: ServerVersion): string {
    return text
        .split("\n")
        .flatMap((line) => {
            const m = SINCE.exec(line);
            if (!m) return [line];
            return versionAtLeast(version, Number(m[1]), Number(m[2])) ? [line.slice(m[0].length)] : [];
        })
        .join("\n");
}

/** Reads a template shipped in this folder. */
export function loadTemplate(relPath: string): string {
    return fs.readFileSync(path.join(__dirname, relPath), "utf8");
}
