/**
 * The cloud-init renderer's inputs and the host layout it writes (types and constants only; the
 * renderer and its checks are in index.ts, which re-exports everything here).
 */
import type { EnvoyConfigParams } from "../envoy";
import type { RedisNodeConvergeParams } from "./converge";

/** `qemu`: the VM stack on this machine (providers/qemu): its metadata service plays the secret store and the instance identity. */
export type CloudKind = "aws" | "gcp" | "azure" | "qemu";
export const CLOUD_KINDS: readonly CloudKind[] = ["aws", "gcp", "azure", "qemu"];

/**
 * A reference to a secret in the cloud secret store, never its value:
 * - aws: the Secrets Manager ARN (`arn:aws:secretsmanager:<region>:<account>:secret:<name>`);
 * - gcp: `projects/<project>/secrets/<name>` (optionally `/versions/<n>`);
 * - azure: `https://<vault>.vault.azure.net/secrets/<name>` (optionally `/<32-hex version>`);
 * - qemu: `http://169.254.169.254/redisforge/v1/secrets/<name>` (the stack's metadata service).
 * Each secret holds the exact content of one file (PEM, users.acl text, or a bare password
 * without trailing newline).
 */
export type SecretRef = string;

/** Secrets a Redis node reads at boot. */
export interface RedisNodeSecretRefs {
    /** The node's TLS certificate (PEM; serverAuth + clientAuth, SANs: private IP, DNS name). */
    tlsCert: SecretRef;
    /** The node's TLS private key (PEM). */
    tlsKey: SecretRef;
    /** The cluster CA certificate (PEM). */
    tlsCa: SecretRef;
    /** users.acl as rendered by renderUsersAcl (hashes only, but still kept out of user-data). */
    usersAcl: SecretRef;
    /** The masterauth include file as rendered by renderSecretsInclude. */
    secretsInclude: SecretRef;
    /** The `exporter` ACL user's password (bare) for redis_exporter. */
    exporterPassword: SecretRef;
    /** The `tlsreload` ACL user's password (bare): the secret refresh loads new TLS material with it (CONFIG SET). */
    reloadPassword: SecretRef;
}

/** Secrets an Envoy VM reads at boot. */
export interface EnvoySecretRefs {
    /** Envoy's server certificate (PEM; SAN: the load balancer DNS name / IP). */
    serverCert: SecretRef;
    serverKey: SecretRef;
    /** The cluster CA certificate (PEM). */
    ca: SecretRef;
    /** Envoy's client certificate towards Redis (PEM; clientAuth). */
    clientCert: SecretRef;
    clientKey: SecretRef;
    /** Password clients use to AUTH at Envoy (bare, no newline). */
    downstreamPassword: SecretRef;
    /** Password of the upstream ACL user at the Redis nodes (bare, no newline). */
    upstreamPassword: SecretRef;
}

/**
 * The HEALTHCHECK timing of the images in templates/docker (tests/unit/templates/docker.test.ts
 * checks these against the Dockerfiles): a unit scales them when the substrate is slower.
 */
export const IMAGE_HEALTHCHECK = {
    redis: { intervalSec: 10, timeoutSec: 5 },
    envoy: { intervalSec: 10, timeoutSec: 3 },
} as const;

/** Parameters common to every RedisForge VM. */
export interface VmUserDataParams {
    /** Which cloud's secret store and metadata service the boot script talks to. */
    cloud: CloudKind;
    /**
     * How many times slower than a cloud VM this substrate runs processes: multiplies the systemd
     * start timeouts, the health waits and the images' health-check timing (a TLS health probe
     * that answers in well under 5 s on a cloud VM takes longer under QEMU's software emulation).
     * 1 (the default) on the clouds; the adapter's `timeScale`.
     */
    timeScale?: number;
    /** Cluster name (DNS label), e.g. `prod-redis`. */
    clusterName: string;
    /** This VM's name (DNS label), e.g. `prod-redis-shard0-master`. */
    nodeName: string;
    /** Failure domain (zone) of this VM. */
    zone: string;
    /**
     * The VM's private IP. Static on purpose: Redis Cluster records peers by IP in nodes.conf and the
     * TLS certificate carries it as a SAN, so the adapter allocates it (AWS privateIp, GCP networkIp,
     * Azure static NIC IP).
     */
    privateIp: string;
    /** node_exporter image pinned by digest. */
    nodeExporterImage: string;
    /** node_exporter listen port. Default 9100. */
    nodeExporterPort?: number;
    /**
     * The complete node_exporter flag list (components/exporter-targets.ts nodeExporterFlags()).
     * Replaces the default (`--web.listen-address=<privateIp>:<port>`, textfile dir). The container
     * sees the host's root at /host (`--path.rootfs=/host` is always added).
     */
    nodeExporterFlags?: string[];
}

export interface RedisNodeUserDataParams extends VmUserDataParams {
    /** Redis TLS client port. Default 6379. */
    redisPort?: number;
    /** Cluster bus port. Default 16379. */
    busPort?: number;
    /** redis_exporter listen port. Default 9121. */
    redisExporterPort?: number;
    /**
     * Where the data disk shows up: `/dev/nvme1n1`, `/dev/sdf`, `/dev/disk/by-id/google-redis-data`,
     * `/dev/disk/azure/scsi1/lun0`. Waited for (bounded), formatted only if empty.
     */
    dataDiskDevice: string;
    /** The hardened Redis image (templates/docker/redis) pinned by digest. */
    redisImage: string;
    /** redis_exporter image pinned by digest. */
    redisExporterImage: string;
    /**
     * The complete redis_exporter flag list (components/exporter-targets.ts redisExporterFlags() with
     * the REDIS_CONTAINER TLS paths). Replaces the default, which is the same set: rediss:// to the
     * node, user `exporter`, client certificate, `--config-command=INFO`, private listen address.
     * Never a password: the container reads REDIS_PASSWORD from the env file fetched at boot.
     */
    redisExporterFlags?: string[];
    /** maxmemory in bytes (see maxmemoryFor). */
    maxmemoryBytes: number;
    /** cluster-node-timeout, ms (redisforge:clusterNodeTimeoutMs). Default 5000. */
    clusterNodeTimeoutMs?: number;
    /** Redis version of the image; `@since` template lines are gated on it. Default 8.4.0. */
    redisVersion?: string;
    /** Secret store references for this node's secrets. */
    secrets: RedisNodeSecretRefs;
    /** Where and how this node backs up its AOF + nodes.conf (templates/backup). Required: every Redis VM is backed up. */
    backup: RedisNodeBackupParams;
    /** The converge agent (formation `agent`; converge.ts). Absent: none runs on this node. */
    converge?: RedisNodeConvergeParams;
}

/**
 * The backup target of a Redis node: the stack's BackupBucket, reached with the VM identity only.
 * Names and ids, never a credential (no key, SAS, token or service-account file can be passed).
 */
export interface RedisNodeBackupParams {
    /** Bucket (S3/GCS) or blob container (Azure) name, optionally with a `/prefix`, e.g. `prod-redis-backups`. */
    bucket: string;
    /** AWS only, required there: the bucket's region, e.g. `us-east-1`. */
    region?: string;
    /** Azure only, required there: the storage account holding the container (3-24 lower-case letters and digits). */
    storageAccount?: string;
    /** Azure only: client id (UUID) of the VM's user-assigned managed identity; omit for a system-assigned identity. */
    msiClientId?: string;
    /** qemu only, required there: the S3-compatible server, `http://<ipv4>:<port>` (credentials come from the metadata service, like an instance role). */
    endpoint?: string;
    /** systemd OnCalendar of the backup timer. Default `*:0/15`. */
    onCalendar?: string;
    /** RandomizedDelaySec of the backup timer. Default 300. */
    randomizedDelaySec?: number;
}

export interface EnvoyUserDataParams extends VmUserDataParams {
    /** The Envoy image (templates/docker/envoy) pinned by digest. */
    envoyImage: string;
    /** Envoy settings; `clusterName` and `privateIp` are taken from these params, files from the image layout. */
    envoy: Omit<EnvoyConfigParams, "clusterName" | "privateIp" | "files">;
    /** Secret store references for Envoy's secrets. */
    secrets: EnvoySecretRefs;
}

/** A cloud-init `write_files` entry. */
export interface WriteFile {
    path: string;
    content: string;
    owner?: string;
    permissions?: string;
}

/** The subset of cloud-config RedisForge emits (validated by `cloud-init schema` in tests). */
export interface CloudConfig {
    package_update: boolean;
    package_upgrade: boolean;
    packages: string[];
    write_files: WriteFile[];
    runcmd: string[][];
}

/** Host layout shared by the units, the boot scripts and the images. */
export const HOST = {
    libDir: "/usr/local/lib/redisforge",
    etcDir: "/etc/redisforge",
    bootEnv: "/etc/redisforge/boot.env",
    /** Facts for reload-redis-tls.sh (no secrets). */
    tlsReloadEnv: "/etc/redisforge/tls-reload.env",
    /** 0400 root: REDISCLI_AUTH=<password of tlsreload>, read by reload-redis-tls.sh only. */
    tlsReloadAuth: "/run/redisforge/reload/auth.env",
    secretsList: "/etc/redisforge/secrets.list",
    redisConfDir: "/etc/redisforge/redis",
    redisSecretsDir: "/run/redisforge/redis",
    envoyConfDir: "/etc/redisforge/envoy",
    envoySecretsDir: "/run/redisforge/envoy",
    dataMount: "/var/lib/redisforge/data",
    dataLabel: "redisdata",
} as const;

/** UIDs inside the official images: `redis` is 999 in redis:*, `envoy` is 101 in envoyproxy/envoy. */
export const REDIS_UID = 999;
export const ENVOY_UID = 101;

/** Paths inside the Redis container (templates/docker/redis mounts). */
export const REDIS_CONTAINER = {
    confDir: "/etc/redis",
    secretsDir: "/run/secrets/redis",
    dataDir: "/data",
} as const;
