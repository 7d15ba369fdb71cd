/** The one entry that changes a cluster: probe, preflight, choose create or reshape, then check. */
import { countSlots, expandRanges, planPlacement, validateSpec } from "../planner";
import { ClusterCredentials, ClusterSpec, ClusterStatus, nodeAddress } from "../types";
import { Pool } from "../primitives/connections";
import { ClusterExecError, ExecutorOptions, Resolved, resolve } from "../primitives/options";
import { NodeProbe, knownMembers, probeAll } from "../primitives/probes";
import { ParsedNode } from "../primitives/protocol";
import { statusFromPool } from "./check";
import { createCluster } from "./create";
import { reshapeCluster } from "./reshape";

/**
 * Makes the live cluster match `spec`: forms it when the nodes are empty, finishes an interrupted
 * run, or reshapes (add/remove shards and replicas, replace dead nodes, move masters between
 * zones). Checks preconditions on every node before changing anything. Returns the checked status.
 */
export async function converge(spec: ClusterSpec, creds: ClusterCredentials, opts: ExecutorOptions = {}): Promise<ClusterStatus> {
    validateSpec(spec);
    const o = resolve(opts);
    const placement = planPlacement(spec); // throws on zone problems before any I/O
    for (const d of placement.degradations) o.log(`zone degradation: ${d}`);
    const pool = new Pool(creds, opts);
    try {
        o.progress({ phase: "probe", message: `probing ${spec.nodes.length} nodes` });
        const probes = await probeAll(pool, spec.nodes);
        preflight(spec, probes, o);
        const mode = chooseMode(spec, probes, placement);
        o.log(`mode: ${mode}`);
        if (mode === "create" && o.onlyStepKinds) throw ClusterExecError("heal: the cluster is not formed; forming it needs a published spec (converge, not heal)", undefined, "heal-guard");
        if (mode === "create") await createCluster(pool, spec, probes, placement, creds, o);
        else await reshapeCluster(pool, spec, probes, creds, o);
        return await statusFromPool(pool, spec, o);
    } finally {
        await pool.closeAll();
    }
}

/** Every node answers, is cluster-enabled, and is empty or already one of ours. Throws before any change. */
export function preflight(spec: ClusterSpec, probes: NodeProbe[], o: Resolved): void {
    const problems: string[] = [];
    const specAddrs = new Set(spec.nodes.map(nodeAddress));
    for (const p of probes) {
        if (!p.ok) { problems.push(p.error!); continue; }
        if (!p.clusterEnabled) { problems.push(`${p.target.label}: cluster-enabled is not yes; set cluster-enabled yes in redis.conf and restart it`); continue; }
        if (!p.me) { problems.push(`${p.target.label}: CLUSTER NODES has no "myself" line`); continue; }
    }
    if (problems.length) throw ClusterExecError(`RedisCluster preflight failed, nothing was changed:\n  - ${problems.join("\n  - ")}`, undefined, "preflight");
    // Group spec nodes into clusters by who knows whom.
    const idOf = new Map(probes.map((p) => [p.addr, p.myId!]));
    const specIds = new Set(idOf.values());
    const byId = new Map(probes.map((p) => [p.myId!, p]));
    // "Knows" in either direction joins two nodes: a MEET is one-sided until the handshake completes,
    // and a node may have dropped a peer that still knows it (a dropped handshake on a slow bus: the
    // sixth VM run's interrupted create looked like two clusters). Two distinct clusters never know
    // each other's nodes in any direction.
    const linked = new Map<string, Set<string>>(probes.map((p) => [p.myId!, new Set<string>()]));
    for (const x of probes) {
        for (const n of knownMembers(x)) {
            if (!byId.has(n.id) || n.id === x.myId) continue;
            linked.get(x.myId!)!.add(n.id);
            linked.get(n.id)!.add(x.myId!);
        }
    }
    const comp = new Map<string, number>();
    let next = 0;
    for (const p of probes) {
        if (comp.has(p.myId!)) continue;
        const c = next++;
        const stack = [p.myId!];
        comp.set(p.myId!, c);
        while (stack.length) {
            for (const id of linked.get(stack.pop()!)!) {
                if (!comp.has(id)) { comp.set(id, c); stack.push(id); }
            }
        }
    }
    const groups = new Map<number, NodeProbe[]>();
    for (const p of probes) groups.set(comp.get(p.myId!)!, [...(groups.get(comp.get(p.myId!)!) ?? []), p]);
    // A group is "formed" if its nodes know others or own slots; ours is the one whose live
    // members are at least half spec nodes (or former members of this cluster).
    let ours: number | null = null;
    for (const [c, ps] of groups) {
        const members = new Map<string, ParsedNode>();
        for (const p of ps) for (const n of knownMembers(p)) if (!n.failed) members.set(n.id, n);
        const outsiders = [...members.values()].filter((n) => !specIds.has(n.id) && !specAddrs.has(nodeAddress(n)) && !o.formerNodes.has(nodeAddress(n)));
        const formed = members.size > 1 || ps.some((p) => countSlots(p.me!.slots) > 0);
        if (!formed) {
            const p = ps[0];
            if (p.dbsize! > 0) problems.push(`${p.target.label}: holds ${p.dbsize} keys but is not a member of this cluster; only empty nodes can join. FLUSHALL it (if the data is not needed) or remove it from the spec`);
            continue;
        }
        if (outsiders.length > 0 && outsiders.length * 2 > members.size) {
            for (const p of ps) {
                problems.push(
                    `${p.target.label}: is already in another cluster (it knows ${outsiders.slice(0, 3).map(nodeAddress).join(", ")}${outsiders.length > 3 ? ", ..." : ""}, not in this spec). ` +
                        `Remove it from the spec, or CLUSTER RESET it if that cluster is gone`,
                );
            }
            continue;
        }
        if (ps.length === 1 && members.size === 1) continue; // a lone node that owns slots: an interrupted create, judged by chooseMode
        if (ours !== null) {
            problems.push(`spec nodes belong to two different clusters (${groups.get(ours)!.map((p) => p.target.label).join(", ")}) and (${ps.map((p) => p.target.label).join(", ")}); join them by hand or fix the spec`);
        } else ours = c;
    }
    if (problems.length) throw ClusterExecError(`RedisCluster preflight failed, nothing was changed:\n  - ${problems.join("\n  - ")}`, undefined, "preflight");
}

/**
 * "create" when every node is on the fresh-create path (owns nothing or only part of its planned
 * slots, knows only nodes of the plan, no open slots); this path is forward-idempotent. "reshape"
 * otherwise.
 */
export function chooseMode(spec: ClusterSpec, probes: NodeProbe[], placement: ReturnType<typeof planPlacement>): "create" | "reshape" {
    const specById = new Map(spec.nodes.map((n) => [n.id, n]));
    const plannedSlots = new Map<string, Set<number>>();
    const used = new Set<string>();
    for (const s of placement.shards) {
        plannedSlots.set(nodeAddress(specById.get(s.master)!), new Set(expandRanges(s.slots)));
        used.add(nodeAddress(specById.get(s.master)!));
        for (const r of s.replicas) used.add(nodeAddress(specById.get(r)!));
    }
    const ids = new Map(probes.map((p) => [p.myId!, p.addr]));
    // A formed cluster (some node reports cluster_state:ok) is reshaped, never re-created: the
    // placement of a changed spec may pair replicas differently, and moving them is churn.
    if (probes.some((p) => p.clusterInfo?.cluster_state === "ok")) return "reshape";
    for (const p of probes) {
        const me = p.me!;
        if (me.migrating.length || me.importing.length) return "reshape";
        // A fresh node (knows only itself, owns nothing) fits any plan, spare or not.
        if (knownMembers(p).length <= 1 && me.slots.length === 0 && !me.masterId) continue;
        for (const n of knownMembers(p)) {
            const addr = ids.get(n.id);
            if (!addr || nodeAddress(n) !== addr || !used.has(addr)) return "reshape";
            if (n.failed) return "reshape";
            if (n.master && n.slots.length) {
                const plan = plannedSlots.get(addr);
                if (!plan) return "reshape";
                for (const s of expandRanges(n.slots)) if (!plan.has(s)) return "reshape";
            }
        }
    }
    return "create";
}
