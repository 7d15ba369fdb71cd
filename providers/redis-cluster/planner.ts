/**
 * The RedisCluster planner: PURE (no I/O, no clock, no randomness). Given nodes labelled with
 * zones it decides which node is a master and which is a replica of which, which slots each
 * master owns, and how to get from a live cluster to a changed spec.
 *
 * Placement (planPlacement) -- the zone anti-affinity rule:
 *
 *   A shard is one master plus R replicas. No replica may sit in its master's zone, and the
 *   masters should be spread over the zones as evenly as possible. Choosing how many masters go
 *   in each zone (m[z]) decides everything: the replicas of the m[z] shards whose master is in z
 *   must come from the OTHER zones. By Hall's theorem on this supply/demand graph a choice m is
 *   feasible iff, for every zone z,  R*m[z] <= (spare nodes outside z),  where spare = nodes not
 *   used as masters (the condition for two or more zones at once is implied by N >= S*(1+R)).
 *   We enumerate the m vectors (few: zones are ~3), keep those that need the fewest same-zone
 *   replicas (max-flow over the zone graph; 0 when feasible), and among them take the one with
 *   the smallest sum of m[z]^2 (the most even spread). Replicas of one zone group are then dealt
 *   round-robin over its shards so one shard's replicas also land in different zones. Unlike
 *   redis-cli, which scores IP-address collisions and shuffles, this is exact and deterministic:
 *   the same spec always gives the same placement, which is what makes re-runs no-ops.
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
import {
    CLUSTER_SLOTS,
    ClusterNodeSpec,
    ClusterSpec,
    LiveNode,
    LiveTopology,
    nodeAddress,
    Placement,
    ReshapeStep,
    ReshapePlan,
    ShardPlacement,
    SlotRange,
} from "./types";

/**
 * A configuration or topology problem; the message names the input, the rule, the value and the
 * fix. A plain Error with `name = "ClusterPlanError"` (not a subclass: serializeFunction rebuilds
 * Error subclasses without their message).
 */
export function ClusterPlanError(message: string): Error {
    const e = new Error(message);
    e.name = "ClusterPlanError";
    return e;
}

/** Slot ranges for n shards: 16384 slots covered once, sizes within 1 of each other. */
export function slotRanges(n: number): SlotRange[] {
    if (!Number.isInteger(n) || n < 1 || n > CLUSTER_SLOTS) {
        throw ClusterPlanError(`slotRanges: shards must be an integer in 1..${CLUSTER_SLOTS}; got ${n}`);
    }
    const out: SlotRange[] = [];
    for (let i = 0; i < n; i++) {
        out.push({ start: Math.floor((i * CLUSTER_SLOTS) / n), end: Math.floor(((i + 1) * CLUSTER_SLOTS) / n) - 1 });
    }
    return out;
}

export function countSlots(ranges: SlotRange[]): number {
    return ranges.reduce((a, r) => a + (r.end - r.start + 1), 0);
}

/** Sorted, merged ranges from a list of slots. */
export function toRanges(slots: number[]): SlotRange[] {
    const s = [...slots].sort((a, b) => a - b);
    const out: SlotRange[] = [];
    for (const x of s) {
        const last = out[out.length - 1];
        if (last && x === last.end + 1) last.end = x;
        else if (!last || x > last.end) out.push({ start: x, end: x });
    }
    return out;
}

export function expandRanges(ranges: SlotRange[]): number[] {
    const out: number[] = [];
    for (const r of ranges) for (let s = r.start; s <= r.end; s++) out.push(s);
    return out;
}

/** Checks a spec; throws one error listing every problem. */
export function validateSpec(spec: ClusterSpec): void {
    const problems: string[] = [];
    if (!Number.isInteger(spec.shards) || spec.shards < 1) problems.push(`shards must be an integer >= 1; got ${spec.shards}`);
    if (!Number.isInteger(spec.replicasPerShard) || spec.replicasPerShard < 0) {
        problems.push(`replicasPerShard must be an integer >= 0; got ${spec.replicasPerShard}`);
    }
    const ids = new Set<string>();
    const addrs = new Set<string>();
    for (const n of spec.nodes ?? []) {
        if (!n.id) problems.push(`every node needs an id; got ${JSON.stringify(n)}`);
        if (ids.has(n.id)) problems.push(`node id "${n.id}" appears twice; ids must be unique`);
        ids.add(n.id);
        const a = nodeAddress(n);
        if (addrs.has(a)) problems.push(`node address ${a} appears twice; each node needs its own host:port`);
        addrs.add(a);
        if (!n.host) problems.push(`node "${n.id}" has no host`);
        if (!Number.isInteger(n.port) || n.port < 1 || n.port > 65535) problems.push(`node "${n.id}" port must be 1..65535; got ${n.port}`);
        if (!n.zone) problems.push(`node "${n.id}" has no zone; every node needs a failure-domain label`);
    }
    if (problems.length === 0) {
        const need = spec.shards * (1 + spec.replicasPerShard);
        if (spec.nodes.length < need) {
            problems.push(
                `${spec.shards} shards x (1 master + ${spec.replicasPerShard} replicas) needs at least ${need} nodes; got ${spec.nodes.length}. ` +
                    `Add ${need - spec.nodes.length} node(s) or lower shards/replicasPerShard`,
            );
        }
    }
    if (problems.length) throw ClusterPlanError(`RedisCluster spec is invalid:\n  - ${problems.join("\n  - ")}`);
}

function zonesInOrder(nodes: ClusterNodeSpec[]): string[] {
    const zs: string[] = [];
    for (const n of nodes) if (!zs.includes(n.zone)) zs.push(n.zone);
    return zs;
}

/**
 * Max flow on the zone graph: demand[z] replicas needed by masters of zone z, supply[y] free
 * nodes of zone y, edges z->y for y != z. Returns flow[z][y].
 */
function zoneFlow(demand: number[], supply: number[]): { total: number; flow: number[][] } {
    const Z = demand.length;
    const flow = demand.map(() => supply.map(() => 0));
    const dLeft = [...demand];
    const sLeft = [...supply];
    let total = 0;
    // Augmenting paths: source -> z -> y -> sink, or with one reroute z -> y' <- z2 -> y (BFS over
    // demand nodes). Z is tiny, so a plain BFS per unit is fast enough.
    for (;;) {
        // BFS from every demand node with capacity left.
        const prev: ({ z: number; via: number } | null)[] = new Array(Z).fill(null);
        const seen = new Array(Z).fill(false);
        const queue: number[] = [];
        for (let z = 0; z < Z; z++) if (dLeft[z] > 0) { seen[z] = true; queue.push(z); }
        let found: { z: number; y: number } | null = null;
        while (queue.length && !found) {
            const z = queue.shift()!;
            // Prefer supply zones with the most left, for an even spread.
            const ys = [...Array(Z).keys()].filter((y) => y !== z).sort((a, b) => sLeft[b] - sLeft[a] || a - b);
            for (const y of ys) {
                if (sLeft[y] > 0) { found = { z, y }; break; }
            }
            if (found) break;
            // Reroute: another demand zone z2 that currently takes from y could move to another y.
            for (const y of ys) {
                for (let z2 = 0; z2 < Z; z2++) {
                    if (!seen[z2] && z2 !== y && flow[z2][y] > 0) {
                        // z takes from y what z2 gave up; z2 must find a new supplier.
                        seen[z2] = true;
                        prev[z2] = { z, via: y };
                        queue.push(z2);
                    }
                }
            }
        }
        if (!found) break;
        // Apply: found.z takes from found.y; walk back the reroutes.
        let { z, y } = found;
        flow[z][y]++;
        sLeft[y]--;
        while (prev[z]) {
            const p = prev[z]!;
            flow[z][p.via]--; // z gives up its unit from p.via ...
            flow[p.z][p.via]++; // ... which p.z takes
            z = p.z;
        }
        dLeft[z]--;
        total++;
    }
    return { total, flow };
}

function* compositions(total: number, caps: number[], i = 0, acc: number[] = []): Generator<number[]> {
    if (i === caps.length - 1) {
        if (total <= caps[i]) yield [...acc, total];
        return;
    }
    for (let k = Math.min(total, caps[i]); k >= 0; k--) yield* compositions(total - k, caps, i + 1, [...acc, k]);
}

/**
 * Decides masters, replicas and slots for a fresh cluster. Deterministic.
 * Throws ClusterPlanError when the spec is invalid, or when zones cannot keep replicas out of
 * their master's zone and `allowZoneDegradation` is not set.
 */
export function planPlacement(spec: ClusterSpec): Placement {
    validateSpec(spec);
    const S = spec.shards;
    const R = spec.replicasPerShard;
    const zones = zonesInOrder(spec.nodes);
    const Z = zones.length;
    const byZone = zones.map((z) => spec.nodes.filter((n) => n.zone === z));
    const caps = byZone.map((ns) => ns.length);
    const need = S * (1 + R);

    // Pick m (masters per zone): most replicas placed cross-zone first, then the most even spread.
    let best: { m: number[]; flow: number[][]; placed: number; score: number } | null = null;
    let tried = 0;
    for (const m of compositions(S, caps)) {
        if (++tried > 50000) break; // many zones: the first 50k candidates (most-even-first is not guaranteed, still valid)
        const supply = caps.map((c, z) => c - m[z]);
        const demand = m.map((x) => x * R);
        const { total, flow } = zoneFlow(demand, supply);
        // The masters plus the replicas placed must not exceed the nodes (same-zone fill comes from leftovers).
        const score = m.reduce((a, x) => a + x * x, 0);
        if (!best || total > best.placed || (total === best.placed && score < best.score)) best = { m, flow, placed: total, score };
    }
    if (!best) throw ClusterPlanError(`RedisCluster: cannot place ${S} masters on ${spec.nodes.length} nodes`);
    const degradations: string[] = [];
    if (best.placed < S * R && !spec.allowZoneDegradation) {
        const counts = zones.map((z, i) => `${z}=${caps[i]}`).join(", ");
        throw ClusterPlanError(
            `RedisCluster zone anti-affinity: ${S} shards x ${R} replicas cannot keep every replica out of its master's zone ` +
                `with nodes per zone ${counts} (${S * R - best.placed} replica(s) would share their master's zone). ` +
                `Add nodes in the other zones, lower replicasPerShard, or set allowZoneDegradation=true to accept it.`,
        );
    }

    // Concrete nodes: masters are the first m[z] nodes of zone z (spec order).
    const free = byZone.map((ns) => [...ns]);
    const masterZone: number[] = [];
    const masters: ClusterNodeSpec[] = [];
    // Interleave zones so shard order alternates zones (shard 0 in the first zone, ...).
    const left = [...best.m];
    while (masters.length < S) {
        for (let z = 0; z < Z && masters.length < S; z++) {
            if (left[z] > 0) {
                masters.push(free[z].shift()!);
                masterZone.push(z);
                left[z]--;
            }
        }
    }
    const shards: ShardPlacement[] = masters.map((m, i) => ({ index: i, master: m.id, replicas: [], slots: [slotRanges(S)[i]] }));
    const shardZones: number[][] = shards.map(() => []);

    // Cross-zone replicas: for each master zone z, the flow tells how many come from each y;
    // deal them round-robin over the shards of z.
    for (let z = 0; z < Z; z++) {
        const group = shards.filter((_, i) => masterZone[i] === z);
        if (!group.length) continue;
        const supplyList: number[] = [];
        for (let y = 0; y < Z; y++) for (let k = 0; k < best.flow[z][y]; k++) supplyList.push(y);
        // Deal zone by zone so consecutive shards get different zones first.
        let k = 0;
        for (const y of supplyList) {
            // next shard in this group that still needs a replica, preferring one without zone y
            let chosen = -1;
            for (let t = 0; t < group.length; t++) {
                const g = group[(k + t) % group.length];
                if (g.replicas.length < R && !shardZones[g.index].includes(y)) { chosen = (k + t) % group.length; break; }
            }
            if (chosen < 0) {
                for (let t = 0; t < group.length; t++) {
                    const g = group[(k + t) % group.length];
                    if (g.replicas.length < R) { chosen = (k + t) % group.length; break; }
                }
            }
            const g = group[chosen];
            g.replicas.push(free[y].shift()!.id);
            shardZones[g.index].push(y);
            k = chosen + 1;
        }
    }
    // Same-zone fill (only reached with allowZoneDegradation): take from the zones with the most left.
    for (const g of shards) {
        while (g.replicas.length < R) {
            const order = [...Array(Z).keys()].sort((a, b) => free[b].length - free[a].length || a - b);
            const y = order.find((yy) => yy !== masterZone[g.index] && free[yy].length > 0) ?? order.find((yy) => free[yy].length > 0);
            if (y === undefined) throw ClusterPlanError(`RedisCluster: ran out of nodes placing replicas of shard ${g.index}`);
            const n = free[y].shift()!;
            if (y === masterZone[g.index]) {
                degradations.push(`replica ${n.id} of shard ${g.index} shares zone ${zones[y]} with its master ${g.master} (allowZoneDegradation)`);
            }
            g.replicas.push(n.id);
            shardZones[g.index].push(y);
        }
    }
    const used = new Set(shards.flatMap((s) => [s.master, ...s.replicas]));
    if (used.size !== need) throw ClusterPlanError(`RedisCluster planner bug: placed ${used.size} nodes, expected ${need}`);
    return { shards, spares: spec.nodes.filter((n) => !used.has(n.id)).map((n) => n.id), degradations };
}

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

    // 6. Replicas, zone-aware.
    const replicaSteps: ReshapeStep[] = [];
    const assigned = new Map<WorkNode, WorkNode[]>(finals.map((f) => [f, []]));
    // Keep current replicas of final masters (in spec, healthy), those in another zone first.
    for (const f of finals) {
        const cur = nodes()
            .filter((r) => r.role === "replica" && r.masterAddr === f.addr && r.inSpec)
            .sort((a, b) => Number(a.zone === f.zone) - Number(b.zone === f.zone) || specOrder(a) - specOrder(b));
        for (const r of cur) {
            if (assigned.get(f)!.length >= R) break;
            if (r.zone === f.zone && !spec.allowZoneDegradation) continue;
            assigned.get(f)!.push(r);
        }
    }
    const taken = new Set<WorkNode>([...finals, ...[...assigned.values()].flat()]);
    const pool = () => nodes().filter((n) => n.inSpec && !taken.has(n));
    for (let round = 0; round < R; round++) {
        for (const f of finals) {
            const reps = assigned.get(f)!;
            if (reps.length > round) continue;
            const usedZones = new Set([f.zone, ...reps.map((r) => r.zone)]);
            const avail = (z?: string) => pool().filter((n) => n.zone === z).length;
            const cands = pool().sort(
                (a, b) =>
                    Number(a.zone === f.zone) - Number(b.zone === f.zone) ||
                    Number(usedZones.has(a.zone)) - Number(usedZones.has(b.zone)) ||
                    avail(b.zone) - avail(a.zone) ||
                    Number(b.member) - Number(a.member) ||
                    specOrder(a) - specOrder(b),
            );
            const c = cands[0];
            if (!c) throw ClusterPlanError(`RedisCluster: no free node left for a replica of master ${f.addr}; add nodes to the spec`);
            if (c.zone === f.zone) {
                if (!spec.allowZoneDegradation) {
                    throw ClusterPlanError(
                        `RedisCluster zone anti-affinity: the only free node for a replica of master ${f.addr} (zone ${f.zone}) is ${c.addr} in the same zone. ` +
                            `Add a node in another zone, lower replicasPerShard, or set allowZoneDegradation=true.`,
                    );
                }
                degradations.push(`replica ${c.addr} shares zone ${c.zone} with its master ${f.addr} (allowZoneDegradation)`);
            }
            reps.push(c);
            taken.add(c);
        }
    }
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
