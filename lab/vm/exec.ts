/**
 * Bounded command runner for lab/vm: every external command has a timeout, and a failure throws
 * an Error naming the command and its stderr.
 */
import { execFileSync } from "child_process";

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

/** True when `pid` is alive and not a zombie: the one implementation, shared with the local stack's providers. */
export { alive } from "../../providers/local/alive";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
