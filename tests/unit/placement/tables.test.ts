/**
 * The cases issue 9 names, as tables, through the same path the stack uses
 * (components/topology.ts deals nodes round-robin and asks planPlacement for roles).
 */
import { planTopology } from "../../../components/topology";
import { planPlacement } from "../../../providers/redis-cluster/planner";
import { ClusterSpec } from "../../../providers/redis-cluster/types";
import { roundRobin, scoreOf } from "./oracle";

const GCP = ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"];
const SIX = ["eu-1a", "eu-1b", "eu-1c", "eu-1d", "eu-1e", "eu-1f"];

function counts(zones: string[], nodes: { zone: string; role: string }[], role: string): number[] {
    return zones.map((z) => nodes.filter((n) => n.zone === z && n.role === role).length);
}

describe("issue 9 counterexamples", () => {
    test("GCP a/b/c/f, 5 shards x 2 replicas: every copy of every shard in its own zone", () => {
        const t = planTopology({ zones: GCP, shards: 5, replicasPerShard: 2, envoyCount: 2, redisPort: 6379 });
        for (let s = 0; s < 5; s++) {
            const zs = t.nodes.filter((n) => n.shard === s).map((n) => n.zone);
            expect({ shard: s, copies: zs.length, zones: new Set(zs).size }).toEqual({ shard: s, copies: 3, zones: 3 });
        }
        // 15 nodes over 4 zones = 4/4/4/3: masters 2/1/1/1, replicas 2/3/3/2.
        expect(counts(GCP, t.nodes, "master")).toEqual([2, 1, 1, 1]);
        expect(counts(GCP, t.nodes, "replica")).toEqual([2, 3, 3, 2]);
    });

    test.each([
        // shards x replicas over 6 zones -> masters per zone
        [32, 1, [6, 6, 5, 5, 5, 5]],
        [33, 1, [6, 6, 6, 5, 5, 5]],
        [36, 2, [6, 6, 6, 6, 6, 6]],
        [37, 2, [7, 6, 6, 6, 6, 6]],
        [64, 1, [11, 11, 11, 11, 10, 10]],
        [100, 3, [17, 17, 17, 17, 16, 16]],
    ] as [number, number, number[]][])("6 zones, %i shards x %i replicas: masters %j (within one)", (shards, replicasPerShard, masters) => {
        const t = planTopology({ zones: SIX, shards, replicasPerShard, envoyCount: 2, redisPort: 6379 });
        expect(counts(SIX, t.nodes, "master")).toEqual(masters);
        const replicas = counts(SIX, t.nodes, "replica");
        expect(Math.max(...replicas) - Math.min(...replicas)).toBeLessThanOrEqual(1);
        for (let s = 0; s < shards; s++) {
            const zs = t.nodes.filter((n) => n.shard === s).map((n) => n.zone);
            expect(new Set(zs).size).toBe(1 + replicasPerShard);
        }
    });

    test.each([
        // [what, zones per node, shards, replicas, expected error parts]
        ["one zone holds most nodes", ["a", "a", "a", "b"], 2, 1, ["zone anti-affinity", "nodes per zone a=3, b=1", "1 replica(s) would share", "zone a holds 3 of 4 nodes", "allowZoneDegradation=true"]],
        ["too few nodes", ["a", "b", "c", "a"], 3, 1, ["needs at least 6 nodes; got 4", "Add 2 node(s)"]],
        ["more shards than slots", ["a", "b", "c"], 16385, 0, ["shards must be an integer in 1..16384", "got 16385"]],
    ] as [string, string[], number, number, string[]][])("%s: the error names the rule, the numbers and the fix", (_what, zones, shards, replicasPerShard, parts) => {
        const spec: ClusterSpec = { nodes: zones.map((z, i) => ({ id: `n${i}`, host: "10.0.0.1", port: 7000 + i, zone: z })), shards, replicasPerShard };
        let message = "";
        try {
            planPlacement(spec);
        } catch (e) {
            message = (e as Error).message;
        }
        for (const p of parts) expect(message).toContain(p);
    });
});

describe("placement time (printed, not asserted)", () => {
    test.each([
        [6, 1000, 1],
        [6, 1000, 2],
        [8, 500, 3],
    ])("%i zones, %i shards x %i replicas", (Z, shards, replicasPerShard) => {
        const spec: ClusterSpec = { nodes: roundRobin(SIX.concat(["eu-1g", "eu-1h"]).slice(0, Z), shards * (1 + replicasPerShard)), shards, replicasPerShard };
        planPlacement(spec); // warm-up (JIT)
        const runs = 5;
        const t0 = process.hrtime.bigint();
        let p = planPlacement(spec);
        for (let i = 1; i < runs; i++) p = planPlacement(spec);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6 / runs;
        process.stdout.write(`placement: ${Z} zones, ${shards} shards x ${replicasPerShard} replicas: ${ms.toFixed(1)} ms per plan\n`);
        const [same, , shared] = scoreOf(spec, p);
        expect([p.shards.length, same, shared]).toEqual([shards, 0, 0]);
    });
});
