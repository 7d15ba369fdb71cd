/**
 * What `npm run backup` and `npm run restore-drill` need from a stack: its cluster name, nodes and
 * operator credentials (stack outputs, read with the Automation API as `npm run scale` does), and
 * where its backups live:
 *   - by default, for the `local` cloud, a directory remote: .local-stack/<stack>.backups/ (kept
 *     by `pulumi destroy`, so a destroyed stack can be drilled and restored);
 *   - or `--remote <rclone remote>:<bucket>` with `--rclone-config <file>` (an emulator, a bucket);
 *     rclone then sees the caller's RCLONE_CONFIG_* and identity variables (AWS keys/profile,
 *     GOOGLE_APPLICATION_CREDENTIALS, GCE_METADATA_HOST, AZURE_*: PASS_THROUGH), nothing else.
 */
import * as path from "path";
import { PROJECT_DIR } from "../local/program";
import type { BackupStore } from "./rclone";
import { directoryStore, StackNode } from "./stack-backup";

export interface StackOutputsLike {
    cloud?: string;
    clusterName?: string;
    nodes?: { name: string; host: string; port: number; dataDir: string }[];
    clientDir?: string;
    exporterPassword?: string;
    serverVersion?: string;
}

/** The stack's outputs (secrets in clear, in memory only). */
export async function readStackOutputs(stack: string): Promise<StackOutputsLike> {
    const { openStack } = await import("../scale");
    const s = await openStack(stack);
    const out = await s.outputs();
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.value])) as StackOutputsLike;
}

/**
 * The caller's variables rclone may use for the identity. Not AWS_CA_BUNDLE: rclone 1.60's S3
 * backend fails with it set ("unable to load custom CA bundle, HTTPClient's transport unsupported type").
 */
const PASS_THROUGH = /^(RCLONE_CONFIG_[A-Z0-9_]+|AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|PROFILE|REGION|DEFAULT_REGION|SHARED_CREDENTIALS_FILE|CONFIG_FILE|EC2_METADATA_SERVICE_ENDPOINT|ROLE_ARN|WEB_IDENTITY_TOKEN_FILE)|GOOGLE_APPLICATION_CREDENTIALS|GCE_METADATA_HOST|AZURE_[A-Z_]+|MSI_[A-Z_]+|IDENTITY_[A-Z_]+)$/;

/** Where a stack's backups are. Throws naming the flag to fix. */
export function resolveStore(stack: string, o: StackOutputsLike, flags: { remote?: string; rcloneConfig?: string }): BackupStore {
    if (flags.remote || flags.rcloneConfig) {
        if (!flags.remote || !flags.rcloneConfig) throw new Error("--remote <remote>:<bucket> and --rclone-config <file> go together (e.g. --remote redisforge:prod-backups --rclone-config ./rclone.conf)");
        if (!/^[A-Za-z0-9_-]+:[A-Za-z0-9._/-]+$/.test(flags.remote)) throw new Error(`--remote ${flags.remote}: use <rclone remote>:<bucket>[/prefix], e.g. redisforge:prod-backups`);
        const env = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => PASS_THROUGH.test(k) && v !== undefined)) as Record<string, string>;
        return { rcloneConfig: path.resolve(flags.rcloneConfig), remote: flags.remote, env, label: flags.remote };
    }
    if (o.cloud !== "local") throw new Error(`stack ${stack} is on ${o.cloud ?? "an unknown cloud"}: pass --remote <remote>:<bucket> and --rclone-config <file> for its bucket (the rclone.conf a node renders works with your own credentials for S3/GCS)`);
    const base = path.join(PROJECT_DIR, ".local-stack", `${stack}.backups`);
    return directoryStore(path.join(base, "objects"), base);
}

export function stackCluster(stack: string, o: StackOutputsLike): string {
    if (!o.clusterName) throw new Error(`stack ${stack} has no clusterName output; run pulumi up --stack ${stack} once with this version`);
    return o.clusterName;
}

export function stackNodes(stack: string, o: StackOutputsLike): { nodes: StackNode[]; tls: { caFile: string; certFile: string; keyFile: string }; exporterPassword: string } {
    if (!o.nodes?.length || !o.clientDir) throw new Error(`stack ${stack} has no nodes/clientDir outputs; is it a local stack that is up? (bash scripts/local-up.sh ${stack})`);
    if (!o.exporterPassword) throw new Error(`stack ${stack} has no exporterPassword output; run pulumi up --stack ${stack} once with this version`);
    return {
        nodes: o.nodes.map((n) => ({ name: n.name, host: n.host, port: n.port, dataDir: n.dataDir })),
        tls: { caFile: path.join(o.clientDir, "ca.crt"), certFile: path.join(o.clientDir, "client.crt"), keyFile: path.join(o.clientDir, "client.key") },
        exporterPassword: o.exporterPassword,
    };
}
