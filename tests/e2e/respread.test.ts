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
import { execFile, execFileSync } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import Redis, { Cluster } from "ioredis";
import { parse, stringify } from "yaml";
import { redisRuntime } from "../../lab/redis-runtime";

const runtime = redisRuntime();

const ROOT = path.resolve(__dirname, "..", "..");
const KEYS = 100_000;

function findPulumi(): string | undefined {
    const local = path.join(ROOT, ".tools", "bin", "pulumi");
    if (fs.existsSync(local)) return local;
    for (const dir of (process.env.PATH ?? "").split(":")) {
        const p = path.join(dir, "pulumi");
        if (dir && fs.existsSync(p)) return p;
    }
    return undefined;
}

const PULUMI = findPulumi();
if (!PULUMI) {
    // eslint-disable-next-line no-console
    console.warn("tests/e2e/local-stack.test.ts SKIPPED: no pulumi binary (.tools/bin/pulumi or PATH); run `bash scripts/install-pulumi.sh` (CI does, via scripts/setup.sh)");
}
const maybe = PULUMI ? describe : describe.skip;

interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
    ms: number;
}

maybe("masters re-spread after a failover, through the real engine", () => {
    const id = randomBytes(3).toString("hex");
    const stack = `e2e-respread-${id}`;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rf-e2e-respread-"));
    const backend = path.join(tmp, "state");
    const stackFile = path.join(ROOT, `Pulumi.${stack}.yaml`);
    const stateDir = path.join(ROOT, ".local-stack", stack);
    const basePort = 19900 + (process.pid % 40) * 20;
    let env: Record<string, string> = {};
    const timings: Record<string, number> = {};

    function run(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
        const start = Date.now();
        return new Promise((resolve) => {
            execFile(cmd, args, { cwd: ROOT, env, timeout: timeoutMs, killSignal: "SIGINT", maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
                const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
                resolve({ code, stdout: String(stdout), stderr: String(stderr), ms: Date.now() - start });
            });
        });
    }
    const pulumi = (args: string[], timeoutMs = 240_000) => run(PULUMI!, [...args, "--stack", stack, "--non-interactive"], timeoutMs);
    const scale = (cmd: string, timeoutMs = 300_000) => run(process.execPath, [path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs"), "infra/scale.ts", cmd, "--stack", stack, "--yes"], timeoutMs);
    const must = (r: RunResult, what: string) => {
        if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-6000)}`);
        return r;
    };

    /** PIDs of redis-server processes whose working directory is inside this stack's dir. */
    function ourRedisPids(): number[] {
        const pids: number[] = [];
        for (const d of fs.readdirSync("/proc")) {
            if (!/^\d+$/.test(d)) continue;
            try {
                const cmd = fs.readFileSync(`/proc/${d}/cmdline`, "utf8");
                const cwd = fs.readlinkSync(`/proc/${d}/cwd`).replace(/ \(deleted\)$/, "");
                // includes: a server run through a loader (the 8.6 wrappers) shows the loader first.
                if (cmd.includes("redis-server") && cwd.startsWith(stateDir + path.sep)) pids.push(Number(d));
            } catch {
                // process gone or not ours to read
            }
        }
        return pids;
    }

    async function outputs(): Promise<Record<string, unknown>> {
        return JSON.parse(must(await pulumi(["stack", "output", "--json", "--show-secrets"], 60_000), "stack output").stdout);
    }

    async function clusterClient(): Promise<Cluster> {
        const o = await outputs();
        const clientDir = o.clientDir as string;
        const nodes = o.nodes as { host: string; port: number }[];
        const tls = {
            ca: fs.readFileSync(path.join(clientDir, "ca.crt")),
            cert: fs.readFileSync(path.join(clientDir, "client.crt")),
            key: fs.readFileSync(path.join(clientDir, "client.key")),
        };
        const c = new Cluster(nodes.map((n) => ({ host: n.host, port: n.port })), {
            enableAutoPipelining: true,
            slotsRefreshTimeout: 5000,
            clusterRetryStrategy: (times) => (times > 20 ? null : 200),
            // The app user may not run INFO (@dangerous), which the ready check uses.
            redisOptions: { username: "app", password: o.appPassword as string, tls, connectTimeout: 5000, maxRetriesPerRequest: 5, enableReadyCheck: false },
        });
        await new Promise<void>((resolve, reject) => {
            const t = setTimeout(() => reject(new Error("cluster client not ready within 20 s")), 20_000);
            c.once("ready", () => {
                clearTimeout(t);
                resolve();
            });
            c.once("error", (e) => {
                clearTimeout(t);
                reject(e);
            });
        });
        return c;
    }

    beforeAll(() => {
        fs.mkdirSync(backend, { recursive: true });
        const base = { ...process.env, PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_CONFIG_PASSPHRASE: randomBytes(24).toString("hex"), PULUMI_HOME: path.join(ROOT, ".tools", "pulumi-home") };
        const out = execFileSync("bash", ["-c", "source scripts/env.sh && env -0"], { cwd: ROOT, env: base as Record<string, string> });
        env = Object.fromEntries(
            out
                .toString("utf8")
                .split("\0")
                .filter((kv) => kv.includes("="))
                .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
        );
        const local = parse(fs.readFileSync(path.join(ROOT, "Pulumi.local.yaml"), "utf8")) as { config: Record<string, unknown> };
        // This pass's runtime (npm test runs the e2e on 7.0 and, with REDISFORGE_REDIS=8.6, on 8.6).
        const config = { ...local.config, "redisforge:redisVersion": runtime.version.split(".").slice(0, 2).join("."), "redisforge:redisPort": String(basePort), "redisforge:busPort": String(basePort + 10000), "redisforge:redisExporterPort": String(basePort + 1000) };
        fs.writeFileSync(stackFile, stringify({ config }));
        try {
            execFileSync(PULUMI!, ["stack", "init", stack, "--non-interactive"], { cwd: ROOT, env, stdio: "pipe" });
        } catch (e) {
            throw new Error(`pulumi stack init ${stack} failed: ${String((e as { stderr?: Buffer }).stderr ?? e)}`);
        }
    });

    afterAll(async () => {
        // Whatever happened: destroy, then stop any process of ours by PID, remove every file we made.
        if (fs.existsSync(stateDir) || ourRedisPids().length) await pulumi(["destroy", "--yes", "--skip-preview"], 180_000);
        for (const pid of ourRedisPids()) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                // already gone
            }
        }
        fs.rmSync(stateDir, { recursive: true, force: true });
        fs.rmSync(stackFile, { force: true });
        fs.rmSync(tmp, { recursive: true, force: true });
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

        // scale status exits 2 on a degraded cluster; refresh must give the same verdict.
        const status = await scale("status", 120_000);
        expect(status.code).toBe(2);
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
