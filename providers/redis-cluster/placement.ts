/** Placement (pure): which node is a master or a replica of which shard, zone-aware and exact. */
import { ClusterNodeSpec, ClusterSpec, Placement, ShardPlacement } from "./types";
import { LexMinCostFlow } from "./min-cost-flow";
import { ClusterPlanError, slotRanges, validateSpec, zonesInOrder } from "./slots";

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
