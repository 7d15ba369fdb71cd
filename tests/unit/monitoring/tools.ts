/** Test support: run a real tool (promtool, amtool) and capture its result. */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const REPO = path.resolve(__dirname, "../../..");

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
    /** stdout + stderr, for assertion messages. */
    output: string;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): RunResult {
    const r = spawnSync(cmd, args, { cwd: opts.cwd ?? REPO, encoding: "utf8", timeout: opts.timeoutMs ?? 60000 });
    if (r.error) throw new Error(`${cmd} ${args.join(" ")}: could not run: ${r.error.message} (is it installed? scripts/setup.sh installs it)`);
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}\n${r.stderr}` };
}

/** A private temp dir, removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `redisforge-${prefix}-`));
    return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
