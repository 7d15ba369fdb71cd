/** Probing nodes (INFO, CLUSTER NODES/INFO, replication) and building the live topology from the probes. */
import { countSlots, expandRanges, toRanges } from "../planner";
import { ClusterCredentials, ClusterNodeSpec, LiveNode, LiveTopology, nodeAddress, OpenSlot } from "../types";
import { Pool, Target, explainConnectError } from "./connections";
import { ClusterExecError, ExecutorOptions, resolve } from "./options";
import { ParsedNode, parseClusterNodes, parseInfo } from "./protocol";

export interface NodeProbe {
    target: Target;
    addr: string;
    spec?: ClusterNodeSpec;
    ok: boolean;
    error?: string;
    version?: string;
    clusterEnabled?: boolean;
    myId?: string;
    view?: ParsedNode[];
    me?: ParsedNode;
    dbsize?: number;
    clusterInfo?: Record<string, string>;
    replication?: Record<string, string>;
}

/** One probe, bounded: a node that accepts TCP but never answers (stopped, overloaded) counts as unreachable. */
export async function probeOne(pool: Pool, t: Target, spec?: ClusterNodeSpec): Promise<NodeProbe> {
    const limit = 2 * pool.connectTimeoutMs();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<NodeProbe>((resolve) => {
        timer = setTimeout(() => {
            pool.drop(t);
            resolve({ target: t, addr: nodeAddress(t), spec, ok: false, error: `${t.label}: no answer within ${limit} ms (process stopped or overloaded?)` });
        }, limit);
    });
    try {
        return await Promise.race([probeOnce(pool, t, spec), timeout]);
    } finally {
        clearTimeout(timer);
    }
}

export async function probeOnce(pool: Pool, t: Target, spec?: ClusterNodeSpec): Promise<NodeProbe> {
    const addr = nodeAddress(t);
    try {
        const c = await pool.get(t);
        const p = c.pipeline();
        p.info("server");
        p.info("cluster");
        const res = await p.exec();
        for (const [err] of res!) if (err) throw err; // e.g. WRONGPASS surfacing on the first command
        const server = parseInfo(String(res![0][1]));
        const clusterEnabled = parseInfo(String(res![1][1])).cluster_enabled === "1";
        const probe: NodeProbe = { target: t, addr, spec, ok: true, version: server.redis_version, clusterEnabled };
        if (!clusterEnabled) return probe;
        const q = c.pipeline();
        q.cluster("NODES");
        q.dbsize();
        q.cluster("INFO");
        q.info("replication");
        const r2 = await q.exec();
        for (const [err] of r2!) if (err) throw err;
        probe.view = parseClusterNodes(String(r2![0][1]));
        probe.me = probe.view.find((n) => n.myself);
        probe.myId = probe.me?.id;
        probe.dbsize = Number(r2![1][1]);
        probe.clusterInfo = parseInfo(String(r2![2][1]));
        probe.replication = parseInfo(String(r2![3][1]));
        return probe;
    } catch (e) {
        const msg = (e as Error)?.name === "ClusterExecError" ? (e as Error).message : `${t.label}: cannot connect as ACL user "${pool.username()}": ${explainConnectError(e, pool.connectTimeoutMs())}`;
        return { target: t, addr, spec, ok: false, error: msg };
    }
}

export const specTarget = (n: ClusterNodeSpec): Target => ({ host: n.host, port: n.port, label: `${n.id} ${nodeAddress(n)}` });

export async function probeAll(pool: Pool, nodes: ClusterNodeSpec[]): Promise<NodeProbe[]> {
    return Promise.all(nodes.map((n) => probeOne(pool, specTarget(n), n)));
}

/** Members a node knows (not in handshake, with an address). */
export function knownMembers(p: NodeProbe): ParsedNode[] {
    return (p.view ?? []).filter((n) => !n.handshake && n.host && !n.flags.includes("noaddr"));
}

/**
 * Reads the live topology seen from `nodes` (spec nodes; members found in their views are probed
 * too). A member is healthy only if the executor reaches its address AND finds the same node id
 * there; a fresh process at a dead node's address does not revive the old member.
 */
export async function readTopology(nodes: ClusterNodeSpec[], creds: ClusterCredentials, opts: ExecutorOptions = {}): Promise<LiveTopology> {
    const pool = new Pool(creds, opts);
    try {
        const probes = await probeAll(pool, nodes);
        return (await topologyFromProbes(pool, probes, nodes)).topology;
    } finally {
        await pool.closeAll();
    }
}

export interface TopologyView {
    topology: LiveTopology;
    /** Probes of every member reached (spec and non-spec), by address. */
    probes: Map<string, NodeProbe>;
}

export async function topologyFromProbes(pool: Pool, specProbes: NodeProbe[], nodes: ClusterNodeSpec[]): Promise<TopologyView> {
    const specByAddr = new Map(nodes.map((n) => [nodeAddress(n), n]));
    const probes = new Map(specProbes.map((p) => [p.addr, p]));
    // The main view: the reachable spec node that knows the most members (ties: spec order).
    const members = specProbes.filter((p) => p.ok && p.view && (knownMembers(p).length > 1 || countSlots(p.me?.slots ?? []) > 0));
    members.sort((a, b) => knownMembers(b).length - knownMembers(a).length);
    const main = members[0];
    if (!main) return { topology: { nodes: [], openSlots: [] }, probes };
    // Keep `noaddr` members: Redis flags a member so when a different node answers at its address
    // (a replaced machine); they must be forgotten, not ignored.
    const view = (main.view ?? []).filter((n) => !n.handshake);
    // Probe members outside the spec (leaving nodes) so their health and open slots are known.
    const extra = view.filter((n) => n.host && n.port && !probes.has(nodeAddress(n)));
    const extraProbes = await Promise.all(extra.map((n) => probeOne(pool, { host: n.host, port: n.port, label: `(not in spec) ${nodeAddress(n)}` })));
    for (const p of extraProbes) probes.set(p.addr, p);
    const liveNodes: LiveNode[] = [];
    const openSlots = new Map<number, OpenSlot>();
    for (const n of view) {
        const addr = nodeAddress(n);
        const p = probes.get(addr);
        const healthy = !!p?.ok && p.myId === n.id && !n.flags.includes("fail") && !n.flags.includes("noaddr");
        // Ownership as the node itself claims it when reachable (its own view is the freshest).
        const self = healthy ? p!.me! : n;
        const s = specByAddr.get(addr);
        liveNodes.push({
            nodeId: n.id,
            host: n.host,
            port: n.port,
            busPort: n.busPort,
            role: self.master ? "master" : "replica",
            masterId: self.masterId,
            slots: self.master ? self.slots : [],
            failed: !healthy,
            specId: s?.id,
            zone: s?.zone,
        });
        if (healthy) {
            for (const m of p!.me!.migrating) {
                const o = openSlots.get(m.slot) ?? { slot: m.slot };
                o.migratingOn = n.id;
                o.peer = o.peer ?? m.to;
                openSlots.set(m.slot, o);
            }
            for (const m of p!.me!.importing) {
                const o = openSlots.get(m.slot) ?? { slot: m.slot };
                o.importingOn = n.id;
                o.peer = o.peer ?? m.from;
                openSlots.set(m.slot, o);
            }
        }
    }
    // Two masters claiming one slot (interrupted migration finalised on one side only): the
    // higher config epoch wins in Redis; the planner only needs each slot once.
    const seen = new Set<number>();
    for (const n of liveNodes.filter((x) => !x.failed).concat(liveNodes.filter((x) => x.failed))) {
        const keep: number[] = [];
        for (const s of expandRanges(n.slots)) if (!seen.has(s)) { seen.add(s); keep.push(s); }
        n.slots = toRanges(keep);
    }
    return { topology: { nodes: liveNodes, openSlots: [...openSlots.values()].sort((a, b) => a.slot - b.slot) }, probes };
}
