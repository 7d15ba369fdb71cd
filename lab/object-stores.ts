/**
 * Object-store servers on this machine, for the backup tests, the restore drill, the local stack's
 * backups and the VM stack: an S3 server (Versity Gateway, `versitygw`) and a GCS emulator
 * (`fake-gcs-server`), both built by scripts/install-object-stores.sh into .tools/bin.
 * (Azure's emulator, Azurite, is an npm package: tests/integration/backup/azurite.ts.)
 *
 * How another component starts one (every wait bounded, stopped by the PID it started):
 *
 *   // S3: a bucket owned by the root user, and a backup user that may write, read and list it
 *   // but NOT delete (a bucket policy evaluated by the server, like an IAM role policy on AWS).
 *   const s3 = await S3Server.start({
 *       dir: "/tmp/x/s3",                    // data + IAM dir (created)
 *       host: "127.0.0.1",                   // any address this machine owns (a netns bridge IP works)
 *       port: 0,                             // 0 = a free port
 *       root: { accessKeyId: "root-…", secretAccessKey: randomSecret() },
 *       bucket: "redisforge-backups",
 *       backupUser: { accessKeyId: "backup-…", secretAccessKey: randomSecret() },
 *   });
 *   s3.endpoint  // http://127.0.0.1:<port>  (rclone s3 `endpoint`, region us-east-1, path style)
 *   await s3.stop();
 *
 *   // GCS: buckets created at start. No authentication and no IAM: any bearer token is accepted
 *   // and deletes always succeed (fake-gcs-server has neither), so never-delete cannot be shown here.
 *   const gcs = await GcsServer.start({ dir: "/tmp/x/gcs", host: "127.0.0.1", port: 0, buckets: ["redisforge-backups"] });
 *   gcs.endpoint // http://127.0.0.1:<port>/storage/v1/  (rclone gcs `endpoint`)
 *   await gcs.stop();
 *
 * Credentials never go into argv: the root key reaches versitygw through its environment, the
 * backup user is created over the admin API (a signed request, see sigv4 below).
 */
import { ChildProcess, spawn } from "child_process";
import { freePort } from "./lab";
import { randomBytes } from "crypto";
import { httpCall } from "../providers/object-store/http";
import { backupStatements, BACKUP_USER_ACTIONS, ensureBucket, ensureUser, putBucketPolicy, s3AdminCall, S3AdminTarget } from "../providers/object-store/s3-admin";
import * as fs from "fs";
import * as path from "path";

const TOOLS_BIN = path.resolve(__dirname, "../.tools/bin");

export interface S3Credentials {
    /** Access key id (letters, digits, - and _; 3-128 characters). */
    accessKeyId: string;
    /** Secret access key (at least 16 characters). */
    secretAccessKey: string;
}

/** A random secret for test-time credentials (never committed, never logged). */
export function randomSecret(): string {
    return randomBytes(24).toString("base64url");
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string): string {
    try {
        return fs.readFileSync(file, "utf8").slice(-2000);
    } catch {
        return "(no log)";
    }
}

/** AWS Signature Version 4 (the converge agent's store client signs with the same code). */
export { sigv4Headers } from "../providers/object-store/sigv4";

/** A detached server process with a log file, stopped by its PID. */
class ServerProcess {
    constructor(
        protected readonly child: ChildProcess,
        readonly logFile: string,
    ) {}

    get pid(): number | undefined {
        return this.child.pid;
    }

    get running(): boolean {
        return this.child.exitCode === null && this.child.signalCode === null;
    }

    /** SIGTERM to the PID this object started, SIGKILL after a bounded wait. */
    async stop(timeoutMs = 5000): Promise<void> {
        const pid = this.child.pid;
        if (!pid || !this.running) return;
        const exited = new Promise<boolean>((resolve) => this.child.once("exit", () => resolve(true)));
        process.kill(pid, "SIGTERM");
        if (!(await Promise.race([exited, sleep(timeoutMs).then(() => false)])) && this.running) {
            process.kill(pid, "SIGKILL");
            await Promise.race([exited, sleep(2000)]);
        }
    }

    /** Waits (bounded) until `probe` succeeds; fails with the log's tail when the process exits or time runs out. */
    protected async waitReady(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        let last = "";
        while (Date.now() < deadline && this.running) {
            try {
                if (await probe()) return;
            } catch (e) {
                last = (e as Error).message;
            }
            await sleep(150);
        }
        await this.stop();
        throw new Error(`${what} was not ready within ${timeoutMs} ms${last ? ` (${last})` : ""}; log ${this.logFile}:\n${tail(this.logFile)}`);
    }
}

function spawnLogged(bin: string, args: string[], logFile: string, env: Record<string, string> = {}): ChildProcess {
    if (!fs.existsSync(bin)) throw new Error(`${bin} is missing; run bash scripts/install-object-stores.sh (or bash scripts/setup.sh)`);
    const fd = fs.openSync(logFile, "a");
    try {
        // Only PATH and what the server needs: no inherited cloud credentials.
        return spawn(bin, args, { stdio: ["ignore", fd, fd], env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } });
    } finally {
        fs.closeSync(fd);
    }
}

const KEY_ID_RE = /^[A-Za-z0-9_-]{3,128}$/;
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export interface S3ServerOptions {
    /** Directory for the data (posix backend) and the internal IAM; created. */
    dir: string;
    /** Address to listen on. Default 127.0.0.1. */
    host?: string;
    /** Port; 0 or absent = a free port. */
    port?: number;
    /** The gateway's root (admin) user: creates the bucket, the backup user and the policy. */
    root: S3Credentials;
    /** Bucket created at start, owned by root. Absent: none (the qemu cloud's S3 service: its buckets are resources). */
    bucket?: string;
    /** A user that may put, get and list objects of the bucket (and abort multipart uploads), but not delete. Optional. */
    backupUser?: S3Credentials;
    /** Users registered with no grant at all (bucket policies grant them later). */
    users?: S3Credentials[];
    /** Region the gateway signs for. Default us-east-1. */
    region?: string;
    /** Readiness bound. Default 20 000 ms. */
    startTimeoutMs?: number;
}

export { BACKUP_USER_ACTIONS };

/** Versity Gateway (posix backend + internal IAM) on host:port. */
export class S3Server extends ServerProcess {
    private constructor(
        child: ChildProcess,
        logFile: string,
        readonly host: string,
        readonly port: number,
        readonly region: string,
        readonly bucket: string,
        private readonly root: S3Credentials,
    ) {
        super(child, logFile);
    }

    /** http://host:port, the rclone s3 `endpoint`. */
    get endpoint(): string {
        return `http://${this.host}:${this.port}`;
    }

    static async start(o: S3ServerOptions): Promise<S3Server> {
        const problems: string[] = [];
        for (const [k, c] of [["root", o.root], ["backupUser", o.backupUser], ...(o.users ?? []).map((u, i) => [`users[${i}]`, u] as const)] as const) {
            if (!c) continue;
            if (!KEY_ID_RE.test(c.accessKeyId)) problems.push(`${k}.accessKeyId must be 3-128 letters, digits, - or _`);
            if (typeof c.secretAccessKey !== "string" || c.secretAccessKey.length < 16) problems.push(`${k}.secretAccessKey must be at least 16 characters (use randomSecret())`);
        }
        if (o.bucket !== undefined && !BUCKET_RE.test(o.bucket)) problems.push(`bucket '${o.bucket}' must be an S3 bucket name (3-63 lower-case letters, digits, . and -)`);
        if (o.backupUser && o.bucket === undefined) problems.push("backupUser needs a bucket (its policy names it)");
        if (problems.length) throw new Error(`S3Server.start: ${problems.join("; ")}`);
        const host = o.host ?? "127.0.0.1";
        const region = o.region ?? "us-east-1";
        const data = path.join(o.dir, "data");
        const iam = path.join(o.dir, "iam");
        fs.mkdirSync(data, { recursive: true, mode: 0o700 });
        fs.mkdirSync(iam, { recursive: true, mode: 0o700 });
        const logFile = path.join(o.dir, "versitygw.log");
        const attempts = o.port ? 1 : 3;
        for (let attempt = 1; ; attempt++) {
            const port = o.port || (await freePort(host));
            const child = spawnLogged(path.join(TOOLS_BIN, "versitygw"), ["--port", `${host}:${port}`, "--region", region, "--iam-dir", iam, "posix", data], logFile, {
                ROOT_ACCESS_KEY_ID: o.root.accessKeyId,
                ROOT_SECRET_ACCESS_KEY: o.root.secretAccessKey,
            });
            const s3 = new S3Server(child, logFile, host, port, region, o.bucket ?? "", o.root);
            try {
                // Ready = an anonymous request gets an S3 answer (403 AccessDenied) from this process.
                await s3.waitReady(`versitygw on ${host}:${port}`, async () => (await httpCall(new URL(`${s3.endpoint}/`), "GET", {}, "", 1000)).status > 0, o.startTimeoutMs ?? 20000);
            } catch (e) {
                if (attempt < attempts && /address already in use/i.test(tail(logFile))) continue;
                throw e;
            }
            try {
                await s3.setUp(o.backupUser, o.users ?? []);
            } catch (e) {
                await s3.stop();
                throw e;
            }
            return s3;
        }
    }

    /** The administrator's target for providers/object-store/s3-admin.ts. */
    get admin(): S3AdminTarget {
        return { endpoint: this.endpoint, region: this.region, root: this.root };
    }

    /** A request signed as `creds` (default root). */
    request(method: string, pathAndQuery: string, body: Buffer | string = "", creds: S3Credentials = this.root) {
        return s3AdminCall(this.admin, method, pathAndQuery, body, creds);
    }

    private async setUp(backupUser: S3Credentials | undefined, users: S3Credentials[]): Promise<void> {
        // A restart on the same IAM dir (the VM stack's S3 service) finds the users it made before:
        // their keys come from the same file, so an existing user is the one asked for.
        for (const u of users) await ensureUser(this.admin, u);
        if (!this.bucket) return;
        await ensureBucket(this.admin, this.bucket);
        if (!backupUser) return;
        await ensureUser(this.admin, backupUser);
        await putBucketPolicy(this.admin, this.bucket, backupStatements(`arn:aws:s3:::${this.bucket}`).map((st) => ({ ...st, Principal: { AWS: backupUser.accessKeyId } })));
    }
}

export interface GcsServerOptions {
    /** Directory for the data (filesystem backend); created. */
    dir: string;
    /** Address to listen on. Default 127.0.0.1. */
    host?: string;
    /** Port; 0 or absent = a free port. */
    port?: number;
    /** Buckets created at start. */
    buckets: string[];
    /** Readiness bound. Default 20 000 ms. */
    startTimeoutMs?: number;
}

/** fake-gcs-server (filesystem backend, plain HTTP) on host:port. */
export class GcsServer extends ServerProcess {
    private constructor(
        child: ChildProcess,
        logFile: string,
        readonly host: string,
        readonly port: number,
    ) {
        super(child, logFile);
    }

    /** The JSON API base, the rclone gcs `endpoint`. */
    get endpoint(): string {
        return `http://${this.host}:${this.port}/storage/v1/`;
    }

    static async start(o: GcsServerOptions): Promise<GcsServer> {
        const bad = o.buckets.filter((b) => !BUCKET_RE.test(b));
        if (bad.length) throw new Error(`GcsServer.start: bucket name(s) ${bad.join(", ")} invalid: use 3-63 lower-case letters, digits, . and -`);
        const host = o.host ?? "127.0.0.1";
        const data = path.join(o.dir, "data");
        fs.mkdirSync(data, { recursive: true, mode: 0o700 });
        const logFile = path.join(o.dir, "fake-gcs-server.log");
        const attempts = o.port ? 1 : 3;
        for (let attempt = 1; ; attempt++) {
            const port = o.port || (await freePort(host));
            const base = `http://${host}:${port}`;
            const child = spawnLogged(
                path.join(TOOLS_BIN, "fake-gcs-server"),
                ["-scheme", "http", "-host", host, "-port", String(port), "-backend", "filesystem", "-filesystem-root", data, "-public-host", `${host}:${port}`, "-external-url", base, "-log-level", "warn"],
                logFile,
            );
            const gcs = new GcsServer(child, logFile, host, port);
            try {
                await gcs.waitReady(`fake-gcs-server on ${host}:${port}`, async () => (await httpCall(new URL(`${base}/storage/v1/b`), "GET", {}, "", 1000)).status === 200, o.startTimeoutMs ?? 20000);
            } catch (e) {
                if (attempt < attempts && /address already in use/i.test(tail(logFile))) continue;
                throw e;
            }
            for (const b of o.buckets) {
                const r = await httpCall(new URL(`${base}/storage/v1/b?project=redisforge-lab`), "POST", { "content-type": "application/json" }, JSON.stringify({ name: b }));
                if (r.status !== 200 && r.status !== 409) {
                    await gcs.stop();
                    throw new Error(`create bucket ${b} on fake-gcs-server: HTTP ${r.status} ${r.body}`);
                }
            }
            return gcs;
        }
    }
}
