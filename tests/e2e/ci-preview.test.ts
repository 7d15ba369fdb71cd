/**
 * scripts/ci-preview.sh (the pull-request workflow's preview step) against a throw-away local stack
 * on the real engine, with the policy pack: after `up`, a preview of the unchanged stack says
 * "no changes"; after `redisforge:shards` 3 -> 4 it lists the new processes, the RedisCluster update
 * and the slot-move plan; the RedisForge program passes every policy each time.
 */
import { must, PULUMI, ThrowAwayStack } from "./stack-harness";

const maybe = PULUMI ? describe : describe.skip;
if (!PULUMI) console.warn("tests/e2e/ci-preview.test.ts SKIPPED: no pulumi binary; run `bash scripts/install-pulumi.sh` (CI does, via scripts/setup.sh)");

maybe("scripts/ci-preview.sh on a local stack", () => {
    const st = new ThrowAwayStack({ prefix: "cipreview", portBase: 12000, config: { "redisforge:redisVersion": "7.0" } });
    const preview = () => st.run("bash", ["scripts/ci-preview.sh", st.stack], 300_000);

    beforeAll(async () => {
        st.init();
        // The script's full-output file goes into the stack's temp dir (removed by cleanup).
        st.env.REDISFORGE_PREVIEW_OUT = `${st.tmp}/preview.out`;
        must(await st.pulumi(["up", "--yes", "--skip-preview"], 300_000), "pulumi up");
    }, 420_000);

    afterAll(async () => {
        await st.cleanup();
    }, 300_000);

    it("no change: says so, and the policy pack passes", async () => {
        const r = await preview();
        const summary = r.stdout.slice(r.stdout.indexOf("== ci-preview summary"));
        console.log(`ci-preview (no change): exit ${r.code} in ${r.ms} ms\n${summary}`);
        expect(r.code).toBe(0);
        expect(summary).toMatch(new RegExp(`== ci-preview summary: stack ${st.stack}\\nno changes: the stack matches the program and its config \\(\\d+ unchanged\\)`));
        expect(summary).not.toContain("slot-move plan");
        // The pack ran (a mandatory violation would have failed the preview).
        expect(summary).toMatch(/Policy Packs run:\n\s*Name\s+Version\n\s*redisforge\|local\|policy\s+0\.1\.0/);
        expect(r.stdout).toMatch(/--policy-pack policy/);
    }, 300_000);

    it("shards 3 -> 4: lists the changes and the slot-move plan, and the policy pack passes", async () => {
        st.setConfig("redisforge:shards", "4");
        const r = await preview();
        const summary = r.stdout.slice(r.stdout.indexOf("== ci-preview summary"));
        console.log(`ci-preview (shards 3 -> 4): exit ${r.code} in ${r.ms} ms\n${summary}`);
        expect(r.code).toBe(0);
        expect(summary).toContain("changes:");
        // 4 x 2 = 8 nodes: two new redis-server processes, and the cluster resource updated in place.
        expect(summary.match(/\+ pulumi-nodejs:dynamic\/local:RedisProcess create \S+-node[67]\n/g)).toHaveLength(2);
        expect(summary).toContain(`~ pulumi-nodejs:dynamic/redisforge:RedisCluster update ${st.stack}-cluster`);
        expect(summary).toMatch(/\+ 10 to create\n\s*~ 1 to update/);
        // The plan the cluster provider computed from the live cluster: the new master gets slots
        // from each of the three, about 16384 / 4 in all, and its replica follows it.
        expect(summary).toContain("slot-move plan (RedisCluster, from the live cluster to the new config):");
        const moves = [...summary.matchAll(/- migrate (\d+) slots 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:(\d+)/g)];
        expect(moves).toHaveLength(3);
        expect(new Set(moves.map((m) => m[2])).size).toBe(1);
        expect(moves.reduce((a, m) => a + Number(m[1]), 0)).toBe(4096);
        expect(summary).toMatch(/- replicate 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+/);
        expect(summary).toMatch(/Policy Packs run:\n\s*Name\s+Version\n\s*redisforge\|local\|policy\s+0\.1\.0/);
        // The running cluster was not touched by the preview.
        expect(st.redisPids()).toHaveLength(6);
    }, 300_000);

    it("scripts/ci-deploy.sh (the deploy workflow's step) applies it with the policy pack, then finds no changes", async () => {
        const r = await st.run("bash", ["scripts/ci-deploy.sh", st.stack], 600_000);
        console.log(`ci-deploy (shards 3 -> 4): exit ${r.code} in ${r.ms} ms`);
        if (r.code !== 0) console.log(`${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(/Policy Packs run:\n\s*Name\s+Version\n\s*redisforge\|local\|policy\s+0\.1\.0/);
        expect(st.redisPids()).toHaveLength(8);
        expect((await st.outputs()).shards).toBe(4);
        const again = await preview();
        expect(again.code).toBe(0);
        expect(again.stdout).toMatch(/no changes: the stack matches the program and its config/);
    }, 660_000);
});
