/**
 * End to end on the real Pulumi engine: a throw-away `local` stack (its own file backend under
 * os.tmpdir(), its own passphrase, its own ports, its own Pulumi.<stack>.yaml removed afterwards).
 *
 * preview lists the creates → up → a second up changes nothing → 100 000 keys through a TLS cluster
 * client → `scale add-shard` moves slots to the new master, every key reads back → `scale remove-shard`
 * drains it, every key reads back, its process and data dir are gone → refresh shows no drift → the
 * state file holds none of the passwords or private keys in plaintext → destroy leaves no redis-server
 * process and no data dir.
 *
 * Skipped (with a message) only when no `pulumi` binary exists; CI builds it (scripts/install-pulumi.sh).
 */
import * as fs from "fs";
import * as path from "path";
import { Cluster } from "ioredis";
import { redisRuntime } from "../../lab/redis-runtime";
import { must, PULUMI, ROOT, ThrowAwayStack } from "./stack-harness";

const runtime = redisRuntime();

const KEYS = 100_000;

if (!PULUMI) {
    // eslint-disable-next-line no-console
    console.warn("tests/e2e/local-stack.test.ts SKIPPED: no pulumi binary (.tools/bin/pulumi or PATH); run `bash scripts/install-pulumi.sh` (CI does, via scripts/setup.sh)");
}
const maybe = PULUMI ? describe : describe.skip;

maybe("local stack on the real engine", () => {
    // This pass's runtime (npm test runs the e2e on 7.0 and, with REDISFORGE_REDIS=8.6, on 8.6).
    const st = new ThrowAwayStack({ prefix: "e2e", portBase: 18100, config: { "redisforge:redisVersion": runtime.version.split(".").slice(0, 2).join(".") } });
    const { stack, stateDir, basePort, tmp, backend } = st;
    const run = (cmd: string, args: string[], timeoutMs: number) => st.run(cmd, args, timeoutMs);
    const timings: Record<string, number> = {};
    const pulumi = (args: string[], timeoutMs?: number) => st.pulumi(args, timeoutMs);
    const scale = (cmd: string, timeoutMs?: number) => st.scale(cmd, timeoutMs);
    const ourRedisPids = () => st.redisPids();
    const outputs = () => st.outputs();
    const clusterClient = () => st.clusterClient();

    async function writeKeys(c: Cluster): Promise<void> {
        for (let i = 0; i < KEYS; i += 5000) {
            const batch: Promise<unknown>[] = [];
            for (let j = i; j < Math.min(KEYS, i + 5000); j++) batch.push(c.set(`rf:e2e:${j}`, `value-${j}`));
            await Promise.all(batch);
        }
    }

    /** Number of keys that do not read back as written. */
    async function missingKeys(c: Cluster): Promise<number> {
        let missing = 0;
        for (let i = 0; i < KEYS; i += 5000) {
            const batch: Promise<string | null>[] = [];
            for (let j = i; j < Math.min(KEYS, i + 5000); j++) batch.push(c.get(`rf:e2e:${j}`));
            const vals = await Promise.all(batch);
            vals.forEach((v, k) => {
                if (v !== `value-${i + k}`) missing++;
            });
        }
        return missing;
    }

    /** slot count per master address, from CLUSTER SHARDS-like view of CLUSTER NODES. */
    async function slotsByMaster(c: Cluster): Promise<Map<string, number>> {
        const node = c.nodes("master")[0];
        const text = (await node.call("CLUSTER", "NODES")) as string;
        const m = new Map<string, number>();
        for (const line of text.trim().split("\n")) {
            const f = line.split(" ");
            if (!f[2].includes("master") || f[2].includes("fail")) continue;
            const addr = f[1].split("@")[0];
            let n = 0;
            for (const r of f.slice(8)) {
                if (r.startsWith("[")) continue;
                const [a, b] = r.split("-").map(Number);
                n += (b ?? a) - a + 1;
            }
            m.set(addr, n);
        }
        return m;
    }

    beforeAll(() => st.init());

    afterAll(async () => {
        await st.cleanup();
        // eslint-disable-next-line no-console
        console.log(`e2e local stack timings (ms): ${JSON.stringify(timings)}`);
    }, 240_000);

    test("preview lists the creates", async () => {
        const r = must(await pulumi(["preview", "--json"]), "pulumi preview");
        timings.preview = r.ms;
        const steps = (JSON.parse(r.stdout).steps ?? []) as { op: string; urn: string }[];
        const creates = steps.filter((s) => s.op === "create").map((s) => s.urn.split("::")[2].split("$").pop());
        const count = (t: string) => creates.filter((x) => x === t).length;
        expect(count("pulumi-nodejs:dynamic/local:RedisProcess")).toBe(6);
        expect(count("pulumi-nodejs:dynamic/redisforge:RedisCluster")).toBe(1);
        expect(count("tls:index/selfSignedCert:SelfSignedCert")).toBe(1);
        expect(count("tls:index/locallySignedCert:LocallySignedCert")).toBe(7);
        expect(count("random:index/randomPassword:RandomPassword")).toBe(7); // admin, app, readonly, replication, exporter, tlsreload, converge
        expect(ourRedisPids()).toEqual([]);
    }, 300_000);

    test("up deploys a formed cluster; a second up changes nothing", async () => {
        const up = must(await pulumi(["up", "--yes", "--skip-preview"]), "pulumi up");
        timings.up = up.ms;
        expect(ourRedisPids()).toHaveLength(6);
        const o = await outputs();
        expect(o.clusterState).toBe("ok");
        expect(o.serverVersion).toBe(runtime.version);
        // Exporters run beside the nodes when redis_exporter is installed (Debian package in CI):
        // scraped for real, they reach their node over TLS as the `exporter` ACL user.
        const targets = o.scrapeTargets as string[];
        const exporterInstalled = (st.env.PATH ?? "").split(":").some((d) => d && fs.existsSync(path.join(d, "prometheus-redis-exporter")));
        expect(targets).toHaveLength(exporterInstalled ? 6 : 0);
        if (exporterInstalled) {
            const text = await (await fetch(`http://${targets[0]}/metrics`)).text();
            expect(text).toMatch(/^redis_up 1$/m);
            expect(text).toMatch(/^redis_cluster_enabled 1$/m);
        }
        const again = must(await pulumi(["up", "--yes", "--expect-no-changes"]), "second pulumi up (--expect-no-changes)");
        timings.secondUp = again.ms;
        expect(again.stdout).not.toMatch(/\b(created|updated|replaced|deleted)\b/);
    }, 600_000);

    test("a scale command without --yes and without a terminal applies nothing and puts the config back", async () => {
        const r = await run(process.execPath, [path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs"), "infra/scale.ts", "add-replica", "--stack", stack], 300_000);
        expect(r.code).toBe(4); // the operator CLI's "change not applied" (README "Operator CLI")
        expect(r.stdout).toMatch(/redisforge:replicasPerShard 1 -> 2/);
        expect(r.stdout).toMatch(/to create/); // the preview ran and showed the new nodes
        expect(r.stdout).toMatch(/not applied/);
        const cfg = must(await pulumi(["config", "get", "redisforge:replicasPerShard"], 60_000), "pulumi config get");
        expect(cfg.stdout.trim()).toBe("1");
        expect(ourRedisPids()).toHaveLength(6);
    }, 300_000);

    test("100 000 keys survive add-shard (slots move to the new master) and remove-shard (drained)", async () => {
        let c = await clusterClient();
        try {
            const t0 = Date.now();
            await writeKeys(c);
            timings.write100k = Date.now() - t0;
            expect(await c.dbsize()).toBeGreaterThan(0);
        } finally {
            c.disconnect();
        }

        const add = must(await scale("add-shard"), "scale add-shard");
        timings.addShard = add.ms;
        expect(add.stdout).toMatch(/slot-move plan: \d+ steps, [1-9]\d* slots moved/);
        expect(add.stdout).toMatch(/verified: 16384\/16384 slots on 4 masters, 4 replicas linked/);
        const newMaster = `127.0.0.1:${basePort + 6}`;
        c = await clusterClient();
        try {
            const slots = await slotsByMaster(c);
            expect(slots.size).toBe(4);
            expect(slots.get(newMaster)).toBeGreaterThan(3000);
            expect([...slots.values()].reduce((a, b) => a + b, 0)).toBe(16384);
            expect(await missingKeys(c)).toBe(0);
        } finally {
            c.disconnect();
        }
        expect(ourRedisPids()).toHaveLength(8);

        const remove = must(await scale("remove-shard"), "scale remove-shard");
        timings.removeShard = remove.ms;
        expect(remove.stdout).toMatch(/verified: 16384\/16384 slots on 3 masters, 3 replicas linked/);
        c = await clusterClient();
        try {
            const slots = await slotsByMaster(c);
            expect(slots.size).toBe(3);
            expect(slots.has(newMaster)).toBe(false);
            expect(await missingKeys(c)).toBe(0);
        } finally {
            c.disconnect();
        }
        expect(ourRedisPids()).toHaveLength(6);
        expect(fs.existsSync(path.join(stateDir, "nodes", `${stack}-node6`))).toBe(false);
        expect(fs.existsSync(path.join(stateDir, "nodes", `${stack}-node7`))).toBe(false);
    }, 900_000);

    test("refresh shows no drift", async () => {
        const r = must(await pulumi(["refresh", "--yes", "--expect-no-changes", "--skip-preview"]), "pulumi refresh --expect-no-changes");
        timings.refresh = r.ms;
        const p = must(await pulumi(["preview", "--expect-no-changes"]), "pulumi preview --expect-no-changes after refresh");
        expect(p.stdout).not.toMatch(/to (create|update|delete|replace)/);
    }, 600_000);

    test("the state file holds no password or private key in plaintext", async () => {
        const exported = must(await pulumi(["stack", "export", "--file", path.join(tmp, "export.json")], 60_000), "pulumi stack export");
        void exported;
        const files = [path.join(tmp, "export.json")];
        const stackJson = path.join(backend, ".pulumi", "stacks", "redisforge", `${stack}.json`);
        expect(fs.existsSync(stackJson)).toBe(true);
        files.push(stackJson);
        const o = await outputs();
        const secrets: string[] = [o.adminPassword as string, o.appPassword as string];
        const node0 = path.join(stateDir, "nodes", `${stack}-node0`);
        secrets.push(fs.readFileSync(path.join(node0, "secrets.conf"), "utf8").replace(/^masterauth\s+/, "").trim());
        const keyBodies = [path.join(node0, "tls", "node.key"), path.join(o.clientDir as string, "client.key")].map((f) =>
            fs.readFileSync(f, "utf8").split("\n").filter((l) => l && !l.startsWith("-----")).join(""),
        );
        for (const s of secrets) expect(s.length).toBeGreaterThanOrEqual(32);
        for (const f of files) {
            const text = fs.readFileSync(f, "utf8");
            const flat = text.replace(/\\n/g, "");
            for (const s of secrets) expect(text.includes(s)).toBe(false);
            for (const k of keyBodies) expect(flat.includes(k.slice(0, 40))).toBe(false);
            expect(text).not.toMatch(/PRIVATE KEY-----/);
            expect(text).not.toMatch(/masterauth /);
        }
    }, 120_000);

    test("destroy leaves no redis-server process and no data dir", async () => {
        const r = must(await pulumi(["destroy", "--yes", "--skip-preview"]), "pulumi destroy");
        timings.destroy = r.ms;
        expect(ourRedisPids()).toEqual([]);
        expect(fs.existsSync(stateDir)).toBe(false);
    }, 300_000);
});
