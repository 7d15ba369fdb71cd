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
import { LexMinCostFlow } from "./min-cost-flow";

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
    if (!Number.isInteger(spec.shards) || spec.shards < 1 || spec.shards > CLUSTER_SLOTS) {
        problems.push(`shards must be an integer in 1..${CLUSTER_SLOTS} (every master owns at least one slot); got ${spec.shards}`);
    }
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

// ---------------------------------------------------------------------------------------------
// Placement

/**
 * How good a placement is, as four numbers compared in this order (all minimised). Exported so
 * that tests and config validation judge a placement by the same yardstick the planner uses.
 */
export interface PlacementScore {
    /** Replicas in their own master's zone (each one listed in `degradations`). */
    sameZone: number;
    /** Sum over zones of (masters in the zone)^2: the most even master spread is the minimum. */
    masterSpread: number;
    /** Copies of a shard beyond the first in one zone: sum over shards and zones of max(0, copies - 1). */
    sharedZone: number;
    /** Sum over zones of (replicas in the zone)^2. */
    replicaSpread: number;
}

export const compareScores = (a: PlacementScore, b: PlacementScore): number =>
    a.sameZone - b.sameZone || a.masterSpread - b.masterSpread || a.sharedZone - b.sharedZone || a.replicaSpread - b.replicaSpread;

/** Scores a placement of `spec` (zones are those of spec.nodes). */
export function scorePlacement(spec: ClusterSpec, p: Pick<Placement, "shards">): PlacementScore {
    const zoneOf = new Map(spec.nodes.map((n) => [n.id, n.zone]));
    const masters = new Map<string, number>();
    const replicas = new Map<string, number>();
    for (const z of zonesInOrder(spec.nodes)) { masters.set(z, 0); replicas.set(z, 0); }
    let sameZone = 0;
    let sharedZone = 0;
    for (const s of p.shards) {
        const mz = zoneOf.get(s.master)!;
        masters.set(mz, masters.get(mz)! + 1);
        const copies = new Map<string, number>([[mz, 1]]);
        for (const r of s.replicas) {
            const rz = zoneOf.get(r)!;
            replicas.set(rz, replicas.get(rz)! + 1);
            if (rz === mz) sameZone++;
            else copies.set(rz, (copies.get(rz) ?? 0) + 1);
        }
        for (const [z, n] of copies) if (z !== mz) sharedZone += Math.max(0, n - 1);
    }
    const sq = (m: Map<string, number>) => [...m.values()].reduce((a, x) => a + x * x, 0);
    return { sameZone, masterSpread: sq(masters), sharedZone, replicaSpread: sq(replicas) };
}

/** The zone-level decision: masters per zone, and flow[z][y] = replicas in zone y of shards mastered in zone z. */
export interface ZonePlan {
    masters: number[];
    flow: number[][];
    score: PlacementScore;
}

/** Largest number of mastered-zone candidates compared exhaustively before falling back to exchange steps. */
const MAX_TIE_CANDIDATES = 64;

/**
 * Exact zone-level placement for `caps[z]` nodes per zone, S shards, R replicas (see the header
 * comment of planPlacement for the argument). Pure, no node identities.
 */
export function planZones(caps: number[], S: number, R: number): ZonePlan {
    const Z = caps.length;
    const N = caps.reduce((a, b) => a + b, 0);
    if (N < S * (1 + R)) throw ClusterPlanError(`planZones: ${N} nodes cannot hold ${S} x (1 + ${R}) copies`);

    // 1. Fewest same-zone replicas. For masters m, the replicas of zone z's masters must come from
    //    the other zones' free nodes; Hall's condition for one zone (two or more zones together
    //    reach every zone, and N >= S(1+R)) gives the shortfall  (R-1)*m[z] - (N - caps[z] - S).
    //    So "at most D same-zone replicas" is an upper bound on each m[z]; take the least D.
    const capsFor = (D: number) =>
        caps.map((c) => (R <= 1 ? c : Math.max(0, Math.min(c, Math.floor((N - c - S + D) / (R - 1))))));
    let D = Math.max(0, ...caps.map((c) => (R === 0 ? 0 : c + S - N)));
    if (R >= 2) while (capsFor(D).reduce((a, b) => a + b, 0) < S) D++;
    const mcap = capsFor(D);

    // 2. The most even master spread under those caps is a water level L: every zone gets
    //    min(cap, L), and `extra` zones among those with room get L+1. Which ones is a tie that
    //    the next priorities decide.
    let lo = 0;
    let hi = S;
    while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (mcap.reduce((a, c) => a + Math.min(c, mid), 0) <= S) lo = mid;
        else hi = mid - 1;
    }
    const base = mcap.map((c) => Math.min(c, lo));
    const extra = S - base.reduce((a, b) => a + b, 0);
    const roomy = [...Array(Z).keys()].filter((z) => mcap[z] > lo);

    // 3. Every copy of a shard in its own zone is possible, for ANY such m, iff the zones can hold
    //    S(1+R) copies with at most S per zone (a zone can appear at most once in each shard):
    //    sum min(S, caps) >= S(1+R). Then the replica spread is a water fill in closed form; else
    //    the replica flow (below) is solved for each tied candidate.
    const w = caps.map((c) => Math.min(S, c));
    const distinctPossible = D === 0 && w.reduce((a, b) => a + b, 0) >= S * (1 + R);
    const evaluate = (m: number[]): ZonePlan => {
        if (distinctPossible) {
            const r = waterLevels(S * R, w.map((x, z) => x - m[z]));
            const score = { sameZone: 0, masterSpread: sumSq(m), sharedZone: 0, replicaSpread: sumSq(r) };
            return { masters: m, flow: [], score };
        }
        return replicaFlow(caps, m, R);
    };
    const withExtra = (pick: number[]) => {
        const m = [...base];
        for (const z of pick) m[z]++;
        return m;
    };
    let best: ZonePlan | null = null;
    if (binomial(roomy.length, extra) <= MAX_TIE_CANDIDATES) {
        for (const pick of subsets(roomy, extra)) {
            const cand = evaluate(withExtra(pick));
            // Ties keep the first candidate: the extra masters in the earliest zones, so that
            // the masters per zone only grow when a shard is appended.
            if (!best || compareScores(cand.score, best.score) < 0) best = cand;
        }
    } else {
        // Many zones: start from the earliest zones and move one extra master at a time while
        // that improves the score (never reached with the 3-8 zones clouds offer).
        let pick = roomy.slice(0, extra);
        best = evaluate(withExtra(pick));
        for (let improved = true; improved; ) {
            improved = false;
            for (let i = 0; i < pick.length && !improved; i++) {
                for (const z of roomy) {
                    if (pick.includes(z)) continue;
                    const next = pick.map((x, j) => (j === i ? z : x)).sort((a, b) => a - b);
                    const cand = evaluate(withExtra(next));
                    if (compareScores(cand.score, best.score) < 0) { best = cand; pick = next; improved = true; break; }
                }
            }
        }
    }
    // The flow realises the chosen masters. In the distinct case the replicas per zone are
    // already optimal (the water fill), so they enter as fixed supplies: every feasible flow then
    // scores the same and the flow moves whole blocks instead of one unit at a time.
    if (distinctPossible) {
        const m = best!.masters;
        return replicaFlow(caps, m, R, waterLevels(S * R, w.map((x, z) => x - m[z])));
    }
    return replicaFlow(caps, best!.masters, R);
}

/**
 * Given masters per zone (and optionally the replicas per zone, `fixed`), the exact replica
 * assignment between zones, as a min-cost flow:
 *   source -> zone y (free nodes of y; cost: replicas(y)^2)  -> class z (the m[z] shards mastered
 *   in z; needs R*m[z]) -> sink.  An arc y -> z (y != z) carries m[z] units for free (at most one
 *   replica of y per shard) and more at one "shared zone" each; y -> y costs one "same zone".
 * Filling each class column by column (shard t of the class takes positions t, t + m, ...)
 * realises exactly sum max(0, flow - m[z]) shared copies, so the flow's cost is the score.
 */
function replicaFlow(caps: number[], m: number[], R: number, fixed?: number[]): ZonePlan {
    const Z = caps.length;
    const S = m.reduce((a, b) => a + b, 0);
    // sameZone, sharedZone, replicaSpread, then two tie-breaks for determinism only: replicas of
    // zone z's masters from the zones that follow z (a, b, c: a's replicas in b, b's in c, c's in
    // a), and spare nodes left in the last zones.
    const K = 5;
    const g = new LexMinCostFlow(2 + 2 * Z, K);
    const src = 0;
    const sink = 1;
    const Y = (y: number) => 2 + y;
    const C = (z: number) => 2 + Z + z;
    const big = S * (R + 1) + 1;
    for (let y = 0; y < Z; y++) {
        if (fixed) g.add({ from: src, to: Y(y), cap: fixed[y], cost: [0, 0, 0, 0, 0] });
        else g.add({ from: src, to: Y(y), cap: caps[y] - m[y], cost: [0, 0, 0, 0, y], square: 2 });
    }
    const cheap: number[][] = [];
    const dear: number[][] = [];
    for (let y = 0; y < Z; y++) {
        cheap.push([]);
        dear.push([]);
        for (let z = 0; z < Z; z++) {
            if (m[z] === 0) { cheap[y].push(-1); dear[y].push(-1); continue; }
            if (y === z) {
                cheap[y].push(-1);
                dear[y].push(g.add({ from: Y(y), to: C(z), cap: big, cost: [1, 0, 0, 0, 0] }));
            } else {
                const after = (y - z + Z) % Z;
                cheap[y].push(g.add({ from: Y(y), to: C(z), cap: m[z], cost: [0, 0, 0, after, 0] }));
                dear[y].push(g.add({ from: Y(y), to: C(z), cap: big, cost: [0, 1, 0, after, 0] }));
            }
        }
    }
    for (let z = 0; z < Z; z++) if (m[z] > 0) g.add({ from: C(z), to: sink, cap: R * m[z], cost: [0, 0, 0, 0, 0] });
    const sent = g.run(src, sink, S * R);
    if (sent !== S * R) throw ClusterPlanError(`RedisCluster planner bug: replica flow carried ${sent} of ${S * R}`);
    const flow = m.map(() => m.map(() => 0)); // flow[z][y]
    for (let y = 0; y < Z; y++) {
        for (let z = 0; z < Z; z++) {
            flow[z][y] = (cheap[y][z] >= 0 ? g.flowOn(cheap[y][z]) : 0) + (dear[y][z] >= 0 ? g.flowOn(dear[y][z]) : 0);
        }
    }
    let sameZone = 0;
    let sharedZone = 0;
    const r = caps.map(() => 0);
    for (let z = 0; z < Z; z++) {
        for (let y = 0; y < Z; y++) {
            r[y] += flow[z][y];
            if (y === z) sameZone += flow[z][y];
            else sharedZone += Math.max(0, flow[z][y] - m[z]);
        }
    }
    return { masters: m, flow, score: { sameZone, masterSpread: sumSq(m), sharedZone, replicaSpread: sumSq(r) } };
}

const sumSq = (xs: number[]) => xs.reduce((a, x) => a + x * x, 0);

/** The most even integer vector with the given total under per-entry caps (values only matter for the sum of squares). */
function waterLevels(total: number, caps: number[]): number[] {
    let lo = 0;
    let hi = total;
    while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (caps.reduce((a, c) => a + Math.min(c, mid), 0) <= total) lo = mid;
        else hi = mid - 1;
    }
    const out = caps.map((c) => Math.min(c, lo));
    let left = total - out.reduce((a, b) => a + b, 0);
    for (let i = 0; i < out.length && left > 0; i++) if (caps[i] > lo) { out[i]++; left--; }
    return out;
}

function binomial(n: number, k: number): number {
    if (k < 0 || k > n) return 0;
    let r = 1;
    for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
    return Math.round(r);
}

/** k-subsets of xs in lexicographic order (earliest zones first). */
function* subsets(xs: number[], k: number, from = 0, acc: number[] = []): Generator<number[]> {
    if (acc.length === k) { yield acc; return; }
    for (let i = from; i <= xs.length - (k - acc.length); i++) yield* subsets(xs, k, i + 1, [...acc, xs[i]]);
}

/**
 * Decides masters, replicas and slots for a fresh cluster. Deterministic: the same spec gives
 * the same placement. Throws ClusterPlanError when the spec is invalid, or when the zones cannot
 * keep every replica out of its master's zone and `allowZoneDegradation` is not set.
 *
 * Placement is an assignment problem, solved exactly in two levels:
 *
 *   Zones (planZones). Nodes of one zone are interchangeable, so a placement is decided by
 *   m[z] (masters in zone z) and flow[z][y] (replicas in zone y of the shards mastered in z).
 *   Priorities, in order: (1) no replica in its master's zone; (2) masters spread as evenly as
 *   possible (min sum m[z]^2: within one of each other when the nodes allow); (3) no two copies
 *   of a shard in one zone; (4) replicas spread evenly. (1) is Hall's condition per zone, which
 *   bounds each m[z]; (2) is then a water level with a tie over which zones take one extra
 *   master. Every copy in its own zone is feasible iff sum over zones of min(S, nodes) >=
 *   S(1+R) (no zone can appear twice in a shard; a column-by-column fill meets the bound for
 *   ANY masters within the caps), and then (4) is a water fill too. Otherwise each tied choice
 *   of m gets its exact replica assignment from a min-cost flow (replicaFlow). The work is
 *   O(S*R) augmentations on a graph of 2 nodes per zone: 1 000 shards take milliseconds.
 *
 *   Nodes. The masters of zone z are its first m[z] nodes in spec order (the extra masters of a
 *   tie go to the earliest zones, so m[z] only grows when a shard is appended: existing masters
 *   stay masters and at most one existing replica is promoted); shards are numbered by their
 *   master's position in the spec (shard i owns the i-th slot range); among equally good replica
 *   flows, a zone's masters take their replicas from the zones that follow it; the replicas of
 *   zone y go, in spec order, to the shards the flow sends them to, and the last nodes of a zone
 *   stay spare. Unlike redis-cli, which scores IP collisions and shuffles, nothing here
 *   is random: re-running with the same spec is a no-op.
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
    const index = new Map(spec.nodes.map((n, i) => [n.id, i]));
    const plan = planZones(caps, S, R);

    if (plan.score.sameZone > 0 && !spec.allowZoneDegradation) {
        const counts = zones.map((z, i) => `${z}=${caps[i]}`).join(", ");
        const big = caps.indexOf(Math.max(...caps));
        throw ClusterPlanError(
            `RedisCluster zone anti-affinity: ${S} shards x ${R} replicas cannot keep every replica out of its master's zone ` +
                `with nodes per zone ${counts} (${plan.score.sameZone} replica(s) would share their master's zone: zone ${zones[big]} holds ${caps[big]} of ` +
                `${spec.nodes.length} nodes, and the other zones cannot hold the replicas of the masters it must take). ` +
                `Add nodes in the other zones, lower replicasPerShard, or set allowZoneDegradation=true to accept it.`,
        );
    }

    // Masters: the first m[z] nodes of zone z in spec order (m only grows when a shard is
    // appended, so every existing master stays one). Shards in spec order of their masters.
    const masters: { node: ClusterNodeSpec; zone: number }[] = [];
    const isMaster = byZone.map((ns) => ns.map(() => false));
    for (let z = 0; z < Z; z++) {
        for (let j = 0; j < plan.masters[z]; j++) {
            const at = j;
            isMaster[z][at] = true;
            masters.push({ node: byZone[z][at], zone: z });
        }
    }
    masters.sort((a, b) => index.get(a.node.id)! - index.get(b.node.id)!);
    const slots = slotRanges(S);
    const shards: ShardPlacement[] = masters.map((m, i) => ({ index: i, master: m.node.id, replicas: [], slots: [slots[i]] }));
    const masterZone = masters.map((m) => m.zone);

    // Replica zones per shard: class z (the shards mastered in z) takes flow[z][y] replicas from
    // zone y, dealt column by column so that a zone repeats in a shard only when it must.
    const replicaZones: number[][] = shards.map(() => []);
    for (let z = 0; z < Z; z++) {
        const rows = shards.filter((_, i) => masterZone[i] === z).map((s) => s.index);
        if (!rows.length) continue;
        const seq: number[] = [];
        for (let d = 1; d < Z; d++) for (let k = 0; k < plan.flow[z][(z + d) % Z]; k++) seq.push((z + d) % Z);
        for (let k = 0; k < plan.flow[z][z]; k++) seq.push(z);
        seq.forEach((y, p) => replicaZones[rows[p % rows.length]].push(y));
    }
    const free = byZone.map((ns, z) => ns.filter((_, j) => !isMaster[z][j]));
    const degradations: string[] = [];
    for (const s of shards) {
        for (const y of replicaZones[s.index]) {
            const n = free[y].shift();
            if (!n) throw ClusterPlanError(`RedisCluster planner bug: zone ${zones[y]} ran out of nodes for the replicas of shard ${s.index}`);
            if (y === masterZone[s.index]) {
                degradations.push(`replica ${n.id} of shard ${s.index} shares zone ${zones[y]} with its master ${s.master} (allowZoneDegradation)`);
            }
            s.replicas.push(n.id);
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
