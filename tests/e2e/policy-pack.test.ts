/**
 * The policy pack through the real engine (.tools/bin/pulumi, the analyzer started by our language
 * host's RunPlugin through .tools/bin/pulumi-analyzer-policy): a throw-away stack of a small program
 * that registers the local stack's real RedisProcess resource with a redis.conf rendered by
 * templates/redis and then tampered with (a plaintext port, a masterauth value in the file). Only
 * `pulumi preview` runs: nothing is started.
 *
 * - mandatory (default): refused with each policy's message and a non-zero exit, the secret never printed;
 * - `--policy-pack-config` making those two policies advisory: the same preview passes (exit 0) and
 *   still prints them as advisory.
 * The pass side (the real RedisForge local stack passes every policy) is tests/e2e/ci-preview.test.ts.
 */
import { execFileSync } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PULUMI, ROOT, RunResult } from "./stack-harness";

const maybe = PULUMI ? describe : describe.skip;
if (!PULUMI) console.warn("tests/e2e/policy-pack.test.ts SKIPPED: no pulumi binary; run `bash scripts/install-pulumi.sh` (CI does, via scripts/setup.sh)");

const SECRET = randomBytes(18).toString("hex");

const PROGRAM = `
import * as path from "path";
import { RedisProcess } from ${JSON.stringify(path.join(ROOT, "providers", "local", "redis-process"))};
import { renderRedisConf } from ${JSON.stringify(path.join(ROOT, "templates", "redis"))};

const dataDir = path.join(__dirname, "data");
const file = (f: string) => path.join(dataDir, f);
const conf = renderRedisConf({
    nodeName: "bad-node", zone: "local-a", bindAddress: "127.0.0.1", announceIp: "127.0.0.1", port: 36990, busPort: 46990, dataDir,
    tlsCertFile: file("node.crt"), tlsKeyFile: file("node.key"), tlsCaFile: file("ca.crt"), aclFile: file("users.acl"), secretsFile: file("secrets.conf"),
    maxmemoryBytes: 64 * 1024 * 1024,
})
    // The violations: a plaintext port, and the replication password written into redis.conf itself.
    .replace(/^port 0$/m, "port 36991")
    .concat("\\nmasterauth ${SECRET}\\n");
new RedisProcess("bad-node", {
    nodeName: "bad-node", zone: "local-a", host: "127.0.0.1", port: 36990, busPort: 46990, dataDir,
    redisConf: conf, usersAcl: "user default off resetpass\\n", secretsInclude: "", tlsCert: "", tlsCa: "", tlsKey: "",
});
`;

maybe("policy pack on the real engine: a violating stack is refused", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-policy-"));
    const stack = `policy-${randomBytes(3).toString("hex")}`;
    let env: Record<string, string> = {};

    const run = (args: string[], timeoutMs = 180_000): Promise<RunResult> => {
        const start = Date.now();
        return new Promise((resolve) => {
            require("child_process").execFile(PULUMI!, [...args, "--stack", stack, "--non-interactive", "--color", "never"], { cwd: dir, env, timeout: timeoutMs, killSignal: "SIGINT", maxBuffer: 64 << 20 }, (err: { code?: unknown } | null, stdout: string, stderr: string) => {
                resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr), ms: Date.now() - start });
            });
        });
    };

    beforeAll(() => {
        fs.mkdirSync(path.join(dir, "state"));
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: rf-policy-violation\nruntime: nodejs\ndescription: a stack that breaks RedisForge policies (tests/e2e/policy-pack.test.ts)\n");
        fs.writeFileSync(path.join(dir, "index.ts"), PROGRAM);
        fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
        const base = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`, PULUMI_CONFIG_PASSPHRASE: randomBytes(24).toString("hex"), PULUMI_HOME: path.join(ROOT, ".tools", "pulumi-home") };
        const out = execFileSync("bash", ["-c", "source scripts/env.sh && env -0"], { cwd: ROOT, env: base as Record<string, string> });
        env = Object.fromEntries(out.toString("utf8").split("\0").filter((kv) => kv.includes("=")).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
        execFileSync(PULUMI!, ["stack", "init", stack, "--non-interactive"], { cwd: dir, env, stdio: "pipe" });
    });

    afterAll(() => {
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("mandatory: refused, non-zero exit, each policy's message, the secret never printed", async () => {
        const r = await run(["preview", "--policy-pack", path.join(ROOT, "policy")]);
        const all = r.stdout + r.stderr;
        console.log(`policy pack refuse: exit ${r.code} in ${r.ms} ms\n${all.slice(-2500)}`);
        expect(r.code).not.toBe(0);
        expect(all).toMatch(/Policies:\s*\n\s*❌ redisforge@v0\.1\.0/);
        expect(all).toMatch(/\[mandatory\] +redis-config-tls-only/);
        expect(all).toContain("redisConf is not TLS-only: `port 36991` opens a plaintext port (must be `port 0`)");
        expect(all).toMatch(/\[mandatory\] +user-data-no-secrets/);
        expect(all).toContain("redisConf line");
        expect(all).toContain("a Redis password directive (requirepass/masterauth with a value)");
        expect(all).not.toContain(SECRET);
        // Policies that have nothing to check here pass.
        expect(all).not.toMatch(/redis-ports-not-public|no-public-ip-on-vms|backup-bucket-protected|shards-spread-over-zones/);
        expect(fs.existsSync(path.join(dir, "data"))).toBe(false); // preview started nothing
    }, 240_000);

    it("advisory by --policy-pack-config: the same preview passes and still reports both", async () => {
        const cfg = path.join(dir, "advisory.json");
        fs.writeFileSync(cfg, JSON.stringify({ "redis-config-tls-only": "advisory", "user-data-no-secrets": { enforcementLevel: "advisory" } }));
        const r = await run(["preview", "--policy-pack", path.join(ROOT, "policy"), "--policy-pack-config", cfg]);
        const all = r.stdout + r.stderr;
        console.log(`policy pack advisory: exit ${r.code} in ${r.ms} ms`);
        expect(r.code).toBe(0);
        expect(all).toMatch(/\[advisory\] +redis-config-tls-only/);
        expect(all).toMatch(/\[advisory\] +user-data-no-secrets/);
        expect(all).not.toMatch(/\[mandatory\]/);
        expect(all).not.toContain(SECRET);
    }, 240_000);
});
