/**
 * The image entrypoints and health checks (templates/docker), run for real without Docker:
 * - Redis: the entrypoint's preflight refuses root, plaintext, passwords in redis.conf, missing
 *   secrets and group-readable keys, each with a message naming the file; then it execs a real
 *   redis-server as an unprivileged uid from files laid out like the container's mounts, and the
 *   image's health check passes against it (TLS PING with the node certificate) and fails once
 *   the server is stopped.
 * - Envoy: the entrypoint's preflight finds every file the rendered bootstrap names; the health
 *   check reads /ready from the admin address with bash's /dev/tcp.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { randomBytes } from "crypto";
import { ensureLabTls } from "../../../lab/tls";
import { pidAlive, redisServerVersion } from "../../../lab/lab";
import { ACL_USERS, AclPasswords, renderRedisConf, renderSecretsInclude, renderUsersAcl } from "../../../templates/redis";
import { buildEnvoyConfig, ENVOY_FILES, EnvoyFiles, renderEnvoyYaml } from "../../../templates/envoy";

jest.setTimeout(60000);

const DOCKER = path.resolve(__dirname, "../../../templates/docker");
const ROOT = process.getuid!() === 0;
const UID = ROOT ? 65534 : process.getuid!();
/** Runs as the unprivileged uid the container would use (nobody here; 999 in the image). */
const AS_USER = ROOT ? ["setpriv", `--reuid=${UID}`, `--regid=${UID}`, "--clear-groups"] : [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redisforge-images-"));
fs.chmodSync(dir, 0o755);
const procs: ChildProcess[] = [];

function asUser(cmd: string[], env: NodeJS.ProcessEnv = {}) {
    const [bin, ...args] = [...AS_USER, ...cmd];
    const r = spawnSync(bin, args, { env: { PATH: process.env.PATH, ...env }, encoding: "utf8", timeout: 20000 });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function freePort(): Promise<number> {
    return new Promise((resolve) => {
        const s = net.createServer().listen(0, "127.0.0.1", () => {
            const p = (s.address() as net.AddressInfo).port;
            s.close(() => resolve(p));
        });
    });
}

afterAll(async () => {
    for (const p of procs) if (p.pid && pidAlive(p.pid)) process.kill(p.pid, "SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
});

describe("Redis image entrypoint + health check", () => {
    const m = path.join(dir, "redis"); // stands in for the container's mounts
    const conf = path.join(m, "etc/redis.conf");
    let port = 0;

    beforeAll(async () => {
        const tls = ensureLabTls(path.join(m, "secrets/tls"), ["127.0.0.1", "localhost"]);
        const pw = Object.fromEntries(ACL_USERS.map((u) => [u, randomBytes(32).toString("base64url")])) as AclPasswords;
        fs.writeFileSync(path.join(m, "secrets/users.acl"), renderUsersAcl(pw), { mode: 0o600 });
        fs.writeFileSync(path.join(m, "secrets/secrets.conf"), renderSecretsInclude(pw), { mode: 0o600 });
        fs.mkdirSync(path.join(m, "data"), { mode: 0o700 });
        fs.mkdirSync(path.join(m, "etc"));
        port = await freePort();
        fs.writeFileSync(conf, renderRedisConf({
            nodeName: "image-test", zone: "z", bindAddress: "127.0.0.1", announceIp: "127.0.0.1", port, busPort: await freePort(),
            dataDir: path.join(m, "data"), tlsCertFile: tls.certFile, tlsKeyFile: tls.keyFile, tlsCaFile: tls.caFile,
            aclFile: path.join(m, "secrets/users.acl"), secretsFile: path.join(m, "secrets/secrets.conf"),
            maxmemoryBytes: 64 * 1024 * 1024, logFile: "", serverVersion: redisServerVersion(),
        }));
        if (ROOT) spawnSync("chown", ["-R", `${UID}:${UID}`, m]);
        fs.chmodSync(m, 0o755);
    });

    const entry = (c: string, env: NodeJS.ProcessEnv = {}) => asUser(["sh", path.join(DOCKER, "redis/entrypoint.sh"), c], { REDISFORGE_PREFLIGHT_ONLY: "1", ...env });

    (ROOT ? it : it.skip)("refuses to run as root", () => {
        const r = spawnSync("sh", [path.join(DOCKER, "redis/entrypoint.sh"), conf], { env: { PATH: process.env.PATH, REDISFORGE_PREFLIGHT_ONLY: "1" }, encoding: "utf8" });
        expect(r.status).toBe(64);
        expect(r.stderr).toMatch(/refusing to run as root/);
    });

    it("passes preflight on the rendered config as an unprivileged user", () => {
        const r = entry(conf);
        expect(r.out).toContain(`${conf} ok`);
        expect(r.code).toBe(0);
    });

    it.each([
        ["plaintext port", (t: string) => t.replace(/^port 0$/m, "port 6379"), /must set 'port 0'/],
        ["a password in redis.conf", (t: string) => `${t}\nrequirepass hunter2\n`, /contains a password/],
        ["a missing ACL file", (t: string) => t.replace(/^aclfile .*$/m, "aclfile /nonexistent/users.acl"), /aclfile \/nonexistent\/users\.acl is not readable/],
        ["a missing TLS key", (t: string) => t.replace(/^tls-key-file .*$/m, "tls-key-file /nonexistent/node.key"), /tls-key-file \/nonexistent\/node\.key is not readable/],
    ])("refuses %s", (_name, mutate, message) => {
        const bad = path.join(m, "etc", `bad-${randomBytes(4).toString("hex")}.conf`);
        fs.writeFileSync(bad, mutate(fs.readFileSync(conf, "utf8")), { mode: 0o644 });
        const r = entry(bad);
        expect(r.code).toBe(64);
        expect(r.out).toMatch(message);
    });

    it("refuses a group-readable private key", () => {
        const key = fs.readFileSync(conf, "utf8").match(/^tls-key-file (.*)$/m)![1];
        fs.chmodSync(key, 0o640);
        try {
            const r = entry(conf);
            expect(r.code).toBe(64);
            expect(r.out).toMatch(/tls-key-file .* is readable by group or others \(mode 640\)/);
        } finally {
            fs.chmodSync(key, 0o600);
        }
    });

    it("execs a real redis-server as the unprivileged user; the health check passes, then fails after stop", async () => {
        const [bin, ...args] = [...AS_USER, "sh", path.join(DOCKER, "redis/entrypoint.sh"), conf];
        const p = spawn(bin, args, { env: { PATH: process.env.PATH }, stdio: "ignore", detached: true });
        procs.push(p);
        const health = () => asUser(["sh", path.join(DOCKER, "redis/healthcheck.sh")], { REDIS_CONF: conf });
        let h = health();
        const deadline = Date.now() + 15000;
        while (h.code !== 0 && Date.now() < deadline && pidAlive(p.pid!)) {
            await new Promise((r) => setTimeout(r, 200));
            h = health();
        }
        expect(h.out).toBe("");
        expect(h.code).toBe(0);
        // exec: the entrypoint's PID is now redis-server, running as the unprivileged uid.
        const status = fs.readFileSync(`/proc/${p.pid}/status`, "utf8");
        expect(fs.readFileSync(`/proc/${p.pid}/cmdline`, "utf8")).toMatch(/redis-server/);
        expect(/^Uid:\s+(\d+)/m.exec(status)![1]).toBe(String(UID));
        process.kill(p.pid!, "SIGTERM");
        const stopDeadline = Date.now() + 10000;
        while (pidAlive(p.pid!) && Date.now() < stopDeadline) await new Promise((r) => setTimeout(r, 100));
        expect(pidAlive(p.pid!)).toBe(false);
        const after = health();
        expect(after.code).toBe(1);
        expect(after.out).toMatch(new RegExp(`redis at 127\\.0\\.0\\.1:${port} unhealthy`));
    });
});

describe("Envoy image entrypoint + health check", () => {
    const m = path.join(dir, "envoy");
    let files: EnvoyFiles;
    let conf = "";

    beforeAll(() => {
        files = Object.fromEntries(Object.entries(ENVOY_FILES).map(([k, v]) => [k, path.join(m, v)])) as unknown as EnvoyFiles;
        for (const [k, f] of Object.entries(files)) {
            fs.mkdirSync(path.dirname(f), { recursive: true });
            fs.writeFileSync(f, `test ${k}`, { mode: /Key|Password/.test(k) ? 0o400 : 0o444 });
        }
        conf = path.join(m, "envoy.yaml");
        fs.writeFileSync(conf, renderEnvoyYaml(buildEnvoyConfig({ clusterName: "t", privateIp: "127.0.0.1", seeds: [{ host: "127.0.0.1", port: 6379 }], files })));
        if (ROOT) spawnSync("chown", ["-R", `${UID}:${UID}`, m]);
        fs.chmodSync(m, 0o755);
    });

    const entry = (c: string) => asUser(["bash", path.join(DOCKER, "envoy/entrypoint.sh"), c], { REDISFORGE_PREFLIGHT_ONLY: "1" });

    it("finds all 7 files the rendered bootstrap names", () => {
        const r = entry(conf);
        expect(r.out).toContain(`${conf} ok (7 files)`);
        expect(r.code).toBe(0);
    });

    it("refuses a missing password file and a world-readable key", () => {
        fs.renameSync(files.upstreamPasswordFile, `${files.upstreamPasswordFile}.away`);
        try {
            const r = entry(conf);
            expect(r.code).toBe(64);
            expect(r.out).toContain(`${files.upstreamPasswordFile} is not readable`);
        } finally {
            fs.renameSync(`${files.upstreamPasswordFile}.away`, files.upstreamPasswordFile);
        }
        fs.chmodSync(files.serverKeyFile, 0o644);
        try {
            const r = entry(conf);
            expect(r.code).toBe(64);
            expect(r.out).toMatch(/server\.key is readable by group or others \(mode 644\)/);
        } finally {
            fs.chmodSync(files.serverKeyFile, 0o400);
        }
    });

    it("health check: 200 on /ready is healthy, 503 is not", async () => {
        let ready = true;
        const paths: string[] = [];
        const srv = http.createServer((req, res) => {
            paths.push(req.url!);
            res.writeHead(ready ? 200 : 503);
            res.end(ready ? "LIVE\n" : "PRE_INITIALIZING\n");
        });
        await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
        const admin = `127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
        const check = () =>
            new Promise<{ code: number | null; out: string }>((resolve) => {
                const p = spawn("bash", [path.join(DOCKER, "envoy/healthcheck.sh")], { env: { PATH: process.env.PATH, ENVOY_ADMIN: admin } });
                let out = "";
                p.stderr.on("data", (d) => (out += d));
                const t = setTimeout(() => p.kill("SIGKILL"), 5000);
                p.on("close", (code) => {
                    clearTimeout(t);
                    resolve({ code, out });
                });
            });
        try {
            expect((await check()).code).toBe(0);
            ready = false;
            const bad = await check();
            expect(bad.code).toBe(1);
            expect(bad.out).toMatch(/\/ready answered: HTTP\/1\.[01] 503/);
            expect(paths).toEqual(["/ready", "/ready"]);
        } finally {
            await new Promise((r) => srv.close(r));
        }
    });
});
