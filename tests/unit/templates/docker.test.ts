/**
 * Dockerfiles checked statically (no Docker engine here): instructions parsed with line
 * continuations; non-root USER, no secret-looking ENV/ARG, HEALTHCHECK, exec-form ENTRYPOINT,
 * pinned FROM, nothing secret copied in. Entrypoints and health checks pass shellcheck.
 */
import * as fs from "fs";
import * as path from "path";
import { shellcheck } from "./tools";
import { IMAGE_HEALTHCHECK } from "../../../templates/cloud-init/params";

const DOCKER = path.resolve(__dirname, "../../../templates/docker");

interface Instruction {
    op: string;
    args: string;
    line: number;
}

/** Parses a Dockerfile into instructions (comments dropped, `\` continuations joined). */
export function parseDockerfile(text: string): Instruction[] {
    const out: Instruction[] = [];
    let buf = "";
    let start = 0;
    text.split("\n").forEach((raw, i) => {
        const line = raw.trim();
        if (!buf && (line === "" || line.startsWith("#"))) return;
        if (buf && line.startsWith("#")) return; // comment lines inside a continuation
        if (!buf) start = i + 1;
        if (line.endsWith("\\")) {
            buf += `${line.slice(0, -1)} `;
            return;
        }
        buf += line;
        const m = /^(\S+)\s*(.*)$/.exec(buf)!;
        out.push({ op: m[1].toUpperCase(), args: m[2].trim(), line: start });
        buf = "";
    });
    if (buf) throw new Error("Dockerfile ends inside a line continuation");
    return out;
}

const SECRET_NAME = /(PASS(WORD)?|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_?KEY|AUTH)/i;

/** Every rule a RedisForge image must satisfy; returns the violations. */
export function lintDockerfile(text: string): string[] {
    const ins = parseDockerfile(text);
    const problems: string[] = [];
    const args = new Map<string, string>();
    for (const i of ins) {
        if (i.op === "ARG") {
            const [name, def] = i.args.split("=", 2);
            args.set(name, def ?? "");
        }
    }
    const froms = ins.filter((i) => i.op === "FROM");
    if (froms.length === 0) problems.push("no FROM");
    for (const f of froms) {
        const image = f.args.split(/\s+/)[0].replace(/^\$\{?(\w+)\}?$/, (_m, a: string) => args.get(a) ?? "");
        const pinned = /@sha256:[0-9a-f]{64}$/.test(image) || /:v?\d+\.\d+\.\d+(-[a-z0-9.-]+)?$/.test(image);
        if (!pinned) problems.push(`FROM ${image || f.args} (line ${f.line}) is not pinned to an exact version or digest`);
    }
    const users = ins.filter((i) => i.op === "USER");
    const lastUser = users.at(-1)?.args ?? "root";
    if (/^(root|0)(:|$)/.test(lastUser)) problems.push(`final USER is ${lastUser}: the image must run as non-root`);
    if (!/^\d+:\d+$/.test(lastUser)) problems.push(`final USER ${lastUser} must be numeric uid:gid (runAsNonRoot checks need numbers)`);
    for (const i of ins.filter((x) => x.op === "ENV" || x.op === "ARG")) {
        const names = i.args.split(/\s+/).map((kv) => kv.split("=")[0]);
        for (const n of names) if (SECRET_NAME.test(n)) problems.push(`${i.op} ${n} (line ${i.line}) looks like a secret: secrets are mounted at run time`);
    }
    if (!ins.some((i) => i.op === "HEALTHCHECK" && !/^NONE$/i.test(i.args))) problems.push("no HEALTHCHECK");
    const ep = ins.filter((i) => i.op === "ENTRYPOINT").at(-1);
    if (!ep || !ep.args.startsWith("[")) problems.push("ENTRYPOINT must be exec form (JSON array) so signals reach the server");
    for (const i of ins.filter((x) => x.op === "ADD")) problems.push(`ADD (line ${i.line}): use COPY; ADD fetches URLs and unpacks archives`);
    for (const i of ins.filter((x) => x.op === "COPY")) {
        if (/\.(key|pem|crt|p12|acl|password|env)\b|secrets?\b/i.test(i.args)) problems.push(`COPY ${i.args} (line ${i.line}) copies key material or secrets into the image`);
    }
    return problems;
}

describe.each(["redis", "envoy"])("templates/docker/%s", (image) => {
    const dockerfile = fs.readFileSync(path.join(DOCKER, image, "Dockerfile"), "utf8");

    it("satisfies every hardening rule", () => {
        expect(lintDockerfile(dockerfile)).toEqual([]);
    });

    it("copies in only its entrypoint and health check, which exist and pass shellcheck", () => {
        const copies = parseDockerfile(dockerfile).filter((i) => i.op === "COPY").map((i) => i.args.split(/\s+/).filter((a) => !a.startsWith("--"))[0]);
        expect(copies.sort()).toEqual(["entrypoint.sh", "healthcheck.sh"]);
        const files = copies.map((c) => path.join(DOCKER, image, c));
        const r = shellcheck(files);
        expect(r.out).toBe("");
        expect(r.code).toBe(0);
    });

    it("has the HEALTHCHECK timing the units scale on slow substrates (IMAGE_HEALTHCHECK)", () => {
        const hc = parseDockerfile(dockerfile).filter((i) => i.op === "HEALTHCHECK").at(-1)!.args;
        const sec = (flag: string) => Number(new RegExp(`--${flag}=(\\d+)s`).exec(hc)?.[1]);
        const want = IMAGE_HEALTHCHECK[image as keyof typeof IMAGE_HEALTHCHECK];
        expect({ intervalSec: sec("interval"), timeoutSec: sec("timeout") }).toEqual(want);
    });

    it("runs as the uid the systemd unit and the secret files use", () => {
        const user = parseDockerfile(dockerfile).filter((i) => i.op === "USER").at(-1)!.args;
        expect(user).toBe(image === "redis" ? "999:999" : "101:101");
    });
});

describe("the Dockerfile lint can fail", () => {
    it.each([
        ["FROM redis:latest\nUSER 999:999\nHEALTHCHECK CMD true\nENTRYPOINT [\"x\"]\n", /not pinned/],
        ["FROM redis\nUSER 999:999\nHEALTHCHECK CMD true\nENTRYPOINT [\"x\"]\n", /not pinned/],
        ["FROM redis:8.4.0\nHEALTHCHECK CMD true\nENTRYPOINT [\"x\"]\n", /final USER is root/],
        ["FROM redis:8.4.0\nUSER 999:999\nUSER root\nHEALTHCHECK CMD true\nENTRYPOINT [\"x\"]\n", /final USER is root/],
        ["FROM redis:8.4.0\nUSER 999:999\nENV REDIS_PASSWORD=hunter2\nHEALTHCHECK CMD true\nENTRYPOINT [\"x\"]\n", /ENV REDIS_PASSWORD .* looks like a secret/],
        ["FROM redis:8.4.0\nARG API_KEY\nUSER 999:999\nHEALTHCHECK CMD true\nENTRYPOINT [\"x\"]\n", /ARG API_KEY .* looks like a secret/],
        ["FROM redis:8.4.0\nUSER 999:999\nENTRYPOINT [\"x\"]\n", /no HEALTHCHECK/],
        ["FROM redis:8.4.0\nUSER 999:999\nHEALTHCHECK NONE\nENTRYPOINT [\"x\"]\n", /no HEALTHCHECK/],
        ["FROM redis:8.4.0\nUSER 999:999\nHEALTHCHECK CMD true\nENTRYPOINT x\n", /exec form/],
        ["FROM redis:8.4.0\nCOPY node.key /tls/\nUSER 999:999\nHEALTHCHECK CMD true\nENTRYPOINT [\"x\"]\n", /key material/],
        ["FROM redis:8.4.0\nADD https://x/y.tgz /\nUSER 999:999\nHEALTHCHECK CMD true\nENTRYPOINT [\"x\"]\n", /use COPY/],
        ["ARG BASE=redis:8\nFROM ${BASE}\nUSER 999:999\nHEALTHCHECK \\\n  CMD true\nENTRYPOINT [\"x\"]\n", /FROM redis:8 .* not pinned/],
    ])("flags %#", (text, expected) => {
        expect(lintDockerfile(text).join("\n")).toMatch(expected);
    });

    it("accepts a digest-pinned base passed through ARG", () => {
        expect(lintDockerfile(`ARG B=redis:8.4.0-bookworm@sha256:${"a".repeat(64)}\nFROM \${B}\nUSER 999:999\nHEALTHCHECK CMD true\nENTRYPOINT ["x"]\n`)).toEqual([]);
    });
});
