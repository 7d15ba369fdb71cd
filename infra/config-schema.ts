/**
 * The stack config's shape: the keys with their types and defaults, the typed result, the limits,
 * and the error that lists every problem. Pure data; infra/config.ts validates and re-exports it.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { AclUser } from "../templates/redis";
import type { CloudKind } from "../providers/types";

export const NAMESPACE = "redisforge";

/**
 * Upper bound on Redis nodes (shards x (1 + replicasPerShard)): Redis Cluster is designed for up
 * to 1000 nodes; every node gossips with the others on the cluster bus, so the overhead grows
 * with the node count.
 */
export const MAX_REDIS_NODES = 1000;

/**
 * Upper bound on Envoys: every Envoy keeps connections to every Redis node and refreshes the
 * slot map from them, so each Envoy adds load on every node; beyond this, a larger envoySize
 * adds throughput without that cost.
 */
export const MAX_ENVOYS = 32;

/**
 * Per cloud: addresses each subnet reserves (AWS: network, router, DNS, future use, broadcast;
 * GCP: network, gateway, second-to-last, broadcast; Azure: network, gateway, 2 x DNS,
 * broadcast), and where an internal load balancer takes an address from the private subnets
 * (AWS: an NLB interface in every zone's subnet; GCP and Azure: one frontend address in the
 * first zone's subnet). Clouds without subnets (local) are not listed.
 */
export const SUBNET_RULES: Partial<Record<CloudKind, { reserved: number; internalLb: "every-zone" | "first-zone" }>> = {
    aws: { reserved: 5, internalLb: "every-zone" },
    gcp: { reserved: 4, internalLb: "first-zone" },
    azure: { reserved: 5, internalLb: "first-zone" },
};

/** Port numbers a stack uses. Each host's ports must be distinct. */
export interface PortsConfig {
    /** Client-facing TLS port on the load balancer and the Envoys. */
    client: number;
    /** Redis TLS port on the nodes (plaintext port is always 0). */
    redis: number;
    /** Redis cluster bus port (TLS). */
    bus: number;
    /** redis_exporter port on the nodes. */
    redisExporter: number;
    /** node_exporter port on every VM. */
    nodeExporter: number;
    /** Envoy admin port (stats) on the Envoys. */
    envoyAdmin: number;
}

/** Container images used on the VMs. */
export interface ImagesConfig {
    /** Build images from templates/docker and push them to the stack's registry. */
    build: boolean;
    /** Pinned refs (`repo@sha256:…`) used when `build` is false. Empty string = not set. */
    redis: string;
    envoy: string;
    redisExporter: string;
    nodeExporter: string;
    /** The converge agent image (templates/docker/converge-agent), pinned; formation `agent` only. */
    convergeAgent: string;
}

/** The validated stack config. Topology values are plain; supplied passwords are secret Outputs. */
export interface StackConfig {
    /** DNS label prefixing every host name and secret key (default: the stack name). */
    clusterName: string;
    cloud: CloudKind;
    region: string;
    zones: string[];
    /** A production stack demands replicas ≥ 1. */
    production: boolean;
    shards: number;
    replicasPerShard: number;
    nodeSize: string;
    /** RAM of nodeSize in GiB (maxmemory = 75 %). */
    nodeMemoryGb: number;
    envoySize: string;
    envoyCount: number;
    dataDiskGb: number;
    networkCidr: string;
    clientCidrs: string[];
    monitoringCidrs: string[];
    /** SSH sources; empty = SSH closed. */
    adminCidrs: string[];
    internalLoadBalancer: boolean;
    ports: PortsConfig;
    backupRetentionDays: number;
    images: ImagesConfig;
    /** Form/reshape the cluster with the RedisCluster dynamic resource. */
    formCluster: boolean;
    /**
     * How the RedisCluster resource reaches the cluster: `direct` (the deploying machine connects to
     * the nodes' private addresses) or `agent` (it publishes the spec to the converge store and the
     * converge agent on the nodes applies it; the deployer needs only the cloud's object-store API).
     */
    formation: "direct" | "agent";
    /** Agent mode: the agent repairs, between deploys, what needs no data movement. */
    convergeHeal: boolean;
    redisVersion: string;
    /** Accept a redisVersion below the running one (refused by the RedisCluster resource otherwise). */
    allowDowngrade: boolean;
    tlsValidityDays: number;
    tlsRenewBeforeDays: number;
    /** CA generation that signs the certificates; raising it by one rotates the CA and every certificate. */
    tlsCaGeneration: number;
    /** Keep trusting the previous CA generation (the rotation's overlap window). */
    tlsCaOverlap: boolean;
    /** cluster-node-timeout of every node, ms: how long a master may be unreachable before its replica takes over. */
    clusterNodeTimeoutMs: number;
    /** Passwords supplied as config secrets (others are generated). */
    passwords: Partial<Record<AclUser, pulumi.Output<string>>>;
}

/** Key → declared type and default. Mirrors Pulumi.yaml (a unit test keeps them equal). */
export const CONFIG_KEYS = {
    clusterName: { type: "string", default: "" },
    cloud: { type: "string" },
    region: { type: "string" },
    zones: { type: "array" },
    production: { type: "boolean", default: true },
    shards: { type: "integer", default: 3 },
    replicasPerShard: { type: "integer", default: 1 },
    nodeSize: { type: "string" },
    nodeMemoryGb: { type: "integer" },
    envoySize: { type: "string" },
    envoyCount: { type: "integer", default: 2 },
    dataDiskGb: { type: "integer", default: 50 },
    networkCidr: { type: "string", default: "10.40.0.0/16" },
    clientCidrs: { type: "array" },
    monitoringCidrs: { type: "array", default: [] as string[] },
    adminCidrs: { type: "array", default: [] as string[] },
    internalLoadBalancer: { type: "boolean", default: true },
    clientPort: { type: "integer", default: 6379 },
    redisPort: { type: "integer", default: 6379 },
    busPort: { type: "integer", default: 16379 },
    redisExporterPort: { type: "integer", default: 9121 },
    nodeExporterPort: { type: "integer", default: 9100 },
    envoyAdminPort: { type: "integer", default: 9901 },
    backupRetentionDays: { type: "integer", default: 14 },
    buildImages: { type: "boolean", default: false },
    formCluster: { type: "boolean", default: true },
    formation: { type: "string", default: "direct" },
    convergeHeal: { type: "boolean", default: false },
    convergeAgentImage: { type: "string", default: "" },
    redisImage: { type: "string", default: "" },
    envoyImage: { type: "string", default: "" },
    redisExporterImage: { type: "string", default: "" },
    nodeExporterImage: { type: "string", default: "" },
    redisVersion: { type: "string", default: "8.4" },
    allowDowngrade: { type: "boolean", default: false },
    tlsValidityDays: { type: "integer", default: 365 },
    tlsRenewBeforeDays: { type: "integer", default: 30 },
    tlsCaGeneration: { type: "integer", default: 1 },
    tlsCaOverlap: { type: "boolean", default: true },
    clusterNodeTimeoutMs: { type: "integer", default: 5000 },
    adminPassword: { type: "string", secret: true, default: "" },
    appPassword: { type: "string", secret: true, default: "" },
    readonlyPassword: { type: "string", secret: true, default: "" },
    replicationPassword: { type: "string", secret: true, default: "" },
    exporterPassword: { type: "string", secret: true, default: "" },
} as const satisfies Record<string, { type: "string" | "integer" | "boolean" | "array"; default?: unknown; secret?: boolean }>;

export type ConfigKey = keyof typeof CONFIG_KEYS;

/** Raw values as the engine hands them over (strings; arrays as JSON) or already parsed (tests). */
export type RawConfig = Record<string, unknown>;

export class ConfigError extends Error {
    constructor(public readonly problems: string[]) {
        super(`invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` + problems.map((p) => `  - ${p}`).join("\n"));
        this.name = "ConfigError";
    }
}

export interface ValidationResult {
    config: StackConfig;
    /** Advice that does not stop the deployment (e.g. a single Envoy). */
    warnings: string[];
}
