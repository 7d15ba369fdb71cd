/**
 * The cloud rolling-upgrade order, enforced by the program (not just documented): under the mocked
 * engine, for every registered cloud with a VM-based cluster, the Redis VMs are chained through
 * RollingGate resources in the order planned replicas first, then planned masters:
 *
 *   before(n) -> VM(n) -> after(n) -> before(next) ...
 *
 * The links are data dependencies, checked two ways: (1) the recorded inputs (the after-gate
 * carries its VM's id, each before-gate the previous after-gate's id), and (2) the order in which
 * the engine received the registrations while every gate answer is delayed: a VM registered
 * before its gate answered would prove the chain is not enforced.
 */
import * as pulumi from "@pulumi/pulumi";
import { rollingOrder } from "../../../components/redisforge";
import { planTopology } from "../../../components/topology";
import { gateChanges } from "../../../providers/redis-cluster/rolling-gate";
import { unwrap } from "../../helpers/mocks";
import { runProgram, stackFixture, STACK_FILES } from "./program";

const GATE = "pulumi-nodejs:dynamic/redisforge:RollingGate";
const clouds = Object.keys(STACK_FILES).filter((k) => k !== "local");

describe("rollingOrder (pure)", () => {
    test("planned replicas first, then planned masters, each once", () => {
        const t = planTopology({ zones: ["a", "b", "c"], shards: 3, replicasPerShard: 2, envoyCount: 2, redisPort: 6379 });
        const order = rollingOrder(t);
        const role = new Map(t.nodes.map((n) => [n.key, n.role]));
        expect(order).toHaveLength(9);
        expect(new Set(order).size).toBe(9);
        const firstMaster = order.findIndex((k) => role.get(k) === "master");
        expect(order.slice(0, firstMaster).every((k) => role.get(k) === "replica")).toBe(true);
        expect(order.slice(firstMaster).every((k) => role.get(k) === "master")).toBe(true);
        expect(firstMaster).toBe(6);
    });
    test("a gate acts only when what the node runs changes", () => {
        const g = { redisVersion: "8.4", image: "r@sha256:1", host: "10.0.0.1", port: 6379 };
        expect(gateChanges(g, { ...g })).toBe(false);
        expect(gateChanges(g, { ...g, redisVersion: "8.6" })).toBe(true);
        expect(gateChanges(g, { ...g, image: "r@sha256:2" })).toBe(true);
    });
});

describe.each(clouds)("%s: the VMs are chained in rolling order", (kind) => {
    test("before(n) -> VM(n) -> after(n) -> before(next), by inputs and by registration order", async () => {
        const raw = stackFixture(kind);
        // Every gate answers late: anything that does not wait for a gate overtakes it.
        const { MockEngine } = await import("../../helpers/mocks");
        const original = MockEngine.prototype.newResource;
        const spy = jest.spyOn(MockEngine.prototype, "newResource").mockImplementation(function (this: InstanceType<typeof MockEngine>, args: pulumi.runtime.MockResourceArgs) {
            if (args.type !== GATE) return original.call(this, args);
            return new Promise((resolve) => setTimeout(() => resolve(original.call(this, args)), 30)) as never;
        });
        try {
            const run = await runProgram(raw, { stack: "prod" });
            expect(run.error).toBeUndefined();
            const recs = run.engine.resources;
            const t = run.cluster!.topology;
            const order = rollingOrder(t);
            const gate = (key: string, phase: string) => {
                const i = recs.findIndex((r) => r.type === GATE && r.name.endsWith(`-${key}-roll-${phase}`));
                expect(i).toBeGreaterThanOrEqual(0);
                return { i, r: recs[i] };
            };
            // The VM of node `key`: the resource whose logical name is `<cluster>-<key>-vm…`.
            const vm = (key: string) => {
                const i = recs.findIndex((r) => new RegExp(`-${key}-vm$`).test(r.name));
                expect(i).toBeGreaterThanOrEqual(0);
                return { i, r: recs[i] };
            };
            let prevAfter: ReturnType<typeof gate> | undefined;
            for (const key of order) {
                const before = gate(key, "before");
                const v = vm(key);
                const after = gate(key, "after");
                expect(unwrap(before.r.inputs.phase)).toBe("before");
                // Data links as recorded.
                if (prevAfter) expect(unwrap(before.r.inputs.after)).toBe(prevAfter.r.id);
                else expect(before.r.inputs.after).toBeUndefined();
                expect(unwrap(after.r.inputs.vmId)).toBe(v.r.id);
                // Registration order under delayed gates.
                if (prevAfter) expect(before.i).toBeGreaterThan(prevAfter.i);
                expect(v.i).toBeGreaterThan(before.i);
                expect(after.i).toBeGreaterThan(v.i);
                // The gate carries the version and image the VM runs, and secrets stay secret.
                expect(unwrap(before.r.inputs.redisVersion)).toBe(String(raw.redisVersion ?? "8.4"));
                expect(JSON.stringify(before.r.inputs.adminPassword)).toContain("1b47061264138c4ac30d75fd1eb44270");
                prevAfter = after;
            }
            // The planned masters come last, so each master's VM is updated after every replica's.
            const role = new Map(t.nodes.map((n) => [n.key, n.role]));
            const lastReplicaVm = Math.max(...order.filter((k) => role.get(k) === "replica").map((k) => vm(k).i));
            for (const k of order.filter((x) => role.get(x) === "master")) expect(vm(k).i).toBeGreaterThan(lastReplicaVm);
            // The cluster resource comes after the whole chain.
            const cluster = recs.findIndex((r) => r.type.endsWith("redisforge:RedisCluster"));
            expect(cluster).toBeGreaterThan(prevAfter!.i);
        } finally {
            spy.mockRestore();
        }
    }, 120000);
});
