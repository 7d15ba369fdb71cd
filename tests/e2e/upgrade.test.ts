/**
 * Rolling upgrade on the real Pulumi engine: a throw-away `local` stack deployed with
 * `redisforge:redisVersion 7.0` (Debian's 7.0.15), loaded with keys, then `pulumi up` with
 * `redisVersion 8.6` (8.6.3) while a TLS cluster client (ACL user app) writes and acknowledges
 * every write with `WAIT 1`.
 *
 * Proves, through the engine: the RedisProcess resources do not restart the nodes (no parallel
 * restart), the RedisCluster resource rolls them one at a time (each node gets a new PID, the
 * cluster stays up: the writer never sees CLUSTERDOWN and loses no acknowledged write), every node
 * runs 8.6.3 afterwards, a second `up` changes nothing (the RedisProcess resources recognise the
 * processes the rolling step started), and a downgrade to 7.0 is refused at preview naming the
 * key, the file formats and the fix.
 *
 * Skipped (with a message) when there is no `pulumi` binary or Redis 7.0 / 8.6 is not installed.
 */
import * as fs from "fs";
import * as path from "path";
import { installedRuntimes } from "../../lab/redis-runtime";
import { AckedWriter } from "../helpers/acked-writer";
import { must, PULUMI, ThrowAwayStack } from "./stack-harness";

const versions = installedRuntimes().map((r) => r.version);
// It starts both versions itself, so the second pass of scripts/test.sh (REDISFORGE_REDIS=8.6) skips it.
const secondPass = (process.env.REDISFORGE_REDIS ?? "system") !== "system";
const ready = !!PULUMI && versions.some((v) => v.startsWith("7.0")) && versions.some((v) => v.startsWith("8.6")) && !secondPass;
if (secondPass) {
    // eslint-disable-next-line no-console
    console.warn("tests/e2e/upgrade.test.ts: skipped in the REDISFORGE_REDIS pass; it runs 7.0 and 8.6 itself in the default pass");
} else if (!ready) {
    // eslint-disable-next-line no-console
    console.warn(`tests/e2e/upgrade.test.ts SKIPPED: needs pulumi (${PULUMI ?? "missing: bash scripts/install-pulumi.sh"}) and Redis 7.0 + 8.6 (have ${versions.join(", ") || "none"}; bash scripts/install-redis8.sh)`);
}
const maybe = ready ? describe : describe.skip;

maybe("rolling upgrade of a local stack through the real engine", () => {
    // Away from the local-stack e2e's range (18100 + 40 x 20); the config must pick the binary.
    const st = new ThrowAwayStack({ prefix: "e2eupg", portBase: 19100, config: { "redisforge:redisVersion": "7.0" }, unsetEnv: ["REDISFORGE_REDIS_SERVER"] });
    const figures: Record<string, unknown> = {};
    const pulumi = (args: string[], timeoutMs = 300_000) => st.pulumi(args, timeoutMs);
    const setVersion = (v: string) => st.setConfig("redisforge:redisVersion", v);
    const ourNodes = () => st.redisNodes();
    const outputs = () => st.outputs();

    beforeAll(() => st.init());

    afterAll(async () => {
        await st.cleanup();
        // eslint-disable-next-line no-console
        console.log(`e2e rolling upgrade figures: ${JSON.stringify(figures)}`);
    }, 240_000);

    test("redisVersion 7.0 -> 8.6: pulumi up rolls the nodes one at a time under a WAIT 1 writer; a second up changes nothing; a downgrade is refused", async () => {
        const up70 = must(await pulumi(["up", "--yes", "--skip-preview"]), "pulumi up (7.0)");
        figures.up70Ms = up70.ms;
        let o = await outputs();
        expect(o.clusterState).toBe("ok");
        expect(o.serverVersion).toMatch(/^7\.0\./);
        const before = ourNodes();
        expect(before.size).toBe(6);
        for (const n of before.values()) expect(n.cmd).not.toContain("redis-8.6");

        const clientDir = o.clientDir as string;
        const nodes = o.nodes as { host: string; port: number }[];
        const tls = { ca: fs.readFileSync(path.join(clientDir, "ca.crt")), cert: fs.readFileSync(path.join(clientDir, "client.crt")), key: fs.readFileSync(path.join(clientDir, "client.key")) };
        const writer = new AckedWriter(nodes.map((n) => ({ host: n.host, port: n.port })), { username: "app", password: o.appPassword as string, tls });
        await writer.start();
        try {
            await new Promise((r) => setTimeout(r, 1000));
            setVersion("8.6");
            const up86 = await pulumi(["up", "--yes", "--skip-preview"], 600_000);
            figures.up86Ms = up86.ms;
            await new Promise((r) => setTimeout(r, 1000));
            await writer.stop();
            must(up86, "pulumi up (8.6)");
            // The processes were not replaced by the engine's RedisProcess updates: "updated" may
            // appear only for the cluster resource.
            expect(up86.stdout).not.toMatch(/RedisProcess.*(replaced|updated)/);
        } finally {
            await writer.stop();
        }
        const lost = await writer.lost();
        writer.close();
        Object.assign(figures, { writesIssued: writer.issued, acknowledged: writer.acked.size, unacknowledged: writer.unacked, redirectsFollowed: writer.redirects, lost: lost.length, clusterDown: writer.clusterDownSeen, errors: writer.errors });

        o = await outputs();
        expect(o.clusterState).toBe("ok");
        expect(o.serverVersion).toMatch(/^8\.6\./);
        const after = ourNodes();
        expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
        for (const [name, n] of after) {
            expect(n.pid).not.toBe(before.get(name)!.pid); // every node was restarted...
            expect(n.cmd).toContain("redis-8.6"); // ...on the 8.6 binary
        }
        expect(writer.acked.size).toBeGreaterThan(50);
        expect(lost).toEqual([]);
        expect(writer.clusterDownSeen).toBe(0);
        expect(Object.keys(writer.errors).filter((k) => k !== "UNBLOCKED")).toEqual([]);

        // Idempotent: nothing left to do, and the RedisProcess resources see their nodes running.
        const again = must(await pulumi(["up", "--yes", "--expect-no-changes"]), "second pulumi up (--expect-no-changes)");
        figures.secondUpMs = again.ms;
        const same = ourNodes();
        for (const [name, n] of same) expect(n.pid).toBe(after.get(name)!.pid);

        // Downgrade: refused before anything changes, naming the key, why and the fix.
        setVersion("7.0");
        const down = await pulumi(["preview"], 300_000);
        expect(down.code).not.toBe(0);
        const text = down.stdout + down.stderr;
        expect(text).toMatch(/redisforge:redisVersion 7\.0\.15 is a downgrade/);
        expect(text).toMatch(/cannot load the RDB\/AOF files an 8\.x server wrote/);
        expect(text).toMatch(/redisforge:allowDowngrade true/);
        for (const [name, n] of ourNodes()) expect(n.pid).toBe(after.get(name)!.pid);
        setVersion("8.6");
    }, 1_200_000);
});
