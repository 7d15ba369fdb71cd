/**
 * A Redis VM's boot, simulated for real on this machine, for each cloud:
 *
 *   1. the user-data's write_files are laid down in a scratch root (R) — units, scripts, boot.env,
 *      secrets.list and the redis.conf rendered for this server's version;
 *   2. inside a private mount namespace (`unshare -m --propagation private`: nothing is visible
 *      outside, nothing outside is changed) R gets the host's /usr and /dev and a tmpfs /run;
 *   3. the user-data's fetch-secrets.sh runs chrooted in R with its VM defaults, reading every
 *      secret by reference from the cloud stand-in (IMDS/metadata + secret store on 127.0.0.1);
 *   4. the redis unit's `docker run -v` mounts are applied as bind mounts, and the image's
 *      entrypoint (templates/docker/redis) starts a real redis-server chrooted in R as uid 999;
 *   5. the image's health check passes inside that root, and a TLS client with the cluster CA's
 *      client certificate uses the ACL users the fetched users.acl defines.
 *
 * What this cannot show: Docker itself, systemd, cloud-init's own run, the real cloud APIs.
 * Needs root (mount namespace, chroot); the redis-server listens on 127.0.0.1 only.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import Redis from "ioredis";
import { buildEnvoyUserData, buildRedisNodeUserData, CLOUD_KINDS, CloudConfig, CloudKind, ENVOY_UID, REDIS_UID } from "../../../templates/cloud-init";
import { ACL_USERS, AclPasswords, renderSecretsInclude, renderUsersAcl } from "../../../templates/redis";
import { ensureLabTls } from "../../../lab/tls";
import { pidAlive, redisServerVersion } from "../../../lab/lab";
import { envoyParams, redisNodeParams } from "../../unit/templates/fixtures";
import { CloudStandin, startCloudStandin } from "../../unit/templates/cloud-standin";

jest.setTimeout(90000);

const DOCKER = path.resolve(__dirname, "../../../templates/docker/redis");
const DOCKER_ENVOY = path.resolve(__dirname, "../../../templates/docker/envoy");
const top = fs.mkdtempSync(path.join(os.tmpdir(), "redisforge-boot-"));
fs.chmodSync(top, 0o755);
const procs: ChildProcess[] = [];
let standin: CloudStandin;
const tls = ensureLabTls(path.join(top, "pki"), ["127.0.0.1", "localhost"]);
const passwords = Object.fromEntries(ACL_USERS.map((u) => [u, randomBytes(32).toString("base64url")])) as AclPasswords;

beforeAll(async () => {
    if (process.getuid!() !== 0) throw new Error("boot.test.ts needs root (mount namespace + chroot), as on the CI machine");
    standin = await startCloudStandin({
        "node0-cert": fs.readFileSync(tls.certFile, "utf8"),
        "node0-key": fs.readFileSync(tls.keyFile, "utf8"),
        "ca-cert": fs.readFileSync(tls.caFile, "utf8"),
        "users-acl": renderUsersAcl(passwords),
        "node-secrets": renderSecretsInclude(passwords),
        "exporter-password": passwords.exporter,
        "tlsreload-password": passwords.tlsreload,
        "envoy-cert": fs.readFileSync(tls.certFile, "utf8"),
        "envoy-key": fs.readFileSync(tls.keyFile, "utf8"),
        "envoy-client-cert": fs.readFileSync(tls.clientCertFile, "utf8"),
        "envoy-client-key": fs.readFileSync(tls.clientKeyFile, "utf8"),
        "app-password": passwords.app,
    });
});

afterAll(async () => {
    for (const p of procs) if (p.pid && pidAlive(p.pid)) process.kill(p.pid, "SIGKILL");
    await standin?.close();
    fs.rmSync(top, { recursive: true, force: true });
});

function freePort(): Promise<number> {
    return new Promise((resolve) => {
        const s = net.createServer().listen(0, "127.0.0.1", () => {
            const p = (s.address() as net.AddressInfo).port;
            s.close(() => resolve(p));
        });
    });
}

/** The namespace side: mounts, secrets fetch, docker-run mounts, then exec the image entrypoint. */
const BOOT_SH = `#!/bin/bash
set -euo pipefail
R=$1; shift
for d in bin lib lib64 sbin; do [[ -d /usr/$d ]] && mount --rbind "/usr/$d" "$R/usr/$d"; done
mount --rbind /dev "$R/dev"
mount --rbind /etc/alternatives "$R/etc/alternatives"   # awk -> mawk
mount -t proc proc "$R/proc" 2>/dev/null || mount --rbind /proc "$R/proc"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
# cloud-init final stage: the secrets unit (ExecStart=/usr/local/lib/redisforge/fetch-secrets.sh)
chroot "$R" /usr/local/lib/redisforge/fetch-secrets.sh
# docker run -v host:container[:ro] of the redis unit, given as arguments
for m in "$@"; do
  IFS=: read -r host container mode <<<"$m"
  mkdir -p "$R$container"
  mount --bind "$R$host" "$R$container"
  [[ $mode == ro ]] && mount -o remount,bind,ro "$R$container"
done
echo "boot: mounts ready" >&2
read -ra cmd <<<"$BOOT_CMD"
exec chroot --userspec="$BOOT_UID:$BOOT_UID" "$R" "\${cmd[@]}"
`;

/** Lays the user-data's files, the image's scripts and the root skeleton down in `root`. */
function prepareRoot(root: string, ud: CloudConfig, imageDir: string): void {
    for (const w of ud.write_files) {
        const f = path.join(root, w.path);
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.writeFileSync(f, w.content, { mode: parseInt(w.permissions ?? "0644", 8) });
    }
    for (const d of ["usr/bin", "usr/lib", "usr/lib64", "usr/sbin", "dev", "proc", "run", "tmp", "image", "etc/alternatives"]) fs.mkdirSync(path.join(root, d), { recursive: true });
    for (const l of ["bin", "lib", "lib64", "sbin"]) fs.symlinkSync(`usr/${l}`, path.join(root, l));
    for (const f of ["ld.so.cache", "passwd", "group", "nsswitch.conf"]) if (fs.existsSync(`/etc/${f}`)) fs.copyFileSync(`/etc/${f}`, path.join(root, "etc", f));
    for (const f of ["entrypoint.sh", "healthcheck.sh"]) fs.copyFileSync(path.join(imageDir, f), path.join(root, "image", f));
    fs.writeFileSync(path.join(top, "boot.sh"), BOOT_SH, { mode: 0o755 });
}

/** The unit's `docker run -v` mounts. */
const unitMounts = (ud: CloudConfig, unit: string) =>
    [...ud.write_files.find((w) => w.path === `/etc/systemd/system/${unit}.service`)!.content.matchAll(/ -v (\S+)/g)].map((m) => m[1]);

/** Boots `root` in a private mount namespace; the last step execs `cmd` chrooted as `uid`. */
function startBoot(root: string, mounts: string[], uid: number, cmd: string, env: Record<string, string> = {}) {
    let log = "";
    const p = spawn("unshare", ["-m", "--propagation", "private", "bash", path.join(top, "boot.sh"), root, ...mounts], {
        env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", MAX_ATTEMPTS: "3", RETRY_SLEEP: "0", BOOT_UID: String(uid), BOOT_CMD: cmd, ...standin.env(), ...env },
        stdio: ["ignore", "pipe", "pipe"],
    });
    procs.push(p);
    p.stdout!.on("data", (d) => (log += d));
    p.stderr!.on("data", (d) => (log += d));
    return { p, log: () => log };
}

interface Booted {
    pid: number;
    root: string;
    port: number;
    exporterPort: number;
    /** redis_exporter flags from the redis-exporter unit's ExecStart (after the image). */
    exporterFlags: string[];
    log: () => string;
}

async function boot(cloud: CloudKind): Promise<Booted> {
    const root = path.join(top, cloud);
    const port = await freePort();
    const exporterPort = await freePort();
    const ud = buildRedisNodeUserData({
        ...redisNodeParams(cloud),
        privateIp: "127.0.0.1",
        redisPort: port,
        busPort: await freePort(),
        redisExporterPort: exporterPort,
        redisVersion: redisServerVersion(),
        maxmemoryBytes: 128 * 1024 * 1024,
    });
    prepareRoot(root, ud, DOCKER);
    // What data-disk.sh leaves behind: the mount point owned by the redis uid, 0700.
    const data = path.join(root, "var/lib/redisforge/data");
    fs.mkdirSync(data, { recursive: true });
    fs.chownSync(data, REDIS_UID, REDIS_UID);
    fs.chmodSync(data, 0o700);

    const mounts = unitMounts(ud, "redis");
    expect(mounts).toEqual(["/etc/redisforge/redis:/etc/redis:ro", "/run/redisforge/redis:/run/secrets/redis:ro", "/var/lib/redisforge/data:/data"]);
    const { p, log: logOf } = startBoot(root, mounts, REDIS_UID, "/bin/sh /image/entrypoint.sh /etc/redis/redis.conf");
    const log = () => logOf();
    const exporterUnit = ud.write_files.find((w) => w.path === "/etc/systemd/system/redis-exporter.service")!.content;
    const exporterFlags = /^ExecStart=.*@sha256:[0-9a-f]{64} (.*)$/m.exec(exporterUnit)![1].split(" ");
    const b: Booted = { pid: p.pid!, root, port, exporterPort, exporterFlags, log };
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
        if (p.exitCode !== null) throw new Error(`boot of ${cloud} exited ${p.exitCode}:\n${log()}`);
        if (/Ready to accept connections/.test(log())) return b;
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`redis on the ${cloud} boot did not get ready in 30 s:\n${log()}`);
}

async function stop(b: Booted) {
    process.kill(b.pid, "SIGTERM");
    const deadline = Date.now() + 10000;
    while (pidAlive(b.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (pidAlive(b.pid)) process.kill(b.pid, "SIGKILL");
}

describe.each(CLOUD_KINDS)("%s Redis VM boot", (cloud) => {
    let b: Booted;
    const clients: Redis[] = [];
    beforeAll(async () => {
        b = await boot(cloud);
    });
    afterAll(async () => {
        await Promise.allSettled(clients.map((c) => c.quit()));
        if (b) await stop(b);
    });
    const client = (user: "admin" | "app") => {
        const c = new Redis({
            host: "127.0.0.1", port: b.port, username: user, password: passwords[user], lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableReadyCheck: false,
            tls: { ca: fs.readFileSync(tls.caFile), cert: fs.readFileSync(tls.clientCertFile), key: fs.readFileSync(tls.clientKeyFile), servername: "localhost" },
        });
        clients.push(c);
        return c;
    };

    it("fetched every secret into /run (tmpfs) as 0400 files owned by the redis uid", () => {
        const run = `/proc/${b.pid}/root/run/redisforge`;
        for (const f of ["redis/tls/node.crt", "redis/tls/node.key", "redis/tls/ca.crt", "redis/users.acl", "redis/secrets.conf"]) {
            const st = fs.statSync(path.join(run, f));
            expect([f, (st.mode & 0o777).toString(8), st.uid]).toEqual([f, "400", REDIS_UID]);
        }
        expect(fs.readFileSync(path.join(run, "exporter/exporter.env"), "utf8")).toBe(`REDIS_PASSWORD=${passwords.exporter}\n`);
        expect(fs.readFileSync(path.join(run, "redis/tls/node.key"), "utf8")).toBe(fs.readFileSync(tls.keyFile, "utf8"));
        // Nothing of it is visible outside the VM's namespace.
        expect(fs.existsSync(path.join(b.root, "run/redisforge"))).toBe(false);
    });

    it("runs redis-server as uid 999 from the user-data's redis.conf and the container paths", async () => {
        expect(fs.readFileSync(`/proc/${b.pid}/cmdline`, "utf8")).toMatch(/redis-server/);
        expect(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${b.pid}/status`, "utf8"))![1]).toBe(String(REDIS_UID));
        const admin = client("admin");
        await admin.connect();
        expect(await admin.config("GET", "dir")).toEqual(["dir", "/data"]);
        expect(await admin.config("GET", "tls-cert-file")).toEqual(["tls-cert-file", "/run/secrets/redis/tls/node.crt"]);
        expect(await admin.config("GET", "port")).toEqual(["port", "0"]);
        expect(await admin.config("GET", "masteruser")).toEqual(["masteruser", "replication"]);
    });

    it("the image's health check passes inside the VM root", () => {
        const r = spawnSync("nsenter", ["-t", String(b.pid), "-m", "chroot", `--userspec=${REDIS_UID}:${REDIS_UID}`, b.root, "/bin/sh", "/image/healthcheck.sh"], { encoding: "utf8", timeout: 15000 });
        expect(`${r.stdout}${r.stderr}`).toBe("");
        expect(r.status).toBe(0);
    });

    it("the redis-exporter unit's flags + fetched env file: the real redis_exporter scrapes as `exporter` without NOPERM", async () => {
        const env = fs.readFileSync(`/proc/${b.pid}/root/run/redisforge/exporter/exporter.env`, "utf8").trim();
        // The unit mounts the TLS dir at the same container path the flags name; the binary is Debian's 1.45.
        const [bin, ...args] = ["nsenter", "-t", String(b.pid), "-m", "chroot", `--userspec=${REDIS_UID}:${REDIS_UID}`, b.root, "/usr/bin/prometheus-redis-exporter", ...b.exporterFlags];
        let out = "";
        const exp = spawn(bin, args, { env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", [env.split("=")[0]]: env.slice(env.indexOf("=") + 1) }, stdio: ["ignore", "pipe", "pipe"] });
        procs.push(exp);
        exp.stdout!.on("data", (d) => (out += d));
        exp.stderr!.on("data", (d) => (out += d));
        try {
            let metrics = "";
            const deadline = Date.now() + 15000;
            while (Date.now() < deadline && !/^redis_up 1$/m.test(metrics)) {
                await new Promise((r) => setTimeout(r, 200));
                metrics = await new Promise<string>((resolve) => {
                    const req = http.get({ host: "127.0.0.1", port: b.exporterPort, path: "/metrics", timeout: 3000 }, (res) => {
                        let t = "";
                        res.on("data", (d: Buffer) => (t += d));
                        res.on("end", () => resolve(t));
                    });
                    req.on("error", () => resolve(""));
                });
            }
            if (!/^redis_up 1$/m.test(metrics)) throw new Error(`redis_exporter never reported redis_up 1; its output:\n${out}\nmetrics:\n${metrics.slice(0, 500)}`);
            expect(metrics).toMatch(/^redis_connected_clients \d+/m);
            expect(Number(/^redis_memory_max_bytes (\S+)$/m.exec(metrics)?.[1])).toBe(128 * 1024 * 1024); // maxmemory from the params
            expect(out).not.toMatch(/NOPERM|WRONGPASS|level=error/);
        } finally {
            exp.kill("SIGTERM");
        }
    });

    it("serves the ACL users from the fetched users.acl, with AOF on the data disk", async () => {
        const admin = client("admin");
        if (admin.status !== "ready") await admin.connect();
        await admin.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383");
        const deadline = Date.now() + 20000;
        while (!/cluster_state:ok/.test(String(await admin.call("CLUSTER", "INFO")))) {
            if (Date.now() > deadline) throw new Error("cluster_state did not become ok");
            await new Promise((r) => setTimeout(r, 100));
        }
        const app = client("app");
        await app.connect();
        expect(await app.set("boot:key", cloud)).toBe("OK");
        expect(await app.get("boot:key")).toBe(cloud);
        await expect(app.flushall()).rejects.toThrow(/NOPERM/);
        const aof = path.join(b.root, "var/lib/redisforge/data/appendonlydir");
        expect(fs.readdirSync(aof).some((f) => f.endsWith(".incr.aof"))).toBe(true);
    });
});

describe.each(CLOUD_KINDS)("%s Envoy VM boot (up to the image entrypoint's preflight; no Envoy binary here)", (cloud) => {
    it("fetches the 7 files envoy.yaml names to where the container sees them, readable by uid 101 only", async () => {
        const root = path.join(top, `envoy-${cloud}`);
        const ud = buildEnvoyUserData(envoyParams(cloud));
        prepareRoot(root, ud, DOCKER_ENVOY);
        const mounts = unitMounts(ud, "envoy");
        expect(mounts).toEqual(["/etc/redisforge/envoy:/etc/envoy:ro", "/run/redisforge/envoy:/run/secrets/envoy:ro"]);
        const { p, log } = startBoot(root, mounts, ENVOY_UID, "/bin/bash /image/entrypoint.sh /etc/envoy/envoy.yaml", { REDISFORGE_PREFLIGHT_ONLY: "1" });
        const code = await new Promise<number | null>((resolve) => p.on("exit", resolve));
        expect(log()).toContain("redisforge-secrets: wrote 7 secret file(s)");
        expect(log()).toContain("redisforge-envoy-entrypoint: /etc/envoy/envoy.yaml ok (7 files)");
        expect(code).toBe(0);
    });
});
