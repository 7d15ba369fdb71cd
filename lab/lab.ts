/**
 * The lab: real redis-server processes on loopback, rendered from the project's own
 * templates (templates/redis), with TLS made at run time, one data dir and one zone label
 * per node. Tests, benchmarks, the `local` cloud adapter and newcomers (`npm run lab`) use it.
 *
 * Processes are started detached and stopped by the PIDs recorded in `<dir>/lab.json`, so a
 * later process (`npm run lab -- down`) can stop exactly what an earlier one started.
 * Every wait is bounded.
 */
import { ChildProcess, spawn } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { AclPasswords, AclUser, ACL_USERS, renderRedisConf, renderSecretsInclude, renderUsersAcl } from "../templates/redis";
import { redisRuntime, redisServerVersion } from "./redis-runtime";
import { ensureLabTls, LabTlsFiles } from "./tls";
import { alive } from "./vm/exec";

export { redisServerVersion };

export const DEFAULT_ZONES = ["zone-a", "zone-b", "zone-c"];

export interface LabNode {
    index: number;
    name: string;
    host: string;
    port: number;
    busPort: number;
    zone: string;
    dataDir: string;
    confFile: string;
    logFile: string;
    /** PID of the running redis-server, or 0 when stopped. */
    pid: number;
    /** Network namespace the node runs in (`ip netns exec`); absent: the caller's namespace. */
    netns?: string;
}

export interface LabState {
    dir: string;
    redisServer: string;
    /** redis-cli of the same runtime (labs saved before it existed: "redis-cli" on PATH). */
    redisCli?: string;
    serverVersion: string;
    tls: LabTlsFiles;
    nodes: LabNode[];
}

export interface LabOptions {
    /** Root directory of this lab (created; holds certs, secrets, data dirs, lab.json). */
    dir: string;
    /** Number of nodes to start. */
    count: number;
    /** Zone labels; node i gets zones[i % zones.length]. Default zone-a/b/c. */
    zones?: string[];
    /** Loopback address to bind. Default 127.0.0.1. */
    host?: string;
    /** First TLS port; default: free ports picked by the OS. */
    basePort?: number;
    /**
     * redis-server binary (redis-cli is taken from the same directory when it has one). Default:
     * the runtime named by $REDISFORGE_REDIS (lab/redis-runtime.ts), else `redis-server` on PATH.
     */
    redisServer?: string;
    /** maxmemory per node in bytes. Default 256 MiB. */
    maxmemoryBytes?: number;
    /** Seconds to wait for each node to answer. Default 15. */
    startTimeoutSec?: number;
    /**
     * Network namespace for the nodes started by this call (`ip netns exec <netns> redis-server`);
     * `host` must be an address inside it that this process can reach, and `basePort` must be set
     * (free ports cannot be probed from outside the namespace). Default: none.
     */
    netns?: string;
    /** More addresses for the lab's TLS certificate (e.g. the hosts of later addNodes calls). Default none. */
    tlsHosts?: string[];
}

/** A TCP port free on `host` right now (the OS picks it). */
export function freePort(host: string): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on("error", reject);
        srv.listen(0, host, () => {
            const port = (srv.address() as net.AddressInfo).port;
            srv.close(() => resolve(port));
        });
    });
}

export function pidAlive(pid: number): boolean {
    return !!pid && alive(pid);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function generatePassword(): string {
    return randomBytes(32).toString("base64url"); // 43 chars, no quotes or whitespace
}

export class Lab {
    private constructor(public readonly state: LabState, private readonly passwords: AclPasswords) {}

    get dir(): string {
        return this.state.dir;
    }
    get nodes(): LabNode[] {
        return this.state.nodes;
    }
    get tls(): LabTlsFiles {
        return this.state.tls;
    }
    /** redis-cli of this lab's runtime. */
    get redisCli(): string {
        return this.state.redisCli ?? "redis-cli";
    }

    /** The password of an ACL user (for clients built by tests and tools). */
    password(user: AclUser): string {
        return this.passwords[user];
    }

    /** Starts `count` nodes (renders config, certificates, ACLs) and waits until each answers. */
    static async start(opts: LabOptions): Promise<Lab> {
        const dir = path.resolve(opts.dir);
        if (fs.existsSync(path.join(dir, "lab.json"))) {
            const existing = Lab.load(dir);
            if (existing.nodes.some((n) => pidAlive(n.pid))) {
                throw new Error(`a lab is already running in ${dir}; stop it first (npm run lab -- down)`);
            }
        }
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const host = opts.host ?? "127.0.0.1";
        const rt = opts.redisServer ? null : redisRuntime();
        const redisServer = opts.redisServer ?? rt!.server;
        const siblingCli = path.join(path.dirname(redisServer), "redis-cli");
        const redisCli = rt ? rt.cli : redisServer.includes("/") && fs.existsSync(siblingCli) ? siblingCli : "redis-cli";
        const tls = ensureLabTls(path.join(dir, "tls"), [host, "127.0.0.1", "localhost", ...(opts.tlsHosts ?? [])]);
        const passwords = Object.fromEntries(ACL_USERS.map((u) => [u, generatePassword()])) as AclPasswords;
        const secretsFile = path.join(dir, "secrets.json");
        fs.writeFileSync(secretsFile, JSON.stringify(passwords), { mode: 0o600 });
        const lab = new Lab({ dir, redisServer, redisCli, serverVersion: rt ? rt.version : redisServerVersion(redisServer), tls, nodes: [] }, passwords);
        await lab.addNodes(opts.count, opts);
        return lab;
    }

    /** Re-attaches to a lab started by another process. */
    static load(dir: string): Lab {
        const state = JSON.parse(fs.readFileSync(path.join(dir, "lab.json"), "utf8")) as LabState;
        const passwords = JSON.parse(fs.readFileSync(path.join(dir, "secrets.json"), "utf8")) as AclPasswords;
        return new Lab(state, passwords);
    }

    /** Starts `count` more nodes and returns them. */
    async addNodes(count: number, opts: Partial<LabOptions> = {}): Promise<LabNode[]> {
        const host = opts.host ?? this.state.nodes[0]?.host ?? "127.0.0.1";
        const zones = opts.zones ?? DEFAULT_ZONES;
        const added: LabNode[] = [];
        for (let k = 0; k < count; k++) {
            const index = this.state.nodes.length;
            const port = opts.basePort ? opts.basePort + index : await freePort(host);
            let busPort = opts.basePort ? opts.basePort + index + 10000 : await freePort(host);
            while (busPort === port) busPort = await freePort(host);
            const name = `node${index}`;
            const dataDir = path.join(this.dir, name);
            fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
            const node: LabNode = {
                index,
                name,
                host,
                port,
                busPort,
                zone: zones[index % zones.length],
                dataDir,
                confFile: path.join(dataDir, "redis.conf"),
                logFile: path.join(dataDir, "redis.log"),
                pid: 0,
            };
            if (opts.netns) node.netns = opts.netns;
            this.writeConfig(node, opts.maxmemoryBytes ?? 256 * 1024 * 1024);
            this.state.nodes.push(node);
            added.push(node);
        }
        this.save();
        for (const node of added) await this.startOnFreePorts(node, opts);
        return added;
    }

    /**
     * Starts a new node. A port picked as free may be taken by another process before redis-server
     * binds it (many labs start in parallel on a shared machine): then pick new ports and retry,
     * a bounded number of times. Fixed ports (basePort) are never changed.
     */
    private async startOnFreePorts(node: LabNode, opts: Partial<LabOptions>): Promise<void> {
        const attempts = opts.basePort ? 1 : 4;
        for (let attempt = 1; ; attempt++) {
            try {
                await this.startNode(node.index, opts.startTimeoutSec ?? 15);
                return;
            } catch (e) {
                if (attempt >= attempts || !/Address already in use/.test((e as Error).message)) throw e;
                node.port = await freePort(node.host);
                do node.busPort = await freePort(node.host);
                while (node.busPort === node.port);
                node.pid = 0;
                fs.rmSync(node.logFile, { force: true });
                this.writeConfig(node, opts.maxmemoryBytes ?? 256 * 1024 * 1024);
                this.save();
            }
        }
    }

    private writeConfig(node: LabNode, maxmemoryBytes: number): void {
        const secretsInclude = path.join(node.dataDir, "secrets.conf");
        fs.writeFileSync(secretsInclude, renderSecretsInclude(this.passwords), { mode: 0o600 });
        const aclFile = path.join(node.dataDir, "users.acl");
        fs.writeFileSync(aclFile, renderUsersAcl(this.passwords), { mode: 0o600 });
        fs.writeFileSync(
            node.confFile,
            renderRedisConf({
                nodeName: node.name,
                zone: node.zone,
                bindAddress: node.host,
                announceIp: node.host,
                port: node.port,
                busPort: node.busPort,
                dataDir: node.dataDir,
                tlsCertFile: this.tls.certFile,
                tlsKeyFile: this.tls.keyFile,
                tlsCaFile: this.tls.caFile,
                aclFile,
                secretsFile: secretsInclude,
                maxmemoryBytes,
                logFile: node.logFile,
                serverVersion: this.state.serverVersion,
            }),
            { mode: 0o600 },
        );
    }

    /** (Re)starts a stopped node with its existing config and data; waits until it answers (as itself). */
    async startNode(index: number, timeoutSec = 15): Promise<void> {
        const node = this.state.nodes[index];
        if (pidAlive(node.pid)) return;
        // `ip netns exec` execs redis-server in place, so the PID is the server's.
        const [cmd, args] = node.netns ? ["ip", ["netns", "exec", node.netns, this.state.redisServer, node.confFile]] : [this.state.redisServer, [node.confFile]];
        const child: ChildProcess = spawn(cmd, args, {
            cwd: node.dataDir,
            detached: true,
            stdio: "ignore",
        });
        child.unref();
        if (!child.pid) throw new Error(`could not start ${this.state.redisServer} for ${node.name}`);
        node.pid = child.pid;
        this.save();
        const deadline = Date.now() + timeoutSec * 1000;
        let lastError = "";
        while (Date.now() < deadline) {
            if (!pidAlive(node.pid)) break;
            try {
                // Ask for the process id: a PONG could come from another process on a reused port.
                const m = /process_id:(\d+)/.exec(await this.cli(index, ["INFO", "server"]));
                if (m && Number(m[1]) === node.pid) return;
                if (m) lastError = `port ${node.port} is answered by another redis-server (pid ${m[1]})`;
            } catch (e) {
                lastError = (e as Error).message;
            }
            await sleep(100);
        }
        const log = fs.existsSync(node.logFile) ? fs.readFileSync(node.logFile, "utf8").split("\n").slice(-15).join("\n") : "(no log)";
        throw new Error(`${node.name} (${node.host}:${node.port}) did not answer as itself (INFO server process_id) within ${timeoutSec}s: ${lastError}\n${log}`);
    }

    /** Runs redis-cli against a node over TLS as `user` (default admin). The password goes through the environment. */
    cli(index: number, args: string[], user: AclUser = "admin"): Promise<string> {
        const node = this.state.nodes[index];
        return new Promise((resolve, reject) => {
            const p = spawn(
                this.redisCli,
                ["--tls", "--cacert", this.tls.caFile, "--cert", this.tls.clientCertFile, "--key", this.tls.clientKeyFile, "-h", node.host, "-p", String(node.port), "--user", user, "--no-auth-warning", ...args],
                { env: { ...process.env, REDISCLI_AUTH: this.passwords[user] }, stdio: ["ignore", "pipe", "pipe"] },
            );
            let out = "";
            let err = "";
            const timer = setTimeout(() => p.kill("SIGKILL"), 10000);
            p.stdout.on("data", (d) => (out += d));
            p.stderr.on("data", (d) => (err += d));
            p.on("close", (code) => {
                clearTimeout(timer);
                if (code === 0 && !/^(ERR|NOPERM|WRONGPASS|NOAUTH)/.test(out)) resolve(out);
                else reject(new Error(`redis-cli ${args.join(" ")} on ${node.name}: ${(err || out).trim()}`));
            });
        });
    }

    /** ioredis options for one node (TLS, client certificate, ACL user). */
    clientOptions(index: number, user: AclUser = "admin") {
        const node = this.state.nodes[index];
        return {
            host: node.host,
            port: node.port,
            username: user,
            password: this.passwords[user],
            tls: {
                ca: fs.readFileSync(this.tls.caFile),
                cert: fs.readFileSync(this.tls.clientCertFile),
                key: fs.readFileSync(this.tls.clientKeyFile),
            },
        };
    }

    /** SIGKILLs a node (simulates a crash); its data dir stays. */
    async killNode(index: number): Promise<void> {
        const node = this.state.nodes[index];
        if (pidAlive(node.pid)) {
            process.kill(node.pid, "SIGKILL");
            await this.waitExit(node.pid, 5000);
        }
        node.pid = 0;
        this.save();
    }

    /** Stops every node this lab started (SIGTERM, then SIGKILL after a bounded wait). Optionally removes the dir. */
    async stop(opts: { removeData?: boolean } = {}): Promise<void> {
        for (const node of this.state.nodes) {
            if (!pidAlive(node.pid)) continue;
            // Only ever signal a PID that still runs redis-server with our config.
            if (!this.ownsPid(node)) continue;
            process.kill(node.pid, "SIGTERM");
        }
        for (const node of this.state.nodes) {
            if (node.pid && !(await this.waitExit(node.pid, 10000)) && pidAlive(node.pid) && this.ownsPid(node)) {
                process.kill(node.pid, "SIGKILL");
                await this.waitExit(node.pid, 5000);
            }
            node.pid = 0;
        }
        this.save();
        if (opts.removeData) fs.rmSync(this.dir, { recursive: true, force: true });
    }

    private ownsPid(node: LabNode): boolean {
        try {
            const cmdline = fs.readFileSync(`/proc/${node.pid}/cmdline`, "utf8");
            return cmdline.includes("redis-server") || cmdline.includes(node.confFile);
        } catch {
            return false;
        }
    }

    private async waitExit(pid: number, ms: number): Promise<boolean> {
        const deadline = Date.now() + ms;
        while (Date.now() < deadline) {
            if (!pidAlive(pid)) return true;
            await sleep(50);
        }
        return !pidAlive(pid);
    }

    private save(): void {
        fs.writeFileSync(path.join(this.dir, "lab.json"), JSON.stringify(this.state, null, 2), { mode: 0o600 });
    }
}
