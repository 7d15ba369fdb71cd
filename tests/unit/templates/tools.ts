/** Runs the real validators (cloud-init schema, shellcheck, envoy-validate) on text written to a temp dir. */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface ToolResult {
    code: number | null;
    out: string;
}

export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): ToolResult {
    const r = spawnSync(cmd, args, { input: opts.input, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60000, encoding: "utf8" });
    if (r.error) throw new Error(`${cmd} ${args.join(" ")}: ${r.error.message}`);
    return { code: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

export function tmpDir(prefix: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), `redisforge-${prefix}-`));
}

export function writeTmp(dir: string, name: string, content: string): string {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    return file;
}

/** `cloud-init schema --config-file`: exit code and output (Debian cloud-init 22.4). */
export function cloudInitSchema(file: string): ToolResult {
    return run("cloud-init", ["schema", "--config-file", file]);
}

/** shellcheck with the script's own shebang deciding the dialect; external sources followed. */
export function shellcheck(files: string[]): ToolResult {
    return run("shellcheck", ["--external-sources", "--format=gcc", ...files]);
}
