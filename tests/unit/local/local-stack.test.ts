/**
 * Pure parts of the local stack and the scale script: node plan by ordinal, shape checks, argument
 * parsing, plan formatting and the verification rules. (The engine path is tests/e2e/local-stack.test.ts.)
 */
import { checkLocalStackArgs, planLocalNodes, LocalStackArgs } from "../../../infra/local/stack";
import { localAdapter } from "../../../providers/local";
import { formatPlan, parseArgs, verifyStatus } from "../../../infra/scale";
import type { ClusterStatus, ClusterSpec } from "../../../providers/redis-cluster/types";

const base: LocalStackArgs = {
    clusterName: "t",
    zones: ["local-a", "local-b", "local-c"],
    shards: 3,
    replicasPerShard: 1,
    basePort: 17000,
    baseBusPort: 27000,
    stateDir: "/tmp/x",
    serverVersion: "7.0.15",
    maxmemoryBytes: 1 << 20,
    tlsValidityDays: 30,
    tlsRenewBeforeDays: 7,
};

describe("planLocalNodes", () => {
    test("ordinal names, ports and zones; growing keeps the existing nodes as they were", () => {
        const six = planLocalNodes(base);
        expect(six.map((n) => [n.name, n.port, n.busPort, n.zone])).toEqual([
            ["t-node0", 17000, 27000, "local-a"],
            ["t-node1", 17001, 27001, "local-b"],
            ["t-node2", 17002, 27002, "local-c"],
            ["t-node3", 17003, 27003, "local-a"],
            ["t-node4", 17004, 27004, "local-b"],
            ["t-node5", 17005, 27005, "local-c"],
        ]);
        const eight = planLocalNodes({ ...base, shards: 4 });
        expect(eight.slice(0, 6)).toEqual(six);
        expect(eight).toHaveLength(8);
        expect(six[2].dataDir).toBe("/tmp/x/nodes/t-node2");
        expect(planLocalNodes({ ...base, replicasPerShard: 2 })).toHaveLength(9);
    });
});

describe("checkLocalStackArgs", () => {
    test("a good shape has no problems", () => {
        expect(checkLocalStackArgs(base)).toEqual([]);
    });
    test("every problem is named: non-loopback host, relative dir, overlapping and out-of-range ports", () => {
        const p = checkLocalStackArgs({ ...base, host: "10.0.0.1", stateDir: "rel", basePort: 17000, baseBusPort: 17003, shards: 3 });
        expect(p.join("\n")).toMatch(/loopback/);
        expect(p.join("\n")).toMatch(/absolute/);
        expect(p.join("\n")).toMatch(/overlap/);
        expect(checkLocalStackArgs({ ...base, basePort: 65533 }).join("\n")).toMatch(/redisforge:redisPort=65533/);
    });
});

describe("localAdapter", () => {
    test("accepts the local region, zone labels and the process size; rejects the rest with the fix", () => {
        expect(localAdapter.checkZone("local", "local-a")).toBeNull();
        expect(localAdapter.checkZone("eu-west-1", "local-a")).toMatch(/"local"/);
        expect(localAdapter.checkZone("local", "Zone A")).toMatch(/zone label/);
        expect(localAdapter.checkInstanceSize("process")).toBeNull();
        expect(localAdapter.checkInstanceSize("m5.large")).toMatch(/"process"/);
        expect(localAdapter.capabilities).toEqual({ firewall: false, loadBalancer: false, containerRegistry: false, cloudInit: false });
    });
});

describe("scale script", () => {
    test("parseArgs", () => {
        expect(parseArgs(["add-shard", "--stack", "local", "--yes"])).toEqual({ command: "add-shard", stack: "local", yes: true });
        expect(parseArgs(["--stack", "dev", "status"])).toEqual({ command: "status", stack: "dev", yes: false });
        expect(() => parseArgs(["grow", "--stack", "x"])).toThrow(/usage/);
        expect(() => parseArgs(["status"])).toThrow(/--stack/);
    });

    const spec: ClusterSpec = {
        nodes: [0, 1, 2, 3, 4, 5].map((i) => ({ id: `n${i}`, host: "127.0.0.1", port: 17000 + i, zone: `z${i % 3}` })),
        shards: 3,
        replicasPerShard: 1,
    };
    const healthy: ClusterStatus = {
        state: "ok",
        masters: [0, 1, 2].map((i) => ({ id: `n${i}`, address: `127.0.0.1:${17000 + i}`, zone: `z${i}`, slots: i === 2 ? 5462 : 5461, nodeId: `m${i}` })),
        replicas: [3, 4, 5].map((i) => ({ id: `n${i}`, address: `127.0.0.1:${17000 + i}`, zone: `z${i % 3}`, master: `m${(i + 1) % 3}`, linkUp: true, nodeId: `r${i}` })),
        slotsCovered: 16384,
        problems: [],
    };

    test("verifyStatus accepts a healthy cluster and names each problem of an unhealthy one", () => {
        expect(verifyStatus(healthy, spec)).toEqual([]);
        const bad: ClusterStatus = { ...healthy, state: "fail", slotsCovered: 10923, masters: healthy.masters.slice(0, 2), replicas: healthy.replicas.map((r, i) => ({ ...r, linkUp: i !== 0 })) };
        const p = verifyStatus(bad, spec).join("\n");
        expect(p).toMatch(/cluster_state is fail/);
        expect(p).toMatch(/10923\/16384 slots covered/);
        expect(p).toMatch(/2 masters own slots, expected 3/);
        expect(p).toMatch(/replica 127.0.0.1:17003 is not linked/);
        expect(verifyStatus(healthy, { ...spec, shards: 4 }).join("\n")).toMatch(/expected 4/);
    });

    test("formatPlan lists migrations with counts and removals", () => {
        const text = formatPlan({
            steps: [
                { kind: "migrate", from: "127.0.0.1:17006", to: "127.0.0.1:17000", slots: [{ start: 0, end: 99 }], count: 100 },
                { kind: "remove", node: "127.0.0.1:17006", nodeId: "x", reason: "node left the spec" },
            ],
            masters: ["127.0.0.1:17000"],
            slotsMoved: 100,
            degradations: [],
        });
        expect(text).toMatch(/2 steps, 100 slots moved/);
        expect(text).toMatch(/migrate\s+100 slots 127\.0\.0\.1:17006 -> 127\.0\.0\.1:17000/);
        expect(text).toMatch(/remove\s+127\.0\.0\.1:17006 \(node left the spec\)/);
        expect(formatPlan({ steps: [], masters: [], slotsMoved: 0, degradations: [] })).toMatch(/nothing to do/);
    });
});
