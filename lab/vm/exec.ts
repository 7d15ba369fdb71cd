/**
 * Bounded command runner for lab/vm: every external command has a timeout, and a failure throws
 * an Error naming the command and its stderr.
 */
import { execFileSync } from "child_process";
import { readFileSync } from "fs";

/** Default timeout of one command, ms. */
export const CMD_TIMEOUT_MS = 15000;

/** Runs `cmd args` (stdin optional) and returns stdout; throws naming the command and its stderr. */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
    try {
        return execFileSync(cmd, args, {
            input: opts.input,
            stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
            timeout: opts.timeoutMs ?? CMD_TIMEOUT_MS,
            maxBuffer: 64 * 1024 * 1024,
        }).toString();
    } catch (e) {
        const err = e as { stderr?: Buffer; message: string };
        throw new Error(`${cmd} ${args.join(" ")} failed: ${err.stderr?.toString().trim() || err.message}`);
    }
}

/** Like run() inside network namespace `ns`. */
export function runIn(ns: string, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
    return run("ip", ["netns", "exec", ns, cmd, ...args], opts);
}

/** True when `pid` is alive (signal 0) and not a zombie (exited, waiting to be reaped by a parent whose event loop is busy). */
export function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
    } catch {
        return false;
    }
    try {
        // /proc/<pid>/stat: "pid (comm) S ..."; comm may hold spaces or parentheses, the state follows the last ')'.
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.charAt(stat.lastIndexOf(")") + 2) !== "Z";
    } catch {
        return false;
    }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
