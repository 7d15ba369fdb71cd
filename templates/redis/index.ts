/**
 * The one way to render a node's redis.conf, users.acl and secrets include.
 * Clouds (cloud-init renders the same templates at boot), the local stack, the lab
 * and the tests all call these functions.
 */
import { createHash } from "crypto";
import { gateForVersion, loadTemplate, parseVersion, render, ServerVersion } from "../render";

/**
 * The ACL users every RedisForge cluster has. `default` is always off. `tlsreload` may run CONFIG SET
 * only: the node-local secret refresh (and the local stack's provider) loads re-issued TLS material
 * with it instead of restarting the node. `converge` is the converge agent's user
 * (providers/redis-cluster/agent): what forming, reshaping and healing the cluster need (CLUSTER,
 * INFO, CONFIG GET/SET, MIGRATE with the keys it moves), without FLUSHALL, CLUSTER RESET or any
 * other dangerous command; tests/integration/redis-cluster/agent.test.ts runs the agent as it.
 */
export const ACL_USERS = ["admin", "app", "readonly", "replication", "exporter", "tlsreload", "converge"] as const;
export type AclUser = (typeof ACL_USERS)[number];
export type AclPasswords = Record<AclUser, string>;

/** cluster-node-timeout when the stack does not set redisforge:clusterNodeTimeoutMs, ms. */
export const DEFAULT_CLUSTER_NODE_TIMEOUT_MS = 5000;

/** Minimum length of any ACL password, generated or supplied. */
export const MIN_PASSWORD_LENGTH = 32;

export interface RedisConfParams {
    /** Human name of the node, e.g. `prod-shard0-master`. */
    nodeName: string;
    /** Failure domain label. */
    zone: string;
    /** Address redis-server binds to (the VM's private IP, or a loopback address). */
    bindAddress: string;
    /** Address other nodes and clients reach this node on. */
    announceIp: string;
    /** TLS client port (the plaintext port is always 0). */
    port: number;
    /** Cluster bus port (TLS). */
    busPort: number;
    dataDir: string;
    tlsCertFile: string;
    tlsKeyFile: string;
    tlsCaFile: string;
    /** `yes` requires client certificates (mTLS); `optional` verifies them when presented. Default `yes`. */
    tlsAuthClients?: "yes" | "optional" | "no";
    aclFile: string;
    /** 0600 include file holding `masterauth`, written from the secret store at boot. */
    secretsFile: string;
    maxmemoryBytes: number;
    /** Default `noeviction`: a database that silently drops data is not a database. */
    maxmemoryPolicy?: string;
    /** Empty string logs to stdout (containers); a path logs to a file. */
    logFile?: string;
    /** Must not exceed net.core.somaxconn; default 511. */
    tcpBacklog?: number;
    /**
     * cluster-node-timeout, ms (stack key `redisforge:clusterNodeTimeoutMs`): how long a master may
     * be unreachable before its replica is promoted. Default 5000.
     */
    clusterNodeTimeoutMs?: number;
    /** Server version the file is for; `@since` lines are dropped for older servers. Default 8.4.0. */
    serverVersion?: string | ServerVersion;
}

export function renderRedisConf(p: RedisConfParams): string {
    const version = typeof p.serverVersion === "string" ? parseVersion(p.serverVersion) : p.serverVersion ?? { major: 8, minor: 4, patch: 0 };
    const text = render(
        loadTemplate("redis/redis.conf.tmpl"),
        {
            ...p,
            tlsAuthClients: p.tlsAuthClients ?? "yes",
            maxmemoryPolicy: p.maxmemoryPolicy ?? "noeviction",
            logFile: p.logFile ?? "",
            tcpBacklog: p.tcpBacklog ?? 511,
            clusterNodeTimeoutMs: p.clusterNodeTimeoutMs ?? DEFAULT_CLUSTER_NODE_TIMEOUT_MS,
        } as unknown as Record<string, string | number>,
        "redis.conf",
    );
    return gateForVersion(text, version);
}

/** SHA-256 of a password in the form users.acl expects after `#`. */
export function aclHash(password: string): string {
    return createHash("sha256").update(password, "utf8").digest("hex");
}

/** users.acl holds only SHA-256 hashes: the file itself is not a secret. */
export function renderUsersAcl(passwords: AclPasswords): string {
    const vars: Record<string, string> = {};
    for (const user of ACL_USERS) {
        const pw = passwords[user];
        if (typeof pw !== "string" || pw.length < MIN_PASSWORD_LENGTH) {
            throw new Error(`users.acl: password for ACL user "${user}" must be at least ${MIN_PASSWORD_LENGTH} characters`);
        }
        vars[`${user}Hash`] = aclHash(pw);
    }
    return render(loadTemplate("redis/users.acl.tmpl"), vars, "users.acl");
}

/** The 0600 include file with the replication password (`masteruser` is in redis.conf). */
export function renderSecretsInclude(passwords: Pick<AclPasswords, "replication">): string {
    if (/["\s\\]/.test(passwords.replication)) {
        throw new Error('replication password must not contain whitespace, quotes or backslashes');
    }
    return `masterauth ${passwords.replication}\n`;
}

/** maxmemory for a node with `memoryBytes` of RAM: 75 %, leaving room for AOF rewrite forks and the OS. */
export function maxmemoryFor(memoryBytes: number): number {
    return Math.floor(memoryBytes * 0.75);
}
