/**
 * The RedisCluster planner: PURE (no I/O, no clock, no randomness). Given nodes labelled with
 * zones it decides which node is a master and which is a replica of which, which slots each
 * master owns, and how to get from a live cluster to a changed spec.
 *
 * Placement (planPlacement) -- the zone rules, in priority order:
 *
 *   A shard is one master plus R replicas. (1) No replica sits in its master's zone (a hard
 *   rule unless allowZoneDegradation); (2) masters are spread over the zones as evenly as the
 *   nodes allow (within one of each other when possible), so that losing a zone never loses the
 *   majority of masters; (3) no two copies of a shard share a zone whenever the zones and nodes
 *   allow it, so that R replicas survive R zone losses; (4) replicas are spread evenly. This is
 *   an assignment problem and is solved exactly (closed-form water levels plus a min-cost flow
 *   over zones; see planPlacement) in time polynomial in shards and zones. Unlike redis-cli,
 *   which scores IP-address collisions and shuffles, this is exact and deterministic: the same
 *   spec always gives the same placement, which is what makes re-runs no-ops.
 *
 * Slots (slotRanges): shard i of n owns [floor(i*16384/n), floor((i+1)*16384/n) - 1]: every
 * slot exactly once, sizes differ by at most 1.
 *
 * Reshape (planReshape): finish half-migrated slots; forget failed members; a master leaving
 * the spec hands over to an in-spec replica by a planned failover when it has one (no data
 * moves), otherwise it is drained; new masters come from empty nodes in the zones with the
 * fewest masters; slot targets are balanced (+1 slots go to the masters that already own the
 * most) so that only the excess moves: moved = sum over masters of max(0, owned - target), the
 * minimum for a balanced result. Missing replicas are picked zone-aware like placement;
 * masters crowded into one zone are moved by a planned failover to a replica in an empty zone;
 * finally nodes that left the spec are removed (forgotten by every node).
 */
import { CLUSTER_SLOTS, ClusterSpec, LiveNode, LiveTopology, nodeAddress, ReshapeStep, ReshapePlan } from "./types";
import { LexMinCostFlow } from "./min-cost-flow";
import { ClusterPlanError, countSlots, expandRanges, toRanges, validateSpec, zonesInOrder } from "./slots";

// The planner's public surface: slot helpers and validation (slots.ts), placement (placement.ts), reshape (here).
export { ClusterPlanError, countSlots, expandRanges, slotRanges, toRanges, validateSpec, zonesInOrder } from "./slots";
export { PlacementScore, ZonePlan, compareScores, planPlacement, planZones, scorePlacement } from "./placement";

// ---------------------------------------------------------------------------------------------
// Reshape

interface WorkNode {
    addr: string;
    nodeId: string;
    zone?: string;
    inSpec: boolean;
    member: boolean;
    role: "master" | "replica" | "none";
    masterAddr?: string;
    slots: number[];
}

/**
 * Plans the steps from a live cluster to `spec`. Pure. Nodes in steps are addresses (host:port).
 * `live.nodes` must contain the members as the cluster sees them (failed ones flagged).
 */
export function planReshape(live: LiveTopology, spec: ClusterSpec): ReshapePlan {
    validateSpec(spec);
    const S = spec.shards;
    const R = spec.replicasPerShard;
    const specByAddr = new Map(spec.nodes.map((n) => [nodeAddress(n), n]));
    const steps: ReshapeStep[] = [];
    const degradations: string[] = [];

    // 1. Half-migrated slots first: every later step assumes stable slots.
    const byId = new Map(live.nodes.map((n) => [n.nodeId, n]));
    for (const o of live.openSlots) {
        const fromId = o.migratingOn ?? (o.importingOn ? o.peer : undefined);
        const toId = o.importingOn ?? (o.migratingOn ? o.peer : undefined);
        const from = fromId && byId.get(fromId);
        const to = toId && byId.get(toId);
        if (from && to) steps.push({ kind: "fix-open-slot", slot: o.slot, from: nodeAddress(from), to: nodeAddress(to) });
    }

    // 2. Failed members: forget them; a failed master that still owns slots has lost data.
    const work = new Map<string, WorkNode>();
    const failedLost: LiveNode[] = [];
    for (const n of live.nodes) {
        if (n.failed) {
            if (n.role === "master" && countSlots(n.slots) > 0) failedLost.push(n);
            else steps.push({ kind: "forget", node: nodeAddress(n), nodeId: n.nodeId, reason: "node failed" });
        }
    }
    if (failedLost.length) {
        throw ClusterPlanError(
            `RedisCluster: master(s) ${failedLost.map((n) => `${nodeAddress(n)} (${countSlots(n.slots)} slots)`).join(", ")} failed and no replica took over. ` +
                `Restart the node with its data, or wait for the automatic failover (cluster-node-timeout), then run again.`,
        );
    }
    const idToAddr = new Map(live.nodes.filter((n) => !n.failed).map((n) => [n.nodeId, nodeAddress(n)]));
    for (const n of live.nodes) {
        if (n.failed) continue;
        const addr = nodeAddress(n);
        const s = specByAddr.get(addr);
        work.set(addr, {
            addr,
            nodeId: n.nodeId,
            zone: s?.zone ?? n.zone,
            inSpec: !!s,
            member: true,
            role: n.role,
            masterAddr: n.masterId ? idToAddr.get(n.masterId) : undefined,
            slots: expandRanges(n.slots),
        });
    }
    for (const s of spec.nodes) {
        const addr = nodeAddress(s);
        if (!work.has(addr)) work.set(addr, { addr, nodeId: "", zone: s.zone, inSpec: true, member: false, role: "none", slots: [] });
    }
    // A half-migrated slot is finished towards its importing node first (fix-open-slot), so the
    // rest of the plan must see it there already: planning it from the old owner again would hand
    // it to a third node that has none of its keys.
    for (const st of steps) {
        if (st.kind !== "fix-open-slot") continue;
        const from = work.get(st.from);
        const to = work.get(st.to);
        if (!from || !to || to.role !== "master") continue;
        from.slots = from.slots.filter((x) => x !== st.slot);
        if (!to.slots.includes(st.slot)) to.slots.push(st.slot);
    }
    const specOrder = (a: WorkNode) => {
        const i = spec.nodes.findIndex((s) => nodeAddress(s) === a.addr);
        return i < 0 ? 1e9 : i;
    };
    const nodes = () => [...work.values()];
    const slotOwners = nodes().filter((n) => n.role === "master" && n.slots.length > 0);

    // 3. Masters that leave the spec hand over to an in-spec replica (planned failover, no data moves).
    for (const m of slotOwners.filter((n) => !n.inSpec)) {
        const rep = nodes()
            .filter((r) => r.role === "replica" && r.masterAddr === m.addr && r.inSpec)
            .sort((a, b) => specOrder(a) - specOrder(b))[0];
        if (!rep) continue;
        steps.push({ kind: "failover", node: rep.addr, master: m.addr, reason: `master ${m.addr} leaves the spec` });
        rep.role = "master";
        rep.slots = m.slots;
        rep.masterAddr = undefined;
        m.role = "replica";
        m.slots = [];
        m.masterAddr = rep.addr;
        for (const r of nodes()) if (r.masterAddr === m.addr && r !== m) r.masterAddr = rep.addr;
    }

    // 4. Choose the final masters.
    const zoneCount = (ms: WorkNode[]) => {
        const c = new Map<string, number>();
        for (const m of ms) c.set(m.zone ?? "?", (c.get(m.zone ?? "?") ?? 0) + 1);
        return c;
    };
    let finals = nodes().filter((n) => n.role === "master" && n.slots.length > 0 && n.inSpec).sort((a, b) => specOrder(a) - specOrder(b));
    while (finals.length > S) {
        // Drop from the most crowded zone; among those the one with fewest slots, then the last in spec order.
        const zc = zoneCount(finals);
        const drop = [...finals].sort(
            (a, b) => (zc.get(b.zone ?? "?")! - zc.get(a.zone ?? "?")!) || a.slots.length - b.slots.length || specOrder(b) - specOrder(a),
        )[0];
        finals = finals.filter((f) => f !== drop);
    }
    const allZones = zonesInOrder(spec.nodes);
    while (finals.length < S) {
        // New masters: empty nodes (never a replica holding data), in the zone with the fewest masters.
        const zc = zoneCount(finals);
        const cands = nodes().filter((n) => n.inSpec && !finals.includes(n) && (n.role === "none" || (n.role === "master" && n.slots.length === 0)));
        if (!cands.length) {
            throw ClusterPlanError(
                `RedisCluster: ${S} shards need ${S - finals.length} more empty node(s) to become masters; every spec node is already a master or a replica. ` +
                    `Add nodes to the spec.`,
            );
        }
        const freeInZone = (z?: string) => nodes().filter((n) => n.zone === z && n.inSpec && !finals.includes(n)).length;
        cands.sort(
            (a, b) =>
                (zc.get(a.zone ?? "?") ?? 0) - (zc.get(b.zone ?? "?") ?? 0) ||
                freeInZone(b.zone) - freeInZone(a.zone) ||
                allZones.indexOf(a.zone ?? "") - allZones.indexOf(b.zone ?? "") ||
                specOrder(a) - specOrder(b),
        );
        finals.push(cands[0]);
    }

    // 5. Slots: balanced targets, the +1 going to the masters that own most; only the excess moves.
    const base = Math.floor(CLUSTER_SLOTS / S);
    const extra = CLUSTER_SLOTS % S;
    const byOwned = [...finals].sort((a, b) => b.slots.length - a.slots.length || specOrder(a) - specOrder(b));
    const target = new Map<WorkNode, number>();
    byOwned.forEach((m, i) => target.set(m, base + (i < extra ? 1 : 0)));
    const owned = new Set<number>();
    for (const n of nodes()) for (const s of n.slots) owned.add(s);
    const uncovered: number[] = [];
    for (let s = 0; s < CLUSTER_SLOTS; s++) if (!owned.has(s)) uncovered.push(s);
    // Donors: masters not final (everything) and finals above target (highest slots first).
    const donors: { node: WorkNode | null; slots: number[] }[] = [];
    if (uncovered.length) donors.push({ node: null, slots: uncovered });
    for (const n of nodes()) {
        if (n.role !== "master" || n.slots.length === 0) continue;
        const t = target.get(n);
        const sorted = [...n.slots].sort((a, b) => a - b);
        if (t === undefined) donors.push({ node: n, slots: sorted });
        else if (sorted.length > t) donors.push({ node: n, slots: sorted.slice(t) });
    }
    const receivers = finals.filter((f) => f.slots.length < target.get(f)!);
    let slotsMoved = 0;
    const moves: { from: WorkNode | null; to: WorkNode; slots: number[] }[] = [];
    for (const r of receivers) {
        let want = target.get(r)! - r.slots.length;
        while (want > 0) {
            const d = donors.find((x) => x.slots.length > 0);
            if (!d) throw ClusterPlanError("RedisCluster planner bug: ran out of donor slots");
            const take = d.slots.splice(0, want);
            want -= take.length;
            moves.push({ from: d.node, to: r, slots: take });
        }
    }
    for (const mv of moves) {
        const ranges = toRanges(mv.slots);
        if (mv.from) {
            steps.push({ kind: "migrate", from: mv.from.addr, to: mv.to.addr, slots: ranges, count: mv.slots.length });
            slotsMoved += mv.slots.length;
            const gone = new Set(mv.slots);
            mv.from.slots = mv.from.slots.filter((s) => !gone.has(s));
        } else {
            // Uncovered slots (an interrupted create): assigned, nothing to move.
            steps.push({ kind: "migrate", from: "", to: mv.to.addr, slots: ranges, count: mv.slots.length });
        }
        mv.to.slots.push(...mv.slots);
    }
    // Meet the new nodes that get a role (new masters now; replicas below) before anything else of theirs.
    const meetSteps: ReshapeStep[] = [];
    const meet = (n: WorkNode) => {
        if (!n.member) {
            meetSteps.push({ kind: "meet", node: n.addr });
            n.member = true;
        }
    };
    for (const f of finals) {
        meet(f);
        f.role = "master";
        f.masterAddr = undefined;
    }
    // Masters that were drained become empty and free.
    for (const n of nodes()) if (n.role === "master" && !finals.includes(n)) n.slots = [];

    // 6. Replicas, zone-aware, as one assignment: a min-cost flow from the final masters (R units
    // each) over (master, zone) pairs to the free nodes. Costs, in priority order: a replica in its
    // master's zone (only with allowZoneDegradation), two replicas of a shard in one zone, a replica
    // that changes master (a full sync), a node that is not yet a member. A greedy pick (keep the
    // current replicas, then fill round by round) can strand the last master with only a node of
    // its own zone although a zone-safe assignment exists (seen after a partition healed with the
    // masters crowded); the flow cannot.
    const replicaSteps: ReshapeStep[] = [];
    const assigned = assignReplicas(finals, nodes().filter((n) => n.inSpec && !finals.includes(n)), R, !!spec.allowZoneDegradation, specOrder);
    for (const f of finals) {
        for (const c of assigned.get(f)!) {
            if (c.zone === f.zone) degradations.push(`replica ${c.addr} shares zone ${c.zone} with its master ${f.addr} (allowZoneDegradation)`);
        }
    }
    const taken = new Set<WorkNode>([...finals, ...[...assigned.values()].flat()]);
    for (const f of finals) {
        for (const r of assigned.get(f)!) {
            if (r.role === "replica" && r.masterAddr === f.addr) continue;
            meet(r);
            replicaSteps.push({ kind: "replicate", node: r.addr, master: f.addr });
            r.role = "replica";
            r.masterAddr = f.addr;
        }
    }

    // 7. Masters crowded into one zone move to an empty zone by a planned failover.
    const failoverSteps: ReshapeStep[] = [];
    for (let guard = 0; guard < S; guard++) {
        const zc = zoneCount(finals);
        const zonesWithNodes = allZones;
        const counts = zonesWithNodes.map((z) => zc.get(z) ?? 0);
        const max = Math.max(...counts);
        const min = Math.min(...counts);
        if (max - min <= 1) break;
        const poorZones = zonesWithNodes.filter((z) => (zc.get(z) ?? 0) === min);
        let done = false;
        for (const f of finals.filter((m) => zc.get(m.zone ?? "?") === max)) {
            // The promoted replica must not share its zone with the shard's other replicas
            // (they stay, as replicas of the new master).
            const reps = assigned.get(f)!;
            const r = reps.find((x) => poorZones.includes(x.zone ?? "") && reps.every((y) => y === x || y.zone !== x.zone || !!spec.allowZoneDegradation));
            if (!r) continue;
            failoverSteps.push({ kind: "failover", node: r.addr, master: f.addr, reason: `masters crowd zone ${f.zone} (${max}) while zone ${r.zone} has ${min}` });
            finals = finals.map((x) => (x === f ? r : x));
            assigned.set(r, [...assigned.get(f)!.filter((x) => x !== r), f]);
            assigned.delete(f);
            r.slots = f.slots;
            f.slots = [];
            r.role = "master";
            f.role = "replica";
            done = true;
            break;
        }
        if (!done) break;
    }

    // 8. Remove members that left the spec, and members of the spec with no role (surplus replicas).
    const removeSteps: ReshapeStep[] = [];
    for (const n of nodes()) {
        if (!n.member || taken.has(n) || finals.includes(n)) continue;
        if (n.role === "replica" && n.inSpec && n.masterAddr && finals.includes(work.get(n.masterAddr)!) && R > 0) {
            // A surplus replica in the spec is removed only when the shard has more than R.
        }
        removeSteps.push({
            kind: "remove",
            node: n.addr,
            nodeId: n.nodeId,
            reason: n.inSpec ? "surplus node (more nodes than shards x (1 + replicas))" : "node left the spec",
        });
    }

    const ordered = [
        ...steps.filter((s) => s.kind === "fix-open-slot"),
        ...steps.filter((s) => s.kind === "forget"),
        ...meetSteps,
        ...steps.filter((s) => s.kind === "failover"),
        ...steps.filter((s) => s.kind === "migrate"),
        ...replicaSteps,
        ...failoverSteps,
        ...removeSteps,
    ];
    return { steps: ordered, masters: finals.map((f) => f.addr), slotsMoved, degradations };
}

/**
 * Assigns R replicas to every final master from `free` (exact, see step 6 of planReshape). Throws
 * the planner's errors when there are too few nodes or no zone-safe assignment.
 */
function assignReplicas(finals: WorkNode[], free: WorkNode[], R: number, allowDegradation: boolean, specOrder: (n: WorkNode) => number): Map<WorkNode, WorkNode[]> {
    const assigned = new Map<WorkNode, WorkNode[]>(finals.map((f) => [f, []]));
    if (R === 0 || !finals.length) return assigned;
    if (free.length < finals.length * R) {
        throw ClusterPlanError(`RedisCluster: no free node left for a replica of master ${finals[finals.length - 1].addr}; ${finals.length} shards x ${R} replicas need ${finals.length * R} nodes besides the masters, the spec has ${free.length}. Add nodes to the spec.`);
    }
    const cands = [...free].sort((a, b) => specOrder(a) - specOrder(b));
    const zones = [...new Set(cands.map((n) => n.zone ?? "?"))];
    // Vertices: 0 source, 1 sink, masters, (master, zone) pairs, candidate nodes.
    const M = finals.length;
    const Z = zones.length;
    const mV = (i: number) => 2 + i;
    const pV = (i: number, z: number) => 2 + M + i * Z + z;
    const nV = (k: number) => 2 + M + M * Z + k;
    const flow = new LexMinCostFlow(2 + M + M * Z + cands.length, 4);
    const zero = [0, 0, 0, 0];
    const pick: { arc: number; master: number; node: number }[] = [];
    finals.forEach((f, i) => {
        flow.add({ from: 0, to: mV(i), cap: R, cost: zero });
        zones.forEach((z, zi) => {
            const own = z === (f.zone ?? "?");
            if (own && !allowDegradation) return;
            // The first replica in a zone is free of the sharing cost; more in the same zone pay it.
            flow.add({ from: mV(i), to: pV(i, zi), cap: 1, cost: [own ? 1 : 0, 0, 0, 0] });
            if (R > 1) flow.add({ from: mV(i), to: pV(i, zi), cap: R - 1, cost: [own ? 1 : 0, 1, 0, 0] });
        });
        cands.forEach((n, k) => {
            const zi = zones.indexOf(n.zone ?? "?");
            if ((n.zone ?? "?") === (f.zone ?? "?") && !allowDegradation) return;
            const stays = n.role === "replica" && n.masterAddr === f.addr;
            pick.push({ arc: flow.add({ from: pV(i, zi), to: nV(k), cap: 1, cost: [0, 0, stays ? 0 : 1, n.member ? 0 : 1] }), master: i, node: k });
        });
    });
    cands.forEach((_, k) => flow.add({ from: nV(k), to: 1, cap: 1, cost: zero }));
    const sent = flow.run(0, 1, M * R);
    if (sent < M * R) {
        const byZone = zones.map((z) => `${z}: ${finals.filter((f) => (f.zone ?? "?") === z).length} master(s), ${cands.filter((n) => (n.zone ?? "?") === z).length} free node(s)`).join("; ");
        throw ClusterPlanError(
            `RedisCluster zone anti-affinity: ${M} shards x ${R} replicas cannot all be placed outside their master's zone (${byZone}). ` +
                `Add nodes in other zones, lower replicasPerShard, or set allowZoneDegradation=true.`,
        );
    }
    for (const p of pick) if (flow.flowOn(p.arc) > 0) assigned.get(finals[p.master])!.push(cands[p.node]);
    return assigned;
}
