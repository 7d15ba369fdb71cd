/**
 * Pure parts of the rolling upgrade: version matching, the downgrade refusal (at `check`, before
 * anything changes), what the diff says, and the restart hook built from its data description.
 * The orchestration itself runs on real servers: tests/integration/redis-cluster/upgrade.test.ts.
 */
import { checkVersionChange, explainDiff, redisClusterProvider, restartHookOf, RedisClusterInputs } from "../../../providers/redis-cluster/provider";
import { compareServerVersions, downgradeRefusal, onTargetVersion } from "../../../providers/redis-cluster/operations/upgrade";

const nodes = Array.from({ length: 6 }, (_, i) => ({ id: `n${i}`, host: "127.0.0.1", port: 17000 + i, zone: ["a", "b", "c"][i % 3] }));
const base: RedisClusterInputs = { nodes, shards: 3, replicasPerShard: 1, adminUsername: "admin", adminPassword: "pw", caCert: "ca" };
const hook = { kind: "local-process" as const, nodes: nodes.map((n) => ({ id: n.id, dataDir: `/d/${n.id}`, confFile: `/d/${n.id}/redis.conf`, server: "/x/redis-server" })) };

describe("versions", () => {
    test.each([
        ["8.6.3", "8.6", true],
        ["8.6.3", "8.6.3", true],
        ["8.6.3", "8.6.4", false],
        ["8.6.3", "8", true],
        ["7.0.15", "8.6", false],
        [undefined, "8.6", false],
    ])("onTargetVersion(%s, %s) = %s", (live, target, want) => {
        expect(onTargetVersion(live as string | undefined, target)).toBe(want);
    });
    test("numeric compare, not string compare", () => {
        expect(compareServerVersions("8.10.0", "8.6.3")).toBeGreaterThan(0);
        expect(compareServerVersions("7.0.15", "8.4")).toBeLessThan(0);
        expect(compareServerVersions("8.4", "8.4.0")).toBe(0);
    });
});

describe("downgrade", () => {
    test("8.x -> 7.0 names the key, the nodes, the file formats and both fixes", () => {
        const m = downgradeRefusal("7.0.15", [{ label: "n0 127.0.0.1:17000", version: "8.6.3" }]);
        expect(m).toMatch(/^redisforge:redisVersion 7\.0\.15 is a downgrade: n0 127\.0\.0\.1:17000 runs 8\.6\.3\./);
        expect(m).toMatch(/cannot load the RDB\/AOF files an 8\.x server wrote/);
        expect(m).toMatch(/set redisforge:redisVersion back to 8\.6/);
        expect(m).toMatch(/set redisforge:allowDowngrade true/);
    });
    test.each([
        ["7.0.15", "8.6.3", false, null],
        ["8.6.3", "8.6", false, null],
        ["8.6", "8.6.3", false, null],
        [undefined, "7.0.15", false, null],
        ["8.6.3", "7.0.15", true, null],
        ["8.6.3", "7.0.15", false, "downgrade"],
        ["8.6.3", "8.4.0", false, "downgrade"],
    ])("previous target %s -> %s (allowDowngrade %s): %s", (before, after, allow, want) => {
        const r = checkVersionChange(before ? { ...base, targetVersion: before } : undefined, { ...base, targetVersion: after, allowDowngrade: allow });
        if (want === null) expect(r).toBeNull();
        else expect(r).toMatch(/is a downgrade/);
    });
    test("check() refuses it as a failure of targetVersion (so preview fails, nothing is registered as changed)", async () => {
        const r = await redisClusterProvider.check!({ ...base, targetVersion: "8.6.3" }, { ...base, targetVersion: "7.0.15" });
        expect(r.failures).toHaveLength(1);
        expect(r.failures![0].property).toBe("targetVersion");
        expect(r.failures![0].reason).toMatch(/redisforge:allowDowngrade true/);
        const forced = await redisClusterProvider.check!({ ...base, targetVersion: "8.6.3" }, { ...base, targetVersion: "7.0.15", allowDowngrade: true });
        expect(forced.failures).toEqual([]);
    });
    test("check() rejects a malformed version and an unknown restart kind", async () => {
        const r = await redisClusterProvider.check!({}, { ...base, targetVersion: "latest", rollingRestart: { kind: "ssh", nodes: [] } as never });
        expect(r.failures!.map((f) => f.property).sort()).toEqual(["rollingRestart", "targetVersion"]);
    });
});

describe("diff", () => {
    test("a version change is an in-place update that says how the nodes roll", async () => {
        const olds = { ...base, targetVersion: "7.0.15", rollingRestart: hook };
        const news = { ...base, targetVersion: "8.6.3", rollingRestart: { ...hook, nodes: hook.nodes.map((n) => ({ ...n, server: "/y/redis-server" })) } };
        const d = await redisClusterProvider.diff!("id", olds, news);
        expect(d.changes).toBe(true);
        expect(d.replaces).toEqual([]);
        expect(explainDiff(olds, news)).toContainEqual(expect.stringMatching(/^targetVersion 7\.0\.15 -> 8\.6\.3: 6 nodes, rolling restart, one node at a time: replicas, then a planned failover/));
        expect(explainDiff(olds, { ...olds })).toEqual([]);
    });
});

describe("restartHookOf", () => {
    test("none without a description; local-process needs an entry per node and names the missing one", async () => {
        expect(restartHookOf(undefined)).toBeUndefined();
        const h = restartHookOf({ kind: "local-process", nodes: hook.nodes.slice(1) })!;
        await expect(h.restartNode({ spec: nodes[0], targetVersion: "8.6.3", role: "replica" })).rejects.toThrow(/no entry for node n0/);
        expect(() => restartHookOf({ kind: "vm" } as never)).toThrow(/"local-process"/);
    });
});
