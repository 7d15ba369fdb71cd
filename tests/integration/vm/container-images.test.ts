/**
 * The container images the qemu cloud's VMs pull (scripts/build-container-images.sh), run for real
 * with podman on the host, with the exact `docker run` flags the Redis unit uses (redisRunArgs:
 * non-root, read-only root, no capabilities) and files laid out like the VM's mounts:
 * - the hardened Redis image (templates/docker/redis FROM the slim redis-base) starts Redis 8.6.3 as
 *   uid 999, TLS only; its own health check passes; ACL users work as designed; root is refused;
 * - the backup and restore scripts' own check_aof (redis-check-aof from this image, as on a VM)
 *   validates the AOF it wrote, from staged copies owned by 999 (backup) or root (restore), 0600;
 * - both exporter images run their binary;
 * - the images stay small (every byte is pulled and unpacked by each VM under software emulation):
 *   the Redis image under 40 MB (the trixie rootfs it comes from is 83 MB).
 * Containers run in a network namespace of their own with only loopback (containers.conf netns=none).
 */
import { spawnSync } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ensureLabTls } from "../../../lab/tls";
import { buildContainerImages, containersEnv, podman } from "../../../lab/vm/registry";
import { redisRunArgs } from "../../../templates/cloud-init";
import { REDIS_CONTAINER } from "../../../templates/cloud-init/params";
import { ACL_USERS, AclPasswords, renderRedisConf, renderSecretsInclude, renderUsersAcl } from "../../../templates/redis";

jest.setTimeout(25 * 60 * 1000);

const REPO = path.resolve(__dirname, "../../..");
/** The private containers config (set after the build, which installs it on a fresh machine). */
let env: NodeJS.ProcessEnv = {};
const name = `rf-image-test-${randomBytes(4).toString("hex")}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-images-"));
const PORT = 6379;
const c = REDIS_CONTAINER;
let images: Record<string, string>;
let pw: AclPasswords;


/** redis-cli inside the running container over TLS as `user` (password through REDISCLI_AUTH, never argv). */
function cli(user: string, ...cmd: string[]) {
    const tlsArgs = ["--tls", "--cacert", `${c.secretsDir}/tls/ca.crt`, "--cert", `${c.secretsDir}/tls/node.crt`, "--key", `${c.secretsDir}/tls/node.key`];
    return podman(["exec", "-e", "REDISCLI_AUTH", name, "redis-cli", ...tlsArgs, "-h", "127.0.0.1", "-p", String(PORT), "--user", user, ...cmd], { env: { REDISCLI_AUTH: pw[user as keyof AclPasswords] } });
}

const mounts = { conf: path.join(dir, "conf"), secrets: path.join(dir, "secrets"), data: path.join(dir, "data") };

beforeAll(() => {
    images = buildContainerImages();
    env = containersEnv();
    // The VM's layout: config (root-owned, readable), secrets 0600 owned by 999, data dir 0700 owned by 999.
    ensureLabTls(path.join(mounts.secrets, "tls"), ["127.0.0.1", "localhost"]); // node.crt, node.key, ca.crt as the VM names them
    pw = Object.fromEntries(ACL_USERS.map((u) => [u, randomBytes(32).toString("base64url")])) as AclPasswords;
    fs.writeFileSync(path.join(mounts.secrets, "users.acl"), renderUsersAcl(pw), { mode: 0o600 });
    fs.writeFileSync(path.join(mounts.secrets, "secrets.conf"), renderSecretsInclude(pw), { mode: 0o600 });
    fs.mkdirSync(mounts.conf);
    fs.writeFileSync(path.join(mounts.conf, "redis.conf"), renderRedisConf({
        nodeName: "image-test", zone: "z", bindAddress: "127.0.0.1", announceIp: "127.0.0.1", port: PORT, busPort: PORT + 10000,
        dataDir: c.dataDir, tlsCertFile: `${c.secretsDir}/tls/node.crt`, tlsKeyFile: `${c.secretsDir}/tls/node.key`, tlsCaFile: `${c.secretsDir}/tls/ca.crt`,
        aclFile: `${c.secretsDir}/users.acl`, secretsFile: `${c.secretsDir}/secrets.conf`, maxmemoryBytes: 64 * 1024 * 1024, logFile: "", serverVersion: "8.6.3",
    }));
    fs.mkdirSync(mounts.data, { mode: 0o700 });
    for (const f of fs.readdirSync(path.join(mounts.secrets, "tls"))) fs.chmodSync(path.join(mounts.secrets, "tls", f), f.endsWith(".key") ? 0o600 : 0o644);
    spawnSync("chown", ["-R", "999:999", mounts.secrets, mounts.data]);
    fs.chmodSync(dir, 0o755);
}, 25 * 60 * 1000);

afterAll(() => {
    podman(["rm", "-f", "-t", "0", name]); // our container only, by its unique name
    fs.rmSync(dir, { recursive: true, force: true });
});

describe("hardened Redis image (podman, the unit's docker run flags)", () => {
    it("refuses to run as root", () => {
        const r = podman(["run", "--rm", ...redisRunArgs(mounts).map((a) => (a === "999:999" ? "0:0" : a)), images.redis]);
        expect(r.out).toMatch(/refusing to run as root/);
        expect(r.code).toBe(64);
    });

    it("runs Redis 8.6.3 as uid 999, TLS only; its health check passes; ACL users as designed", async () => {
        const run = podman(["run", "-d", "--name", name, ...redisRunArgs(mounts), images.redis]);
        expect(run.code).toBe(0);
        let h = { code: 1 as number | null, out: "" };
        for (let i = 0; i < 60; i++) {
            h = podman(["exec", name, "/usr/local/bin/redisforge-healthcheck"]);
            if (h.code === 0) break;
            await new Promise((r) => setTimeout(r, 500));
        }
        expect(h).toEqual({ code: 0, out: "" });
        // PID 1 is redis-server (the entrypoint execs it), as uid 999.
        const status = podman(["exec", name, "cat", "/proc/1/status", "/proc/1/cmdline"]).out;
        expect(status).toMatch(/^Uid:\s+999\s+999\s+999\s+999$/m);
        expect(status).toContain("redis-server");
        expect(cli("admin", "INFO", "server").out).toMatch(/redis_version:8\.6\.3/);
        // Plaintext: nothing listens without TLS (port 0), and the TLS port does not answer a plaintext PING.
        expect(podman(["exec", name, "redis-cli", "-h", "127.0.0.1", "-p", String(PORT), "PING"]).out).not.toContain("PONG");
        // A one-node cluster serving every slot, so that data commands run.
        expect(cli("admin", "CLUSTER", "ADDSLOTSRANGE", "0", "16383").out.trim()).toBe("OK");
        for (let i = 0; i < 40 && !/cluster_state:ok/.test(cli("admin", "CLUSTER", "INFO").out); i++) await new Promise((r) => setTimeout(r, 250));
        // ACL: app writes, readonly reads and may not write, exporter may not read data.
        expect(cli("app", "SET", "image-test:k", "v").out.trim()).toBe("OK");
        expect(cli("readonly", "GET", "image-test:k").out.trim()).toBe("v");
        expect(cli("readonly", "SET", "image-test:k", "w").out).toMatch(/NOPERM/);
        expect(cli("exporter", "GET", "image-test:k").out).toMatch(/NOPERM/);
    });

    // The staging copies as the scripts make them: the backup's `cp -p` keeps Redis's owner 999 and
    // mode 0600 in a root-owned stage; the restore's download is root's.
    it.each([
        ["redisforge-backup.sh", "999:999"],
        ["redisforge-restore.sh", "0:0"],
    ])("%s: its check_aof runs redis-check-aof from the image on staged files owned by %s", (script, owner) => {
        if (podman(["container", "exists", name]).code === 0) {
            for (let i = 0; i < 10; i++) cli("app", "SET", `image-test:${i}`, "x".repeat(100));
            expect(podman(["stop", "-t", "30", name], { timeoutMs: 45000 }).code).toBe(0);
            podman(["rm", name]);
        }
        const stage = fs.mkdtempSync(path.join(dir, "stage-"));
        fs.cpSync(path.join(mounts.data, "appendonlydir"), path.join(stage, "appendonlydir"), { recursive: true });
        spawnSync("chown", ["-R", owner, path.join(stage, "appendonlydir")]);
        for (const f of fs.readdirSync(path.join(stage, "appendonlydir"))) fs.chmodSync(path.join(stage, "appendonlydir", f), 0o600);
        const manifest = fs.readdirSync(path.join(stage, "appendonlydir")).find((f) => f.endsWith(".manifest"));
        expect(manifest).toBeDefined();
        // The script's own check_aof function, with docker played by podman (same flags).
        const text = fs.readFileSync(path.join(REPO, "templates/backup", script), "utf8");
        const fn = /^check_aof\(\) \{\n[\s\S]*?\n\}\n/m.exec(text)?.[0];
        expect(fn).toContain("docker run");
        const r = spawnSync("bash", ["-c", `set -euo pipefail; docker() { podman "$@"; }; stage=$1; ${fn} check_aof "$stage/appendonlydir/$2" 2>&1`, "check", stage, manifest!], {
            env: { ...env, CHECK_AOF_IMAGE: images.redis }, encoding: "utf8", timeout: 60000,
        });
        expect(r.stdout).toMatch(/is valid/);
        expect(r.status).toBe(0);
    });
});

describe("exporter images and sizes", () => {
    it.each([
        ["redis-exporter", /redis_exporter|Redis Metrics Exporter/i],
        ["node-exporter", /node_exporter/],
    ])("%s runs its binary", (image, banner) => {
        const r = podman(["run", "--rm", images[image], "--version"]);
        expect(r.out).toMatch(banner);
        expect(r.code).toBe(0);
    });

    it("the Redis image stays under 40 MB (the trixie rootfs it is cut from is 83 MB)", () => {
        const size = Number(podman(["image", "inspect", "--format", "{{.Size}}", images.redis]).out.trim());
        process.stdout.write(`container images: redis ${(size / 1e6).toFixed(1)} MB\n`);
        expect(size).toBeGreaterThan(5e6);
        expect(size).toBeLessThan(40e6);
    });
});
