/**
 * End to end on the real Pulumi engine (a throw-away `local` stack, as tests/e2e/local-stack.test.ts
 * makes one): masters re-spread after an automatic failover.
 *
 * up (3x1 over local-a/b/c) -> 2 000 keys -> SIGKILL the master in local-a (by its PID) -> the
 * cluster promotes its replica in another zone -> `pulumi up --target` its RedisProcess restarts
 * the node, which rejoins as a replica (masters now crowd one zone) -> `scale status` and
 * `pulumi refresh` both report the crowding -> `pulumi preview` shows the planned failover ->
 * `pulumi up` repairs it (one master per zone, no slot moved, every key reads back) ->
 * `pulumi up --expect-no-changes` passes.
 *
 * Skipped (with a message) only when no `pulumi` binary exists.
 */
import * as fs from "fs";
import * as path from "path";
import Redis, { Cluster } from "ioredis";
import { redisRuntime } from "../../lab/redis-runtime";
import { must, PULUMI, ThrowAwayStack } from "./stack-harness";

const runtime = redisRuntime();

const KEYS = 100_000;

if (!PULUMI) {
    // eslint-disable-next-line no-console
    console.warn("tests/e2e/respread.test.ts SKIPPED: no pulumi binary (.tools/bin/pulumi or PATH); run `bash scripts/install-pulumi.sh` (CI does, via scripts/setup.sh)");
}
const maybe = PULUMI ? describe : describe.skip;

maybe("masters re-spread after a failover, through the real engine", () => {
    // This pass's runtime (npm test runs the e2e on 7.0 and, with REDISFORGE_REDIS=8.6, on 8.6).
    const st = new ThrowAwayStack({ prefix: "e2e-respread", portBase: 19900, config: { "redisforge:redisVersion": runtime.version.split(".").slice(0, 2).join(".") } });
    const { stack, stateDir, basePort } = st;
    const timings: Record<string, number> = {};
    const pulumi = (args: string[], timeoutMs?: number) => st.pulumi(args, timeoutMs);
    const scale = (cmd: string, timeoutMs?: number) => st.scale(cmd, timeoutMs);
    const ourRedisPids = () => st.redisPids();
    const outputs = () => st.outputs();
    const clusterClient = () => st.clusterClient();

    beforeAll(() => st.init());

    afterAll(async () => {
        await st.cleanup();
        // eslint-disable-next-line no-console
        console.log(`e2e respread timings (ms): ${JSON.stringify(timings)}`);
    }, 240_000);


    /** address -> slots it owns, and the addresses flagged fail, from CLUSTER NODES of a live node. */
    async function view(port: number): Promise<{ owners: Map<string, string>; failed: Set<string>; masters: string[]; replicaOf: Map<string, string> }> {
        const o = await outputs();
        const clientDir = o.clientDir as string;
        const c = new Redis({
            host: "127.0.0.1",
            port,
            username: "app",
            password: o.appPassword as string,
            tls: { ca: fs.readFileSync(path.join(clientDir, "ca.crt")), cert: fs.readFileSync(path.join(clientDir, "client.crt")), key: fs.readFileSync(path.join(clientDir, "client.key")) },
            lazyConnect: true,
            connectTimeout: 3000,
            maxRetriesPerRequest: 1,
            enableReadyCheck: false,
        });
        try {
            await c.connect();
            const text = (await c.call("CLUSTER", "NODES")) as string;
            const owners = new Map<string, string>();
            const failed = new Set<string>();
            const masters: string[] = [];
            const idToAddr = new Map<string, string>();
            const lines = text.trim().split("\n").map((l) => l.split(" "));
            for (const f of lines) idToAddr.set(f[0], f[1].split("@")[0]);
            const replicaOf = new Map<string, string>();
            for (const f of lines) {
                const addr = f[1].split("@")[0];
                if (f[2].includes("fail")) failed.add(addr);
                if (f[2].includes("slave") && !f[2].includes("fail")) replicaOf.set(addr, idToAddr.get(f[3]) ?? "?");
                if (!f[2].includes("master") || f[2].includes("fail")) continue;
                const ranges = f.slice(8).filter((r) => !r.startsWith("["));
                if (!ranges.length) continue;
                masters.push(addr);
                owners.set(addr, ranges.join(","));
            }
            return { owners, failed, masters, replicaOf };
        } finally {
            c.disconnect();
        }
    }

    async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
        const deadline = Date.now() + timeoutMs;
        let last = "";
        while (Date.now() < deadline) {
            try {
                const v = await fn();
                if (v !== undefined) return v;
            } catch (e) {
                last = (e as Error).message;
            }
            await new Promise((r) => setTimeout(r, 300));
        }
        throw new Error(`e2e respread: ${what} not reached within ${timeoutMs} ms ${last}`);
    }

    function pidOfNode(i: number): number {
        const dir = path.join(stateDir, "nodes", `${stack}-node${i}`);
        const pids = ourRedisPids().filter((p) => fs.readlinkSync(`/proc/${p}/cwd`).replace(/ \(deleted\)$/, "") === dir);
        if (pids.length !== 1) throw new Error(`e2e respread: expected one redis-server in ${dir}, found ${JSON.stringify(pids)}`);
        return pids[0];
    }

    const KEYS = 2000;

    test("a master killed in local-a: refresh and preview show the crowding, up re-spreads it without moving a slot", async () => {
        must(await pulumi(["up", "--yes", "--skip-preview"]), "pulumi up");
        const o = await outputs();
        const nodes = o.nodes as { name: string; zone: string }[];
        const zoneOfPort = new Map(nodes.map((n) => [basePort + Number(/node(\d+)$/.exec(n.name)![1]), n.zone]));
        const c = await clusterClient();
        try {
            for (let i = 0; i < KEYS; i++) await c.set(`rf:respread:${i}`, `v${i}`);
        } finally {
            c.disconnect();
        }
        const before = await view(basePort);
        const zonesBefore = before.masters.map((a) => zoneOfPort.get(Number(a.split(":")[1]))).sort();
        expect(zonesBefore).toEqual(["local-a", "local-b", "local-c"]);
        const victim = before.masters.find((a) => zoneOfPort.get(Number(a.split(":")[1])) === "local-a")!;
        const victimIndex = Number(victim.split(":")[1]) - basePort;
        const other = before.masters.find((a) => a !== victim)!;
        const otherPort = Number(other.split(":")[1]);

        process.kill(pidOfNode(victimIndex), "SIGKILL");
        const t0 = Date.now();
        const afterFailover = await until("automatic failover", async () => {
            const v = await view(otherPort);
            return v.masters.length === 3 && !v.masters.includes(victim) ? v : undefined;
        }, 60_000);
        timings.failoverMs = Date.now() - t0;
        const heir = afterFailover.masters.find((a) => !before.masters.includes(a))!;

        // Restart only the crashed node (its RedisProcess resource); it rejoins as a replica of its heir.
        const exported = JSON.parse(must(await pulumi(["stack", "export"], 60_000), "stack export").stdout) as { deployment: { resources: { type: string; urn: string; outputs?: Record<string, unknown> }[] } };
        const procUrn = exported.deployment.resources.find((r) => r.type === "pulumi-nodejs:dynamic/local:RedisProcess" && r.outputs?.nodeName === `${stack}-node${victimIndex}`)!.urn;
        must(await pulumi(["up", "--yes", "--skip-preview", "--target", procUrn]), "pulumi up --target the crashed node");
        await until(`${victim} back as a replica of ${heir}`, async () => {
            const v = await view(otherPort);
            return v.replicaOf.get(victim) === heir && !v.failed.has(victim) ? v : undefined;
        }, 60_000);

        // scale status exits 1 on a degraded cluster (the operator CLI's "check failed"); refresh must give the same verdict.
        const status = await scale("status", 120_000);
        expect(status.code).toBe(1);
        expect(status.stdout).toMatch(/cluster state: degraded/);
        expect(status.stdout).toMatch(/masters are crowded: local-a=0/);
        const refresh = must(await pulumi(["refresh", "--yes", "--skip-preview", "--diff"]), "pulumi refresh");
        expect(refresh.stdout).toMatch(/masters are crowded: local-a=0/);
        expect(refresh.stdout).toMatch(/pendingRepairs/);
        const preview = must(await pulumi(["preview", "--diff"]), "pulumi preview");
        expect(preview.stdout + preview.stderr).toContain(`planned CLUSTER FAILOVER: replica ${victim} (local-a) takes over master ${heir}`);
        expect(preview.stdout).toMatch(/1 to update/);
        // eslint-disable-next-line no-console
        console.log(`=== scale status\n${status.stdout}\n=== refresh\n${refresh.stdout}\n=== preview\n${preview.stdout}\n${preview.stderr}`);

        const up = must(await pulumi(["up", "--yes", "--skip-preview"]), "pulumi up (repair)");
        timings.repairUp = up.ms;
        // eslint-disable-next-line no-console
        console.log(`=== up\n${up.stdout}`);
        const after = await view(otherPort);
        expect(after.masters.map((a) => zoneOfPort.get(Number(a.split(":")[1]))).sort()).toEqual(["local-a", "local-b", "local-c"]);
        // No slot moved: every master owns exactly the ranges its shard owned before the crash.
        expect([...after.owners].sort()).toEqual([...before.owners].sort());
        const again = must(await pulumi(["up", "--yes", "--expect-no-changes"]), "pulumi up --expect-no-changes");
        expect(again.stdout).not.toMatch(/\b(updated|created|replaced|deleted)\b/);
        const c2 = await clusterClient();
        try {
            let missing = 0;
            for (let i = 0; i < KEYS; i++) if ((await c2.get(`rf:respread:${i}`)) !== `v${i}`) missing++;
            expect(missing).toBe(0);
        } finally {
            c2.disconnect();
        }
    }, 900_000);
});
