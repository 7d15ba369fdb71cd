/**
 * The RedisCluster resource's model, pure (no Pulumi engine, no I/O): the plain inputs and
 * outputs, which inputs reshape the cluster, and what a diff between two input sets or against the
 * live cluster means. provider.ts is the CRUD glue over it; provider-agent.ts the agent mode.
 */
import * as pulumi from "@pulumi/pulumi";
import { DriftReport } from "./operations/respread";
import { AgentStoreSettings } from "./agent/deployer";
import { ClusterCredentials, ClusterNodeSpec, ClusterSpec, ClusterStatus } from "./types";

/**
 * The restart hook as data (a function cannot cross the engine's serialisation).
 * `local-process`: each node is a redis-server started by the local stack from `dataDir` with
 * `confFile`; it is stopped by PID (pid file in `dataDir`) and started with `server`.
 */
export interface RollingRestart {
    kind: "local-process";
    nodes: { id: string; dataDir: string; confFile: string; server: string }[];
}

/** The plain (resolved) inputs as the provider sees them. */
export interface RedisClusterInputs {
    nodes: ClusterNodeSpec[];
    shards: number;
    replicasPerShard: number;
    allowZoneDegradation?: boolean;
    adminUsername: string;
    adminPassword: string;
    caCert: string;
    clientCert?: string;
    clientKey?: string;
    tlsServername?: string;
    deleteAction?: "keep" | "reset";
    convergeTimeoutSec?: number;
    connectTimeoutSec?: number;
    migrateBatchKeys?: number;
    formationNodeTimeoutMs?: number;
    targetVersion?: string;
    allowDowngrade?: boolean;
    rollingRestart?: RollingRestart;
    nodeReturnTimeoutSec?: number;
    /** "direct" (default): the deployer converges the nodes itself; "agent": it publishes the spec for the converge agent on the nodes and waits for it. */
    formation?: "direct" | "agent";
    /** agent mode: where spec/status/lease live (no secret). */
    agentStore?: AgentStoreSettings;
    /** agent mode: the deployer's store credentials, JSON {accessKeyId, secretAccessKey, sessionToken?} (secret). */
    agentStoreCredentials?: string;
    /** agent mode: the agent repairs drift that moves no data between deploys. Default false. */
    heal?: boolean;
    /** agent mode: bound on waiting for the agent, seconds. Default 1800. */
    agentWaitTimeoutSec?: number;
}

/** Outputs (besides the inputs). None of them is a secret. */
export interface RedisClusterStatusOutputs {
    state: ClusterStatus["state"];
    masters: { id: string; address: string; zone?: string; slots: number }[];
    replicas: { id: string; address: string; zone?: string; master: string; linkUp: boolean }[];
    slotsCovered: number;
    /** Zone of each master, in `masters` order. */
    zonesOfMasters: string[];
    problems: string[];
    serverVersion: string;
    /** Addresses that are members after the last create/update (lets the next update recognise leaving nodes). */
    memberAddresses: string[];
    /**
     * What the next `pulumi up` would change although no input changed (drift), one line per
     * planned step, e.g. a planned failover that re-spreads masters crowded into one zone after an
     * automatic failover. Empty when the cluster matches its spec. Reported by `read` (refresh).
     */
    pendingRepairs: string[];
}

export type RedisClusterOutputs = RedisClusterInputs & RedisClusterStatusOutputs;

/** Properties whose change reshapes the cluster; the rest only update stored settings. */
export const TOPOLOGY_KEYS = ["nodes", "shards", "replicasPerShard", "allowZoneDegradation"] as const;
export const SETTING_KEYS = ["adminUsername", "adminPassword", "caCert", "clientCert", "clientKey", "tlsServername", "deleteAction", "convergeTimeoutSec", "connectTimeoutSec", "migrateBatchKeys", "formationNodeTimeoutMs", "formation", "agentStore", "agentStoreCredentials", "heal", "agentWaitTimeoutSec"] as const;
/** Properties of the server version: a change of `targetVersion` rolls the nodes. */
export const VERSION_KEYS = ["targetVersion", "allowDowngrade", "rollingRestart", "nodeReturnTimeoutSec"] as const;
/** Marked secret in state and outputs. */
export const SECRET_KEYS = ["adminPassword", "caCert", "clientCert", "clientKey", "agentStoreCredentials"];

export function specOf(i: RedisClusterInputs): ClusterSpec {
    return {
        nodes: i.nodes.map((n) => ({ id: n.id, host: n.host, port: Number(n.port), zone: n.zone })),
        shards: Number(i.shards),
        replicasPerShard: Number(i.replicasPerShard),
        allowZoneDegradation: !!i.allowZoneDegradation,
    };
}

export function credsOf(i: RedisClusterInputs): ClusterCredentials {
    return {
        username: i.adminUsername || "admin",
        password: i.adminPassword,
        tls: { ca: i.caCert, cert: i.clientCert, key: i.clientKey, servername: i.tlsServername },
    };
}

export function statusOutputs(s: ClusterStatus, pendingRepairs: string[] = []): RedisClusterStatusOutputs {
    return {
        state: s.state,
        masters: s.masters.map((m) => ({ id: m.id, address: m.address, zone: m.zone, slots: m.slots })),
        replicas: s.replicas.map((r) => ({ id: r.id, address: r.address, zone: r.zone, master: r.master, linkUp: r.linkUp })),
        slotsCovered: s.slotsCovered,
        zonesOfMasters: s.masters.map((m) => m.zone ?? "?"),
        problems: s.problems,
        serverVersion: s.serverVersion ?? "",
        memberAddresses: [...s.masters.map((m) => m.address), ...s.replicas.map((r) => r.address)].sort(),
        pendingRepairs,
    };
}

/** Status outputs of a drift report: the repairs are reported only when converge can act on them. */
export function driftOutputs(d: DriftReport): RedisClusterStatusOutputs {
    return statusOutputs(d.status, d.repairs);
}

/** Bound on diff's read-only look at the live cluster (a preview must not hang on a dead network). */
export const DIFF_PROBE_TIMEOUT_MS = 15000;

/** Problems of a stored status that an update repairs without any input change (see diffDrift). */
export const REPAIRABLE = [/^masters are crowded/];

/**
 * Pure: the drift half of `diff`. `live` is the read-only inspection of the cluster (null when it
 * could not be made: timed out, or no node answered); `stored` the outputs in the state (as
 * `pulumi refresh` recorded them, or as the last update left them). An update is asked for when
 * converge can repair the live drift now, or when the stored state records repairable drift
 * (crowded masters): on refresh the engine calls diff with the refreshed outputs as `olds`, so
 * this is what makes refresh show the drift, and the following `up` (which first restarts a
 * crashed node through its own resource) repairs it or fails naming the node that is still down.
 */
export function diffDrift(live: DriftReport | null, stored: Partial<RedisClusterStatusOutputs>, probeError?: string): { changes: boolean; lines: string[] } {
    const storedDrift = (stored.problems ?? []).filter((p) => REPAIRABLE.some((r) => r.test(p)));
    const seen = live && live.reachedNodes > 0;
    if (seen && live.actionable) return { changes: true, lines: live.repairs };
    const lines = seen ? [...live.repairs] : [`the live cluster could not be inspected (${probeError ?? (live ? `no node answered: ${live.status.problems[0] ?? "no answer"}` : "unknown error")}); judged from the stored state`];
    if (storedDrift.length) return { changes: true, lines: [...lines, ...storedDrift.map((p) => `recorded by the last refresh: ${p}`), ...(stored.pendingRepairs ?? []).filter((r) => !lines.includes(r))] };
    return { changes: false, lines };
}

/** The input fields only (drops outputs and the engine's `__provider`). */
export function inputsOf(props: Record<string, unknown>): RedisClusterInputs {
    const out: Record<string, unknown> = {};
    for (const k of [...TOPOLOGY_KEYS, ...SETTING_KEYS, ...VERSION_KEYS]) if (props[k] !== undefined) out[k] = props[k];
    return out as unknown as RedisClusterInputs;
}

const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"; // the engine's placeholder for unknown values in previews
export function hasUnknown(x: unknown): boolean {
    if (x === UNKNOWN) return true;
    if (Array.isArray(x)) return x.some(hasUnknown);
    if (x && typeof x === "object") return Object.values(x).some(hasUnknown);
    return false;
}

export function same(a: unknown, b: unknown): boolean {
    return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/**
 * Pure: what a diff between two input sets means. Every changed property is an in-place update
 * (`replaces` is always empty: replacing would build a second cluster and drop the data); the
 * engine shows the changed properties, and `explainDiff` says what each does to the cluster.
 */
export function diffInputs(olds: RedisClusterInputs, news: RedisClusterInputs): pulumi.dynamic.DiffResult {
    const changed: string[] = [];
    const stables: string[] = [];
    for (const k of [...TOPOLOGY_KEYS, ...SETTING_KEYS, ...VERSION_KEYS]) {
        if (same((olds as unknown as Record<string, unknown>)[k], (news as unknown as Record<string, unknown>)[k])) stables.push(k);
        else changed.push(k);
    }
    return { changes: changed.length > 0, replaces: [], deleteBeforeReplace: false, stables };
}

/** Pure: one line per change, e.g. "shards 3 -> 4: add 1 shard(s), about 4096 slots move". No secrets. */
export function explainDiff(olds: RedisClusterInputs, news: RedisClusterInputs): string[] {
    const out: string[] = [];
    if (olds.shards !== news.shards) {
        const d = news.shards - olds.shards;
        const moved = d > 0 ? Math.round((16384 * d) / news.shards) : Math.round((16384 * -d) / olds.shards);
        out.push(`shards ${olds.shards} -> ${news.shards}: ${d > 0 ? "add" : "drain and remove"} ${Math.abs(d)} shard(s), about ${moved} slots move with their keys`);
    }
    if (olds.replicasPerShard !== news.replicasPerShard) out.push(`replicasPerShard ${olds.replicasPerShard} -> ${news.replicasPerShard}: ${news.replicasPerShard > olds.replicasPerShard ? "add" : "remove"} replicas`);
    const addr = (n: ClusterNodeSpec) => `${n.id}@${n.host}:${n.port}/${n.zone}`;
    const before = new Set((olds.nodes ?? []).map(addr));
    const after = new Set((news.nodes ?? []).map(addr));
    const added = [...after].filter((x) => !before.has(x));
    const removed = [...before].filter((x) => !after.has(x));
    if (added.length) out.push(`nodes added: ${added.join(", ")}`);
    if (removed.length) out.push(`nodes removed (drained first, then forgotten): ${removed.join(", ")}`);
    if (!!olds.allowZoneDegradation !== !!news.allowZoneDegradation) out.push(`allowZoneDegradation -> ${!!news.allowZoneDegradation}`);
    if ((olds.targetVersion ?? "") !== (news.targetVersion ?? "") && news.targetVersion) {
        const how = news.rollingRestart ? "rolling restart, one node at a time: replicas, then a planned failover and restart per master, masters failed back" : "verified only (the nodes are replaced by their own resources)";
        out.push(`targetVersion ${olds.targetVersion ?? "(unmanaged)"} -> ${news.targetVersion}: ${news.nodes.length} nodes, ${how}`);
    }
    if (!!olds.allowDowngrade !== !!news.allowDowngrade) out.push(`allowDowngrade -> ${!!news.allowDowngrade}`);
    if (!same(olds.rollingRestart, news.rollingRestart) && (olds.targetVersion ?? "") === (news.targetVersion ?? "")) out.push("rollingRestart changed (how nodes are restarted on the next version change; nothing restarts now)");
    for (const k of SETTING_KEYS) {
        const a = (olds as unknown as Record<string, unknown>)[k];
        const b = (news as unknown as Record<string, unknown>)[k];
        if (!same(a, b)) out.push(SECRET_KEYS.includes(k) ? `${k} changed (secret; new value stored, the cluster is not touched)` : `${k} ${JSON.stringify(a)} -> ${JSON.stringify(b)}`);
    }
    return out;
}

