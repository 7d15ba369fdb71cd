/**
 * Benchmark: the RedisForge cluster provider (its executor's `converge`) against the reference
 * tool, `redis-cli --cluster`, in ONE run on fresh nodes of the same lab (same machine, same
 * redis-server, same TLS + ACL configuration rendered from the project's templates).
 *
 *   npm run bench -- [--keys 500000] [--repeat 5] [--reshard-repeat 3] [--settle-ms 2500]
 *                    [--only provider|redis-cli] [--skip-formation] [--skip-reshard] [--verbose]
 *                    [--opt name=value ...] [--node-config name=value ...] [--dir DIR]
 *
 * (a) Formation: 6 fresh nodes per trial and tool, 3 masters x 1 replica. The stopwatch starts when
 *     the tool is asked to form the cluster and stops at the first poll where every node reports
 *     cluster_state:ok, all nodes agree on the slots and roles, and every replica has
 *     master_link_status:up. Both tools are judged by the same polling code (lab/cluster-view.ts,
 *     25 ms interval, persistent connections opened before the stopwatch starts).
 * (b) Resharding: a 3-master cluster (formed by the tool under test) with N keys, plus a 4th fresh
 *     empty node. The provider converges to 4 shards; redis-cli runs `--cluster add-node` then
 *     `--cluster rebalance --cluster-use-empty-masters`. The stopwatch runs until the tool has
 *     finished and the cluster is healthy with 4 masters; keys/s = keys now on the new master /
 *     elapsed seconds. Every key is accounted for afterwards (sum of DBSIZE over masters = N).
 *
 * Fresh nodes are started, then left idle for --settle-ms (2.5 s), as real nodes are before a deploy
 * forms them. Two server-side floors then apply to ANY tool with the rendered config: a master
 * that was alone (no slots, "minority") reports cluster_state:ok only min(cluster-node-timeout,
 * 5 s) after it stops being alone (rejoin delay in clusterUpdateState), and a master delays the
 * first replica sync by repl-diskless-sync-delay (5 s). `--verbose` and the "last wait" column show
 * which one a trial waited on.
 *
 * The provider runs in its own process (bench/provider-worker.ts) so that its peak memory is its
 * own. Figures are printed; nothing is asserted about them (this is not a timed test).
 * `--opt name=value` passes tuning knobs to converge (e.g. --opt migrateBatchKeys=1000).
 * `--verbose` prints the provider's log lines with their times (where the time goes).
 * `--node-config name=value` CONFIG SETs every fresh node of BOTH tools before a trial: a what-if
 * for template changes (e.g. repl-diskless-sync-max-replicas=1), printed in the settings line.
 */
import { ChildProcess, fork } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ClusterObserver, NodeReport } from "../lab/cluster-view";
import { labCredentials, labObserver, labSpec, LabProgress, labViewAuth } from "../lab/form";
import { Lab } from "../lab/lab";
import { redisCliAddNode, redisCliCreate, redisCliRebalance } from "../lab/redis-cli-cluster";
import { loadKeys } from "./keys";
import type { WorkerMemory, WorkerReply, WorkerRequest } from "./provider-worker";

interface Options {
    keys: number;
    repeat: number;
    reshardRepeat: number;
    dir: string;
    only?: "provider" | "redis-cli";
    skipFormation: boolean;
    skipReshard: boolean;
    converge: Record<string, unknown>;
    /** CONFIG SET applied to every fresh node of both tools before a trial (what-if for the templates). */
    nodeConfig: Array<[string, string]>;
    /** Print the provider's log and progress lines with their times. */
    verbose: boolean;
    /** Wait after starting fresh nodes, before a trial. */
    settleMs: number;
    timeoutMs: number;
}

function parseOptions(argv: string[]): Options {
    const o: Options = {
        keys: 500000,
        repeat: 5,
        reshardRepeat: 3,
        dir: path.resolve(".lab", `bench-${process.pid}`),
        skipFormation: false,
        skipReshard: false,
        converge: {},
        nodeConfig: [],
        settleMs: 2500,
        verbose: false,
        timeoutMs: 600000,
    };
    const int = (flag: string, v: string | undefined, min: number) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min}; got "${v}"`);
        return n;
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = () => argv[++i];
        if (a === "--keys") o.keys = int(a, v(), 1);
        else if (a === "--repeat") o.repeat = int(a, v(), 1);
        else if (a === "--reshard-repeat") o.reshardRepeat = int(a, v(), 1);
        else if (a === "--dir") o.dir = path.resolve(v());
        else if (a === "--settle-ms") o.settleMs = int(a, v(), 0);
        else if (a === "--timeout") o.timeoutMs = int(a, v(), 1) * 1000;
        else if (a === "--only") {
            const w = v();
            if (w !== "provider" && w !== "redis-cli") throw new Error(`--only must be provider or redis-cli; got "${w}"`);
            o.only = w;
        } else if (a === "--skip-formation") o.skipFormation = true;
        else if (a === "--skip-reshard") o.skipReshard = true;
        else if (a === "--verbose") o.verbose = true;
        else if (a === "--opt") {
            const kv = v() ?? "";
            const eq = kv.indexOf("=");
            if (eq <= 0) throw new Error(`--opt needs name=value (e.g. --opt migrateBatchKeys=1000); got "${kv}"`);
            const raw = kv.slice(eq + 1);
            o.converge[kv.slice(0, eq)] = raw === "true" ? true : raw === "false" ? false : Number.isFinite(Number(raw)) ? Number(raw) : raw;
        } else if (a === "--node-config") {
            const kv = v() ?? "";
            const eq = kv.indexOf("=");
            if (eq <= 0) throw new Error(`--node-config needs name=value (e.g. --node-config repl-diskless-sync-max-replicas=1); got "${kv}"`);
            o.nodeConfig.push([kv.slice(0, eq), kv.slice(eq + 1)]);
        } else throw new Error(`unknown argument "${a}"; see the header of bench/run.ts`);
    }
    return o;
}

const out = (line = "") => process.stdout.write(line + "\n");
const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmtMs = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

/** The provider's process: forked once, warm before any stopwatch starts. */
class ProviderWorker {
    private child!: ChildProcess;
    private nextId = 1;
    private pending = new Map<number, { resolve: (r: Extract<WorkerReply, { type: "done" }>) => void; progress: Array<{ atMs: number; event: LabProgress }> }>();
    readyRss = 0;
    loadError?: string;
    lastMemory?: WorkerMemory;

    async start(): Promise<void> {
        this.child = fork(path.join(__dirname, "provider-worker.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
        await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error("the provider worker did not start within 60 s")), 60000);
            this.child.on("message", (m: WorkerReply) => {
                if (m.type === "ready") {
                    clearTimeout(timer);
                    this.readyRss = m.rssBytes;
                    this.loadError = m.loadError;
                    resolve();
                } else if (m.type === "progress") this.pending.get(m.id)?.progress.push({ atMs: m.atMs, event: m.event });
                else if (m.type === "done") {
                    const prev = this.lastMemory;
                    this.lastMemory = prev
                        ? { peakRssBytes: Math.max(prev.peakRssBytes, m.memory.peakRssBytes), peakHeapBytes: Math.max(prev.peakHeapBytes, m.memory.peakHeapBytes), maxRssBytes: Math.max(prev.maxRssBytes, m.memory.maxRssBytes) }
                        : m.memory;
                    this.pending.get(m.id)?.resolve(m);
                    this.pending.delete(m.id);
                }
            });
            this.child.on("exit", (code) => {
                clearTimeout(timer);
                reject(new Error(`the provider worker exited with code ${code}`));
                for (const p of this.pending.values()) p.resolve({ type: "done", id: 0, ms: 0, error: `worker exited with code ${code}`, memory: { peakRssBytes: 0, peakHeapBytes: 0, maxRssBytes: 0 } });
            });
        });
    }

    converge(lab: Lab, indices: number[], shards: number, replicas: number, options: Record<string, unknown>) {
        const id = this.nextId++;
        const progress: Array<{ atMs: number; event: LabProgress }> = [];
        const done = new Promise<Extract<WorkerReply, { type: "done" }>>((resolve) => this.pending.set(id, { resolve, progress }));
        const req: WorkerRequest = { type: "converge", id, spec: labSpec(lab, indices, shards, replicas), creds: labCredentials(lab), options };
        this.child.send(req);
        return { done, progress };
    }

    stop(): void {
        if (this.child?.connected) this.child.send({ type: "exit" } satisfies WorkerRequest);
        const pid = this.child?.pid;
        setTimeout(() => {
            if (pid && this.child.exitCode === null) this.child.kill("SIGKILL");
        }, 2000).unref();
    }
}

/** Starts `count` fresh nodes for one trial and applies --node-config to them (same for both tools). */
async function freshNodes(lab: Lab, count: number, o: Options): Promise<number[]> {
    const idx = (await lab.addNodes(count)).map((n) => n.index);
    for (const i of idx) for (const [k, val] of o.nodeConfig) await lab.cli(i, ["CONFIG", "SET", k, val]);
    // A master refuses to report cluster_state:ok in its first 2 s of life (CLUSTER_WRITABLE_DELAY
    // in cluster.c). Real nodes boot long before they are formed; let these settle like them.
    // --settle-ms 0 measures on just-started nodes instead (not what a deploy sees).
    await new Promise((r) => setTimeout(r, o.settleMs));
    return idx;
}

/** Kills the nodes of a finished trial and removes their data (they are never reused). */
async function discard(lab: Lab, indices: number[]): Promise<void> {
    for (const i of indices) {
        await lab.killNode(i);
        fs.rmSync(lab.nodes[i].dataDir, { recursive: true, force: true });
    }
}

function printTimeline(title: string, progress: Array<{ atMs: number; event: LabProgress }>, o: Options): void {
    if (!o.verbose) return;
    out(`    timeline of ${title}:`);
    for (const p of progress) out(`      ${p.atMs.toFixed(0).padStart(6)} ms  [${p.event.phase}] ${p.event.message}`);
}

/** Where the executor's time went: first and last progress event of each phase. */
function phaseBreakdown(progress: Array<{ atMs: number; event: LabProgress }>): string {
    const phases = new Map<string, { first: number; last: number; n: number }>();
    for (const p of progress) {
        if (p.event.phase === "log") continue;
        const cur = phases.get(p.event.phase);
        if (!cur) phases.set(p.event.phase, { first: p.atMs, last: p.atMs, n: 1 });
        else Object.assign(cur, { last: p.atMs, n: cur.n + 1 });
    }
    return [...phases.entries()].map(([k, v]) => `${k} ${v.first.toFixed(0)}-${v.last.toFixed(0)} ms (${v.n})`).join(", ");
}

interface FormationResult {
    ms: number;
    toolMs: number;
    breakdown?: string;
    /** What the last unhealthy poll was waiting on, and when. */
    waitedOn: string;
}

async function formationTrial(lab: Lab, tool: "provider" | "redis-cli", worker: ProviderWorker | undefined, o: Options): Promise<FormationResult> {
    const idx = await freshNodes(lab, 6, o);
    const observer = labObserver(lab, idx);
    try {
        await observer.connect();
        const t0 = performance.now();
        let toolMs = 0;
        let breakdown: string | undefined;
        const run = (async () => {
            if (tool === "provider") {
                const job = worker!.converge(lab, idx, 3, 1, o.converge);
                const r = await job.done;
                if (r.error) throw new Error(`provider converge failed: ${r.error}`);
                breakdown = phaseBreakdown(job.progress);
                printTimeline("provider formation", job.progress, o);
            } else await redisCliCreate(lab, idx, 1, o.timeoutMs);
            toolMs = performance.now() - t0;
        })();
        // The tool may fail before the cluster is healthy: surface that instead of a poll timeout.
        const healthy = observer.waitHealthy({ masters: 3, replicas: 3 }, { timeoutMs: 120000, startedAt: t0 });
        const [, h] = await Promise.all([run, healthy]);
        return { ms: h.ms, toolMs, breakdown, waitedOn: `${h.lastProblems.slice(0, 2).join("; ") || "-"} at ${fmtMs(h.lastProblemsAtMs)}` };
    } finally {
        observer.close();
        await discard(lab, idx);
    }
}

interface ReshardResult {
    ms: number;
    keysMoved: number;
    keysPerSec: number;
    slotsPerMaster: number[];
    breakdown?: string;
    /**
     * Keys/s of the data movement alone: redis-cli's rebalance command (timed here), the
     * provider's migrate phase (between its first and last migrate progress events).
     */
    migrationOnlyKeysPerSec?: number;
}

function masterSummary(reports: NodeReport[]): { slots: number[]; keys: number } {
    const view = reports[0].nodes;
    const keysBy = new Map(reports.map((r) => [r.address, r.keys]));
    const masters = view.filter((n) => n.role === "master" && n.slots.length);
    return {
        slots: masters.map((m) => m.slots.reduce((s, [a, b]) => s + b - a + 1, 0)),
        keys: masters.reduce((s, m) => s + (keysBy.get(m.address) ?? 0), 0),
    };
}

async function reshardTrial(lab: Lab, tool: "provider" | "redis-cli", worker: ProviderWorker | undefined, o: Options): Promise<ReshardResult> {
    const idx = await freshNodes(lab, 4, o);
    const first3 = idx.slice(0, 3);
    const newNode = idx[3];
    const obs3 = labObserver(lab, first3);
    let obs4: ClusterObserver | undefined;
    try {
        if (tool === "provider") {
            const r = await worker!.converge(lab, first3, 3, 0, o.converge).done;
            if (r.error) throw new Error(`provider converge (3 shards) failed: ${r.error}`);
        } else await redisCliCreate(lab, first3, 0, o.timeoutMs);
        await obs3.waitHealthy({ masters: 3, replicas: 0 }, { timeoutMs: 60000 });
        const n0 = lab.nodes[first3[0]];
        const load = await loadKeys({ host: n0.host, port: n0.port }, labViewAuth(lab), { keys: o.keys });
        out(`  ${tool}: loaded ${o.keys} keys in ${fmtMs(load.ms)} (${Math.round(o.keys / (load.ms / 1000))} keys/s)`);
        const before = masterSummary(await obs3.poll());
        if (before.keys !== o.keys) throw new Error(`after loading, the masters hold ${before.keys} keys, expected ${o.keys}`);

        obs4 = labObserver(lab, idx);
        await obs4.connect();
        const t0 = performance.now();
        let breakdown: string | undefined;
        let rebalanceOnlyMs: number | undefined;
        let migrationOnlyKeysPerSec: number | undefined;
        if (tool === "provider") {
            const job = worker!.converge(lab, idx, 4, 0, o.converge);
            const r = await job.done;
            if (r.error) throw new Error(`provider converge (4 shards) failed: ${r.error}`);
            breakdown = `phases: ${phaseBreakdown(job.progress)}`;
            printTimeline("provider resharding", job.progress, o);
            // Throughput between the first and the last migrate progress events (the executor's own
            // average also counts its wait for the new master before the first MIGRATE).
            const mig = job.progress.filter((p) => p.event.phase === "migrate" && p.event.keysMoved !== undefined);
            if (mig.length >= 2 && mig[mig.length - 1].atMs > mig[0].atMs) {
                migrationOnlyKeysPerSec = (mig[mig.length - 1].event.keysMoved! - mig[0].event.keysMoved!) / ((mig[mig.length - 1].atMs - mig[0].atMs) / 1000);
            }
        } else {
            await redisCliAddNode(lab, newNode, first3[0], o.timeoutMs);
            // add-node returns after CLUSTER MEET; rebalance run before every node knows the new one
            // sees 3 masters and moves nothing, and run before the new master reports
            // cluster_state:ok (it holds that back for its rejoin delay, min(cluster-node-timeout,
            // 5 s)) it fails: MIGRATE gets CLUSTERDOWN from the target. An operator waits for both;
            // so do we (timed, part of this arm's total).
            await obs4.waitHealthy({ masters: 3, replicas: 0 }, { timeoutMs: 60000 });
            const tr = performance.now();
            await redisCliRebalance(lab, first3[0], [], o.timeoutMs);
            rebalanceOnlyMs = performance.now() - tr;
        }
        const h = await obs4.waitHealthy({ masters: 4, replicas: 0 }, { timeoutMs: 120000, startedAt: t0 });
        const after = masterSummary(h.reports);
        if (after.keys !== o.keys) throw new Error(`after resharding with ${tool}, the masters hold ${after.keys} keys, expected ${o.keys}: keys were lost or duplicated`);
        const newAddr = `${lab.nodes[newNode].host}:${lab.nodes[newNode].port}`;
        const keysMoved = h.reports.find((r) => r.address === newAddr)?.keys ?? 0;
        if (keysMoved === 0) throw new Error(`after resharding with ${tool}, the new master ${newAddr} holds no keys`);
        if (rebalanceOnlyMs !== undefined) {
            migrationOnlyKeysPerSec = keysMoved / (rebalanceOnlyMs / 1000);
            breakdown = `add-node + join ${fmtMs(h.ms - rebalanceOnlyMs)}, rebalance alone ${fmtMs(rebalanceOnlyMs)} = ${Math.round(migrationOnlyKeysPerSec)} keys/s`;
        }
        return { ms: h.ms, keysMoved, keysPerSec: keysMoved / (h.ms / 1000), slotsPerMaster: after.slots, breakdown, migrationOnlyKeysPerSec };
    } finally {
        obs3.close();
        obs4?.close();
        await discard(lab, idx);
    }
}

async function main(): Promise<number> {
    const o = parseOptions(process.argv.slice(2));
    const tools = (["provider", "redis-cli"] as const).filter((t) => !o.only || o.only === t);
    let worker: ProviderWorker | undefined;
    if (tools.includes("provider")) {
        worker = new ProviderWorker();
        await worker.start();
        if (worker.loadError) {
            worker.stop();
            throw new Error(`the provider cannot be benchmarked: ${worker.loadError}`);
        }
    }
    fs.rmSync(o.dir, { recursive: true, force: true });
    const lab = await Lab.start({ dir: o.dir, count: 0 });
    const stopAll = async () => {
        worker?.stop();
        await lab.stop({ removeData: true });
    };
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => void stopAll().then(() => process.exit(130)));
    try {
        out(`RedisForge bench: redis-server ${lab.state.serverVersion}, ${os.cpus().length} CPUs, node ${process.version}, lab ${o.dir}`);
        out(`settings: formation repeat ${o.repeat}, resharding ${o.keys} keys x ${o.reshardRepeat}, converge options ${JSON.stringify(o.converge)}, settle ${o.settleMs} ms, node config ${o.nodeConfig.length ? o.nodeConfig.map(([k, v]) => `${k}=${v}`).join(" ") : "as rendered by templates/redis"}`);
        const formation: Record<string, FormationResult[]> = { provider: [], "redis-cli": [] };
        if (!o.skipFormation) {
            out("(a) formation 3x1 on 6 fresh nodes: time until every node ok, agreeing, every replica linked");
            for (let r = 0; r < o.repeat; r++) {
                // Alternate which tool goes first so that neither always gets the warmer machine.
                const order = r % 2 === 0 ? tools : [...tools].reverse();
                for (const tool of order) {
                    const res = await formationTrial(lab, tool, worker, o);
                    formation[tool].push(res);
                    out(`  formation ${tool} #${r + 1}: ${fmtMs(res.ms)} (tool returned after ${fmtMs(res.toolMs)})${res.breakdown ? `; phases: ${res.breakdown}` : ""}; last wait: ${res.waitedOn}`);
                }
            }
            for (const tool of tools) out(`formation ${tool}: median ${fmtMs(median(formation[tool].map((x) => x.ms)))} over ${formation[tool].length} runs`);
        }
        const reshard: Record<string, ReshardResult[]> = { provider: [], "redis-cli": [] };
        if (!o.skipReshard) {
            out(`(b) resharding: 3 masters with ${o.keys} keys, add a 4th empty master and move slots to it`);
            for (let r = 0; r < o.reshardRepeat; r++) {
                const order = r % 2 === 0 ? tools : [...tools].reverse();
                for (const tool of order) {
                    const res = await reshardTrial(lab, tool, worker, o);
                    reshard[tool].push(res);
                    out(`  resharding ${tool} #${r + 1}: ${res.keysMoved} keys moved in ${fmtMs(res.ms)} = ${Math.round(res.keysPerSec)} keys/s; slots per master ${res.slotsPerMaster.join("/")}${res.breakdown ? `; ${res.breakdown}` : ""}`);
                }
            }
            for (const tool of tools) out(`resharding ${tool}: median ${Math.round(median(reshard[tool].map((x) => x.keysPerSec)))} keys/s over ${reshard[tool].length} runs`);
        }
        out("RESULTS");
        if (tools.length === 2 && !o.skipFormation) {
            const ratio = median(formation.provider.map((x) => x.ms)) / median(formation["redis-cli"].map((x) => x.ms));
            out(`RATIO formation time provider/redis-cli = ${ratio.toFixed(2)} (target <= 0.50: ${ratio <= 0.5 ? "MET" : "MISSED"})`);
        }
        if (tools.length === 2 && !o.skipReshard) {
            const ratio = median(reshard.provider.map((x) => x.keysPerSec)) / median(reshard["redis-cli"].map((x) => x.keysPerSec));
            out(`RATIO resharding keys/s provider/redis-cli = ${ratio.toFixed(2)} (target >= 3.00: ${ratio >= 3 ? "MET" : "MISSED"})`);
            const mo = (t: string) => reshard[t].map((x) => x.migrationOnlyKeysPerSec).filter((x): x is number => x !== undefined);
            if (mo("provider").length && mo("redis-cli").length) {
                const r2 = median(mo("provider")) / median(mo("redis-cli"));
                out(`(migration only: provider between its first and last migrate progress events ${Math.round(median(mo("provider")))} keys/s vs redis-cli rebalance command ${Math.round(median(mo("redis-cli")))} keys/s = ${r2.toFixed(2)}x; the RATIO above is end to end: add node, join, move, healthy)`);
            }
        }
        if (worker?.lastMemory) {
            const m = worker.lastMemory;
            out(`MEMORY provider process: peak RSS ${mib(m.maxRssBytes)} (kernel maxrss over the whole bench), sampled during converge: peak RSS ${mib(m.peakRssBytes)}, peak heap ${mib(m.peakHeapBytes)}, RSS when idle ${mib(worker.readyRss)}`);
        }
        return 0;
    } finally {
        await stopAll();
    }
}

main().then(
    (code) => process.exit(code),
    (e) => {
        process.stderr.write(`bench failed: ${(e as Error).message}\n`);
        process.exit(1);
    },
);
