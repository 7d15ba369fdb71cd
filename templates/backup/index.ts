/**
 * Backups of AOF + nodes.conf to the cloud's object store: the files a Redis VM needs.
 *
 * - `buildRcloneConfig`: the rclone remote per cloud as a typed object serialised to INI. It
 *   authenticates with the VM identity only (S3 `env_auth` = instance role; GCS Application
 *   Default Credentials = the VM's service account; Azure `use_msi` = managed identity). A key
 *   that would carry a credential (key, secret_access_key, sas_url, service_account_*, ...) is
 *   refused, so no secret can ever be rendered into user-data.
 * - `renderBackupEnv`: /etc/redisforge/backup.env for the scripts (no secrets: the Redis password
 *   is read at run time from the exporter env file that fetch-secrets.sh writes).
 * - `renderBackupService` / `renderBackupTimer`: systemd units through templates/render.ts.
 * - `buildBackupFiles`: all of the above plus the two scripts as cloud-init `write_files`
 *   entries, with the packages and the runcmd the cloud-init builder adds.
 *
 * Invariants: the backup job never deletes remote objects (retention is the bucket lifecycle's
 * job), so the VM identity needs write + read + list, not delete; the metric contract is
 * monitoring/README.md "The backup metric contract".
 */
import { loadTemplate, render } from "../render";
import { IMAGE_BY_DIGEST_RE, IPV4_RE, NAME_RE, PATH_RE, Problems } from "../cloud-init/checks";
import { checkTimeScale } from "../systemd";

/** Name of the rclone remote in rclone.conf (BACKUP_REMOTE is `<this>:<bucket>`; no dash, so RCLONE_CONFIG_REDISFORGE_<OPTION> overrides are valid shell names). */
export const RCLONE_REMOTE_NAME = "redisforge";

/** Where the files land on a Redis VM. */
export const BACKUP_PATHS = {
    script: "/usr/local/lib/redisforge/redisforge-backup.sh",
    restoreScript: "/usr/local/lib/redisforge/redisforge-restore.sh",
    rcloneConfig: "/etc/redisforge/backup/rclone.conf",
    env: "/etc/redisforge/backup.env",
    service: "/etc/systemd/system/redisforge-backup.service",
    timer: "/etc/systemd/system/redisforge-backup.timer",
} as const;

/** Debian packages the backup scripts need on the VM (rclone 1.60 in bookworm; redis-cli, redis-check-aof; jq). */
export const BACKUP_PACKAGES = ["rclone", "redis-tools", "jq"] as const;

/** Defaults of the timer. */
export const BACKUP_TIMER_DEFAULTS = { onCalendar: "*:0/15", randomizedDelaySec: 300 } as const;

/** S3 bucket in the VM's region, reached with the instance profile's role. */
export interface S3RemoteParams {
    cloud: "aws";
    /** Region of the bucket, e.g. `us-east-1`. */
    region: string;
    /** Server-side encryption: `AES256` (S3-managed keys, default) or `aws:kms`. */
    serverSideEncryption?: "AES256" | "aws:kms";
    /** KMS key ARN when serverSideEncryption is `aws:kms` (a reference, not a secret). */
    kmsKeyArn?: string;
}

/** GCS bucket, reached with the VM's service account. */
export interface GcsRemoteParams {
    cloud: "gcp";
    /** Uniform bucket-level access (no per-object ACLs). Default true. */
    bucketPolicyOnly?: boolean;
}

/** Azure Blob container, reached with the VM's managed identity. */
export interface AzureRemoteParams {
    cloud: "azure";
    /** Storage account name (3-24 lower-case letters and digits). */
    account: string;
    /** Client id of a user-assigned managed identity; omit for the system-assigned identity. */
    msiClientId?: string;
}

/**
 * The qemu VM stack's S3-compatible server, reached with the credentials the stack's metadata
 * service hands this VM's identity (the EC2 instance-role protocol), as on AWS: `env_auth`.
 */
export interface QemuS3RemoteParams {
    cloud: "qemu";
    /** `http://<ipv4>:<port>` of the S3 server on the stack's private network. */
    endpoint: string;
}

export type RcloneRemoteParams = S3RemoteParams | GcsRemoteParams | AzureRemoteParams | QemuS3RemoteParams;

/** One INI section: name → ordered key/value pairs. */
export type IniSection = Array<[string, string | number | boolean]>;

/** rclone option names that carry credentials: never rendered (the VM identity is the only way in). */
export const CREDENTIAL_KEYS: readonly string[] = [
    "key", "sas_url", "access_key_id", "secret_access_key", "session_token", "sse_customer_key", "sse_customer_key_base64",
    "service_account_file", "service_account_credentials", "client_secret", "token", "password", "client_certificate_password",
    "service_principal_file",
];

const INI_KEY_RE = /^[a-z][a-z0-9_]*$/;
const INI_VALUE_RE = /^[A-Za-z0-9 ._:\/@*=+-]*$/;
const REGION_RE = /^[a-z]{2}(-gov)?-[a-z]+-\d$/;
const KMS_ARN_RE = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[A-Za-z0-9\/_-]+$/;
const AZURE_ACCOUNT_RE = /^[a-z0-9]{3,24}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A tiny typed INI serialiser: `[name]` then `key = value` lines; refuses anything that could break the structure. */
export function toIni(sections: Record<string, IniSection>): string {
    const pr = new Problems();
    const out: string[] = [];
    for (const [name, pairs] of Object.entries(sections)) {
        pr.match(`section ${name}`, name, /^[A-Za-z0-9_-]+$/, "must be a remote name", "use letters, digits, _ and -");
        out.push(`[${name}]`);
        for (const [k, v] of pairs) {
            pr.match(`${name}.${k}`, k, INI_KEY_RE, "must be an rclone option name", "use lower_case_with_underscores");
            if (CREDENTIAL_KEYS.includes(k)) pr.add(`${name}.${k}`, "is a credential option; RedisForge authenticates with the VM identity only", "(not shown)", "remove it; grant the VM's role/service account/managed identity access to the bucket");
            const s = typeof v === "boolean" ? String(v) : String(v);
            pr.match(`${name}.${k}`, s, INI_VALUE_RE, "must be one line of plain characters", "remove quotes, newlines, # and ;");
            out.push(`${k} = ${s}`);
        }
        out.push("");
    }
    pr.throwIfAny("rclone.conf");
    return out.join("\n");
}

/** The typed rclone remote for a cloud (before serialisation). */
export function rcloneRemote(p: RcloneRemoteParams): IniSection {
    const pr = new Problems();
    let section: IniSection;
    switch (p.cloud) {
        case "aws": {
            pr.match("region", p.region, REGION_RE, "must be an AWS region", "use e.g. us-east-1");
            const sse = p.serverSideEncryption ?? "AES256";
            if (sse !== "AES256" && sse !== "aws:kms") pr.add("serverSideEncryption", "must be AES256 or aws:kms", sse, "pick one");
            if (sse === "aws:kms") pr.match("kmsKeyArn", p.kmsKeyArn, KMS_ARN_RE, "must be a KMS key ARN when serverSideEncryption is aws:kms", "pass the key's ARN");
            else if (p.kmsKeyArn !== undefined) pr.add("kmsKeyArn", "is only used with serverSideEncryption aws:kms", p.kmsKeyArn, "set serverSideEncryption: aws:kms or drop kmsKeyArn");
            section = [
                ["type", "s3"],
                ["provider", "AWS"],
                ["env_auth", true], // instance profile role via IMDS
                ["region", p.region],
                ["no_check_bucket", true], // the node may not create buckets; Pulumi does
                ["server_side_encryption", sse],
                ...(sse === "aws:kms" ? ([["sse_kms_key_id", p.kmsKeyArn as string]] as IniSection) : []),
            ];
            break;
        }
        case "gcp":
            // rclone 1.60's GCS backend has no env_auth option: with no credential configured it
            // uses Application Default Credentials, i.e. the VM's service account from the
            // metadata server. Newer rclone releases keep that fallback.
            section = [
                ["type", "google cloud storage"],
                ["bucket_policy_only", p.bucketPolicyOnly ?? true],
                ["no_check_bucket", true],
            ];
            break;
        case "azure":
            pr.match("account", p.account, AZURE_ACCOUNT_RE, "must be a storage account name", "use 3-24 lower-case letters and digits");
            if (p.msiClientId !== undefined) pr.match("msiClientId", p.msiClientId, UUID_RE, "must be a client id (UUID)", "pass the user-assigned identity's clientId");
            section = [
                ["type", "azureblob"],
                ["account", p.account],
                ["use_msi", true], // managed identity via IMDS
                ...(p.msiClientId ? ([["msi_client_id", p.msiClientId]] as IniSection) : []),
            ];
            break;
        case "qemu":
            pr.match("endpoint", p.endpoint, /^http:\/\/(\d{1,3}\.){3}\d{1,3}:\d{1,5}$/, "must be http://<ipv4>:<port>", "pass the stack's S3 endpoint, e.g. http://10.77.0.1:9000");
            section = [
                ["type", "s3"],
                ["provider", "Other"],
                ["env_auth", true], // credentials from the metadata service (instance-role protocol)
                ["endpoint", p.endpoint],
                ["region", "us-east-1"],
                // The server is addressed by IP: bucket in the path, not in a host name. rclone's
                // default for provider Other is path style too; explicit so no default change breaks it.
                ["force_path_style", true],
                ["no_check_bucket", true],
            ];
            break;
        default:
            pr.add("cloud", "must be aws, gcp, azure or qemu", (p as { cloud: unknown }).cloud, "pick the stack's cloud");
            section = [];
    }
    pr.throwIfAny("rclone remote");
    return section;
}

/** rclone.conf text with the one remote `redisforge-backup`. */
export function buildRcloneConfig(p: RcloneRemoteParams): string {
    return `# rclone.conf rendered by RedisForge: remote ${RCLONE_REMOTE_NAME} with the VM identity. No secrets.\n${toIni({ [RCLONE_REMOTE_NAME]: rcloneRemote(p) })}`;
}

export interface BackupEnvParams {
    clusterName: string;
    nodeName: string;
    /** Bucket (S3/GCS) or container (Azure) name, optionally with a prefix: `my-bucket` or `my-bucket/redis`. */
    bucket: string;
    /** Host data dir holding nodes.conf and appendonlydir. Default /var/lib/redisforge/data. */
    dataDir?: string;
    /** Address redis-server listens on (the VM's private IP). */
    redisHost: string;
    /** TLS port. Default 6379. */
    redisPort?: number;
    /** TLS files on the host (the ones fetch-secrets.sh writes). Defaults: /run/redisforge/redis/tls/{ca.crt,node.crt,node.key}. */
    tlsCaFile?: string;
    tlsCertFile?: string;
    tlsKeyFile?: string;
    /** ACL user with +info. Default `exporter`. */
    redisUser?: string;
    /** File with `REDIS_PASSWORD=<password>` for that user. Default /run/redisforge/exporter/exporter.env. */
    passwordFile?: string;
    /** node_exporter textfile dir. Default /var/lib/prometheus/node-exporter. */
    textfileDir?: string;
    /** Redis image (pinned by digest) whose redis-check-aof matches the server's AOF format; empty uses the host's redis-check-aof. */
    checkAofImage?: string;
    /**
     * Multiplies the bound of each redis-cli call (REDIS_CLI_TIMEOUT_SEC, 10 s): the adapter's
     * `timeScale`. Default 1. (Under emulation the timer's first run, right after boot, timed out
     * at 10 s and the first backup came 15 min later.)
     */
    timeScale?: number;
}

/** redisforge-backup.sh's bound of one redis-cli call (TLS connect + INFO) on a cloud VM, s. */
export const REDIS_CLI_TIMEOUT_SEC = 10;

const BUCKET_RE = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9](\/[A-Za-z0-9._-]+)*$/;

/** /etc/redisforge/backup.env. Throws naming every bad parameter. */
export function renderBackupEnv(p: BackupEnvParams): string {
    const pr = new Problems();
    pr.match("clusterName", p.clusterName, NAME_RE, "must be a lower-case DNS label", "use e.g. prod-redis");
    pr.match("nodeName", p.nodeName, NAME_RE, "must be a lower-case DNS label", "use e.g. prod-redis-shard0-master");
    pr.match("bucket", p.bucket, BUCKET_RE, "must be a bucket/container name with an optional /prefix", "use e.g. prod-redis-backups");
    pr.match("redisHost", p.redisHost, IPV4_RE, "must be an IPv4 address", "pass the VM's private IP");
    if (p.redisPort !== undefined) pr.port("redisPort", p.redisPort);
    for (const k of ["dataDir", "tlsCaFile", "tlsCertFile", "tlsKeyFile", "passwordFile", "textfileDir"] as const) {
        if (p[k] !== undefined) pr.match(k, p[k], PATH_RE, "must be an absolute path", "use e.g. /var/lib/redisforge/data");
    }
    if (p.redisUser !== undefined) pr.match("redisUser", p.redisUser, /^[a-z][a-z0-9_-]*$/, "must be an ACL user name", "use exporter");
    if (p.checkAofImage) pr.match("checkAofImage", p.checkAofImage, IMAGE_BY_DIGEST_RE, "must be pinned by digest", "pass the Redis image's repoDigest");
    checkTimeScale(p.timeScale, pr);
    pr.throwIfAny(`backup.env of ${typeof p.nodeName === "string" ? p.nodeName : "?"}`);
    return render(
        loadTemplate("backup/backup.env.tmpl"),
        {
            clusterName: p.clusterName,
            nodeName: p.nodeName,
            remote: `${RCLONE_REMOTE_NAME}:${p.bucket}`,
            rcloneConfigPath: BACKUP_PATHS.rcloneConfig,
            dataDir: p.dataDir ?? "/var/lib/redisforge/data",
            aofDirname: "appendonlydir",
            aofFilename: "appendonly.aof",
            redisHost: p.redisHost,
            redisPort: p.redisPort ?? 6379,
            tlsCaFile: p.tlsCaFile ?? "/run/redisforge/redis/tls/ca.crt",
            tlsCertFile: p.tlsCertFile ?? "/run/redisforge/redis/tls/node.crt",
            tlsKeyFile: p.tlsKeyFile ?? "/run/redisforge/redis/tls/node.key",
            redisUser: p.redisUser ?? "exporter",
            passwordFile: p.passwordFile ?? "/run/redisforge/exporter/exporter.env",
            textfileDir: p.textfileDir ?? "/var/lib/prometheus/node-exporter",
            checkAofImage: p.checkAofImage ?? "",
            redisCliTimeoutSec: REDIS_CLI_TIMEOUT_SEC * (p.timeScale ?? 1),
        },
        "backup.env",
    );
}

/** redisforge-backup.service. */
export function renderBackupService(p: { nodeName: string; bucket: string; timeoutSec?: number }): string {
    const pr = new Problems();
    pr.match("nodeName", p.nodeName, NAME_RE, "must be a lower-case DNS label", "use e.g. prod-redis-shard0-master");
    pr.match("bucket", p.bucket, BUCKET_RE, "must be a bucket/container name with an optional /prefix", "use e.g. prod-redis-backups");
    pr.throwIfAny("redisforge-backup.service");
    return render(
        loadTemplate("backup/redisforge-backup.service.tmpl"),
        {
            nodeName: p.nodeName,
            remote: `${RCLONE_REMOTE_NAME}:${p.bucket}`,
            envFile: BACKUP_PATHS.env,
            scriptPath: BACKUP_PATHS.script,
            timeoutSec: p.timeoutSec ?? 3600,
        },
        "redisforge-backup.service",
    );
}

/** redisforge-backup.timer: every 15 min by default, with a random delay that spreads the nodes. */
export function renderBackupTimer(p: { nodeName: string; onCalendar?: string; randomizedDelaySec?: number }): string {
    const pr = new Problems();
    pr.match("nodeName", p.nodeName, NAME_RE, "must be a lower-case DNS label", "use e.g. prod-redis-shard0-master");
    if (p.onCalendar !== undefined) pr.match("onCalendar", p.onCalendar, /^[A-Za-z0-9*:\/ ,.~-]+$/, "must be a systemd calendar expression", "use e.g. *:0/15 (check with systemd-analyze calendar)");
    const delay = p.randomizedDelaySec ?? BACKUP_TIMER_DEFAULTS.randomizedDelaySec;
    if (!Number.isInteger(delay) || delay < 0) pr.add("randomizedDelaySec", "must be a non-negative integer", delay, "use e.g. 300");
    pr.throwIfAny("redisforge-backup.timer");
    return render(
        loadTemplate("backup/redisforge-backup.timer.tmpl"),
        { nodeName: p.nodeName, onCalendar: p.onCalendar ?? BACKUP_TIMER_DEFAULTS.onCalendar, randomizedDelaySec: delay },
        "redisforge-backup.timer",
    );
}

/** A cloud-init `write_files` entry (same shape as templates/cloud-init WriteFile). */
export interface BackupFile {
    path: string;
    content: string;
    owner: string;
    permissions: string;
}

export interface BackupFilesParams extends BackupEnvParams {
    remote: RcloneRemoteParams;
    onCalendar?: string;
    randomizedDelaySec?: number;
}

/**
 * A backup script as the VMs get it: the comment-only lines after `set -euo pipefail` dropped (AWS caps
 * raw user-data at 16 KiB gzipped); the header before it is the script's `--help` and stays, and so do
 * shellcheck directives. The full, commented script is templates/backup/<name>.
 */
export function withoutBodyComments(text: string): string {
    const lines = text.split("\n");
    const start = lines.findIndex((l) => /^set -euo pipefail/.test(l));
    if (start < 0) throw new Error("a backup script without `set -euo pipefail`");
    return lines.filter((l, i) => i <= start || /^\s*# shellcheck /.test(l) || !/^\s*#/.test(l)).join("\n");
}

/** Everything a Redis VM needs for backups: files, packages and the runcmd that enables the timer. */
export function buildBackupFiles(p: BackupFilesParams): { files: BackupFile[]; packages: string[]; runcmd: string[][] } {
    const file = (path: string, content: string, permissions: string): BackupFile => ({ path, content, owner: "root:root", permissions });
    return {
        files: [
            file(BACKUP_PATHS.script, withoutBodyComments(loadTemplate("backup/redisforge-backup.sh")), "0755"),
            file(BACKUP_PATHS.restoreScript, withoutBodyComments(loadTemplate("backup/redisforge-restore.sh")), "0755"),
            file(BACKUP_PATHS.rcloneConfig, buildRcloneConfig(p.remote), "0644"),
            file(BACKUP_PATHS.env, renderBackupEnv(p), "0644"),
            file(BACKUP_PATHS.service, renderBackupService({ nodeName: p.nodeName, bucket: p.bucket }), "0644"),
            file(BACKUP_PATHS.timer, renderBackupTimer({ nodeName: p.nodeName, onCalendar: p.onCalendar, randomizedDelaySec: p.randomizedDelaySec }), "0644"),
        ],
        packages: [...BACKUP_PACKAGES],
        runcmd: [["systemctl", "enable", "--now", "redisforge-backup.timer"]],
    };
}
