/**
 * The dynamic provider's pure parts (check, diff, explainDiff, delete default) and the
 * RedisCluster resource under Pulumi mocks: secrets stay secret, outputs are declared.
 * (create/read against real nodes: tests/integration/redis-cluster/provider-serialize.test.ts.)
 */
import * as pulumi from "@pulumi/pulumi";
import { diffDrift, diffInputs, explainDiff, RedisClusterInputs, redisClusterProvider, SECRET_KEYS } from "../../../providers/redis-cluster/provider";
import { DriftReport } from "../../../providers/redis-cluster/operations/respread";

const nodes = ["a", "b", "c", "a", "b", "c"].map((z, i) => ({ id: `node${i}`, host: "10.0.0.1", port: 7000 + i, zone: `zone-${z}` }));
const base: RedisClusterInputs = {
    nodes,
    shards: 3,
    replicasPerShard: 1,
    adminUsername: "admin",
    adminPassword: "p".repeat(40),
    caCert: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
    deleteAction: "keep",
};

describe("check", () => {
    it("accepts a valid spec", async () => {
        const r = await redisClusterProvider.check!({}, { ...base });
        expect(r.failures).toEqual([]);
    });
    it("reports every problem with its property", async () => {
        const r = await redisClusterProvider.check!({}, { ...base, shards: 4, adminPassword: "", clientCert: "x", deleteAction: "drop" });
        const byProp = Object.fromEntries(r.failures!.map((f) => [f.property, f.reason]));
        expect(byProp.adminPassword).toMatch(/required/);
        expect(byProp.clientKey).toMatch(/clientCert and clientKey go together/);
        expect(byProp.deleteAction).toMatch(/"keep" or "reset"; got "drop"/);
        expect(byProp.nodes).toMatch(/needs at least 8 nodes; got 6/);
    });
    it("does not judge unknown values during preview", async () => {
        const r = await redisClusterProvider.check!({}, { ...base, nodes: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" });
        expect(r.failures).toEqual([]);
    });
});

describe("diff", () => {
    it("no change -> no changes", () => {
        expect(diffInputs(base, { ...base })).toMatchObject({ changes: false, replaces: [] });
    });
    it("a topology change is an in-place update, never a replacement", () => {
        const more = { ...base, shards: 4, nodes: [...nodes, { id: "node6", host: "10.0.0.1", port: 7006, zone: "zone-a" }, { id: "node7", host: "10.0.0.1", port: 7007, zone: "zone-b" }] };
        const d = diffInputs(base, more);
        expect(d).toMatchObject({ changes: true, replaces: [], deleteBeforeReplace: false });
        expect(d.stables).not.toContain("shards");
        expect(d.stables).toContain("adminPassword");
        const lines = explainDiff(base, more);
        expect(lines).toContain("shards 3 -> 4: add 1 shard(s), about 4096 slots move with their keys");
        expect(lines.join("\n")).toMatch(/nodes added: node6@10\.0\.0\.1:7006\/zone-a, node7@10\.0\.0\.1:7007\/zone-b/);
    });
    it("explains a removal and never prints a secret", () => {
        const less = { ...base, shards: 2, replicasPerShard: 1, adminPassword: "q".repeat(40) };
        const lines = explainDiff(base, less).join("\n");
        expect(lines).toMatch(/shards 3 -> 2: drain and remove 1 shard\(s\)/);
        expect(lines).toMatch(/adminPassword changed \(secret/);
        expect(lines).not.toContain("q".repeat(40));
        expect(lines).not.toContain("p".repeat(40));
    });
});

describe("diff: drift without input changes (masters re-spread)", () => {
    const status = { state: "degraded" as const, masters: [], replicas: [], slotsCovered: 16384, problems: ["masters are crowded: zone-a=0, zone-b=2, zone-c=1"] };
    const failover = "planned CLUSTER FAILOVER: replica 10.0.0.1:7003 (zone-a) takes over master 10.0.0.1:7001 (zone-b, 5461 slots stay in the shard, no slot moves) because masters crowd zone zone-b (2) while zone zone-a has 0";
    const live = (over: Partial<DriftReport>): DriftReport => ({ status, repairs: [failover], steps: [], actionable: true, reachedNodes: 6, ...over });
    it.each([
        ["live drift converge can repair -> update, with the failover line", live({}), {}, true, /takes over master 10\.0\.0\.1:7001/],
        ["live drift while a node is down -> no update forced, reason shown", live({ actionable: false, repairs: [failover, "not repaired while node1 is unreachable"] }), {}, false, /not repaired while/],
        ["healthy live cluster, healthy state -> no change, no line", live({ actionable: false, repairs: [] }), { problems: [] }, false, null],
        ["refresh recorded crowding (node still down) -> update, so refresh shows it and up repairs", live({ actionable: false, repairs: [] }), { problems: ["masters are crowded: zone-a=0, zone-b=2, zone-c=1"] }, true, /recorded by the last refresh: masters are crowded/],
        ["no node answered, state recorded crowding (refresh) -> update", live({ actionable: false, repairs: [], reachedNodes: 0 }), { problems: ["masters are crowded: zone-a=0, zone-b=2, zone-c=1"] }, true, /judged from the stored state/],
        ["probe failed, state has only non-repairable problems -> no change", null, { problems: ["unreachable: node0"] }, false, /could not be inspected \(timeout\)/],
    ])("%s", (_name, l, stored, changes, line) => {
        const d = diffDrift(l as DriftReport | null, stored, l ? undefined : "timeout");
        expect(d.changes).toBe(changes);
        if (line) expect(d.lines.join("\n")).toMatch(line as RegExp);
        else expect(d.lines).toEqual([]);
    });
});

describe("delete", () => {
    it("leaves the nodes alone by default (no connection attempted to unroutable nodes)", async () => {
        const props = { ...base, nodes: [{ id: "x", host: "127.0.0.1", port: 1, zone: "z" }] };
        await expect(redisClusterProvider.delete!("id", props)).resolves.toBeUndefined();
    });
});

describe("secrets", () => {
    it("marks every credential key as a secret output", () => {
        expect(SECRET_KEYS).toEqual(expect.arrayContaining(["adminPassword", "clientKey", "caCert", "clientCert"]));
    });
    it("the resource's credential inputs are secret Outputs", async () => {
        const recorded: pulumi.runtime.MockResourceArgs[] = [];
        await pulumi.runtime.setMocks(
            {
                newResource: (args) => {
                    recorded.push(args);
                    return { id: `${args.name}-id`, state: args.inputs };
                },
                call: () => {
                    throw new Error("unexpected invoke");
                },
            },
            "project",
            "stack",
            false,
        );
        const { RedisCluster } = await import("../../../providers/redis-cluster/provider");
        const c = new RedisCluster("rc", { nodes, shards: 3, replicasPerShard: 1, adminPassword: base.adminPassword, caCert: base.caCert, clientCert: "cert", clientKey: "key" });
        const out = c as unknown as Record<string, pulumi.Output<unknown>>;
        for (const k of ["adminPassword", "caCert", "clientCert", "clientKey"]) expect(await pulumi.isSecret(out[k])).toBe(true);
        for (const k of ["shards", "masters", "state"]) expect(await pulumi.isSecret(out[k])).toBe(false);
        await new Promise((r) => setTimeout(r, 100));
        const rec = recorded.find((r) => r.type.includes("RedisCluster"))!;
        expect(rec.type).toBe("pulumi-nodejs:dynamic/redisforge:RedisCluster");
        expect(Object.keys(rec.inputs)).toEqual(expect.arrayContaining(["nodes", "shards", "replicasPerShard", "__provider"]));
    });
});
