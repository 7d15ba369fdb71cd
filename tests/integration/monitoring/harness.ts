/**
 * Test support for the monitoring integration test: processes started and stopped by PID,
 * bounded waits, loopback-only HTTP, and a minimal inline cluster formation (test setup only:
 * the cluster provider's executor is not committed yet; this places replicas explicitly so the
 * test can build a topology with a known same-zone pair).
 */
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import { freePort as labFreePort, Lab } from "../../../lab/lab";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ports handed out by freePort in this process (bind(0) can give the same port twice). */
const handedOut = new Set<number>();

/**
 * A loopback port free now and never handed out before by this process: a port given twice made
 * two exporters share one (the second failed to bind and the test read the first one's metrics).
 */
export async function freePort(): Promise<number> {
    for (let i = 0; i < 50; i++) {
        const port = await labFreePort("127.0.0.1");
        if (handedOut.has(port)) continue;
        handedOut.add(port);
        return port;
    }
    throw new Error("freePort: 50 ports in a row were ones already handed out");
}

/** Inodes of the TCP sockets listening on 127.0.0.1:`port` (from /proc/net/tcp). */
function listeningInodes(port: number): Set<string> {
    const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
    const inodes = new Set<string>();
    for (const line of fs.readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        // local_address, state 0A = LISTEN, inode in column 10
        if (f[1] === want && f[3] === "0A") inodes.add(f[9]);
    }
    return inodes;
}

/** Whether process `pid` holds a socket listening on 127.0.0.1:`port`. */
function holdsListener(pid: number, port: number): boolean {
    const inodes = listeningInodes(port);
    if (inodes.size === 0) return false;
    let fds: string[] = [];
    try {
        fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
        return false;
    }
    for (const fd of fds) {
        try {
            const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
            if (m && inodes.has(m[1])) return true;
        } catch {
            // fd closed meanwhile
        }
    }
    return false;
}

/**
 * GET `url` (a 127.0.0.1 port) at most `timeoutMs`, once `proc` itself listens on that port: an
 * answer on the port proves nothing if another process holds it (a port handed out twice made
 * the test read a node_exporter's metrics as a redis_exporter's). Fails with the process's
 * output if it exits first.
 */
export async function getFrom(proc: Proc, url: string, timeoutMs: number): Promise<string> {
    const port = Number(/^http:\/\/127\.0\.0\.1:(\d+)\//.exec(url)?.[1]);
    if (!port) throw new Error(`getFrom: ${url} is not a 127.0.0.1 URL with a port`);
    return waitFor(
        `${proc.name} listening at ${url}`,
        async () => {
            if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
                throw new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}): ${proc.output().slice(-2000)}`);
            }
            if (!holdsListener(proc.pid, port)) return undefined;
            return httpGet(url);
        },
        timeoutMs,
        100,
    );
}

/** Polls `probe` until it returns a value (not undefined), at most `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (let i = 0; Date.now() < deadline && i < 100000; i++) {
        try {
            const v = await probe();
            if (v !== undefined) return v;
        } catch (e) {
            last = (e as Error).message;
        }
        await sleep(everyMs);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** GET on a loopback URL only. */
export async function httpGet(url: string, timeoutMs = 5000): Promise<string> {
    if (!/^http:\/\/127\.0\.0\.1:\d+\//.test(url)) throw new Error(`refusing to fetch ${url}: tests only talk to 127.0.0.1`);
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
    return r.text();
}

export async function httpJson<T>(url: string): Promise<T> {
    return JSON.parse(await httpGet(url)) as T;
}

export interface Proc {
    name: string;
    pid: number;
    child: ChildProcess;
    output: () => string;
}

/** Processes this test started; stopped by PID in afterAll. */
export class Procs {
    private readonly list: Proc[] = [];

    start(name: string, cmd: string, args: string[], env: Record<string, string> = {}): Proc {
        const child = spawn(cmd, args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, stdio: ["ignore", "pipe", "pipe"] });
        if (!child.pid) throw new Error(`could not start ${name} (${cmd})`);
        let out = "";
        const keep = (d: Buffer) => {
            out += d.toString();
            if (out.length > 2_000_000) out = out.slice(-1_000_000);
        };
        child.stdout?.on("data", keep);
        child.stderr?.on("data", keep);
        const p: Proc = { name, pid: child.pid, child, output: () => out };
        this.list.push(p);
        return p;
    }

    /** SIGTERM, then SIGKILL after a bounded wait; only PIDs started here. */
    async stop(p: Proc): Promise<void> {
        const gone = () => p.child.exitCode !== null || p.child.signalCode !== null;
        const waitExit = (ms: number) =>
            new Promise<boolean>((resolve) => {
                if (gone()) return resolve(true);
                const onExit = () => {
                    clearTimeout(timer);
                    resolve(true);
                };
                const timer = setTimeout(() => {
                    p.child.off("exit", onExit);
                    resolve(gone());
                }, ms);
                p.child.once("exit", onExit);
            });
        if (gone()) return;
        process.kill(p.pid, "SIGTERM");
        if (!(await waitExit(5000))) {
            process.kill(p.pid, "SIGKILL");
            await waitExit(2000);
        }
    }

    async stopAll(): Promise<void> {
        for (const p of this.list.reverse()) await this.stop(p);
    }
}

/**
 * Forms a cluster from lab nodes: `masters` get the 16384 slots in equal ranges, each entry of
 * `replicaOf` makes node `r` a replica of node `m`. Waits (bounded) until every node reports
 * cluster_state:ok and every replica's link is up.
 */
export async function formCluster(lab: Lab, masters: number[], replicaOf: [replica: number, master: number][], timeoutMs = 40000): Promise<void> {
    const per = Math.floor(16384 / masters.length);
    for (let k = 0; k < masters.length; k++) {
        const from = k * per;
        const to = k === masters.length - 1 ? 16383 : from + per - 1;
        await lab.cli(masters[k], ["CLUSTER", "ADDSLOTSRANGE", String(from), String(to)]);
    }
    const first = lab.nodes[0];
    for (let i = 1; i < lab.nodes.length; i++) await lab.cli(i, ["CLUSTER", "MEET", first.host, String(first.port), String(first.busPort)]);
    const all = lab.nodes.map((n) => n.index);
    await waitFor(
        "every node to know every other node",
        async () => {
            for (const i of all) if (!(await lab.cli(i, ["CLUSTER", "INFO"])).includes(`cluster_known_nodes:${all.length}`)) return undefined;
            return true;
        },
        timeoutMs,
    );
    for (const [r, m] of replicaOf) {
        const id = (await lab.cli(m, ["CLUSTER", "MYID"])).trim();
        await lab.cli(r, ["CLUSTER", "REPLICATE", id]);
    }
    await waitFor(
        "cluster_state:ok everywhere and every replica link up",
        async () => {
            for (const i of all) if (!(await lab.cli(i, ["CLUSTER", "INFO"])).includes("cluster_state:ok")) return undefined;
            for (const [r] of replicaOf) if (!(await lab.cli(r, ["INFO", "replication"])).includes("master_link_status:up")) return undefined;
            return true;
        },
        timeoutMs,
        500,
    );
}

/** Metric names in a Prometheus text exposition (histogram/summary suffixes kept as exposed). */
export function exposedNames(text: string): Set<string> {
    const names = new Set<string>();
    for (const line of text.split("\n")) {
        if (!line || line.startsWith("#")) continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
        if (m) names.add(m[1]);
    }
    return names;
}
