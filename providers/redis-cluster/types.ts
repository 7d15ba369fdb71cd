/**
 * Types shared by the RedisCluster planner (pure), executor (ioredis) and dynamic provider.
 *
 * Identity: a node of the desired cluster is named by a stable `id` chosen by the caller
 * (e.g. "node0", or the component's `${name}-shard1-replica0`); the live cluster names nodes
 * by their 40-hex Redis node id. The two meet on the address `host:port`.
 */

/** Number of hash slots in a Redis Cluster. */
export const CLUSTER_SLOTS = 16384;

/** One machine/process that may take part in the cluster. */
export interface ClusterNodeSpec {
    /** Stable key of this node (never derived from its role), e.g. "node0". Unique in a spec. */
    id: string;
    /** Address the executor and the other nodes reach it on (an IP; loopback in the lab). */
    host: string;
    /** TLS client port. */
    port: number;
    /** Failure domain label (availability zone). */
    zone: string;
}

/** The desired cluster. */
export interface ClusterSpec {
    /** Every node that may be used, in a stable order. Extra nodes beyond shards*(1+replicasPerShard) stay spare. */
    nodes: ClusterNodeSpec[];
    /** Number of masters (slot owners). At least 1; production uses 3+. */
    shards: number;
    /** Replicas per master. 0 or more. */
    replicasPerShard: number;
    /**
     * When the zones cannot keep every replica out of its master's zone: `false` (default) throws
     * a clear error; `true` places the replica anyway and reports the degradation in
     * `Placement.degradations` (and in the executor's log).
     */
    allowZoneDegradation?: boolean;
}

/** Credentials of the admin ACL user and the TLS material (PEM strings, never file paths). */
export interface ClusterCredentials {
    username: string;
    password: string;
    tls: {
        /** CA certificate(s) the nodes' certificates are signed by. */
        ca: string;
        /** Client certificate for mTLS (`tls-auth-clients yes`). */
        cert?: string;
        key?: string;
        /** SNI / certificate name to check instead of the IP, when the certificates carry DNS names only. */
        servername?: string;
    };
}

/** An inclusive range of hash slots. */
export interface SlotRange {
    start: number;
    end: number;
}

/** Where each shard lives, as decided by `planPlacement`. */
export interface ShardPlacement {
    /** 0-based shard index. */
    index: number;
    /** Spec id of the master. */
    master: string;
    /** Spec ids of the replicas. */
    replicas: string[];
    /** Slots this shard owns in a fresh cluster. */
    slots: SlotRange[];
}

export interface Placement {
    shards: ShardPlacement[];
    /** Spec ids of nodes not used. */
    spares: string[];
    /** Human-readable notes for every replica that had to share its master's zone (only with allowZoneDegradation). */
    degradations: string[];
}

/** An open slot: left IMPORTING/MIGRATING by an interrupted migration. */
export interface OpenSlot {
    slot: number;
    /** Node id that has it MIGRATING (may be undefined if only the importing side remembers). */
    migratingOn?: string;
    /** Node id that has it IMPORTING. */
    importingOn?: string;
    /** The peer named by either side (target of migrating / source of importing). */
    peer?: string;
}

/** One member of a live cluster, as CLUSTER NODES describes it. */
export interface LiveNode {
    /** 40-hex Redis node id. */
    nodeId: string;
    host: string;
    port: number;
    /** Cluster bus port. */
    busPort: number;
    role: "master" | "replica";
    /** For replicas: node id of the master. */
    masterId?: string;
    /** Slots owned (masters). */
    slots: SlotRange[];
    /** `fail` or `fail?` or not reachable by the executor. */
    failed: boolean;
    /** Spec id, when the address matches a spec node. */
    specId?: string;
    /** Zone of the spec node at this address, when known. */
    zone?: string;
}

/** The live state of the cluster the planner reshapes from. */
export interface LiveTopology {
    /** Members (as agreed by the reachable members). */
    nodes: LiveNode[];
    /** Slots left half-migrated. */
    openSlots: OpenSlot[];
}

/** Steps of a reshape, in the order they must run. Nodes are named by address `host:port`. */
export type ReshapeStep =
    | { kind: "fix-open-slot"; slot: number; from: string; to: string }
    | { kind: "forget"; node: string; nodeId: string; reason: string }
    | { kind: "meet"; node: string }
    | { kind: "migrate"; from: string; to: string; slots: SlotRange[]; count: number }
    | { kind: "replicate"; node: string; master: string }
    | { kind: "failover"; node: string; master: string; reason: string }
    | { kind: "remove"; node: string; nodeId: string; reason: string };

export interface ReshapePlan {
    steps: ReshapeStep[];
    /** Masters (addresses) after the plan. */
    masters: string[];
    /** Total number of slots moved by migrate steps. */
    slotsMoved: number;
    degradations: string[];
}

/** What the executor reports after converge / check. */
export interface ClusterStatus {
    /** cluster_state of every reachable member agrees on `ok`. */
    state: "ok" | "fail" | "degraded";
    masters: { id: string; address: string; zone?: string; slots: number; nodeId: string }[];
    replicas: { id: string; address: string; zone?: string; master: string; linkUp: boolean; nodeId: string }[];
    /** Number of slots owned by some reachable master. */
    slotsCovered: number;
    /** Problems found (uncovered slots, missing replica, master and replica in one zone, open slots...). */
    problems: string[];
    /** Lowest redis_version among the nodes. */
    serverVersion?: string;
}

/** Progress events of long operations. */
export interface ProgressEvent {
    phase: "probe" | "create" | "meet" | "converge" | "replicate" | "migrate" | "failover" | "forget" | "check";
    message: string;
    slotsMoved?: number;
    slotsTotal?: number;
    keysMoved?: number;
    keysPerSec?: number;
}

/** Injected logger (no console output in library code). */
export type Logger = (message: string) => void;

export const nodeAddress = (n: { host: string; port: number }): string => `${n.host}:${n.port}`;
