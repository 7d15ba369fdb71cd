/**
 * Oracles for the placement tests, written without the planner's algorithm:
 * - `exhaustiveBest`: the best possible score by enumerating every multiset of shard "row types"
 *   (master zone + the zones of its replicas), merged by a DP over the per-zone usage. Any
 *   placement is such a multiset, so this is the optimum, not a bound. Small sizes only.
 * - `scoreOf`: the score of a concrete placement, counted directly from node zones.
 */
import { ClusterNodeSpec, ClusterSpec, Placement } from "../../../providers/redis-cluster/types";

/** [sameZone, masterSpread, sharedZone, replicaSpread], compared in this order. */
export type Score = [number, number, number, number];

export const cmp = (a: Score, b: Score): number => a[0] - b[0] || a[1] - b[1] || a[2] - b[2] || a[3] - b[3];

export function scoreOf(spec: ClusterSpec, p: Placement): Score {
    const zoneOf = new Map(spec.nodes.map((n) => [n.id, n.zone]));
    const zones = [...new Set(spec.nodes.map((n) => n.zone))];
    const masters = new Map(zones.map((z) => [z, 0]));
    const replicas = new Map(zones.map((z) => [z, 0]));
    let same = 0;
    let shared = 0;
    for (const s of p.shards) {
        const mz = zoneOf.get(s.master)!;
        masters.set(mz, masters.get(mz)! + 1);
        const seen: string[] = [];
        for (const r of s.replicas) {
            const rz = zoneOf.get(r)!;
            replicas.set(rz, replicas.get(rz)! + 1);
            if (rz === mz) same++;
            else if (seen.includes(rz)) shared++;
            else seen.push(rz);
        }
    }
    const sq = (m: Map<string, number>) => [...m.values()].reduce((a, x) => a + x * x, 0);
    return [same, sq(masters), shared, sq(replicas)];
}

/** Every vector of `Z` non-negative integers summing to `total`. */
function vectors(Z: number, total: number): number[][] {
    if (Z === 1) return [[total]];
    const out: number[][] = [];
    for (let k = total; k >= 0; k--) for (const rest of vectors(Z - 1, total - k)) out.push([k, ...rest]);
    return out;
}

/** The best score any placement of S shards x R replicas on `caps[z]` nodes per zone can reach. */
export function exhaustiveBest(caps: number[], S: number, R: number): Score | null {
    const Z = caps.length;
    const types: { z: number; v: number[]; same: number; shared: number }[] = [];
    for (let z = 0; z < Z; z++) {
        if (caps[z] === 0) continue;
        for (const v of vectors(Z, R)) {
            types.push({ z, v, same: v[z], shared: v.reduce((a, x, y) => a + (y === z ? 0 : Math.max(0, x - 1)), 0) });
        }
    }
    // state: masters per zone ++ replicas per zone  ->  best [same, shared] so far
    let states = new Map<string, { m: number[]; r: number[]; same: number; shared: number }>();
    states.set("", { m: caps.map(() => 0), r: caps.map(() => 0), same: 0, shared: 0 });
    for (let row = 0; row < S; row++) {
        const next = new Map<string, { m: number[]; r: number[]; same: number; shared: number }>();
        for (const st of states.values()) {
            for (const t of types) {
                const m = [...st.m];
                m[t.z]++;
                const r = st.r.map((x, y) => x + t.v[y]);
                if (m.some((x, y) => x + r[y] > caps[y])) continue;
                const key = `${m.join(",")}|${r.join(",")}`;
                const same = st.same + t.same;
                const shared = st.shared + t.shared;
                const old = next.get(key);
                if (!old || same < old.same || (same === old.same && shared < old.shared)) next.set(key, { m, r, same, shared });
            }
        }
        states = next;
    }
    let best: Score | null = null;
    const sq = (xs: number[]) => xs.reduce((a, x) => a + x * x, 0);
    for (const st of states.values()) {
        // Zones with no node do not count in the spread (the planner only sees zones that have nodes).
        const score: Score = [st.same, sq(st.m), st.shared, sq(st.r)];
        if (!best || cmp(score, best) < 0) best = score;
    }
    return best;
}

/** Nodes dealt round-robin over the zones, as components/topology.ts does. */
export function roundRobin(zones: string[], count: number, port = 6379): ClusterNodeSpec[] {
    return Array.from({ length: count }, (_, i) => ({ id: `node${i}`, host: `node${i}.test.invalid`, port, zone: zones[i % zones.length] }));
}

/** Nodes with `caps[z]` nodes in zone z, interleaved (zone order, then rank). */
export function fromCaps(caps: number[]): ClusterNodeSpec[] {
    const out: ClusterNodeSpec[] = [];
    const left = [...caps];
    for (let i = 0; left.some((x) => x > 0); i++) {
        for (let z = 0; z < caps.length; z++) {
            if (left[z] === 0) continue;
            left[z]--;
            out.push({ id: `n${out.length}`, host: "10.0.0.1", port: 7000 + out.length, zone: `z${z}` });
        }
    }
    return out;
}
