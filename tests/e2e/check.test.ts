/**
 * End to end on the real Pulumi engine: `forge check` (infra/cli/commands/check.ts) against a
 * throw-away `local` stack (3 shards x 1 replica over local-a/b/c), healthy and with one failure
 * planted at a time, each planted through the nodes themselves and undone before the next:
 *
 *   healthy                          exit 0, every check passes (backup skipped: no bucket)
 *   --min-cert-days 31               tls fails (Pulumi.local.yaml: certificates valid 30 days)
 *   app granted +@all (ACL SETUSER)  acl-app fails (FLUSHALL, CONFIG, KEYS allowed); ACL LOAD undoes it
 *   slot 0 left MIGRATING            slots fails; SETSLOT STABLE undoes it
 *   a replica moved to the master in its own zone (CLUSTER REPLICATE)   zones fails
 *   a replica stopped (SIGSTOP)      nodes fails naming it; SIGCONT undoes it
 *   a slot deleted on its owner only (CLUSTER DELSLOTS)   slots fails: unassigned there, nodes disagree
 *
 * Also: the real engine's `pulumi preview` of the fresh stack is timed and printed (issue 11), and
 * the CLI's key-slot function agrees with the server's CLUSTER KEYSLOT.
 * Skipped (with a message) only when no `pulumi` binary exists.
 */
import * as fs from "fs";
import * as path from "path";
import Redis from "ioredis";
import { keySlot } from "../../infra/check/key-slot";
import { parseClusterNodes } from "../../providers/redis-cluster/executor";
import { must, PULUMI, ROOT, ThrowAwayStack } from "./stack-harness";

if (!PULUMI) {
    // eslint-disable-next-line no-console
    console.warn("tests/e2e/check.test.ts SKIPPED: no pulumi binary (.tools/bin/pulumi or PATH); run `bash scripts/install-pulumi.sh`");
}
const maybe = PULUMI ? describe : describe.skip;

interface CheckJson {
    ok: boolean;
    failed: string[];
    checks: { name: string; status: string; summary: string; details: string[]; data?: unknown }[];
}

maybe("forge check on a live local stack, healthy and with each failure planted", () => {
    const st = new ThrowAwayStack({ prefix: "e2e-check", portBase: 14000 });
    const timings: Record<string, number> = {};
    let nodes: { name: string; host: string; port: number; zone: string }[] = [];
    let creds: { password: string; ca: Buffer; cert: Buffer; key: Buffer };

    beforeAll(async () => {
        st.init();
        const pv = must(await st.pulumi(["preview"], 300_000), "pulumi preview");
        timings.preview = pv.ms;
        timings.up = must(await st.pulumi(["up", "--yes", "--skip-preview"], 400_000), "pulumi up").ms;
        const o = await st.outputs();
        nodes = o.nodes as typeof nodes;
        const dir = o.clientDir as string;
        creds = { password: o.adminPassword as string, ca: fs.readFileSync(path.join(dir, "ca.crt")), cert: fs.readFileSync(path.join(dir, "client.crt")), key: fs.readFileSync(path.join(dir, "client.key")) };
    }, 900_000);

    afterAll(async () => {
        await st.cleanup();
        // eslint-disable-next-line no-console
        console.log(`e2e check timings (ms): ${JSON.stringify(timings)} (preview = real engine, throw-away local stack, nothing deployed yet)`);
    }, 300_000);

    async function forge(args: string[]): Promise<{ code: number; json: CheckJson; stderr: string }> {
        const r = await st.run(process.execPath, [path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs"), "infra/cli/index.ts", ...args, "--stack", st.stack, "--json"], 180_000);
        let json: CheckJson;
        try {
            json = JSON.parse(r.stdout);
        } catch {
            throw new Error(`forge ${args.join(" ")} printed no JSON (exit ${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
        }
        timings[`check ${args.slice(1).join(" ") || "healthy"}`.trim()] = r.ms;
        return { code: r.code, json, stderr: r.stderr };
    }

    async function admin<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
        const c = new Redis({ host: "127.0.0.1", port, username: "admin", password: creds.password, tls: { ca: creds.ca, cert: creds.cert, key: creds.key }, lazyConnect: true, connectTimeout: 5000, maxRetriesPerRequest: 1, retryStrategy: () => null });
        await c.connect();
        try {
            return await fn(c);
        } finally {
            c.disconnect();
        }
    }

    async function clusterNodes(port: number) {
        return parseClusterNodes(String(await admin(port, (c) => c.call("CLUSTER", "NODES"))));
    }

    /** Polls (bounded: 60 x 500 ms) until `ok` holds. */
    async function until(what: string, ok: () => Promise<boolean>): Promise<void> {
        for (let i = 0; i < 60; i++) {
            if (await ok().catch(() => false)) return;
            await new Promise((r) => setTimeout(r, 500));
        }
        throw new Error(`${what}: not reached within 30 s`);
    }

    const status = (j: CheckJson, name: string) => j.checks.find((c) => c.name === name)?.status;
    const detailsOf = (j: CheckJson, name: string) => (j.checks.find((c) => c.name === name)?.details ?? []).join("\n");

    test("healthy: every check passes, exit 0, backup skipped with the reason", async () => {
        const { code, json } = await forge(["check"]);
        expect(json.failed).toEqual([]);
        expect(code).toBe(0);
        expect(json.checks.map((c) => c.name)).toEqual(["tls", "auth-app", "data", "acl-app", "nodes", "slots", "replicas", "zones", "backup"]);
        for (const c of json.checks.filter((x) => x.name !== "backup")) expect(c.status).toBe("pass");
        expect(json.checks.find((c) => c.name === "backup")).toMatchObject({ status: "skip", summary: expect.stringMatching(/no bucket/) });
        const tls = json.checks.find((c) => c.name === "tls")!.data as { daysLeft: number }[];
        expect(tls).toHaveLength(6);
        // Pulumi.local.yaml: tlsValidityDays 30, tlsRenewBeforeDays 7 (the default threshold).
        for (const t of tls) expect(t.daysLeft).toBeGreaterThanOrEqual(28);
        expect(json.checks.find((c) => c.name === "tls")!.summary).toMatch(/fewest days left (29|30)/);
        expect(json.checks.find((c) => c.name === "data")!.details).toHaveLength(3);
        const lags = json.checks.find((c) => c.name === "replicas")!.data as { link: string; lagBytes: number }[];
        expect(lags).toHaveLength(3);
        for (const l of lags) expect(l).toMatchObject({ link: "up", lagBytes: expect.any(Number) });
    }, 240_000);

    test("the key-slot function agrees with the server's CLUSTER KEYSLOT", async () => {
        const keys = ["a", "foo", "redisforge:check:{17}", "{user1000}.following", "{}x", "x{}y", "é-ü", "123456789"];
        const server = await admin(nodes[0].port, (c) => Promise.all(keys.map((k) => c.call("CLUSTER", "KEYSLOT", k))));
        expect(keys.map(keySlot)).toEqual(server.map(Number));
    });

    test("an expiring certificate (--min-cert-days above the validity) fails tls only", async () => {
        const { code, json } = await forge(["check", "--min-cert-days", "31"]);
        expect(code).toBe(1);
        expect(json.failed).toEqual(["tls"]);
        expect(detailsOf(json, "tls")).toMatch(/certificate expires in (29|30) days \(< 31\); run `pulumi up`/);
    }, 240_000);

    test("app with too many rights fails acl-app", async () => {
        for (const n of nodes) await admin(n.port, (c) => c.call("ACL", "SETUSER", "app", "+@all", "allkeys"));
        try {
            const { code, json, stderr } = await forge(["check"]);
            expect(code).toBe(1);
            expect(json.failed).toEqual(["acl-app"]);
            expect(detailsOf(json, "acl-app")).toMatch(/app may run FLUSHALL/);
            expect(detailsOf(json, "acl-app")).toMatch(/app may run CONFIG/);
            expect(detailsOf(json, "acl-app")).toMatch(/app may run KEYS/);
            expect(stderr).toMatch(/check: failed: acl-app/);
        } finally {
            for (const n of nodes) await admin(n.port, (c) => c.call("ACL", "LOAD"));
        }
    }, 240_000);

    test("a slot left MIGRATING fails slots", async () => {
        const view = await clusterNodes(nodes[0].port);
        const owner = view.find((n) => n.slots.some((r) => r.start <= 0 && 0 <= r.end))!;
        const other = view.find((n) => n.master && n.slots.length && n.id !== owner.id)!;
        await admin(owner.port, (c) => c.call("CLUSTER", "SETSLOT", "0", "MIGRATING", other.id));
        try {
            const { code, json } = await forge(["check"]);
            expect(code).toBe(1);
            expect(json.failed).toContain("slots");
            expect(detailsOf(json, "slots")).toMatch(/slot 0 is left MIGRATING/);
        } finally {
            await admin(owner.port, (c) => c.call("CLUSTER", "SETSLOT", "0", "STABLE"));
        }
    }, 240_000);

    test("a replica in its master's zone fails zones", async () => {
        const zoneOf = new Map(nodes.map((n) => [n.port, n.zone]));
        const view = await clusterNodes(nodes[0].port);
        const replica = view.find((n) => !n.master && n.masterId)!;
        const sameZoneMaster = view.find((n) => n.master && n.slots.length && zoneOf.get(n.port) === zoneOf.get(replica.port))!;
        const original = replica.masterId!;
        await admin(replica.port, (c) => c.call("CLUSTER", "REPLICATE", sameZoneMaster.id));
        try {
            await until("replica re-pointed", async () => (await clusterNodes(replica.port)).find((n) => n.myself)!.masterId === sameZoneMaster.id);
            const { code, json } = await forge(["check"]);
            expect(code).toBe(1);
            expect(json.failed).toContain("zones");
            expect(detailsOf(json, "zones")).toMatch(new RegExp(`shares zone ${zoneOf.get(replica.port)} with its master`));
        } finally {
            await admin(replica.port, (c) => c.call("CLUSTER", "REPLICATE", original));
            await until("replica back on its master, linked", async () => /master_link_status:up/.test(String(await admin(replica.port, (c) => c.call("INFO", "replication")))) && (await clusterNodes(replica.port)).find((n) => n.myself)!.masterId === original);
        }
    }, 240_000);

    test("a stopped replica fails nodes and names it", async () => {
        const view = await clusterNodes(nodes[0].port);
        const replica = view.find((n) => !n.master && n.masterId)!;
        const name = nodes.find((n) => n.port === replica.port)!.name;
        const pid = st.redisNodes().get(name)?.pid;
        expect(pid).toBeDefined();
        process.kill(pid!, "SIGSTOP");
        try {
            const { code, json } = await forge(["check"]);
            expect(code).toBe(1);
            expect(json.failed).toEqual(expect.arrayContaining(["nodes", "tls", "auth-app"]));
            expect(detailsOf(json, "nodes")).toContain(`127.0.0.1:${replica.port}`);
            expect(detailsOf(json, "tls")).toContain(name);
        } finally {
            process.kill(pid!, "SIGCONT");
        }
        await until("stopped replica linked again", async () => /master_link_status:up/.test(String(await admin(replica.port, (c) => c.call("INFO", "replication")))));
    }, 240_000);

    test("a slot unassigned on its owner only fails slots: not covered there, nodes disagree", async () => {
        const view = await clusterNodes(nodes[0].port);
        const owner = view.find((n) => n.slots.some((r) => r.start <= 100 && 100 <= r.end))!;
        await admin(owner.port, (c) => c.call("CLUSTER", "DELSLOTS", "100"));
        try {
            const { code, json } = await forge(["check"]);
            expect(code).toBe(1);
            expect(json.failed).toContain("slots");
            expect(detailsOf(json, "slots")).toMatch(/sees 16383\/16384 slots assigned/);
            expect(detailsOf(json, "slots")).toMatch(/nodes disagree on the slot map/);
        } finally {
            await admin(owner.port, (c) => c.call("CLUSTER", "ADDSLOTS", "100"));
        }
        await until("cluster ok again", async () => /cluster_state:ok/.test(String(await admin(owner.port, (c) => c.call("CLUSTER", "INFO")))));
        const { code, json } = await forge(["check"]);
        expect(json.failed).toEqual([]);
        expect(code).toBe(0);
    }, 300_000);

    test("add-shard through the CLI shows the migration progress as plain lines (no terminal) and exits 0", async () => {
        const c = await st.clusterClient();
        try {
            for (let i = 0; i < 4000; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => c.set(`e2e-check:${i + j}`, "v")));
        } finally {
            c.disconnect();
        }
        const r = await st.run(process.execPath, [path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs"), "infra/cli/index.ts", "add-shard", "--stack", st.stack, "--yes"], 600_000);
        timings["add-shard"] = r.ms;
        if (r.code !== 0) throw new Error(`add-shard exit ${r.code}:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-3000)}`);
        const lines = r.stdout.split("\n").filter((l) => l.startsWith("migration: "));
        expect(r.stdout).not.toContain("\x1b[2K"); // not a TTY: no in-place rewrites
        expect(lines.length).toBeGreaterThanOrEqual(1);
        const last = /^migration: slots (\d+)\/(\d+) \((\d+) %\), (\d+) keys, (\d+) keys\/s, ETA (\d+) s$/.exec(lines[lines.length - 1]);
        expect(last).not.toBeNull();
        const [, moved, total, , keys] = last!.map(Number);
        expect(total).toBe(4096);
        expect(moved).toBe(total);
        // About a quarter of the 4 000 keys move to the new shard (slots 4096/16384).
        expect(keys).toBeGreaterThan(600);
        expect(keys).toBeLessThan(1400);
        expect(r.stdout).toMatch(/verified: 16384\/16384 slots on 4 masters/);
    }, 700_000);
});

