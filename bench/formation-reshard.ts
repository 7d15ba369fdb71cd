/**
 * Scenarios (a) formation and (b) resharding: the cluster provider's converge against
 * `redis-cli --cluster` on fresh nodes of one lab (see the header of bench/run.ts).
 */
import { ClusterObserver, NodeReport } from "../lab/cluster-view";
import { labObserver, labViewAuth } from "../lab/form";
import type { Lab } from "../lab/lab";
import { redisCliAddNode, redisCliCreate, redisCliRebalance } from "../lab/redis-cli-cluster";
import { loadKeys } from "./keys";
import type { Options } from "./options";
import type { ProviderWorker } from "./provider-process";
import { fmtMs, out } from "./report";
import { discard, freshNodes, phaseBreakdown, printTimeline } from "./trial-nodes";

export interface FormationResult {
    ms: number;
    toolMs: number;
    breakdown?: string;
    /** What the last unhealthy poll was waiting on, and when. */
    waitedOn: string;
}

export async function formationTrial(lab: Lab, tool: "provider" | "redis-cli", worker: ProviderWorker | undefined, o: Options): Promise<FormationResult> {
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

export interface ReshardResult {
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

export async function reshardTrial(lab: Lab, tool: "provider" | "redis-cli", worker: ProviderWorker | undefined, o: Options): Promise<ReshardResult> {
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
