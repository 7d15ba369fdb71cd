/**
 * The clouds' daily secret refresh, as rendered into a Redis node's user-data, run for real against
 * a real redis-server (this pass's Redis: 7.0.15, or 8.6.3 with REDISFORGE_REDIS=8.6) started from
 * the rendered redis.conf and users.acl: fetch-secrets.sh (the embedded, compacted copy) reads the
 * rendered secrets.list from a local stand-in of the cloud's secret store, with the environment of
 * the rendered refresh unit, and calls the rendered reload-redis-tls.sh hook with the changed files.
 * Paths of /run are moved into a temp dir and the private IP to 127.0.0.1; everything else is as
 * rendered. systemctl is a stand-in that records its arguments (nothing here may restart anything).
 *
 * Proves: a re-issued certificate + key + CA bundle (a CA rotation with its overlap: new CA, chain
 * with the cross-signed CA) is loaded without a restart (same PID, the node presents the new
 * certificate, only redis-exporter is try-restarted); a client that still trusts only the old CA
 * and holds an old-CA client certificate keeps working; a change only a restart applies (users.acl)
 * and a reload that the server refuses (a key that does not match the certificate) fall back to the
 * restart, and the node keeps serving its previous certificate; the `tlsreload` ACL user can run
 * CONFIG SET and nothing else that matters (no data, no CONFIG GET, no ACL, no SAVE, no CONFIG REWRITE).
 */
import { ChildProcess, execFile, execFileSync, spawn } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import Redis from "ioredis";
import { redisRuntime } from "../../../lab/redis-runtime";
import { presentedCert, TlsMaterial } from "../../../providers/local/tls-reload";
import { buildRedisNodeUserData, CloudConfig } from "../../../templates/cloud-init";
import { ACL_USERS, AclPasswords, renderRedisConf, renderSecretsInclude, renderUsersAcl } from "../../../templates/redis";
import { startCloudStandin, CloudStandin } from "../../unit/templates/cloud-standin";
import { redisNodeParams } from "../../unit/templates/fixtures";
import { tmpDir } from "../../unit/templates/tools";

jest.setTimeout(120_000);

const runtime = redisRuntime();
const dir = tmpDir("tls-reload");
const UID = process.getuid!();
const HOST = "127.0.0.1";

function openssl(args: string[], cwd = dir): string {
    return execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] }).toString();
}

/** Test-time PKI: CA g1, CA g2, g2 cross-signed by g1, node and client leaves of each. */
function makePki(): Record<string, string> {
    const d = path.join(dir, "pki");
    fs.mkdirSync(d);
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    const caExt = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
    fs.writeFileSync(path.join(d, "ca.ext"), caExt);
    for (const g of ["ca1", "ca2"]) openssl(["req", "-x509", "-new", ...ec, "-keyout", `${g}.key`, "-out", `${g}.crt`, "-days", "60", "-subj", `/O=RedisForge/CN=test RedisForge CA ${g}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d);
    openssl(["req", "-new", "-key", "ca2.key", "-out", "ca2.csr", "-subj", "/O=RedisForge/CN=test RedisForge CA ca2"], d);
    openssl(["x509", "-req", "-in", "ca2.csr", "-CA", "ca1.crt", "-CAkey", "ca1.key", "-CAcreateserial", "-out", "cross.crt", "-days", "60", "-extfile", "ca.ext"], d);
    const leaf = (name: string, ca: string, days: number, usage: string) => {
        fs.writeFileSync(path.join(d, `${name}.ext`), `subjectAltName=IP:${HOST},DNS:localhost\nextendedKeyUsage=${usage}\nbasicConstraints=CA:FALSE\n`);
        openssl(["req", "-new", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/O=RedisForge/CN=${name}`], d);
        openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.crt`, "-days", String(days), "-extfile", `${name}.ext`], d);
    };
    leaf("node1", "ca1", 10, "serverAuth,clientAuth");
    leaf("node2", "ca2", 20, "serverAuth,clientAuth");
    leaf("client1", "ca1", 10, "clientAuth");
    const r = (f: string) => fs.readFileSync(path.join(d, f), "utf8");
    return {
        ca1: r("ca1.crt"), ca2: r("ca2.crt"), cross: r("cross.crt"),
        node1: r("node1.crt"), node1Key: r("node1.key"), node2: r("node2.crt"), node2Key: r("node2.key"),
        client1: r("client1.crt"), client1Key: r("client1.key"),
    };
}

async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = net.createServer().listen(0, HOST, () => {
            const p = (s.address() as net.AddressInfo).port;
            s.close(() => resolve(p));
        });
        s.on("error", reject);
    });
}

const file = (cfg: CloudConfig, p: string) => {
    const f = cfg.write_files.find((w) => w.path === p);
    if (!f) throw new Error(`user-data has no ${p}`);
    return f.content;
};

let pki: Record<string, string>;
let standin: CloudStandin;
let server: ChildProcess | undefined;
let port: number;
let passwords: AclPasswords;
const STORE: Record<string, string> = {};
const run = path.join(dir, "run"); // stands for /run
const bin = path.join(dir, "bin");
const calls = path.join(dir, "systemctl.calls");
let refreshEnv: Record<string, string>;

beforeAll(async () => {
    pki = makePki();
    passwords = Object.fromEntries(ACL_USERS.map((u) => [u, randomBytes(32).toString("base64url")])) as AclPasswords;
    port = await freePort();
    const busPort = await freePort();

    // The rendered user-data of a Redis node, its files moved under `dir`.
    // GCP: the fewest requests per secret (token + access), so the refreshes stay quick; the store protocol is fetch-secrets.test.ts's concern.
    const cfg = buildRedisNodeUserData(redisNodeParams("gcp"));
    const lib = path.join(dir, "lib");
    fs.mkdirSync(lib);
    for (const name of ["fetch-secrets.sh", "reload-redis-tls.sh"]) fs.writeFileSync(path.join(lib, name), file(cfg, `/usr/local/lib/redisforge/${name}`), { mode: 0o755 });
    const relocate = (text: string) => text.split("/run/redisforge/").join(`${run}/`).split("/usr/local/lib/redisforge/").join(`${lib}/`);
    // secrets.list: every rendered line, owners = us, paths under `dir`.
    const list = relocate(file(cfg, "/etc/redisforge/secrets.list")).replace(/^(\S+) \d+ /gm, (_m, dest: string) => `${dest} ${UID} `);
    fs.writeFileSync(path.join(dir, "secrets.list"), list);
    fs.writeFileSync(path.join(dir, "boot.env"), relocate(file(cfg, "/etc/redisforge/boot.env")));
    // tls-reload.env: the rendered facts; the node listens on loopback here and sees its files where the host writes them.
    const reloadEnv = relocate(file(cfg, "/etc/redisforge/tls-reload.env"));
    expect(reloadEnv).toMatch(/^TLS_SERVER_DIR=\/run\/secrets\/redis\/tls$/m);
    expect(reloadEnv).toMatch(/^AFTER_RELOAD_UNITS="redis-exporter.service"$/m);
    fs.writeFileSync(
        path.join(dir, "tls-reload.env"),
        reloadEnv.replace(/^REDIS_HOST=.*$/m, `REDIS_HOST=${HOST}`).replace(/^REDIS_PORT=.*$/m, `REDIS_PORT=${port}`).replace(/^TLS_SERVER_DIR=.*$/m, `TLS_SERVER_DIR=${run}/redis/tls`),
    );
    // The refresh unit's environment, as rendered.
    const unit = relocate(file(cfg, "/etc/systemd/system/redisforge-secrets-refresh.service"));
    refreshEnv = Object.fromEntries([...unit.matchAll(/^Environment="([A-Z_]+)=(.*)"$/gm)].map((m) => [m[1], m[2]]));
    expect(refreshEnv.RELOAD_HOOK).toBe(`${lib}/reload-redis-tls.sh`);
    expect(refreshEnv.RESTART_UNITS).toBe("redis.service redis-exporter.service");

    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, "systemctl"), `#!/bin/sh\necho "$@" >>"${calls}"\n`, { mode: 0o755 });
    if (runtime.binDir) fs.symlinkSync(path.join(runtime.binDir, "redis-cli"), path.join(bin, "redis-cli"));

    // The store holds generation 1; the boot fetch writes it.
    Object.assign(STORE, {
        "node0-cert": pki.node1, "node0-key": pki.node1Key, "ca-cert": pki.ca1,
        "users-acl": renderUsersAcl(passwords), "node-secrets": renderSecretsInclude(passwords),
        "exporter-password": passwords.exporter, "tlsreload-password": passwords.tlsreload,
    });
    standin = await startCloudStandin(STORE);
    const boot = await refresh({ RELOAD_HOOK: "", RESTART_UNITS: "" });
    expect(boot.out).toContain("wrote 7 secret file(s), 7 changed");
    expect(boot.code).toBe(0);
    expect(fs.readFileSync(`${run}/reload/auth.env`, "utf8")).toBe(`REDISCLI_AUTH=${passwords.tlsreload}\n`);

    // redis-server from the rendered redis.conf, on the files fetch-secrets.sh wrote.
    const data = path.join(dir, "data");
    fs.mkdirSync(data);
    const conf = renderRedisConf({
        nodeName: "node0", zone: "a", bindAddress: HOST, announceIp: HOST, port, busPort, dataDir: data,
        tlsCertFile: `${run}/redis/tls/node.crt`, tlsKeyFile: `${run}/redis/tls/node.key`, tlsCaFile: `${run}/redis/tls/ca.crt`,
        aclFile: `${run}/redis/users.acl`, secretsFile: `${run}/redis/secrets.conf`, maxmemoryBytes: 64 * 1024 * 1024,
        logFile: path.join(data, "redis.log"), serverVersion: runtime.version,
    });
    fs.writeFileSync(path.join(data, "redis.conf"), conf);
    server = spawn(runtime.server, [path.join(data, "redis.conf")], { cwd: data, stdio: "ignore" });
    const deadline = Date.now() + 20_000;
    for (;;) {
        try {
            await presentedCert(HOST, port, client1());
            break;
        } catch (e) {
            if (Date.now() > deadline) throw new Error(`redis-server ${runtime.version} did not accept TLS within 20 s: ${(e as Error).message}`);
            await new Promise((r) => setTimeout(r, 100));
        }
    }
}, 120_000);

afterAll(async () => {
    if (server?.pid && server.exitCode === null) {
        server.kill("SIGKILL");
        await new Promise((r) => server!.once("exit", r));
    }
    await standin?.close();
    fs.rmSync(dir, { recursive: true, force: true });
});

/** The old world: trusts only CA g1, holds a g1 client certificate. */
const client1 = (): TlsMaterial => ({ ca: pki.ca1, cert: pki.client1, key: pki.client1Key });

function refresh(over: Record<string, string> = {}): Promise<{ code: number; out: string; calls: string }> {
    fs.rmSync(calls, { force: true });
    const env = {
        PATH: `${bin}:${process.env.PATH}`,
        BOOT_ENV: path.join(dir, "boot.env"),
        SECRETS_LIST: path.join(dir, "secrets.list"),
        TLS_RELOAD_ENV: path.join(dir, "tls-reload.env"),
        MAX_ATTEMPTS: "2",
        RETRY_SLEEP: "0",
        ...standin.env(),
        ...refreshEnv,
        ...over,
    };
    return new Promise((resolve) => {
        execFile("bash", [path.join(dir, "lib", "fetch-secrets.sh")], { env, timeout: 60_000 }, (err, stdout, stderr) => {
            resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr, calls: fs.existsSync(calls) ? fs.readFileSync(calls, "utf8") : "" });
        });
    });
}

async function as(user: string, m: TlsMaterial): Promise<Redis> {
    const c = new Redis({ host: HOST, port, username: user, password: passwords[user as keyof AclPasswords], tls: { ...m, servername: "localhost" }, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000 });
    c.on("error", () => undefined);
    await c.connect();
    return c;
}

describe(`the rendered secret refresh on redis-server ${runtime.version}`, () => {
    test("a rotated certificate, key and CA bundle are loaded without a restart; old-CA clients keep working", async () => {
        const pid = server!.pid;
        const before = await presentedCert(HOST, port, client1());
        expect(before.issuer).toBe("test RedisForge CA ca1");
        // A connection opened before the rotation must survive it.
        const open = await as("admin", client1());
        STORE["node0-cert"] = pki.node2 + pki.cross;
        STORE["node0-key"] = pki.node2Key;
        STORE["ca-cert"] = pki.ca2 + pki.ca1;
        const r = await refresh();
        expect(r.out).toContain("wrote 7 secret file(s), 3 changed");
        expect(r.out).toContain(`loaded the new certificate into ${HOST}:${port} without a restart`);
        expect(r.out).toContain("applied the changed secrets without a restart");
        expect(r.code).toBe(0);
        expect(r.calls).toBe("try-restart redis-exporter.service\n"); // never redis.service
        expect(server!.exitCode).toBeNull();
        expect(server!.pid).toBe(pid);
        const after = await presentedCert(HOST, port, client1()); // verifies through the cross-signed chain
        expect(after.issuer).toBe("test RedisForge CA ca2");
        expect(after.validTo).not.toBe(before.validTo);
        expect(await open.ping()).toBe("PONG");
        open.disconnect();
        // A new client with only the old CA and an old client certificate: still served.
        const old = await as("admin", client1());
        expect(await old.call("CONFIG", "GET", "tls-ca-cert-file")).toEqual(["tls-ca-cert-file", `${run}/redis/tls/ca.crt`]);
        old.disconnect();
        // A client of the new world: trusts only CA g2.
        expect((await presentedCert(HOST, port, { ca: pki.ca2, cert: pki.node2, key: pki.node2Key })).issuer).toBe("test RedisForge CA ca2");

        const again = await refresh();
        expect(again.out).toContain("wrote 7 secret file(s), 0 changed");
        expect(again.calls).toBe("");
    });

    test("a change only a restart applies (users.acl) falls back to restarting RESTART_UNITS", async () => {
        const acl = STORE["users-acl"];
        STORE["users-acl"] = renderUsersAcl({ ...passwords, readonly: randomBytes(32).toString("base64url") });
        try {
            const r = await refresh();
            expect(r.out).toMatch(/users\.acl changed, which only a restart applies/);
            expect(r.calls).toBe("try-restart redis.service redis-exporter.service\n");
            expect(r.code).toBe(0);
        } finally {
            STORE["users-acl"] = acl;
            await refresh();
        }
    });

    test("a key that does not match the certificate is not loaded: the node keeps its certificate, the refresh falls back to the restart", async () => {
        const before = await presentedCert(HOST, port, client1());
        const key = STORE["node0-key"];
        STORE["node0-key"] = pki.node1Key; // the g1 key with the g2 certificate
        try {
            const r = await refresh();
            expect(r.out).toMatch(/CONFIG SET tls-cert-file\/tls-key-file\/tls-ca-cert-file on 127\.0\.0\.1:\d+ failed/);
            expect(r.calls).toBe("try-restart redis.service redis-exporter.service\n");
            const now = await presentedCert(HOST, port, client1());
            expect(now.der.equals(before.der)).toBe(true);
        } finally {
            STORE["node0-key"] = key;
            await refresh();
        }
    });

    test("redis-server as a TLS client (replication) sends the whole chain: a replica on the new chain syncs from a master that trusts only the old CA; without the cross certificate it does not", async () => {
        const d = path.join(dir, "repl");
        fs.mkdirSync(d);
        const put = (name: string, text: string) => {
            fs.writeFileSync(path.join(d, name), text, { mode: 0o600 });
            return path.join(d, name);
        };
        const chain = put("chain.crt", pki.node2 + pki.cross);
        const leaf = put("leaf.crt", pki.node2);
        const key = put("node.key", pki.node2Key);
        const ca1 = put("ca1.crt", pki.ca1);
        const ca2 = put("ca2.crt", pki.ca2);
        const procs: ChildProcess[] = [];
        const start = async (name: string, cert: string, ca: string) => {
            const p = await freePort();
            fs.mkdirSync(path.join(d, name));
            const args = ["--port", "0", "--bind", HOST, "--tls-port", String(p), "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "yes", "--tls-replication", "yes", "--dir", path.join(d, name), "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0", "--logfile", path.join(d, name, "log")];
            procs.push(spawn(runtime.server, args, { stdio: "ignore" }));
            const until = Date.now() + 10_000;
            while (Date.now() < until) {
                if (await presentedCert(HOST, p, { ca: pki.ca2 + pki.ca1, cert: pki.node2 + pki.cross, key: pki.node2Key }).then(() => true, () => false)) return p;
                await new Promise((r) => setTimeout(r, 100));
            }
            throw new Error(`${name} did not start`);
        };
        const linkUp = async (master: number, replica: number, replicaCa: string) => {
            const c = new Redis({ host: HOST, port: replica, tls: { ca: replicaCa, cert: pki.node2 + pki.cross, key: pki.node2Key, servername: "localhost" }, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
            c.on("error", () => undefined);
            try {
                await c.connect();
                await c.call("REPLICAOF", HOST, String(master));
                const until = Date.now() + 8_000;
                while (Date.now() < until) {
                    if (/master_link_status:up/.test(String(await c.call("INFO", "replication")))) return true;
                    await new Promise((r) => setTimeout(r, 200));
                }
                return false;
            } finally {
                c.disconnect();
            }
        };
        try {
            // The master still runs generation 1's trust (CA g1 only) but already serves the new chain.
            const master = await start("master", chain, ca1);
            expect(await linkUp(master, await start("replica", chain, ca1), pki.ca1)).toBe(true);
            // Control: a replica that presents the g2 leaf alone is refused by that master.
            expect(await linkUp(master, await start("bare", leaf, ca2), pki.ca2)).toBe(false);
            expect(fs.readFileSync(path.join(d, "master", "log"), "utf8")).toMatch(/certificate verify failed/);
        } finally {
            for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
        }
    });

    test("tlsreload may CONFIG SET and nothing else that matters", async () => {
        const c = await as("tlsreload", client1());
        try {
            expect(await c.call("CONFIG", "SET", "tls-ca-cert-file", `${run}/redis/tls/ca.crt`)).toBe("OK");
            for (const cmd of [["GET", "k"], ["SET", "k", "v"], ["CONFIG", "GET", "masterauth"], ["CONFIG", "REWRITE"], ["ACL", "LIST"], ["BGSAVE"], ["SAVE"], ["SHUTDOWN", "NOSAVE"], ["KEYS", "*"], ["FLUSHALL"], ["CLUSTER", "RESET"]]) {
                await expect(c.call(cmd[0], ...cmd.slice(1))).rejects.toThrow(/NOPERM/);
            }
        } finally {
            c.disconnect();
        }
    });
});
