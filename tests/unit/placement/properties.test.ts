/**
 * Placement at the sizes a stack uses: 3-8 zones, 3-500 shards, 0-3 replicas, nodes dealt
 * round-robin over the zones exactly as components/topology.ts deals them (plus irregular
 * layouts with spare nodes). Invariants checked on every placement, with closed-form bounds
 * that do not come from the planner.
 */
import fc from "fast-check";
import { expandRanges, planPlacement } from "../../../providers/redis-cluster/planner";
import { CLUSTER_SLOTS, ClusterSpec, Placement } from "../../../providers/redis-cluster/types";
import { fromCaps, roundRobin, scoreOf } from "./oracle";

const ZONES = ["z0", "z1", "z2", "z3", "z4", "z5", "z6", "z7"];

function checkStructure(spec: ClusterSpec, p: Placement): void {
    const ids = new Set(spec.nodes.map((n) => n.id));
    expect(p.shards).toHaveLength(spec.shards);
    const used = p.shards.flatMap((s) => [s.master, ...s.replicas]);
    expect(new Set(used).size).toBe(used.length);
    // One expect per property (thousands of expect calls would dominate the run time).
    expect([...used, ...p.spares].filter((id) => !ids.has(id))).toEqual([]);
    expect(used.length + p.spares.length).toBe(spec.nodes.length);
    expect(p.shards.filter((s) => s.replicas.length !== spec.replicasPerShard).map((s) => s.index)).toEqual([]);
    const seen = new Uint8Array(CLUSTER_SLOTS);
    for (const s of p.shards) for (const x of expandRanges(s.slots)) seen[x]++;
    expect(seen.every((x) => x === 1)).toBe(true);
}

const perZone = (spec: ClusterSpec, ids: string[]) => {
    const zoneOf = new Map(spec.nodes.map((n) => [n.id, n.zone]));
    const present = [...new Set(spec.nodes.map((n) => n.zone))];
    return present.map((z) => ids.filter((id) => zoneOf.get(id) === z).length);
};
const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);

const stackShape = fc.record({
    Z: fc.integer({ min: 3, max: 8 }),
    S: fc.integer({ min: 3, max: 500 }),
    R: fc.integer({ min: 0, max: 3 }),
});

describe("placement properties over 3-8 zones, 3-500 shards, 0-3 replicas (round-robin nodes)", () => {
    it("no replica in its master's zone; distinct zones per shard when zones >= copies; masters and replicas within one", () => {
        let distinctCases = 0;
        let crowdedCases = 0;
        fc.assert(
            fc.property(stackShape, ({ Z, S, R }) => {
                const spec: ClusterSpec = { nodes: roundRobin(ZONES.slice(0, Z), S * (1 + R)), shards: S, replicasPerShard: R };
                const p = planPlacement(spec);
                checkStructure(spec, p);
                const [same, , shared] = scoreOf(spec, p);
                expect(same).toBe(0);
                expect(p.degradations).toEqual([]);
                expect(spread(perZone(spec, p.shards.map((s) => s.master)))).toBeLessThanOrEqual(1);
                if (1 + R <= Z) {
                    distinctCases++;
                    expect(shared).toBe(0);
                    expect(spread(perZone(spec, p.shards.flatMap((s) => s.replicas)))).toBeLessThanOrEqual(1);
                } else {
                    // Fewer zones than copies: each shard's R replicas fill Z-1 other zones, so at
                    // least R-(Z-1) of them repeat a zone. The planner must not do worse.
                    crowdedCases++;
                    expect(shared).toBe(S * (R - (Z - 1)));
                }
            }),
            // Fewer zones than copies is 1 draw in 24 (Z=3, R=3): the explicit examples make sure
            // every run checks that branch, whatever the random seed.
            { numRuns: 120, examples: [[{ Z: 3, S: 3, R: 3 }], [{ Z: 3, S: 137, R: 3 }]] },
        );
        expect(distinctCases).toBeGreaterThan(60);
        expect(crowdedCases).toBeGreaterThan(0);
    });

    it("is deterministic, and appending one shard's nodes keeps every master a master and changes at most one node's role", () => {
        fc.assert(
            fc.property(stackShape, ({ Z, S, R }) => {
                const zones = ZONES.slice(0, Z);
                const before: ClusterSpec = { nodes: roundRobin(zones, S * (1 + R)), shards: S, replicasPerShard: R };
                const after: ClusterSpec = { nodes: roundRobin(zones, (S + 1) * (1 + R)), shards: S + 1, replicasPerShard: R };
                const p = planPlacement(before);
                expect(planPlacement(before)).toEqual(p);
                const q = planPlacement(after);
                const mastersAfter = new Set(q.shards.map((s) => s.master));
                for (const s of p.shards) expect(mastersAfter.has(s.master)).toBe(true);
                const promoted = p.shards.flatMap((s) => s.replicas).filter((id) => mastersAfter.has(id));
                expect(promoted.length).toBeLessThanOrEqual(1);
            }),
            { numRuns: 80 },
        );
    });
});

describe("placement properties on irregular layouts (skewed zones, spare nodes)", () => {
    it("every copy in its own zone whenever sum over zones of min(shards, nodes) >= shards x copies", () => {
        const shape = fc
            .record({ Z: fc.integer({ min: 3, max: 8 }), S: fc.integer({ min: 3, max: 300 }), R: fc.integer({ min: 0, max: 3 }) })
            .chain(({ Z, S, R }) =>
                fc.record({
                    S: fc.constant(S),
                    R: fc.constant(R),
                    // per-zone share of the nodes between 0.3x and 1.7x of even, plus up to 20 % spares
                    caps: fc.array(fc.integer({ min: 3, max: 17 }), { minLength: Z, maxLength: Z }).map((w) => {
                        const total = Math.ceil(S * (1 + R) * 1.2);
                        const sum = w.reduce((a, b) => a + b, 0);
                        return w.map((x) => Math.ceil((total * x) / sum));
                    }),
                }),
            );
        let distinct = 0;
        fc.assert(
            fc.property(shape, ({ S, R, caps }) => {
                const spec: ClusterSpec = { nodes: fromCaps(caps), shards: S, replicasPerShard: R, allowZoneDegradation: true };
                const p = planPlacement(spec);
                checkStructure(spec, p);
                const [same, , shared] = scoreOf(spec, p);
                if (caps.reduce((a, c) => a + Math.min(S, c), 0) >= S * (1 + R)) {
                    distinct++;
                    expect([same, shared]).toEqual([0, 0]);
                }
                // A degradation note for every same-zone replica, and none otherwise.
                expect(p.degradations).toHaveLength(same);
            }),
            { numRuns: 80 },
        );
        expect(distinct).toBeGreaterThan(20);
    });
});
