/**
 * The stack's container registry: Debian's `docker-registry` (distribution 2.8) running inside the
 * stack's namespace on a services address of the bridge, serving plain HTTP on that address only.
 *
 * Why plain HTTP (Docker's `insecure-registries`, set for 10.210.0.0/16 in the VM image) and not TLS
 * with a test CA: every image is pulled BY DIGEST (the user-data's units refuse anything else), so
 * Docker verifies the content whatever the transport; the registry holds no secret (the images
 * carry none: templates/docker lints that); and it is reachable only inside the stack's namespace.
 * TLS would need the CA baked into the cached image or written by user-data the adapter must not
 * modify. A real cloud's registry (ECR, Artifact Registry, ACR) is HTTPS with the VM identity.
 *
 * Images reach it from the host's buildah storage with `buildah push` (lab/vm/containers-env.sh);
 * pushImage returns the `addr/repo@sha256:<digest>` reference the user-data pins.
 *
 * The process daemonizes from the caller (a dynamic provider may exit) and is stopped by the PID
 * in <dir>/registry.pid, only when that PID runs this dir's config.
 */
import { spawn, spawnSync } from "child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from "fs";
import { join, resolve } from "path";
import { stringify } from "yaml";
import { alive, run, runIn, sleep } from "./exec";

export interface RegistrySpec {
    /** State directory (absolute): config.yml, data/, registry.log, registry.pid. */
    dir: string;
    /** The stack's namespace. */
    netns: string;
    /** Address to listen on (a services address on the bridge: lab/vm/network.ts addServiceAddress). */
    ip: string;
    /** Port. Default 5000. */
    port?: number;
}

export interface RegistryHandle {
    pid: number;
    /** host:port, e.g. 10.210.8.2:5000 (what image references start with). */
    address: string;
    dir: string;
}

const REPO_ROOT = resolve(__dirname, "..", "..");

function files(dir: string) {
    return { config: join(dir, "config.yml"), data: join(dir, "data"), log: join(dir, "registry.log"), pid: join(dir, "registry.pid") };
}

/** The registry's config.yml (pure). */
export function renderRegistryConfig(dataDir: string, ip: string, port: number): string {
    return stringify({
        version: 0.1,
        log: { level: "warn", accesslog: { disabled: true } },
        storage: { filesystem: { rootdirectory: dataDir }, delete: { enabled: false } },
        http: { addr: `${ip}:${port}` },
    });
}

/** The PID of this dir's registry when it runs, else undefined. */
export function runningRegistryPid(dir: string): number | undefined {
    const f = files(dir);
    if (!existsSync(f.pid)) return undefined;
    const pid = Number(readFileSync(f.pid, "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return undefined;
    try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(f.config) ? pid : undefined;
    } catch {
        return undefined;
    }
}

/** Starts the registry (idempotent) and waits (bounded, 30 s) until GET /v2/ answers inside the namespace. */
export async function startRegistry(s: RegistrySpec): Promise<RegistryHandle> {
    if (!s.dir || resolve(s.dir) !== s.dir) throw new Error(`registry dir must be an absolute path; got ${JSON.stringify(s.dir)}`);
    if (!/^(\d{1,3}\.){3}\d{1,3}$/.test(s.ip ?? "")) throw new Error(`registry ip must be an IPv4 address (a services address of the stack); got ${JSON.stringify(s.ip)}`);
    const port = s.port ?? 5000;
    const address = `${s.ip}:${port}`;
    const f = files(s.dir);
    const running = runningRegistryPid(s.dir);
    if (running) return { pid: running, address, dir: s.dir };
    mkdirSync(f.data, { recursive: true });
    writeFileSync(f.config, renderRegistryConfig(f.data, s.ip, port));
    const log = openSync(f.log, "a");
    // `ip netns exec` execs the registry: the child's PID is the registry's.
    const child = spawn("ip", ["netns", "exec", s.netns, "docker-registry", "serve", f.config], { detached: true, stdio: ["ignore", log, log] });
    closeSync(log);
    if (!child.pid) throw new Error(`registry: could not start docker-registry in ${s.netns}`);
    child.unref();
    writeFileSync(f.pid, `${child.pid}\n`);
    for (let i = 0; i < 60; i++) {
        if (!alive(child.pid)) break;
        try {
            runIn(s.netns, "curl", ["-fsS", "--max-time", "2", "-o", "/dev/null", `http://${address}/v2/`], { timeoutMs: 5000 });
            return { pid: child.pid, address, dir: s.dir };
        } catch {
            await sleep(500);
        }
    }
    await stopRegistry(s.dir);
    const tail = existsSync(f.log) ? readFileSync(f.log, "utf8").split("\n").slice(-10).join("\n") : "";
    throw new Error(`registry at ${address} in ${s.netns} did not answer GET /v2/ within 30 s; log:\n${tail}`);
}

/** Stops this dir's registry by its PID (SIGTERM, then SIGKILL after 5 s). Idempotent. */
export async function stopRegistry(dir: string): Promise<void> {
    const pid = runningRegistryPid(dir);
    if (!pid) return;
    process.kill(pid, "SIGTERM");
    for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
    if (runningRegistryPid(dir) === pid) process.kill(pid, "SIGKILL");
    rmSync(files(dir).pid, { force: true });
}

/** Environment for buildah with RedisForge's private containers config (lab/vm/containers-env.sh). */
export function containersEnv(): NodeJS.ProcessEnv {
    const c = join(REPO_ROOT, ".tools", "containers");
    if (!existsSync(join(c, "containers.conf"))) throw new Error(`${c}/containers.conf is missing; run bash scripts/install-vm-tools.sh`);
    return {
        ...process.env,
        CONTAINERS_CONF: join(c, "containers.conf"),
        CONTAINERS_STORAGE_CONF: join(c, "storage.conf"),
        CONTAINERS_REGISTRIES_CONF: join(c, "registries.conf"),
        BUILDAH_ISOLATION: "oci",
    };
}

/**
 * One bounded podman command with RedisForge's containers config (and `env` on top); stdout + stderr
 * together, without the warning podman prints on every call here (no systemd user session).
 */
export function podman(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): { code: number | null; out: string } {
    const r = spawnSync("podman", args, { env: { ...containersEnv(), ...(opts.env ?? {}) }, encoding: "utf8", timeout: opts.timeoutMs ?? 60000 });
    return { code: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}`.replace(/^time=.*unable to get systemd connection.*\n/gm, "") };
}

/**
 * Pushes a local buildah image (e.g. localhost/redisforge/redis:8.6.3-<hash>) to the registry as
 * `<address>/<repo>:<tag>` (Docker v2 schema 2) and returns `<address>/<repo>@sha256:<digest>`.
 * The host reaches the registry over the stack's host link. Bounded (5 min).
 * Layers are pushed uncompressed (`--disable-compression`): the guests pull over a local bridge, and
 * under software emulation gunzip of an 80 MB image costs minutes of a VM's CPU; docker pulls
 * uncompressed v2s2 layers (media type ...rootfs.diff.tar) like compressed ones.
 */
export function pushImage(localImage: string, registryAddress: string, repoTag: string): string {
    if (!/^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+$/.test(repoTag)) throw new Error(`repoTag must look like redisforge/redis:8.6.3; got ${repoTag}`);
    const digestFile = join(REPO_ROOT, ".tools", `push-digest-${process.pid}-${Date.now()}`);
    const env = containersEnv();
    try {
        const { execFileSync } = require("child_process") as typeof import("child_process");
        execFileSync("buildah", ["push", "--quiet", "--tls-verify=false", "--format", "v2s2", "--disable-compression", "--digestfile", digestFile, localImage, `docker://${registryAddress}/${repoTag}`], {
            env,
            stdio: ["ignore", "pipe", "pipe"],
            timeout: 5 * 60 * 1000,
        });
        const digest = readFileSync(digestFile, "utf8").trim();
        if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`buildah push wrote no digest (${digest})`);
        return `${registryAddress}/${repoTag.split(":")[0]}@${digest}`;
    } catch (e) {
        const err = e as { stderr?: Buffer; message: string };
        throw new Error(`pushing ${localImage} to ${registryAddress}/${repoTag} failed: ${err.stderr?.toString().trim() || err.message}`);
    } finally {
        rmSync(digestFile, { force: true });
    }
}

/** Runs scripts/build-container-images.sh (cached) and returns { "redis": "localhost/...", ... }. Bounded (20 min). */
export function buildContainerImages(): Record<string, string> {
    const out = run("bash", [join(REPO_ROOT, "scripts/build-container-images.sh")], { timeoutMs: 20 * 60 * 1000 });
    const images: Record<string, string> = {};
    for (const line of out.split("\n")) {
        const m = /^([a-z-]+)=(localhost\/\S+)$/.exec(line.trim());
        if (m) images[m[1]] = m[2];
    }
    for (const k of ["redis", "redis-exporter", "node-exporter"]) if (!images[k]) throw new Error(`build-container-images.sh printed no ${k}= line; output:\n${out}`);
    return images;
}
