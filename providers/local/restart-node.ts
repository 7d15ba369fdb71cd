/**
 * The local stack's node-restart hook for the rolling upgrade (providers/redis-cluster/operations/
 * upgrade.ts): stop ONE redis-server by its PID and start it again from the same data dir and
 * redis.conf with another binary.
 *
 * Why here and not in RedisProcess: the engine updates every RedisProcess whose inputs changed in
 * parallel; restarting all of them at once would drop the cluster. So a change of binary is not
 * a RedisProcess change at all (its digest leaves the binary out); the RedisCluster resource's
 * rolling step calls this hook for one node at a time, between the waits and failovers of the
 * upgrade. Both sides agree on the running process through `<dataDir>/redis.pid`, which this
 * hook rewrites, so RedisProcess keeps recognising the node as running (and never restarts it).
 *
 * Safety: only a PID whose command line is redis-server and whose working directory is the
 * node's data dir is signalled (we start every node there); SIGTERM, bounded wait, SIGKILL; the
 * start is bounded too and reports the log tail when the process exits (e.g. an 8.x AOF that a
 * 7.0 server cannot load).
 *
 * Like the dynamic providers, this module requires what it needs inside its functions: the
 * RedisCluster provider that calls it is serialised by the engine.
 */
import { tcpAccepts } from "./tcp-probe";
import { alive } from "./alive";

/** One node process of the local stack (or of a lab). */
export interface LocalNodeProcess {
    /** Node name for messages. */
    id: string;
    host: string;
    port: number;
    /** Absolute data dir: the process's cwd, holding redis.pid, nodes.conf and the AOF. */
    dataDir: string;
    /** Absolute redis.conf path. */
    confFile: string;
    /** redis-server binary to start (absolute path, or a name on PATH). */
    server: string;
    /** PID believed to run the node now (checked); default: the pid file in the data dir. */
    pid?: number;
}

export interface RestartLimits {
    /** Bound on SIGTERM -> exit, ms; then SIGKILL. Default 15000. */
    stopTimeoutMs?: number;
    /** Bound on start -> TLS port accepting connections, ms. Default 30000. */
    startTimeoutMs?: number;
}

/** The pid file in the data dir, shared with RedisProcess. */
export const PID_FILE = "redis.pid";

/** True if `pid` runs redis-server from `dataDir` (its cwd). */
export function ownsRedisPid(pid: number, dataDir: string): boolean {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    if (!pid) return false;
    try {
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
        const cwd = fs.readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, "");
        return cmdline.includes("redis-server") && cwd === dataDir;
    } catch {
        return false;
    }
}

/** The PID of the node's running redis-server: `hint` if it is ours, else the pid file's; 0 if none. */
export function runningPid(dataDir: string, hint = 0): number {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const path = require("path") as typeof import("path");
    if (hint && ownsRedisPid(hint, dataDir)) return hint;
    try {
        const pid = Number(fs.readFileSync(path.join(dataDir, PID_FILE), "utf8").trim());
        return pid && ownsRedisPid(pid, dataDir) ? pid : 0;
    } catch {
        return 0;
    }
}


/** The last `n` lines of the node's log (redis.conf's logfile is `<dataDir>/redis.log`), or "". */
export function logTail(dataDir: string, n = 12): string {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const path = require("path") as typeof import("path");
    try {
        return fs.readFileSync(path.join(dataDir, "redis.log"), "utf8").trimEnd().split("\n").slice(-n).join("\n");
    } catch {
        return "";
    }
}

/**
 * Stops the node's redis-server (if running, and only if it is ours) and starts `p.server` with
 * the same config and data. Returns the new PID once the TLS port accepts connections.
 */
export async function restartLocalRedis(p: LocalNodeProcess, limits: RestartLimits = {}): Promise<number> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cp = require("child_process") as typeof import("child_process");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const path = require("path") as typeof import("path");
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const stopMs = limits.stopTimeoutMs ?? 15000;
    const startMs = limits.startTimeoutMs ?? 30000;

    const old = runningPid(p.dataDir, p.pid ?? 0);
    if (old) {
        // SIGTERM: redis-server flushes the AOF and saves nodes.conf before it exits.
        process.kill(old, "SIGTERM");
        let deadline = Date.now() + stopMs;
        while (Date.now() < deadline && alive(old)) await wait(50);
        if (alive(old) && ownsRedisPid(old, p.dataDir)) {
            process.kill(old, "SIGKILL");
            deadline = Date.now() + 5000;
            while (Date.now() < deadline && alive(old)) await wait(50);
        }
        if (alive(old)) throw new Error(`${p.id}: redis-server pid ${old} did not exit after SIGTERM (${stopMs / 1000} s) and SIGKILL; not starting a second one`);
    }
    // The port must be free now; something else on it is not ours to stop.
    const portDeadline = Date.now() + 5000;
    while (await tcpAccepts(p.host, p.port)) {
        if (Date.now() > portDeadline) throw new Error(`${p.id}: port ${p.host}:${p.port} is still answered by another process after ours stopped; find it with \`ss -ltnp 'sport = :${p.port}'\``);
        await wait(100);
    }
    const child = cp.spawn(p.server, [p.confFile], { cwd: p.dataDir, detached: true, stdio: "ignore" });
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    child.unref();
    const pid = child.pid ?? 0;
    if (!pid) {
        const e = await Promise.race([spawnError, wait(1000).then(() => new Error("no pid"))]);
        throw new Error(`${p.id}: could not start ${p.server}: ${e.message} (installed? Redis 8.6: bash scripts/install-redis8.sh)`);
    }
    fs.writeFileSync(path.join(p.dataDir, PID_FILE), `${pid}\n`, { mode: 0o600 });
    const deadline = Date.now() + startMs;
    while (Date.now() < deadline && alive(pid)) {
        if (await tcpAccepts(p.host, p.port)) return pid;
        await wait(100);
    }
    const tail = logTail(p.dataDir);
    if (alive(pid) && ownsRedisPid(pid, p.dataDir)) process.kill(pid, "SIGKILL");
    throw new Error(
        `${p.id} (${p.host}:${p.port}): ${p.server} ${alive(pid) ? `did not accept connections within ${startMs / 1000} s` : "exited during start"}; last log lines:\n${tail || "(no log)"}`,
    );
}
