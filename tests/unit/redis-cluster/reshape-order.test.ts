/** The executor's one change to the planner's order: replicas of NEW (empty) masters attach before slots move. */
import { planReshape } from "../../../providers/redis-cluster/planner";
import { replicasOfNewMastersFirst } from "../../../providers/redis-cluster/operations/reshape";
import { ClusterSpec, LiveNode, LiveTopology, ReshapeStep } from "../../../providers/redis-cluster/types";

const zones = ["a", "b", "c"];
const spec = (n: number, shards: number, replicasPerShard: number): ClusterSpec => ({
    nodes: Array.from({ length: n }, (_, i) => ({ id: `n${i}`, host: "10.0.0.1", port: 7000 + i, zone: zones[i % 3] })),
    shards,
    replicasPerShard,
});
/** A formed 3x1 cluster on n0..n5 (masters n0,n1,n2 with replicas n3,n4,n5 — zones differ). */
function live3x1(): LiveTopology {
    const ranges = [[0, 5460], [5461, 10922], [10923, 16383]];
    const nodes: LiveNode[] = [];
    for (let i = 0; i < 3; i++) nodes.push({ nodeId: `m${i}`, host: "10.0.0.1", port: 7000 + i, busPort: 17000 + i, role: "master", slots: [{ start: ranges[i][0], end: ranges[i][1] }], failed: false, specId: `n${i}`, zone: zones[i] });
    for (let i = 0; i < 3; i++) nodes.push({ nodeId: `r${i}`, host: "10.0.0.1", port: 7003 + i, busPort: 17003 + i, role: "replica", masterId: `m${(i + 1) % 3}`, slots: [], failed: false, specId: `n${i + 3}`, zone: zones[i] });
    return { nodes, openSlots: [] };
}
const kinds = (steps: ReshapeStep[]) => steps.map((s) => s.kind);

describe("replicasOfNewMastersFirst", () => {
    it("3x1 -> 4x1: the new shard's replica attaches after the MEETs and before the first migration", () => {
        const live = live3x1();
        const plan = planReshape(live, spec(8, 4, 1));
        expect(kinds(plan.steps)).toEqual(["meet", "meet", "migrate", "migrate", "migrate", "replicate"]);
        const out = replicasOfNewMastersFirst(plan.steps, live);
        expect(kinds(out)).toEqual(["meet", "meet", "replicate", "migrate", "migrate", "migrate"]);
        // The same steps, only reordered.
        expect([...out].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([...plan.steps].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))));
    });
    it("leaves a plan alone when no replica of an empty master is attached (3x1 -> 3x2, 3x1 -> 2x1)", () => {
        const live = live3x1();
        for (const s of [spec(9, 3, 2), spec(6, 2, 1)]) {
            const plan = planReshape(live, s);
            expect(replicasOfNewMastersFirst(plan.steps, live)).toEqual(plan.steps);
        }
    });
    it("does not hoist a replicate whose replica owns slots now or takes part in an earlier step", () => {
        const live = live3x1();
        const steps: ReshapeStep[] = [
            { kind: "migrate", from: "10.0.0.1:7000", to: "10.0.0.1:7006", slots: [{ start: 0, end: 9 }], count: 10 },
            { kind: "replicate", node: "10.0.0.1:7000", master: "10.0.0.1:7006" }, // a drained master becoming a replica
            { kind: "migrate", from: "10.0.0.1:7001", to: "10.0.0.1:7007", slots: [{ start: 5461, end: 5470 }], count: 10 },
            { kind: "replicate", node: "10.0.0.1:7008", master: "10.0.0.1:7007" }, // hoisted
        ];
        expect(replicasOfNewMastersFirst(steps, live)).toEqual([steps[3], steps[0], steps[1], steps[2]]);
    });
});
