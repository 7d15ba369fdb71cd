/** Reading the cluster and reporting its health against the spec. Changes nothing. */
import { countSlots } from "../planner";
import { CLUSTER_SLOTS, ClusterCredentials, ClusterSpec, ClusterStatus, nodeAddress } from "../types";
import { Pool } from "../primitives/connections";
import { ExecutorOptions, Resolved, resolve } from "../primitives/options";
import { probeAll, topologyFromProbes } from "../primitives/probes";
import { converge } from "./converge";

/** Reads the cluster and reports its health against `spec` (zones, replicas, coverage). No change. */
export async function checkCluster(spec: ClusterSpec, creds: ClusterCredentials, opts: ExecutorOptions = {}): Promise<ClusterStatus> {
    const o = resolve(opts);
    const pool = new Pool(creds, opts);
    try {
        return await statusFromPool(pool, spec, o);
    } finally {
        await pool.closeAll();
    }
}

export async function statusFromPool(pool: Pool, spec: ClusterSpec, o: Resolved): Promise<ClusterStatus> {
    const specProbes = await probeAll(pool, spec.nodes);
    const { topology, probes } = await topologyFromProbes(pool, specProbes, spec.nodes);
    const problems: string[] = [];
    for (const p of specProbes) if (!p.ok) problems.push(`unreachable: ${p.error}`);
    const byId = new Map(topology.nodes.map((n) => [n.nodeId, n]));
    const masters = topology.nodes.filter((n) => n.role === "master" && countSlots(n.slots) > 0 && !n.failed);
    const covered = masters.reduce((a, m) => a + countSlots(m.slots), 0);
    if (topology.nodes.length && covered < CLUSTER_SLOTS) problems.push(`${CLUSTER_SLOTS - covered} slots are not covered by a reachable master`);
    for (const n of topology.nodes) if (n.failed) problems.push(`member ${nodeAddress(n)} (${n.nodeId.slice(0, 8)}) is failed or unreachable`);
    for (const s of topology.openSlots) problems.push(`slot ${s.slot} is left ${s.migratingOn ? "MIGRATING" : "IMPORTING"} (interrupted migration; run converge again)`);
    const replicas = topology.nodes.filter((n) => n.role === "replica" && !n.failed);
    for (const m of masters) {
        const reps = replicas.filter((r) => r.masterId === m.nodeId);
        if (reps.length < spec.replicasPerShard) problems.push(`master ${nodeAddress(m)} has ${reps.length} replica(s), spec wants ${spec.replicasPerShard}`);
        for (const r of reps) if (r.zone && r.zone === m.zone) problems.push(`replica ${nodeAddress(r)} shares zone ${r.zone} with its master ${nodeAddress(m)}`);
    }
    if (topology.nodes.length && masters.length !== spec.shards) problems.push(`${masters.length} masters own slots, spec wants ${spec.shards}`);
    const zc = new Map<string, number>();
    for (const m of masters) zc.set(m.zone ?? "?", (zc.get(m.zone ?? "?") ?? 0) + 1);
    const zones = [...new Set(spec.nodes.map((n) => n.zone))];
    const counts = zones.map((z) => zc.get(z) ?? 0);
    if (masters.length >= zones.length && Math.max(...counts) - Math.min(...counts) > 1) {
        problems.push(`masters are crowded: ${zones.map((z) => `${z}=${zc.get(z) ?? 0}`).join(", ")}`);
    }
    const states = [...probes.values()].filter((p) => p.ok && p.clusterInfo && byId.has(p.myId ?? "")).map((p) => p.clusterInfo!.cluster_state);
    const versions = [...probes.values()].filter((p) => p.ok && p.version).map((p) => p.version!);
    // Lowest first: the cluster can only use what its oldest node supports.
    const num = (v: string) => v.split(".").map(Number);
    versions.sort((a, b) => {
        const [x, y] = [num(a), num(b)];
        for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
        return 0;
    });
    const allOk = states.length > 0 && states.every((s) => s === "ok");
    const specByAddr = new Map(spec.nodes.map((n) => [nodeAddress(n), n]));
    const status: ClusterStatus = {
        state: !allOk ? "fail" : problems.length ? "degraded" : "ok",
        masters: masters.map((m) => ({ id: specByAddr.get(nodeAddress(m))?.id ?? nodeAddress(m), address: nodeAddress(m), zone: m.zone, slots: countSlots(m.slots), nodeId: m.nodeId })),
        replicas: replicas.map((r) => {
            const p = probes.get(nodeAddress(r));
            return {
                id: specByAddr.get(nodeAddress(r))?.id ?? nodeAddress(r),
                address: nodeAddress(r),
                zone: r.zone,
                master: byId.get(r.masterId ?? "") ? nodeAddress(byId.get(r.masterId!)!) : "?",
                linkUp: p?.replication?.master_link_status === "up",
                nodeId: r.nodeId,
            };
        }),
        slotsCovered: covered,
        problems,
        serverVersion: versions[0],
    };
    for (const r of status.replicas) if (!r.linkUp) problems.push(`replica ${r.address} master_link_status is not up`);
    if (status.state === "ok" && problems.length) status.state = "degraded";
    o.progress({ phase: "check", message: `state ${status.state}, ${status.masters.length} masters, ${status.replicas.length} replicas, ${covered} slots covered` });
    return status;
}
