/**
 * Backups of a stack's nodes from the machine that runs them (the local stack): the same
 * templates/backup/redisforge-backup.sh a VM's timer runs, once per node, as the `exporter` ACL
 * user (INFO only) with the operator's client certificate, to any BackupStore (a directory remote
 * by default, or an S3/GCS/Azure emulator or bucket).
 */
import { runScript } from "./run-script";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { toIni, RCLONE_REMOTE_NAME } from "../../templates/backup";
import type { BackupStore } from "./rclone";

const BACKUP_SH = path.resolve(__dirname, "../../templates/backup/redisforge-backup.sh");

export interface StackNode {
    /** Node name (REDISFORGE_NODE): the second level of the object path. */
    name: string;
    host: string;
    /** TLS port. */
    port: number;
    /** Data dir holding nodes.conf and appendonlydir. */
    dataDir: string;
}

export interface StackBackupArgs {
    /** Cluster name (REDISFORGE_CLUSTER). */
    cluster: string;
    nodes: StackNode[];
    /** CA, client certificate and key that redis-cli presents (the operator's). */
    tls: { caFile: string; certFile: string; keyFile: string };
    /** Password of the `exporter` ACL user. Written to a 0600 file for the run, then removed. */
    exporterPassword: string;
    store: BackupStore;
    /** node_exporter textfile dir per node. Default `<dataDir>/backup-metrics`. */
    textfileDir?: (node: StackNode) => string;
    /** redis-check-aof's directory first on PATH (the 8.6 runtime's); default the host's. */
    redisBinDir?: string;
    log?: (line: string) => void;
}

export interface NodeBackupResult {
    node: string;
    ok: boolean;
    /** `<remote>/<cluster>/<node>/<timestamp>` on success. */
    dest?: string;
    ms: number;
    error?: string;
}

/** The directory remote of a stack without a cloud: an rclone `local` remote; BACKUP_REMOTE is `redisforge:<dir>`. */
export function directoryStore(dir: string, confDir: string): BackupStore {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(confDir, { recursive: true, mode: 0o700 });
    const conf = path.join(confDir, "rclone.conf");
    fs.writeFileSync(conf, `# rclone.conf written by RedisForge for the local stack: a directory remote.\n${toIni({ [RCLONE_REMOTE_NAME]: [["type", "local"]] })}`);
    return { rcloneConfig: conf, remote: `${RCLONE_REMOTE_NAME}:${path.resolve(dir)}`, env: {}, label: `directory ${path.resolve(dir)}` };
}


/** Backs up every node, one after the other (as the timers' random delay spreads them on VMs). */
export async function backupStack(a: StackBackupArgs): Promise<NodeBackupResult[]> {
    const log = a.log ?? (() => undefined);
    const secretDir = fs.mkdtempSync(path.join(os.tmpdir(), "redisforge-backup-"));
    const passwordFile = path.join(secretDir, "exporter.env");
    fs.writeFileSync(passwordFile, `REDIS_PASSWORD=${a.exporterPassword}\n`, { mode: 0o600 });
    const results: NodeBackupResult[] = [];
    try {
        for (const n of a.nodes) {
            const textfileDir = a.textfileDir ? a.textfileDir(n) : path.join(n.dataDir, "backup-metrics");
            fs.mkdirSync(textfileDir, { recursive: true });
            const env: Record<string, string> = {
                PATH: `${a.redisBinDir ? `${a.redisBinDir}:` : ""}${process.env.PATH ?? "/usr/bin:/bin"}`,
                HOME: process.env.HOME ?? secretDir,
                ...a.store.env,
                REDISFORGE_CLUSTER: a.cluster,
                REDISFORGE_NODE: n.name,
                BACKUP_REMOTE: a.store.remote,
                RCLONE_CONFIG: a.store.rcloneConfig,
                REDIS_DATA_DIR: n.dataDir,
                REDIS_HOST: n.host,
                REDIS_PORT: String(n.port),
                REDIS_TLS_CA: a.tls.caFile,
                REDIS_TLS_CERT: a.tls.certFile,
                REDIS_TLS_KEY: a.tls.keyFile,
                REDIS_USER: "exporter",
                REDIS_PASSWORD_FILE: passwordFile,
                TEXTFILE_DIR: textfileDir,
            };
            const t0 = Date.now();
            const r = await runScript(BACKUP_SH, [], env, 600_000);
            const ms = Date.now() - t0;
            if (r.code === 0) {
                results.push({ node: n.name, ok: true, dest: r.stdout.trim(), ms });
                log(`${n.name}: ${r.stdout.trim()} (${ms} ms)`);
            } else {
                const error = r.stderr.trim().split("\n").slice(-3).join(" | ");
                results.push({ node: n.name, ok: false, ms, error });
                log(`${n.name}: FAILED: ${error}`);
            }
        }
    } finally {
        fs.rmSync(secretDir, { recursive: true, force: true });
    }
    return results;
}
