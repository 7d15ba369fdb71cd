/**
 * Any server as a daemon inside a stack's network namespace (an S3 server, haproxy, a metadata
 * service): started with `ip netns exec <ns> <cmd> ...` (which execs, so the child's PID is the
 * server's), detached so it outlives the caller (a dynamic provider), its PID in <dir>/<name>.pid
 * and its output in <dir>/<name>.log. Stopped only by that PID, and only while /proc/<pid>/cmdline
 * still contains `marker` (default: the command path), so a recycled PID is never signalled.
 *
 * Readiness: a TCP connect to `ready.ip:ready.port` from INSIDE the namespace (bounded), so a
 * firewall on the host link does not matter.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "fs";
import { spawn } from "child_process";
import { join, resolve } from "path";
import { alive, runIn, sleep } from "./exec";
import { carryNiceToSession } from "./session-nice";

export interface NetnsDaemonSpec {
    /** State directory (absolute). */
    dir: string;
    /** File stem for <name>.pid / <name>.log (letters, digits, '-'). */
    name: string;
    /** The namespace to run in. */
    netns: string;
    /** Executable (absolute path or on PATH) and its arguments. */
    cmd: string;
    args: string[];
    /** Extra environment (secrets belong in files, not here: env shows in /proc to root). */
    env?: Record<string, string>;
    /** Wait until this address accepts TCP inside the namespace. */
    ready?: { ip: string; port: number; timeoutMs?: number };
    /** A string that must appear in the process's command line to be ours. Default: `args.join(" ")` or cmd. */
    marker?: string;
}

function pidFile(dir: string, name: string): string {
    return join(dir, `${name}.pid`);
}

/** The PID of this daemon when it runs (and its command line still has the marker), else undefined. */
export function runningDaemonPid(dir: string, name: string): number | undefined {
    const f = pidFile(dir, name);
    if (!existsSync(f)) return undefined;
    const [pidText, ...markerLines] = readFileSync(f, "utf8").split("\n");
    const pid = Number(pidText);
    const marker = markerLines.join("\n").trim();
    if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return undefined;
    try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
        return !marker || cmdline.includes(marker) ? pid : undefined;
    } catch {
        return undefined;
    }
}

/** Starts the daemon (idempotent: a running one is returned) and waits for readiness. Returns its PID. */
export async function startNetnsDaemon(s: NetnsDaemonSpec): Promise<number> {
    if (!s.dir || resolve(s.dir) !== s.dir) throw new Error(`daemon dir must be an absolute path; got ${JSON.stringify(s.dir)}`);
    if (!/^[A-Za-z0-9-]{1,40}$/.test(s.name ?? "")) throw new Error(`daemon name must be 1-40 letters, digits or '-'; got ${JSON.stringify(s.name)}`);
    const running = runningDaemonPid(s.dir, s.name);
    if (running) return running;
    mkdirSync(s.dir, { recursive: true });
    const log = openSync(join(s.dir, `${s.name}.log`), "a");
    const child = spawn("ip", ["netns", "exec", s.netns, s.cmd, ...s.args], { detached: true, stdio: ["ignore", log, log], env: { ...process.env, ...(s.env ?? {}) } });
    closeSync(log);
    if (!child.pid) throw new Error(`${s.name}: could not start ${s.cmd} in ${s.netns}`);
    child.unref();
    carryNiceToSession(child.pid);
    const marker = s.marker ?? (s.args.length ? s.args.join(" ") : s.cmd);
    writeFileSync(pidFile(s.dir, s.name), `${child.pid}\n${marker}\n`);
    if (!s.ready) return child.pid;
    const timeoutMs = s.ready.timeoutMs ?? 30000;
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; Date.now() < deadline && i < 1000; i++) {
        if (!alive(child.pid)) break;
        try {
            runIn(s.netns, "bash", ["-c", `exec 3<>/dev/tcp/${s.ready.ip}/${s.ready.port}`], { timeoutMs: 3000 });
            return child.pid;
        } catch {
            await sleep(300);
        }
    }
    await stopNetnsDaemon(s.dir, s.name);
    const logText = readFileSync(join(s.dir, `${s.name}.log`), "utf8").split("\n").slice(-10).join("\n");
    throw new Error(`${s.name} (${s.cmd}) in ${s.netns} did not accept TCP on ${s.ready.ip}:${s.ready.port} within ${timeoutMs / 1000} s; log:\n${logText}`);
}

/**
 * SIGTERM, then SIGKILL after 5 s, to this daemon's PID only; returns once the process is gone, not only
 * exited (bounded, 5 s more): when this process started it, Node.js reaps the zombie during the waits
 * (the eleventh VM run's Prometheus check looked at /proc in the same tick as the exit). Idempotent.
 */
export async function stopNetnsDaemon(dir: string, name: string): Promise<void> {
    const pid = runningDaemonPid(dir, name);
    if (pid) {
        process.kill(pid, "SIGTERM");
        for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
        if (runningDaemonPid(dir, name) === pid) process.kill(pid, "SIGKILL");
        for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await sleep(100);
    }
    rmSync(pidFile(dir, name), { force: true });
}
