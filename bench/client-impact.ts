/**
 * Scenario (c), client impact of a resharding: a loaded 3x1 cluster gets a 4th shard (a new
 * master and its replica: 6 -> 8 nodes, 3x1 -> 4x1) while an application client writes and reads
 * through it (bench/client-load.ts: ioredis Cluster over TLS, ACL user `app`).
 *
 * One trial, on fresh nodes of the lab of one Redis runtime:
 *   1. form 3x1 with the tool under test (provider converge, or redis-cli --cluster create);
 *   2. load N keys (bench/keys.ts); start the client; let it run --client-warmup-ms (baseline);
 *   3. t0: move. atomic / classic: the provider's converge to 4x1 with atomicMigration true /
 *      false. redis-cli: `--cluster add-node` of the new master, wait until every node knows it,
 *      `add-node --cluster-slave --cluster-master-id` of its replica, wait again, then
 *      `--cluster rebalance --cluster-use-empty-masters` (the waits are what an operator must do
 *      before rebalance succeeds; they are part of this arm's time);
 *   4. stop the stopwatch at the first poll where all 8 nodes agree, 4 masters own the 16384
 *      slots and every replica is linked (lab/cluster-view.ts, the same judge for every path);
 *   5. keep the client running --client-tail-ms (it still follows MOVED for slots it had cached),
 *      stop it, read back every key it wrote and every loaded key.
 * Keys moved = loaded keys in the slots whose owner changed between before and after (the
 * client's own keys are not counted); end-to-end keys/s = keys moved / (healthy - t0).
 * Client counters cover [t0, end of tail); latency percentiles cover the commands started
 * during the move [t0, healthy); the warm-up gives the baseline latency.
 */
import * as fs from "fs";
import { ClusterObserver, CLUSTER_SLOTS, NodeReport } from "../lab/cluster-view";
import { labObserver, labViewAuth } from "../lab/form";
import type { Lab } from "../lab/lab";
import { redisCliAddNode, redisCliAdmin, redisCliCreate, redisCliRebalance } from "../lab/redis-cli-cluster";
import { ClientLoad, ClientVerifyReport, ClientWindowReport, LatencySummary } from "./client-load";
import { benchKey, keySlot, loadKeys, verifyKeys } from "./keys";
import type { ImpactPath, Options } from "./options";
import type { ProviderWorker } from "./provider-process";
import { fmtMs, out, sleep } from "./report";
import { discard, freshNodes, phaseBreakdown, printTimeline } from "./trial-nodes";

export interface ImpactTrialResult {
    runtime: string;
    serverVersion: string;
    mover: ImpactPath["mover"];
    keysLoaded: number;
    /** Set when the trial failed; the figures below are then absent or partial. */
    error?: string;
    /** Time from t0 until the cluster was healthy with 4 masters, ms. */
    ms?: number;
    /** Time until the tool returned, ms. */
    toolMs?: number;
    slotsMoved?: number;
    keysMoved?: number;
    keysPerSec?: number;
    /** What the client saw from t0 to the end of the tail. */
    client?: ClientWindowReport;
    /** Latency of the commands started during the move (t0 .. healthy). */
    moveLatency?: LatencySummary;
    /** Latency during the warm-up, before the move. */
    baselineLatency?: LatencySummary;
    /** TRYAGAIN + CLUSTERDOWN replies (retried or not) + failed commands + wrong reads, during the window. */
    clientVisibleErrors?: number;
    keysLost?: { loaded: number; loadedChecked: number; client: number; clientChecked: number; total: number; samples: string[] };
    /**
     * Keys/s of the data movement alone (not a goal, for where the time goes): the provider
     * between its first and last migrate progress events, redis-cli's rebalance command.
     */
    migrationOnlyKeysPerSec?: number;
    breakdown?: string;
}

/** Number of bench keys 0..n-1 in each slot (computed once per key count). */
const slotKeyCounts = new Map<number, Uint32Array>();
function keysPerSlot(n: number): Uint32Array {
    let c = slotKeyCounts.get(n);
    if (!c) {
        c = new Uint32Array(CLUSTER_SLOTS);
        for (let i = 0; i < n; i++) c[keySlot(benchKey(i))]++;
        slotKeyCounts.set(n, c);
    }
    return c;
}

/** Slot -> owner node id, from the first report that answered. */
function slotOwners(reports: NodeReport[]): string[] {
    const r = reports.find((x) => !x.error);
    if (!r) throw new Error(`no node answered: ${reports.map((x) => `${x.address}: ${x.error}`).join("; ")}`);
    const owners = new Array<string>(CLUSTER_SLOTS).fill("");
    for (const n of r.nodes) if (n.role === "master") for (const [a, b] of n.slots) for (let s = a; s <= b; s++) owners[s] = n.id;
    return owners;
}

/**
 * Bounded wait until every observed node answers, reports cluster_state:ok and knows exactly the
 * observed nodes with no fail/handshake flags: what `redis-cli --cluster` needs before its next step.
 */
async function waitAllKnown(obs: ClusterObserver, timeoutMs: number): Promise<void> {
    const n = obs.endpoints.length;
    const deadline = performance.now() + timeoutMs;
    let why = "not polled";
    while (performance.now() < deadline) {
        const reports = await obs.poll();
        const bad = reports.filter((r) => r.error || r.clusterState !== "ok" || r.knownNodes !== n || r.nodes.length !== n || r.nodes.some((x) => x.badFlags.length));
        if (!bad.length) return;
        why = bad.map((r) => `${r.address}: ${r.error ?? `state ${r.clusterState}, knows ${r.knownNodes}/${n}`}`).slice(0, 3).join("; ");
        await sleep(25);
    }
    throw new Error(`the ${n} nodes did not all know each other with cluster_state:ok within ${timeoutMs} ms: ${why}`);
}

function clientAuth(lab: Lab) {
    return {
        username: "app",
        password: lab.password("app"),
        tls: { ca: fs.readFileSync(lab.tls.caFile), cert: fs.readFileSync(lab.tls.clientCertFile), key: fs.readFileSync(lab.tls.clientKeyFile) },
    };
}

const addr = (lab: Lab, i: number) => `${lab.nodes[i].host}:${lab.nodes[i].port}`;

/** The redis-cli arm's move: add the master, add its replica, rebalance (waits in between, bounded). */
async function redisCliMove(lab: Lab, seed: number, newMaster: number, newReplica: number, obs7: ClusterObserver, obs8: ClusterObserver, o: Options): Promise<{ breakdown: string; rebalanceMs: number }> {
    const t = performance.now();
    await redisCliAddNode(lab, newMaster, seed, o.timeoutMs);
    await waitAllKnown(obs7, 60000);
    const masterId = (await lab.cli(newMaster, ["CLUSTER", "MYID"])).trim();
    const r = await redisCliAdmin(lab, ["--cluster", "add-node", addr(lab, newReplica), addr(lab, seed), "--cluster-slave", "--cluster-master-id", masterId], o.timeoutMs);
    if (r.code !== 0 || /^\[ERR\]/m.test(r.stdout)) throw new Error(`redis-cli --cluster add-node --cluster-slave failed (exit ${r.code}): ${(r.stdout + r.stderr).slice(-400)}`);
    await waitAllKnown(obs8, 60000);
    const joinedMs = performance.now() - t;
    await redisCliRebalance(lab, seed, [], o.timeoutMs);
    const rebalanceMs = performance.now() - t - joinedMs;
    return { breakdown: `add-node x2 + joins ${fmtMs(joinedMs)}, rebalance ${fmtMs(rebalanceMs)}`, rebalanceMs };
}

export async function clientImpactTrial(lab: Lab, path: ImpactPath, worker: ProviderWorker | undefined, o: Options): Promise<ImpactTrialResult> {
    const keys = o.impactKeys;
    const result: ImpactTrialResult = { runtime: path.runtime, serverVersion: lab.state.serverVersion, mover: path.mover, keysLoaded: keys };
    const idx = await freshNodes(lab, 8, o);
    const first6 = idx.slice(0, 6);
    const [newMaster, newReplica] = idx.slice(6);
    const obs6 = labObserver(lab, first6);
    const obs7 = labObserver(lab, idx.slice(0, 7));
    const obs8 = labObserver(lab, idx);
    const endpoints = first6.map((i) => ({ host: lab.nodes[i].host, port: lab.nodes[i].port }));
    let client: ClientLoad | undefined;
    const converge = (indices: number[], shards: number) => {
        if (!worker) throw new Error("the provider worker is not running");
        return worker.converge(lab, indices, shards, 1, { ...o.converge, atomicMigration: path.mover === "atomic" });
    };
    try {
        if (path.mover === "redis-cli") await redisCliCreate(lab, first6, 1, o.timeoutMs);
        else {
            const r = await converge(first6, 3).done;
            if (r.error) throw new Error(`provider converge (3x1) failed: ${r.error}`);
        }
        await obs6.waitHealthy({ masters: 3, replicas: 3 }, { timeoutMs: 120000 });
        await loadKeys(endpoints[0], labViewAuth(lab), { keys });
        const before = slotOwners(await obs6.poll());

        client = new ClientLoad({ seeds: endpoints, auth: clientAuth(lab), workers: o.clientWorkers, opsPerSec: o.clientOpsPerSec });
        await client.start();
        const tReady = performance.now();
        await sleep(o.clientWarmupMs);
        await Promise.all([obs7.connect(), obs8.connect()]);

        const t0 = performance.now();
        let migrationMs: number | undefined;
        if (path.mover === "redis-cli") {
            const m = await redisCliMove(lab, first6[0], newMaster, newReplica, obs7, obs8, o);
            result.breakdown = m.breakdown;
            migrationMs = m.rebalanceMs;
        } else {
            const job = converge(idx, 4);
            const r = await job.done;
            if (r.error) throw new Error(`provider converge (4x1, atomicMigration ${path.mover === "atomic"}) failed: ${r.error}`);
            result.breakdown = `phases: ${phaseBreakdown(job.progress)}`;
            const mig = job.progress.filter((p) => p.event.phase === "migrate");
            if (mig.length >= 2) migrationMs = mig[mig.length - 1].atMs - mig[0].atMs;
            printTimeline(`provider ${path.mover} move`, job.progress, o);
        }
        result.toolMs = performance.now() - t0;
        const h = await obs8.waitHealthy({ masters: 4, replicas: 4 }, { timeoutMs: 120000, startedAt: t0 });
        const tHealthy = t0 + h.ms;
        await sleep(o.clientTailMs);
        const tEnd = performance.now();
        await client.stop();

        const after = slotOwners(h.reports);
        const perSlot = keysPerSlot(keys);
        let slotsMoved = 0;
        let keysMoved = 0;
        for (let s = 0; s < CLUSTER_SLOTS; s++) {
            if (before[s] === after[s]) continue;
            slotsMoved++;
            keysMoved += perSlot[s];
        }
        Object.assign(result, { ms: h.ms, slotsMoved, keysMoved, keysPerSec: keysMoved / (h.ms / 1000) });
        if (migrationMs && migrationMs > 0) result.migrationOnlyKeysPerSec = keysMoved / (migrationMs / 1000);
        const w = client.window(t0, tEnd);
        result.client = w;
        result.moveLatency = client.window(t0, tHealthy).latency;
        result.baselineLatency = client.window(tReady, t0).latency;
        result.clientVisibleErrors = w.failed + w.wrongReads + w.seen.tryagain + w.seen.clusterdown;

        const cv: ClientVerifyReport = await client.verify();
        const lv = await verifyKeys(endpoints[0], labViewAuth(lab), keys);
        result.keysLost = { loaded: lv.missing, loadedChecked: lv.checked, client: cv.lost, clientChecked: cv.keysChecked, total: lv.missing + cv.lost, samples: [...lv.samples, ...cv.lostSamples].slice(0, 5) };
        if (slotsMoved === 0) throw new Error(`no slot changed owner: the move did nothing`);
    } catch (e) {
        result.error = (e as Error).message.split("\n")[0].slice(0, 600);
        if (o.verbose) out(`    ${(e as Error).stack}`);
        await client?.stop().catch(() => undefined);
    } finally {
        client?.close();
        obs6.close();
        obs7.close();
        obs8.close();
        await discard(lab, idx);
    }
    return result;
}

const kinds = (r: Record<string, number>) =>
    Object.entries(r)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
const lat = (l?: LatencySummary) => (l && l.samples ? `p50 ${l.p50Ms.toFixed(1)} ms, p99 ${l.p99Ms.toFixed(1)} ms, max ${l.maxMs.toFixed(1)} ms (${l.samples} cmds)` : "no samples");

/** Prints one trial's figures (three indented lines). */
export function printImpactTrial(r: ImpactTrialResult, n: number): void {
    const title = `  impact ${r.serverVersion} ${r.mover} #${n}`;
    if (r.error) {
        out(`${title}: FAILED: ${r.error}`);
        return;
    }
    const c = r.client!;
    out(`${title}: ${r.keysMoved} keys (${r.slotsMoved} slots) moved in ${fmtMs(r.ms!)} = ${Math.round(r.keysPerSec!)} keys/s end to end (tool returned after ${fmtMs(r.toolMs!)}); migration alone ${r.migrationOnlyKeysPerSec ? `${Math.round(r.migrationOnlyKeysPerSec)} keys/s` : "n/a"}; ${r.breakdown ?? ""}`);
    out(`    client: ${c.commands} commands (${Math.round(c.opsPerSec)}/s), writes ${c.writes.acked} acked / ${c.writes.failed} failed; followed MOVED ${c.seen.moved}, ASK ${c.seen.ask}; replies TRYAGAIN ${c.seen.tryagain}, CLUSTERDOWN ${c.seen.clusterdown}, connection ${c.seen.connection}, timeout ${c.seen.timeout}, other ${c.seen.other}`);
    out(`    failed commands ${c.failed} (${kinds(c.failures)}); wrong reads ${c.wrongReads}; client-visible errors ${r.clientVisibleErrors}`);
    out(`    latency during the move: ${lat(r.moveLatency)}; before: ${lat(r.baselineLatency)}`);
    out(`    keys lost ${r.keysLost!.total} (loaded ${r.keysLost!.loaded} of ${r.keysLost!.loadedChecked}, client ${r.keysLost!.client} of ${r.keysLost!.clientChecked})${r.keysLost!.samples.length ? `: ${r.keysLost!.samples.join("; ")}` : ""}`);
    for (const s of c.samples) out(`      e.g. ${s}`);
}
