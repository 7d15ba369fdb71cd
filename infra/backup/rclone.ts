/**
 * rclone, run the way the backup and restore scripts run it: one rclone.conf (the rendered
 * `redisforge` remote) plus environment (RCLONE_CONFIG_REDISFORGE_* overrides, cloud credentials
 * as the VM identity would provide them). Bounded in time; never a delete subcommand.
 */
import { spawn } from "child_process";

/** Where backups live: an rclone.conf, `<remote>:<bucket>[/prefix]`, and the environment rclone needs. */
export interface BackupStore {
    /** Path of the rclone.conf holding the remote. */
    rcloneConfig: string;
    /** `<remote>:<bucket>[/prefix]`, e.g. `redisforge:prod-backups` (BACKUP_REMOTE of backup.env). */
    remote: string;
    /** Extra environment for rclone (overrides, identity); merged over PATH/HOME only. */
    env: Record<string, string>;
    /** A name for reports, e.g. `s3 (versitygw)`. */
    label?: string;
}

export interface RcloneResult {
    code: number | null;
    stdout: Buffer;
    stderr: string;
}

/** Subcommands this project runs; a delete-capable one is refused here, not only by the identity. */
const ALLOWED = new Set(["lsf", "lsjson", "cat", "copy", "copyto", "check", "rcat", "mkdir", "size"]);

export function runRclone(store: BackupStore, args: string[], opts: { timeoutMs?: number; input?: Buffer } = {}): Promise<RcloneResult> {
    if (!ALLOWED.has(args[0])) throw new Error(`rclone ${args[0]}: not a subcommand RedisForge runs (no delete, sync or move: retention is the bucket's lifecycle)`);
    const timeoutMs = opts.timeoutMs ?? 120_000;
    return new Promise((resolve, reject) => {
        const p = spawn("rclone", ["--config", store.rcloneConfig, "--retries", "2", "--low-level-retries", "3", "--contimeout", "10s", "--timeout", "60s", ...args], {
            env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...store.env },
            stdio: [opts.input ? "pipe" : "ignore", "pipe", "pipe"],
        });
        const out: Buffer[] = [];
        let err = "";
        const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
        p.stdout!.on("data", (d: Buffer) => out.push(d));
        p.stderr!.on("data", (d) => (err += d));
        p.on("error", (e) => {
            clearTimeout(timer);
            reject(new Error(`rclone ${args[0]}: ${e.message} (is rclone installed? Debian package rclone)`));
        });
        p.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout: Buffer.concat(out), stderr: err });
        });
        if (opts.input) p.stdin!.end(opts.input);
    });
}

/** Like runRclone, but throws naming the command and rclone's message on a non-zero exit. */
export async function rcloneOk(store: BackupStore, args: string[], opts: { timeoutMs?: number; input?: Buffer } = {}): Promise<Buffer> {
    const r = await runRclone(store, args, opts);
    if (r.code !== 0) throw new Error(`rclone ${args.join(" ")} on ${store.label ?? store.remote} failed (exit ${r.code}): ${r.stderr.trim().split("\n").slice(-5).join(" | ")}`);
    return r.stdout;
}
