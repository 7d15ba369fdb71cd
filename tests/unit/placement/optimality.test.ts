/**
 * The planner is exact: on every small topology its placement scores as well as the best of ALL
 * placements (exhaustive oracle), in the priority order same-zone replicas, master spread,
 * shared zones, replica spread. Node counts per zone are arbitrary here (skewed, empty zones,
 * spare nodes), not only the round-robin layout the stack uses.
 */
import fc from "fast-check";
import { planPlacement, planZones, scorePlacement } from "../../../providers/redis-cluster/planner";
import { ClusterSpec } from "../../../providers/redis-cluster/types";
import { cmp, exhaustiveBest, fromCaps, Score, scoreOf } from "./oracle";

const asScore = (s: { sameZone: number; masterSpread: number; sharedZone: number; replicaSpread: number }): Score => [s.sameZone, s.masterSpread, s.sharedZone, s.replicaSpread];

// zones 3..5, S 1..4, R 0..3; 0..5 nodes per zone, or one dominant zone (where same-zone
// replicas become unavoidable). Kept small enough for the exhaustive oracle.
const small = fc
    .record({ Z: fc.integer({ min: 3, max: 5 }), S: fc.integer({ min: 1, max: 4 }), R: fc.integer({ min: 0, max: 3 }), skew: fc.boolean() })
    .chain(({ Z, S, R, skew }) =>
        fc.record({
            S: fc.constant(S),
            R: fc.constant(R),
            caps: skew
                ? fc.tuple(fc.integer({ min: 4, max: 9 }), fc.array(fc.integer({ min: 0, max: 2 }), { minLength: Z - 1, maxLength: Z - 1 })).map(([big, rest]) => [...rest.slice(0, 1), big, ...rest.slice(1)])
                : fc.array(fc.integer({ min: 0, max: 5 }), { minLength: Z, maxLength: Z }),
        }),
    )
    .filter(({ S, R, caps }) => caps.reduce((a, b) => a + b, 0) >= S * (1 + R) && (R < 3 || caps.length <= 4));

describe("placement is optimal (exhaustive oracle on small topologies)", () => {
    it("planPlacement's score equals the best score of every possible placement", () => {
        let compared = 0;
        let withShared = 0;
        let withSame = 0;
        fc.assert(
            fc.property(small, ({ S, R, caps }) => {
                const spec: ClusterSpec = { nodes: fromCaps(caps), shards: S, replicasPerShard: R, allowZoneDegradation: true };
                const best = exhaustiveBest(caps.filter((c) => c > 0), S, R)!;
                const p = planPlacement(spec);
                const got = scoreOf(spec, p);
                expect({ caps, S, R, got }).toEqual({ caps, S, R, got: best });
                // The planner's own scorer agrees with the independent one.
                expect(asScore(scorePlacement(spec, p))).toEqual(got);
                // Without allowZoneDegradation it throws exactly when a same-zone replica is unavoidable.
                if (best[0] > 0) expect(() => planPlacement({ ...spec, allowZoneDegradation: false })).toThrow(/zone anti-affinity/);
                else expect(planPlacement({ ...spec, allowZoneDegradation: false }).degradations).toEqual([]);
                compared++;
                if (best[2] > 0) withShared++;
                if (best[0] > 0) withSame++;
            }),
            { numRuns: 300, seed: 20240901 },
        );
        // The generator really reaches the hard cases (otherwise this test proves little).
        expect(compared).toBe(300);
        expect(withShared).toBeGreaterThan(10);
        expect(withSame).toBeGreaterThan(10);
    });

    it("planZones alone (no node ids) reaches the same optimum", () => {
        fc.assert(
            fc.property(small, ({ S, R, caps }) => {
                const nz = caps.filter((c) => c > 0);
                expect(cmp(asScore(planZones(nz, S, R).score), exhaustiveBest(nz, S, R)!)).toBe(0);
            }),
            { numRuns: 150 },
        );
    });

    it.each([
        // [caps, S, R]: hand-picked corners: one huge zone, fewer zones than copies, spare nodes, empty-ish zones
        [[4, 1, 1], 2, 2],
        [[3, 1], 2, 1],
        [[5, 5, 6], 4, 3],
        [[3, 3, 2, 2, 2], 3, 3],
        [[6, 1, 1, 1], 3, 1],
        [[3, 3, 3, 1], 4, 1],
    ] as [number[], number, number][])("corner %j x%i shards x%i replicas", (caps, S, R) => {
        const spec: ClusterSpec = { nodes: fromCaps(caps), shards: S, replicasPerShard: R, allowZoneDegradation: true };
        expect(scoreOf(spec, planPlacement(spec))).toEqual(exhaustiveBest(caps, S, R));
    });
});
