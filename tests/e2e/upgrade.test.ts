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
import { execFile, execFileSync } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse, stringify } from "yaml";
import { installedRuntimes } from "../../lab/redis-runtime";
import { AckedWriter } from "../helpers/acked-writer";

const ROOT = path.resolve(__dirname, "..", "..");
const PULUMI = [path.join(ROOT, ".tools", "bin", "pulumi"), ...(process.env.PATH ?? "").split(":").filter(Boolean).map((d) => path.join(d, "pulumi"))].find((p) => fs.existsSync(p));
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

interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
    ms: number;
}

maybe("rolling upgrade of a local stack through the real engine", () => {
    const id = randomBytes(3).toString("hex");
    const stack = `e2eupg-${id}`;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rf-e2eupg-"));
    const backend = path.join(tmp, "state");
    const stackFile = path.join(ROOT, `Pulumi.${stack}.yaml`);
    const stateDir = path.join(ROOT, ".local-stack", stack);
    // Away from the local-stack e2e's range (18100 + 40 x 20).
    const basePort = 19100 + (process.pid % 40) * 20;
    let env: Record<string, string> = {};
    const figures: Record<string, unknown> = {};

    function run(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
        const start = Date.now();
        return new Promise((resolve) => {
            execFile(cmd, args, { cwd: ROOT, env, timeout: timeoutMs, killSignal: "SIGINT", maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
                const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
                resolve({ code, stdout: String(stdout), stderr: String(stderr), ms: Date.now() - start });
            });
        });
    }
    const pulumi = (args: string[], timeoutMs = 300_000) => run(PULUMI!, [...args, "--stack", stack, "--non-interactive"], timeoutMs);
    const must = (r: RunResult, what: string) => {
        if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-6000)}`);
        return r;
    };
    const setVersion = (v: string) => {
        const doc = parse(fs.readFileSync(stackFile, "utf8")) as { config: Record<string, unknown> };
        doc.config["redisforge:redisVersion"] = v;
        fs.writeFileSync(stackFile, stringify(doc));
    };

    /** redis-server processes of this stack: node name (data dir) -> pid and binary. */
    function ourNodes(): Map<string, { pid: number; cmd: string }> {
        const out = new Map<string, { pid: number; cmd: string }>();
        for (const d of fs.readdirSync("/proc")) {
            if (!/^\d+$/.test(d)) continue;
            try {
                const cmd = fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").join(" ");
                const cwd = fs.readlinkSync(`/proc/${d}/cwd`).replace(/ \(deleted\)$/, "");
                if (cmd.includes("redis-server") && cwd.startsWith(path.join(stateDir, "nodes") + path.sep)) out.set(path.basename(cwd), { pid: Number(d), cmd });
            } catch {
                // gone, or not ours to read
            }
        }
        return out;
    }

    async function outputs(): Promise<Record<string, unknown>> {
        return JSON.parse(must(await pulumi(["stack", "output", "--json", "--show-secrets"], 60_000), "stack output").stdout);
    }

    beforeAll(() => {
        fs.mkdirSync(backend, { recursive: true });
        const base = { ...process.env, PULUMI_BACKEND_URL: `file://${backend}`, PULUMI_CONFIG_PASSPHRASE: randomBytes(24).toString("hex"), PULUMI_HOME: path.join(ROOT, ".tools", "pulumi-home") };
        delete (base as Record<string, unknown>).REDISFORGE_REDIS_SERVER; // the config must pick the binary
        const out = execFileSync("bash", ["-c", "source scripts/env.sh && env -0"], { cwd: ROOT, env: base as Record<string, string> });
        env = Object.fromEntries(
            out
                .toString("utf8")
                .split("\0")
                .filter((kv) => kv.includes("="))
                .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
        );
        const local = parse(fs.readFileSync(path.join(ROOT, "Pulumi.local.yaml"), "utf8")) as { config: Record<string, unknown> };
        const config = {
            ...local.config,
            "redisforge:redisPort": String(basePort),
            "redisforge:busPort": String(basePort + 10000),
            "redisforge:redisExporterPort": String(basePort + 1000),
            "redisforge:redisVersion": "7.0",
        };
        fs.writeFileSync(stackFile, stringify({ config }));
        execFileSync(PULUMI!, ["stack", "init", stack, "--non-interactive"], { cwd: ROOT, env, stdio: "pipe" });
    });

    afterAll(async () => {
        if (fs.existsSync(stateDir) || ourNodes().size) await pulumi(["destroy", "--yes", "--skip-preview"], 180_000);
        for (const { pid } of ourNodes().values()) {
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
