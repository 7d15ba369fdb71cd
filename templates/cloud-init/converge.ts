/**
 * The converge agent on a Redis VM (formation `agent`, providers/redis-cluster/agent): what the
 * node's user-data adds for it. The Redis node builder (index.ts) merges it.
 *
 * - secrets (fetched at boot like the node's own, refreshed by the same timer): the `converge` ACL
 *   user's password, and copies of the node's TLS certificate, key and the CA owned by the agent's
 *   uid (the node's certificate is a client certificate too: the nodes require mTLS);
 * - /etc/redisforge/converge/config.json (no secret): this node as the lease contender, the store's
 *   names (bucket, prefix, endpoint), `storeCredentials: instance` (the VM identity through the
 *   cloud's metadata service: no key on the node), the Redis user and the files above, the
 *   node_exporter textfile its metrics go to;
 * - redisforge-converge.service: the agent image pinned by digest, as uid/gid 10001, read-only root,
 *   no capability, host network (it reaches every node's private address and the store's API).
 *   Started in the boot's one systemd transaction with the other units. `Restart=always`: the agent
 *   exits 75 when it loses its lease and comes back as a contender.
 */
import { renderContainerUnit } from "../systemd";
import { IMAGE_BY_DIGEST_RE } from "./checks";
import type { SecretRef, WriteFile } from "./params";

/** The agent image's user (templates/docker/converge-agent); also the group that may write node_exporter's textfiles. */
export const CONVERGE_UID = 10001;

export const CONVERGE_HOST = {
    confDir: "/etc/redisforge/converge",
    secretsDir: "/run/redisforge/converge",
} as const;

/** Paths inside the agent container. */
export const CONVERGE_CONTAINER = {
    config: "/etc/redisforge/converge/config.json",
    secretsDir: "/run/secrets/converge",
    textfileDir: "/textfile",
} as const;

/** Where the converge documents are (providers/redis-cluster/agent/stores.ts settings; names only). */
export type ConvergeStoreParams =
    | { kind: "s3"; endpoint: string; bucket: string; prefix: string; region: string }
    | { kind: "gcs"; bucket: string; prefix: string; endpoint?: string }
    | { kind: "azure"; endpoint: string; account: string; container: string; prefix: string };

export interface RedisNodeConvergeParams {
    /** The converge agent image (templates/docker/converge-agent) pinned by digest. */
    image: string;
    store: ConvergeStoreParams;
    /** Client id of the VM's user-assigned managed identity (Azure: the token request names it). */
    msiClientId?: string;
    /** Reference to the `converge` ACL user's password in the secret store. */
    passwordRef: SecretRef;
    /** Work round and lease ttl, ms. Defaults 5000 and 30000. */
    intervalMs?: number;
    leaseTtlMs?: number;
}

export interface ConvergeFiles {
    secrets: { dest: string; uid: number; format: "file"; ref: SecretRef }[];
    files: WriteFile[];
    unit: string;
}

/** Problems with the converge parameters, each as [field, rule]. */
export function checkConvergeParams(c: RedisNodeConvergeParams): [string, string][] {
    const p: [string, string][] = [];
    if (typeof c.image !== "string" || !IMAGE_BY_DIGEST_RE.test(c.image)) p.push(["converge.image", `must be pinned by digest (repo@sha256:<64 hex>); got ${JSON.stringify(c.image)}`]);
    const s = (c.store ?? {}) as Record<string, unknown>;
    const need: Record<string, string[]> = { s3: ["endpoint", "bucket", "prefix", "region"], gcs: ["bucket", "prefix"], azure: ["endpoint", "account", "container", "prefix"] };
    const keys = need[String(s.kind)];
    if (!keys) p.push(["converge.store.kind", `must be s3, gcs or azure; got ${JSON.stringify(s.kind)}`]);
    else for (const k of keys) if (typeof s[k] !== "string" || !s[k]) p.push([`converge.store.${k}`, "is required"]);
    if (s.kind === "azure" && !c.msiClientId) p.push(["converge.msiClientId", "is required on Azure (the user-assigned identity the token request names)"]);
    return p;
}

export function buildConvergeFiles(c: RedisNodeConvergeParams, node: { nodeName: string; clusterName: string; timeScale?: number }, tls: { cert: SecretRef; key: SecretRef; ca: SecretRef }, textfileDir: string): ConvergeFiles {
    const h = CONVERGE_HOST;
    const k = CONVERGE_CONTAINER;
    const config = {
        holder: node.nodeName,
        store: c.store,
        storeCredentials: { instance: c.msiClientId ? { clientId: c.msiClientId } : {} },
        redis: { username: "converge", passwordFile: `${k.secretsDir}/password`, caFile: `${k.secretsDir}/tls/ca.crt`, certFile: `${k.secretsDir}/tls/node.crt`, keyFile: `${k.secretsDir}/tls/node.key` },
        intervalMs: c.intervalMs ?? 5000,
        leaseTtlMs: c.leaseTtlMs ?? 30000,
        metricsFile: `${k.textfileDir}/redisforge_converge.prom`,
    };
    const unit = renderContainerUnit({
        unitName: "redisforge-converge",
        description: `RedisForge converge agent on ${node.nodeName} of ${node.clusterName}`,
        image: c.image,
        requires: ["redisforge-secrets.service"],
        runArgs: [
            "--user", `${CONVERGE_UID}:${CONVERGE_UID}`, "--read-only", "--cap-drop", "ALL",
            "-v", `${h.confDir}:${h.confDir}:ro`, "-v", `${h.secretsDir}:${k.secretsDir}:ro`, "-v", `${textfileDir}:${k.textfileDir}`,
        ],
        command: [k.config],
        healthTimeoutSec: 60,
        stopTimeoutSec: 30,
        timeScale: node.timeScale,
    });
    return {
        secrets: [
            { dest: `${h.secretsDir}/password`, uid: CONVERGE_UID, format: "file", ref: c.passwordRef },
            { dest: `${h.secretsDir}/tls/node.crt`, uid: CONVERGE_UID, format: "file", ref: tls.cert },
            { dest: `${h.secretsDir}/tls/node.key`, uid: CONVERGE_UID, format: "file", ref: tls.key },
            { dest: `${h.secretsDir}/tls/ca.crt`, uid: CONVERGE_UID, format: "file", ref: tls.ca },
        ],
        files: [{ path: `${h.confDir}/config.json`, content: `${JSON.stringify(config, null, 2)}\n`, owner: "root:root", permissions: "0644" }],
        unit,
    };
}
