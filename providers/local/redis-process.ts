/**
 * The local stack's "VM" — one redis-server process on this machine,
 * on a loopback address, with its own data dir and zone label. A dynamic resource, so the engine
 * decides when a process starts, restarts (config changed) or stops (node removed, `destroy`).
 *
 * Invariants:
 * - Secrets (the replication password in the masterauth include, the node's TLS private key) arrive
 *   as secret inputs and reach the process only through 0600 files in a 0700 dir; the outputs carry
 *   a SHA-256 digest of them (to detect a change), never the values.
 * - Only a PID whose command line is redis-server with this node's config file is ever signalled.
 * - Every wait is bounded (start: `startTimeoutSec`, stop: 10 s SIGTERM then SIGKILL).
 * - `delete` removes the node's data dir; nothing of the node is left behind.
 * - New TLS material alone (certificates, key, CA bundle re-issued by the PKI) never restarts a
 *   running node: the files are rewritten in place and loaded with CONFIG SET (tls-reload.ts), so
 *   clients, replication and the cluster bus stay connected. Only redis.conf, users.acl or the
 *   masterauth include changing (or a process found gone) restarts it.
 * - The binary (`redisServer`) is NOT a restart trigger: a version change is rolled through the
 *   cluster one node at a time by the RedisCluster resource (its rolling step calls
 *   providers/local/restart-node.ts), because the engine would update every RedisProcess at once
 *   and restarting all nodes together drops the cluster. The binary is used when this resource
 *   starts a process (create, or a node found stopped). The running process is found through
 *   `<dataDir>/redis.pid`, which both sides write, so a node restarted by the rolling step is
 *   still recognised as running here.
 *
 * The provider object is serialised into the state by the engine and run by
 * `pulumi-resource-pulumi-nodejs`: it requires what it needs inside its methods and captures no
 * module-level state besides plain functions.
 */
import * as pulumi from "@pulumi/pulumi";
import { ownsRedisPid, runningPid } from "./restart-node";
import { tcpAccepts } from "./tcp-probe";
import { reloadTls, TlsMaterial } from "./tls-reload";
import { alive } from "./alive";

/** ACL user the provider reloads TLS material as (templates/redis/users.acl.tmpl). */
const RELOAD_USER = "tlsreload";

/** Inputs of one redis-server process. */
export interface RedisProcessArgs {
    /** Node name, e.g. `local-node3` (used in the config header and in errors). */
    nodeName: pulumi.Input<string>;
    /** Failure-domain label of this node. */
    zone: pulumi.Input<string>;
    /** Loopback address the node binds and announces (127.0.0.0/8 only). */
    host: pulumi.Input<string>;
    /** TLS client port. */
    port: pulumi.Input<number>;
    /** TLS cluster bus port. */
    busPort: pulumi.Input<number>;
    /** Absolute data dir (created 0700; removed on delete). */
    dataDir: pulumi.Input<string>;
    /** Rendered redis.conf (templates/redis), no secrets in it. */
    redisConf: pulumi.Input<string>;
    /** Rendered users.acl (hashes only). */
    usersAcl: pulumi.Input<string>;
    /** Rendered masterauth include: secret. */
    secretsInclude: pulumi.Input<string>;
    /** PEM certificate of the node and the CA. */
    tlsCert: pulumi.Input<string>;
    tlsCa: pulumi.Input<string>;
    /** PEM private key of the node: secret. */
    tlsKey: pulumi.Input<string>;
    /** redis-server binary. Default `redis-server` on PATH. */
    redisServer?: pulumi.Input<string>;
    /**
     * Password of the `tlsreload` ACL user: secret. With it, new certificates, keys or CA bundles are
     * loaded into the running process (CONFIG SET, see tls-reload.ts) instead of restarting it.
     */
    reloadPassword?: pulumi.Input<string>;
    /** Seconds to wait for the TLS port to accept connections. Default 20. */
    startTimeoutSec?: pulumi.Input<number>;
}

/** Plain (resolved) inputs, as the provider sees them. */
export interface RedisProcessInputs {
    nodeName: string;
    zone: string;
    host: string;
    port: number;
    busPort: number;
    dataDir: string;
    redisConf: string;
    usersAcl: string;
    secretsInclude: string;
    tlsCert: string;
    tlsCa: string;
    tlsKey: string;
    redisServer?: string;
    reloadPassword?: string;
    startTimeoutSec?: number;
}

/** Outputs (no secret values). */
export interface RedisProcessOutputs {
    nodeName: string;
    zone: string;
    host: string;
    port: number;
    busPort: number;
    dataDir: string;
    pid: number;
    /** SHA-256 over redis.conf, users.acl and the certificates (kept for older states; what restarts is restartDigest). */
    configDigest: string;
    /** SHA-256 over the secret files (masterauth include, TLS key): a change updates the resource. */
    secretsDigest: string;
    /** SHA-256 over what only a restart applies (redis.conf, users.acl, the masterauth include). */
    restartDigest?: string;
    /** SHA-256 over the TLS material (certificate chain, key, CA bundle): a change alone is reloaded live. */
    tlsDigest?: string;
}

/** File names inside the data dir (the rendered redis.conf refers to them by absolute path). */
export const PROCESS_FILES = {
    conf: "redis.conf",
    acl: "users.acl",
    secrets: "secrets.conf",
    cert: "tls/node.crt",
    key: "tls/node.key",
    ca: "tls/ca.crt",
    log: "redis.log",
    pid: "redis.pid",
} as const;

/** Inputs whose change needs a new process elsewhere (different address or dir): replace. */
const REPLACE_KEYS = ["host", "port", "busPort", "dataDir"] as const;

function digest(parts: string[]): string {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const crypto = require("crypto") as typeof import("crypto");
    const h = crypto.createHash("sha256");
    for (const p of parts) h.update(String(p.length)).update(":").update(p);
    return h.digest("hex");
}

function checkInputs(i: RedisProcessInputs): string[] {
    const problems: string[] = [];
    if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(String(i.host))) problems.push(`host must be a loopback address (127.0.0.0/8); got ${JSON.stringify(i.host)}`);
    for (const k of ["port", "busPort"] as const) {
        const v = Number(i[k]);
        if (!Number.isInteger(v) || v < 1024 || v > 65535) problems.push(`${k} must be an integer in 1024..65535; got ${JSON.stringify(i[k])}`);
    }
    if (Number(i.port) === Number(i.busPort)) problems.push(`port and busPort must differ; both are ${i.port}`);
    if (typeof i.dataDir !== "string" || !i.dataDir.startsWith("/")) problems.push(`dataDir must be an absolute path; got ${JSON.stringify(i.dataDir)}`);
    return problems;
}

/** Writes the node's files (secrets 0600 in a 0700 dir). */
function writeFiles(i: RedisProcessInputs): void {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const path = require("path") as typeof import("path");
    fs.mkdirSync(path.join(i.dataDir, "tls"), { recursive: true, mode: 0o700 });
    fs.chmodSync(i.dataDir, 0o700);
    const put = (rel: string, content: string) => {
        const p = path.join(i.dataDir, rel);
        const tmp = `${p}.tmp`;
        fs.writeFileSync(tmp, content, { mode: 0o600 });
        fs.renameSync(tmp, p);
    };
    put(PROCESS_FILES.conf, i.redisConf);
    put(PROCESS_FILES.acl, i.usersAcl);
    put(PROCESS_FILES.secrets, i.secretsInclude);
    put(PROCESS_FILES.cert, i.tlsCert);
    put(PROCESS_FILES.key, i.tlsKey);
    put(PROCESS_FILES.ca, i.tlsCa);
}


/** Starts redis-server detached and waits (bounded) until its TLS port accepts connections. */
async function startProcess(i: RedisProcessInputs): Promise<number> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cp = require("child_process") as typeof import("child_process");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const path = require("path") as typeof import("path");
    const bin = i.redisServer || "redis-server";
    const conf = path.join(i.dataDir, "redis.conf");
    for (const [what, port] of [["port", Number(i.port)], ["busPort", Number(i.busPort)]] as const) {
        if (await tcpAccepts(i.host, port)) {
            throw new Error(`${i.nodeName}: ${what} ${i.host}:${port} is already in use by another process; stop it (e.g. a stack or lab left running: \`ss -ltnp 'sport = :${port}'\`) or choose other redisforge:redisPort/busPort`);
        }
    }
    const child = cp.spawn(bin, [conf], { cwd: i.dataDir, detached: true, stdio: "ignore" });
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    child.unref();
    const pid = child.pid ?? 0;
    if (!pid) throw new Error(`${i.nodeName}: could not start ${bin} (is it installed? Debian: apt-get install redis-server): ${(await Promise.race([spawnError, new Promise<Error>((r) => setTimeout(() => r(new Error("no pid")), 1000))])).message}`);
    fs.writeFileSync(path.join(i.dataDir, "redis.pid"), `${pid}\n`, { mode: 0o600 });
    const timeoutMs = Number(i.startTimeoutSec || 20) * 1000;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (!alive(pid)) break;
        // Ours is listening once the port answers while our pid still runs redis-server from our dir.
        if ((await tcpAccepts(i.host, Number(i.port))) && alive(pid) && ownsRedisPid(pid, i.dataDir)) return pid;
        await new Promise((r) => setTimeout(r, 100));
    }
    const logFile = path.join(i.dataDir, "redis.log");
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8").split("\n").slice(-15).join("\n") : "(no log)";
    if (alive(pid) && ownsRedisPid(pid, i.dataDir)) process.kill(pid, "SIGKILL");
    throw new Error(`${i.nodeName} (${i.host}:${i.port}): redis-server did not accept TLS connections within ${timeoutMs / 1000}s; last log lines:\n${log}`);
}

/** SIGTERM, bounded wait, SIGKILL: only for a PID that is this node's redis-server. */
async function stopProcess(hint: number, dataDir: string): Promise<void> {
    const pid = runningPid(dataDir, hint);
    if (!pid) return;
    process.kill(pid, "SIGTERM");
    const until = (ms: number) => Date.now() + ms;
    let deadline = until(10000);
    while (Date.now() < deadline && alive(pid)) await new Promise((r) => setTimeout(r, 50));
    if (alive(pid) && ownsRedisPid(pid, dataDir)) {
        process.kill(pid, "SIGKILL");
        deadline = until(5000);
        while (Date.now() < deadline && alive(pid)) await new Promise((r) => setTimeout(r, 50));
    }
}

/** The files that make a restart necessary; the binary is not one of them (see the header). */
function configDigestOf(i: RedisProcessInputs): string {
    return digest([i.redisConf, i.usersAcl, i.tlsCert, i.tlsCa]);
}

/**
 * True when the stored digest matches the files of `i`. States written before the binary left the
 * digest hold digest(files + binary): those match with the binary they were started with, which
 * was `i.redisServer` or the default `redis-server` (REDISFORGE_REDIS_SERVER unset). So upgrading
 * RedisForge itself never restarts the nodes.
 */
function sameConfig(stored: string, i: RedisProcessInputs): boolean {
    if (stored === configDigestOf(i)) return true;
    const files = [i.redisConf, i.usersAcl, i.tlsCert, i.tlsCa];
    return [i.redisServer || "redis-server", "redis-server"].some((bin) => stored === digest([...files, bin]));
}

function restartDigestOf(i: Pick<RedisProcessInputs, "redisConf" | "usersAcl" | "secretsInclude">): string {
    return digest([i.redisConf, i.usersAcl, i.secretsInclude]);
}

/** The node's files as last written (what the running process loaded), or undefined if one is missing. */
function filesOnDisk(dataDir: string): (Pick<RedisProcessInputs, "redisConf" | "usersAcl" | "secretsInclude"> & { tls: TlsMaterial }) | undefined {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const path = require("path") as typeof import("path");
    const read = (rel: string) => fs.readFileSync(path.join(dataDir, rel), "utf8");
    try {
        return {
            redisConf: read(PROCESS_FILES.conf),
            usersAcl: read(PROCESS_FILES.acl),
            secretsInclude: read(PROCESS_FILES.secrets),
            tls: { cert: read(PROCESS_FILES.cert), key: read(PROCESS_FILES.key), ca: read(PROCESS_FILES.ca) },
        };
    } catch {
        return undefined;
    }
}

function outputsOf(i: RedisProcessInputs, pid: number): RedisProcessOutputs {
    return {
        nodeName: i.nodeName,
        zone: i.zone,
        host: i.host,
        port: Number(i.port),
        busPort: Number(i.busPort),
        dataDir: i.dataDir,
        pid,
        configDigest: configDigestOf(i),
        secretsDigest: digest([i.secretsInclude, i.tlsKey]),
        restartDigest: restartDigestOf(i),
        tlsDigest: digest([i.tlsCert, i.tlsKey, i.tlsCa]),
    };
}

/** The dynamic provider (exported for the plain-node serialisation test). */
export const redisProcessProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: RedisProcessInputs, news: RedisProcessInputs) {
        const problems = checkInputs(news);
        return { inputs: news, failures: problems.map((reason) => ({ property: "", reason: `local RedisProcess ${news.nodeName}: ${reason}` })) };
    },

    async diff(_id: string, olds: RedisProcessOutputs, news: RedisProcessInputs) {
        const next = outputsOf(news, olds.pid);
        const replaces = REPLACE_KEYS.filter((k) => String(olds[k]) !== String(next[k]));
        // A node whose process is gone (crashed, machine rebooted, or refresh recorded pid 0) is an
        // update: `up` restarts it with its data.
        const running = runningPid(olds.dataDir, olds.pid) > 0;
        const changed = !running || replaces.length > 0 || !sameConfig(olds.configDigest, news) || olds.secretsDigest !== next.secretsDigest || olds.zone !== next.zone || olds.nodeName !== next.nodeName;
        return { changes: changed, replaces: [...replaces], deleteBeforeReplace: true };
    },

    async create(inputs: RedisProcessInputs) {
        writeFiles(inputs);
        const pid = await startProcess(inputs);
        return { id: `${inputs.host}:${inputs.port}`, outs: outputsOf(inputs, pid) };
    },

    async read(id: string, props: RedisProcessOutputs) {
        // Refresh reports what runs: a node whose process is gone shows pid 0 (and the next `up` restarts it).
        return { id, props: { ...props, pid: runningPid(props.dataDir, props.pid) } };
    },

    async update(_id: string, olds: RedisProcessOutputs, news: RedisProcessInputs) {
        const pid0 = runningPid(olds.dataDir, olds.pid);
        // What the running process loaded, read before the new files replace it.
        const onDisk = pid0 ? filesOnDisk(olds.dataDir) : undefined;
        writeFiles(news);
        const next = outputsOf(news, olds.pid);
        if (pid0 && sameConfig(olds.configDigest, news) && next.secretsDigest === olds.secretsDigest) {
            // Nothing to restart (a new binary alone is rolled by the RedisCluster resource).
            return { outs: { ...next, pid: pid0 } };
        }
        // Only TLS material changed: load it into the running process. States written before
        // restartDigest existed are compared with the files on disk (what the process loaded).
        const restartBase = olds.restartDigest ?? (onDisk ? restartDigestOf(onDisk) : undefined);
        if (pid0 && news.reloadPassword && restartBase === next.restartDigest) {
            const path = require("path") as typeof import("path"); // eslint-disable-line @typescript-eslint/no-require-imports
            const file = (rel: string) => path.join(news.dataDir, rel);
            const fresh = { cert: news.tlsCert, key: news.tlsKey, ca: news.tlsCa };
            await reloadTls({
                nodeName: news.nodeName,
                host: news.host,
                port: Number(news.port),
                username: RELOAD_USER,
                password: news.reloadPassword,
                files: { cert: file(PROCESS_FILES.cert), key: file(PROCESS_FILES.key), ca: file(PROCESS_FILES.ca) },
                connectWith: onDisk ? [onDisk.tls, fresh] : [fresh],
                expected: fresh,
            });
            return { outs: { ...next, pid: pid0 } };
        }
        // Config or secrets changed (or the process is gone): restart with the new files.
        // AOF and nodes.conf stay, so the node rejoins with its slots and role.
        await stopProcess(olds.pid, olds.dataDir);
        const pid = await startProcess(news);
        return { outs: { ...next, pid } };
    },

    async delete(_id: string, props: RedisProcessOutputs) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const fs = require("fs") as typeof import("fs");
        await stopProcess(props.pid, props.dataDir);
        const left = runningPid(props.dataDir, props.pid);
        if (left) {
            throw new Error(`${props.nodeName}: redis-server pid ${left} did not stop after SIGTERM and SIGKILL; data dir ${props.dataDir} kept`);
        }
        fs.rmSync(props.dataDir, { recursive: true, force: true });
        // The last node of a stack also takes `<stateDir>/nodes` and `<stateDir>` with it (only if empty).
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const path = require("path") as typeof import("path");
        for (const dir of [path.dirname(props.dataDir), path.dirname(path.dirname(props.dataDir))]) {
            try {
                fs.rmdirSync(dir);
            } catch {
                break; // not empty (other nodes, client files) or already gone
            }
        }
    },
};

/** One redis-server process of the local stack. */
export class RedisProcess extends pulumi.dynamic.Resource {
    declare public readonly nodeName: pulumi.Output<string>;
    declare public readonly zone: pulumi.Output<string>;
    declare public readonly host: pulumi.Output<string>;
    declare public readonly port: pulumi.Output<number>;
    declare public readonly busPort: pulumi.Output<number>;
    declare public readonly dataDir: pulumi.Output<string>;
    declare public readonly pid: pulumi.Output<number>;
    declare public readonly configDigest: pulumi.Output<string>;
    declare public readonly secretsDigest: pulumi.Output<string>;
    declare public readonly restartDigest: pulumi.Output<string>;
    declare public readonly tlsDigest: pulumi.Output<string>;

    constructor(name: string, args: RedisProcessArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            redisProcessProvider,
            name,
            {
                ...args,
                secretsInclude: pulumi.secret(args.secretsInclude),
                tlsKey: pulumi.secret(args.tlsKey),
                reloadPassword: args.reloadPassword === undefined ? undefined : pulumi.secret(args.reloadPassword),
                pid: undefined,
                configDigest: undefined,
                secretsDigest: undefined,
                restartDigest: undefined,
                tlsDigest: undefined,
            },
            opts,
            "local",
            "RedisProcess",
        );
    }
}
