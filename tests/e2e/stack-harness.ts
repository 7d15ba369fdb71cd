/**
 * A throw-away `local` stack on the real Pulumi engine, shared by the end-to-end tests: its own
 * file backend and passphrase in a temp dir, its own ports, a `Pulumi.<stack>.yaml` derived from
 * Pulumi.local.yaml, and a cleanup that destroys the stack, then SIGKILLs any redis-server of its
 * own (by PID: working directory inside the stack's dir) and removes every file it made.
 */
import { execFile, execFileSync } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Cluster } from "ioredis";
import { parse, stringify } from "yaml";

/**
 * The stack's listening ports (Redis, bus = +10000, exporter = +1000; up to 20 nodes) must lie
 * outside the kernel's ephemeral range: any outgoing connection on the machine may take a port from
 * it, and Redis then fails with "Failed listening on port ... aborting" (seen in CI: ci-preview's
 * old base 36000 was inside 32768-60999).
 */
function checkOutsideEphemeralRange(base: number): void {
    const [lo, hi] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    for (const start of [base, base + 1000, base + 10000]) {
        if (start + 20 > lo && start <= hi) throw new Error(`ThrowAwayStack: ports ${start}-${start + 19} overlap the ephemeral range ${lo}-${hi}; pick a portBase whose Redis, exporter (+1000) and bus (+10000) ports stay below ${lo}`);
    }
}

export const ROOT = path.resolve(__dirname, "..", "..");

/** The project's Pulumi CLI (.tools/bin, built by scripts/install-pulumi.sh) or one on PATH. */
export const PULUMI: string | undefined = [path.join(ROOT, ".tools", "bin", "pulumi"), ...(process.env.PATH ?? "").split(":").filter(Boolean).map((d) => path.join(d, "pulumi"))].find((p) => fs.existsSync(p));

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
    ms: number;
}

export interface ThrowAwayStackOptions {
    /** Stack name prefix, e.g. "e2e" (a random suffix is added). */
    prefix: string;
    /** First port of this test's range; the pid picks one of 40 slots of 20 ports in it. */
    portBase: number;
    /** Config keys set on top of Pulumi.local.yaml (ports are set by the harness). */
    config?: Record<string, string>;
    /** Environment variables removed before the engine runs (e.g. REDISFORGE_REDIS_SERVER). */
    unsetEnv?: string[];
}

export class ThrowAwayStack {
    readonly stack: string;
    readonly stackFile: string;
    readonly stateDir: string;
    readonly basePort: number;
    env: Record<string, string> = {};
    /** Private temp dir of this stack (removed by cleanup). */
    readonly tmp: string;
    /** File backend dir (inside tmp). */
    readonly backend: string;

    constructor(private readonly opts: ThrowAwayStackOptions) {
        this.stack = `${opts.prefix}-${randomBytes(3).toString("hex")}`;
        this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `rf-${opts.prefix}-`));
        this.backend = path.join(this.tmp, "state");
        this.stackFile = path.join(ROOT, `Pulumi.${this.stack}.yaml`);
        this.stateDir = path.join(ROOT, ".local-stack", this.stack);
        this.basePort = opts.portBase + (process.pid % 40) * 20;
        checkOutsideEphemeralRange(this.basePort);
    }

    /** beforeAll: the engine's environment (scripts/env.sh over a private backend), the stack file, `stack init`. */
    init(): void {
        fs.mkdirSync(this.backend, { recursive: true });
        const base: Record<string, string | undefined> = { ...process.env, PULUMI_BACKEND_URL: `file://${this.backend}`, PULUMI_CONFIG_PASSPHRASE: randomBytes(24).toString("hex"), PULUMI_HOME: path.join(ROOT, ".tools", "pulumi-home") };
        for (const k of this.opts.unsetEnv ?? []) delete base[k];
        const out = execFileSync("bash", ["-c", "source scripts/env.sh && env -0"], { cwd: ROOT, env: base as Record<string, string> });
        this.env = Object.fromEntries(
            out
                .toString("utf8")
                .split("\0")
                .filter((kv) => kv.includes("="))
                .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
        );
        const local = parse(fs.readFileSync(path.join(ROOT, "Pulumi.local.yaml"), "utf8")) as { config: Record<string, unknown> };
        const config = {
            ...local.config,
            "redisforge:redisPort": String(this.basePort),
            "redisforge:busPort": String(this.basePort + 10000),
            "redisforge:redisExporterPort": String(this.basePort + 1000),
            ...(this.opts.config ?? {}),
        };
        fs.writeFileSync(this.stackFile, stringify({ config }));
        try {
            execFileSync(PULUMI!, ["stack", "init", this.stack, "--non-interactive"], { cwd: ROOT, env: this.env, stdio: "pipe" });
        } catch (e) {
            throw new Error(`pulumi stack init ${this.stack} failed: ${String((e as { stderr?: Buffer }).stderr ?? e)}`);
        }
    }

    /** afterAll, whatever happened: destroy, SIGKILL our leftover processes by PID, remove our files. */
    async cleanup(): Promise<void> {
        if (fs.existsSync(this.stateDir) || this.redisPids().length) await this.pulumi(["destroy", "--yes", "--skip-preview"], 180_000);
        for (const pid of this.redisPids()) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                // already gone
            }
        }
        fs.rmSync(this.stateDir, { recursive: true, force: true });
        fs.rmSync(this.stackFile, { force: true });
        fs.rmSync(this.tmp, { recursive: true, force: true });
    }

    /** Sets one config key in the stack file (as `pulumi config set` would, without a round trip). */
    setConfig(key: string, value: string): void {
        const doc = parse(fs.readFileSync(this.stackFile, "utf8")) as { config: Record<string, unknown> };
        doc.config[key] = value;
        fs.writeFileSync(this.stackFile, stringify(doc));
    }

    run(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
        const start = Date.now();
        return new Promise((resolve) => {
            execFile(cmd, args, { cwd: ROOT, env: this.env, timeout: timeoutMs, killSignal: "SIGINT", maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
                const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
                resolve({ code, stdout: String(stdout), stderr: String(stderr), ms: Date.now() - start });
            });
        });
    }

    pulumi(args: string[], timeoutMs = 240_000): Promise<RunResult> {
        return this.run(PULUMI!, [...args, "--stack", this.stack, "--non-interactive"], timeoutMs);
    }

    /** `npm run scale -- <cmd> --stack <stack> --yes` (infra/scale.ts through tsx). */
    scale(cmd: string, timeoutMs = 300_000): Promise<RunResult> {
        return this.run(process.execPath, [path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs"), "infra/scale.ts", cmd, "--stack", this.stack, "--yes"], timeoutMs);
    }

    async outputs(): Promise<Record<string, unknown>> {
        return JSON.parse(must(await this.pulumi(["stack", "output", "--json", "--show-secrets"], 60_000), "stack output").stdout);
    }

    /** redis-server processes of this stack: node name (its data dir) -> pid and command line. */
    redisNodes(): Map<string, { pid: number; cmd: string }> {
        const out = new Map<string, { pid: number; cmd: string }>();
        for (const d of fs.readdirSync("/proc")) {
            if (!/^\d+$/.test(d)) continue;
            try {
                const cmd = fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").join(" ");
                const cwd = fs.readlinkSync(`/proc/${d}/cwd`).replace(/ \(deleted\)$/, "");
                // includes: a server run through a loader (the 8.6 wrappers) shows the loader first.
                if (cmd.includes("redis-server") && cwd.startsWith(this.stateDir + path.sep)) out.set(path.basename(cwd), { pid: Number(d), cmd });
            } catch {
                // process gone or not ours to read
            }
        }
        return out;
    }

    /** PIDs of this stack's redis-server processes. */
    redisPids(): number[] {
        return [...this.redisNodes().values()].map((n) => n.pid);
    }

    /** A connected ioredis Cluster client as ACL user `app` with the stack's client certificate. */
    async clusterClient(): Promise<Cluster> {
        const o = await this.outputs();
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
}

/** Throws with the command's output when it failed. */
export function must(r: RunResult, what: string): RunResult {
    if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-6000)}`);
    return r;
}
