/**
 * RedisCluster as a Pulumi dynamic resource: thin CRUD glue over the pure planner and the
 * ioredis executor.
 *
 * Invariants:
 * - create and update both call `converge`, which finishes whatever state it finds, so a failed
 *   or interrupted `pulumi up` is finished by the next one;
 * - nothing forces a replacement: a changed node list, shard or replica count is reshaped in
 *   place (diff says which property changes and why);
 * - `read` reports the live topology, so `pulumi refresh` shows drift (uncovered slots, a missing
 *   replica, a master in the wrong zone after a failover) in `state`, `problems`, `zonesOfMasters`
 *   and `pendingRepairs` (what the next up changes);
 * - `diff` reports input changes AND drift of the live cluster (read-only, bounded probe; see the
 *   comment on diff), so `pulumi preview` shows the planned repair and `pulumi up` runs `update`
 *   (converge) although no input changed: masters crowded into one zone after automatic
 *   failovers are re-spread by planned CLUSTER FAILOVERs, without moving a slot;
 * - `delete` leaves the nodes and their data alone unless `deleteAction: "reset"`;
 * - credentials and TLS material are secret inputs and secret outputs (additionalSecretOutputs),
 *   never logged; status outputs carry no secret;
 * - the executor loads ioredis inside its functions, so this provider survives
 *   `pulumi.runtime.serializeFunction` (tests/integration/redis-cluster/provider-serialize.test.ts).
 *
 * Formation modes: `direct` (default) converges from the deployer, which must reach every node's
 * private address; `agent` (provider-agent.ts) publishes the spec for the converge agent running
 * inside the network and waits for its status: the deployer needs only the store's API.
 *
 * Server version (rolling upgrade): `targetVersion` is the redis_version every node must run.
 * When it differs from what runs, create/update perform the rolling upgrade of
 * operations/upgrade.ts AFTER converging the topology: replicas first, a planned failover per
 * master, then the old masters, masters failed back, one node at a time with bounded waits. The
 * restart itself is the `rollingRestart` hook, described as data (the provider is serialised):
 * `local-process` restarts a redis-server by PID with another binary (providers/local). Without
 * a hook (clouds: the node's VM/container is replaced by the engine, one at a time, gated by
 * rolling-gate.ts) the resource only verifies that every node runs the target. This resource, not
 * the per-node resources, carries the restarts out, because the engine updates changed sibling
 * resources in parallel and restarting every node at once would drop the cluster. A downgrade
 * (target below a running node, or below the previous target) is refused unless `allowDowngrade`.
 */
import * as pulumi from "@pulumi/pulumi";
import { checkCluster, converge, resetCluster } from "./executor";
import { bounded } from "./primitives/connections";
import { DriftReport, inspectDrift } from "./operations/respread";
import { agentConverge, agentDrift, agentRead, checkAgentInputs, isAgentMode } from "./provider-agent";
import { credsOf, diffDrift, diffInputs, DIFF_PROBE_TIMEOUT_MS, driftOutputs, hasUnknown, inputsOf, RedisClusterInputs, RedisClusterStatusOutputs, RollingRestart, SECRET_KEYS, specOf, TOPOLOGY_KEYS } from "./provider-model";
import { compareServerVersions, downgradeRefusal, onTargetVersion, RestartNodeHook, upgradeCluster } from "./operations/upgrade";
import { logTail, restartLocalRedis } from "../local/restart-node";
import { planPlacement } from "./planner";
import { ClusterNodeSpec, ClusterStatus } from "./types";
import { AgentStoreSettings } from "./agent/deployer";

// The pure model is re-exported: tests and programs import it from here.
export * from "./provider-model";

/** Inputs of the RedisCluster resource. */
export interface RedisClusterArgs {
    /** Every node that may take part (stable `id`, host, TLS port, zone). Order is significant for placement. */
    nodes: pulumi.Input<pulumi.Input<ClusterNodeSpec>[]>;
    /** Number of masters. */
    shards: pulumi.Input<number>;
    /** Replicas per master. */
    replicasPerShard: pulumi.Input<number>;
    /** Accept a replica in its master's zone when zones cannot avoid it (reported in `degradations`). Default false. */
    allowZoneDegradation?: pulumi.Input<boolean>;
    /** ACL user with +@all used to form the cluster. Default "admin". */
    adminUsername?: pulumi.Input<string>;
    /** Its password. Stored as a secret. */
    adminPassword: pulumi.Input<string>;
    /** PEM CA certificate of the nodes. Stored as a secret. */
    caCert: pulumi.Input<string>;
    /** PEM client certificate for mTLS (`tls-auth-clients yes`). Stored as a secret. */
    clientCert?: pulumi.Input<string>;
    /** PEM client key. Stored as a secret. */
    clientKey?: pulumi.Input<string>;
    /** Certificate name to verify instead of the node IP (when certificates carry DNS names only). */
    tlsServername?: pulumi.Input<string>;
    /** What `pulumi destroy` does: "keep" (default) leaves the nodes and data; "reset" runs FLUSHALL + CLUSTER RESET HARD on every node. */
    deleteAction?: pulumi.Input<"keep" | "reset">;
    /** Deadline for convergence waits, seconds. Default 60. */
    convergeTimeoutSec?: pulumi.Input<number>;
    /** Bound on one connection (TCP + TLS handshake + AUTH) to a node, seconds. Default 5. */
    connectTimeoutSec?: pulumi.Input<number>;
    /** Keys per MIGRATE batch. Default 1000. */
    migrateBatchKeys?: pulumi.Input<number>;
    /**
     * cluster-node-timeout (ms) set on forming/joining nodes while they meet, so that a lone master's
     * rejoin delay is short; 0 keeps each node's own value. Default 1000. A slow substrate needs 0: a
     * MEET handshake (TLS on the bus) not done within max(node timeout, 1 s) is dropped and retried
     * forever (the VM stack under software emulation never met at 1000 ms).
     */
    formationNodeTimeoutMs?: pulumi.Input<number>;
    /**
     * The redis_version every node must run (e.g. "8.6.3", or a prefix "8.6"). A change rolls the
     * cluster node by node through `rollingRestart`; unset: versions are not managed.
     */
    targetVersion?: pulumi.Input<string>;
    /** Accept a `targetVersion` below a running version (a 7.0 server cannot load 8.x files). Default false. */
    allowDowngrade?: pulumi.Input<boolean>;
    /** How a node is restarted on `targetVersion`; unset: verify only (the nodes are replaced by other resources). */
    rollingRestart?: pulumi.Input<RollingRestart>;
    /** Bound on each node's return after its restart (load + sync), seconds. Default 120. */
    nodeReturnTimeoutSec?: pulumi.Input<number>;
    /**
     * "direct" (default): the deployer reaches every node and converges it. "agent": the deployer
     * only publishes the spec to `agentStore` and waits for the converge agent on the nodes
     * (providers/redis-cluster/agent) to report it applied; read/diff report the agent's status.
     */
    formation?: pulumi.Input<"direct" | "agent">;
    agentStore?: pulumi.Input<AgentStoreSettings>;
    /** JSON {accessKeyId, secretAccessKey, sessionToken?} of the deployer's store identity. Stored as a secret. */
    agentStoreCredentials?: pulumi.Input<string>;
    /** agent mode: repair drift that moves no data between deploys (planned failovers, re-attached replicas). */
    heal?: pulumi.Input<boolean>;
    agentWaitTimeoutSec?: pulumi.Input<number>;
}

function executorOpts(i: RedisClusterInputs, formerNodes?: string[]) {
    return {
        convergeTimeoutMs: (i.convergeTimeoutSec ?? 60) * 1000,
        ...(i.connectTimeoutSec !== undefined ? { connectTimeoutMs: i.connectTimeoutSec * 1000 } : {}),
        migrateBatchKeys: i.migrateBatchKeys,
        formationNodeTimeoutMs: i.formationNodeTimeoutMs,
        formerNodes,
    };
}

/** Pure: the refusal of a lowered `targetVersion` (previous target -> new one), or null. */
export function checkVersionChange(olds: Partial<RedisClusterInputs> | undefined, news: RedisClusterInputs): string | null {
    const before = olds?.targetVersion;
    const after = news.targetVersion;
    if (!before || !after || news.allowDowngrade) return null;
    if (onTargetVersion(before, after) || compareServerVersions(after, before) >= 0) return null;
    return downgradeRefusal(after, [{ label: "the cluster (previous targetVersion)", version: before }]);
}

/** The node-restart hook described by `rollingRestart`. */
export function restartHookOf(r: RollingRestart | undefined): { restartNode: RestartNodeHook; describeNode: (n: ClusterNodeSpec) => string } | undefined {
    if (!r) return undefined;
    if (r.kind !== "local-process") throw new Error(`rollingRestart.kind ${JSON.stringify(r.kind)} is not known; use "local-process" (or leave rollingRestart unset to verify versions only)`);
    const find = (id: string) => {
        const p = r.nodes.find((x) => x.id === id);
        if (!p) throw new Error(`rollingRestart has no entry for node ${id}; every node of \`nodes\` needs one`);
        return p;
    };
    return {
        restartNode: async (n) => {
            const p = find(n.spec.id);
            await restartLocalRedis({ id: n.spec.id, host: n.spec.host, port: n.spec.port, dataDir: p.dataDir, confFile: p.confFile, server: p.server });
        },
        describeNode: (n) => {
            const p = r.nodes.find((x) => x.id === n.id);
            return p ? `last lines of ${p.dataDir}/redis.log:\n${logTail(p.dataDir) || "(empty)"}` : "";
        },
    };
}

/**
 * Brings every node to `targetVersion` (after converge): the rolling upgrade with the hook, or,
 * without one, a check that names each node still on another version. No-op without a target.
 */
async function applyVersion(i: RedisClusterInputs): Promise<void> {
    if (!i.targetVersion) return;
    const spec = specOf(i);
    const hook = restartHookOf(i.rollingRestart);
    if (hook) {
        await upgradeCluster(spec, credsOf(i), {
            ...executorOpts(i),
            targetVersion: i.targetVersion,
            allowDowngrade: !!i.allowDowngrade,
            nodeReturnTimeoutMs: (i.nodeReturnTimeoutSec ?? 120) * 1000,
            restartNode: hook.restartNode,
            describeNode: hook.describeNode,
            log: (m) => void pulumi.log.info(m),
        });
        return;
    }
    const st = await checkCluster(spec, credsOf(i), executorOpts(i));
    if (st.serverVersion && !onTargetVersion(st.serverVersion, i.targetVersion) && compareServerVersions(st.serverVersion, i.targetVersion) < 0) {
        throw new Error(`targetVersion ${i.targetVersion}: the lowest node version is still ${st.serverVersion}; the nodes are restarted by their own resources (no rollingRestart): replace the remaining nodes, then rerun`);
    }
}

export const redisClusterProvider: pulumi.dynamic.ResourceProvider = {
    async check(olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
        const failures: pulumi.dynamic.CheckFailure[] = [];
        if (!hasUnknown(news)) {
            const i = inputsOf(news);
            for (const [property, reason] of checkAgentInputs(i)) failures.push({ property, reason });
            if (!i.adminPassword) failures.push({ property: "adminPassword", reason: "adminPassword is required (the admin ACL user's password)" });
            if (!i.caCert) failures.push({ property: "caCert", reason: "caCert is required (PEM CA certificate of the nodes)" });
            if (!!i.clientCert !== !!i.clientKey) failures.push({ property: "clientKey", reason: "clientCert and clientKey go together (mTLS); set both or neither" });
            if (i.deleteAction && i.deleteAction !== "keep" && i.deleteAction !== "reset") {
                failures.push({ property: "deleteAction", reason: `deleteAction must be "keep" or "reset"; got ${JSON.stringify(i.deleteAction)}` });
            }
            try {
                planPlacement(specOf(i));
            } catch (e) {
                failures.push({ property: "nodes", reason: (e as Error).message });
            }
            if (i.targetVersion !== undefined && !/^\d+\.\d+(\.\d+)?$/.test(String(i.targetVersion))) failures.push({ property: "targetVersion", reason: `targetVersion must look like 8.6 or 8.6.3; got ${JSON.stringify(i.targetVersion)}` });
            const downgrade = checkVersionChange(olds && Object.keys(olds).length ? inputsOf(olds) : undefined, i);
            if (downgrade) failures.push({ property: "targetVersion", reason: downgrade });
            try {
                restartHookOf(i.rollingRestart);
            } catch (e) {
                failures.push({ property: "rollingRestart", reason: (e as Error).message });
            }
        }
        return { inputs: news, failures };
    },

    /*
     * Inputs AND drift. The engine calls diff with the stored outputs as `olds` and the program's
     * inputs as `news` (on refresh: the refreshed outputs and the old inputs), and runs `update`
     * only when diff reports changes. An input-only diff therefore never repairs drift (masters
     * crowded after an automatic failover): the inputs did not change. So diff also looks at the
     * live cluster, read-only (CLUSTER NODES/INFO + the pure planner, operations/respread.ts),
     * bounded by DIFF_PROBE_TIMEOUT_MS with a 3 s connect timeout, and asks for an update when
     * converge has something to do. Why probe and not only trust the state: a `pulumi up` without
     * --refresh would otherwise only repair after a separate `pulumi refresh`. A cluster that
     * cannot be reached does not fail the preview: the stored outputs decide, and the reason is
     * logged. The planned repair is logged (the dynamic provider protocol carries no diff
     * message), one line per step, e.g. which replica takes over which master and why.
     */
    async diff(id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.DiffResult> {
        const base = diffInputs(inputsOf(olds), inputsOf(news));
        if (hasUnknown(news)) return base;
        const i = inputsOf(news);
        if (isAgentMode(i)) {
            const d = await agentDrift(i);
            if (d.lines.length) await pulumi.log.warn(`RedisCluster ${id} (converge agent): ${d.lines.join("; ")}`);
            return d.changes ? { ...base, changes: true, stables: base.stables?.filter((k) => !(TOPOLOGY_KEYS as readonly string[]).includes(k)) } : base;
        }
        let live: DriftReport | null = null;
        let probeError: string | undefined;
        try {
            live = await bounded(inspectDrift(specOf(i), credsOf(i), { ...executorOpts(i), connectTimeoutMs: 3000 }), DIFF_PROBE_TIMEOUT_MS, "reading the live cluster for drift");
        } catch (e) {
            probeError = (e as Error).message;
        }
        const drift = diffDrift(live, olds as Partial<RedisClusterStatusOutputs>, probeError);
        if (drift.changes) {
            const what = base.changes ? "inputs changed; pulumi up runs these steps" : "the live cluster drifted from its spec although no input changed; pulumi up repairs it";
            await pulumi.log.warn(`RedisCluster ${id}: ${what}:\n  - ${drift.lines.join("\n  - ")}`);
            return { ...base, changes: true, stables: base.stables?.filter((k) => !(TOPOLOGY_KEYS as readonly string[]).includes(k)) };
        }
        // Drift that cannot be repaired now (a node down, no plan): advice, on stderr in a plain process.
        if (drift.lines.length) await pulumi.log.warn(`RedisCluster ${id}: ${drift.lines.join("; ")}`);
        return base;
    },

    async create(inputs: Record<string, unknown>): Promise<pulumi.dynamic.CreateResult> {
        const i = inputsOf(inputs);
        if (isAgentMode(i)) return { id: `rediscluster-${i.nodes[0].host}-${i.nodes[0].port}`, outs: { ...i, ...(await agentConverge(i)) } };
        await converge(specOf(i), credsOf(i), executorOpts(i));
        if (i.targetVersion) await applyVersion(i);
        const outs = { ...i, ...driftOutputs(await inspectDrift(specOf(i), credsOf(i), executorOpts(i))) };
        // The id names the cluster by its first node's address: stable, and not a secret.
        return { id: `rediscluster-${i.nodes[0].host}-${i.nodes[0].port}`, outs };
    },

    async read(id: string, props: Record<string, unknown>): Promise<pulumi.dynamic.ReadResult> {
        const i = inputsOf(props);
        if (isAgentMode(i)) return { id, props: { ...props, ...(await agentRead(i, props)) } };
        let st: RedisClusterStatusOutputs;
        try {
            st = driftOutputs(await inspectDrift(specOf(i), credsOf(i), executorOpts(i)));
        } catch (e) {
            // read reports, it does not fail: an unreachable cluster is drift too.
            st = { ...(props as unknown as RedisClusterStatusOutputs), state: "fail", problems: [`read failed: ${(e as Error).message}`] };
        }
        return { id, props: { ...props, ...st } };
    },

    async update(_id: string, olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.UpdateResult> {
        const i = inputsOf(news);
        if (isAgentMode(i)) return { outs: { ...i, ...(await agentConverge(i)) } };
        const former = [
            ...((olds.memberAddresses as string[] | undefined) ?? []),
            ...(((olds.nodes as ClusterNodeSpec[] | undefined) ?? []).map((n) => `${n.host}:${n.port}`)),
        ];
        // converge repairs drift too: its reshape plans the same failovers diff showed (no slot moves).
        await converge(specOf(i), credsOf(i), executorOpts(i, former));
        if (i.targetVersion) await applyVersion(i);
        return { outs: { ...i, ...driftOutputs(await inspectDrift(specOf(i), credsOf(i), executorOpts(i, former))) } };
    },

    async delete(_id: string, props: Record<string, unknown>): Promise<void> {
        const i = inputsOf(props);
        if (i.deleteAction !== "reset") return; // default: leave the nodes and their data alone
        await resetCluster(i.nodes, credsOf(i));
    },
};

/**
 * The Redis Cluster formed from `nodes`; reshaped in place on every update.
 * Output properties use `declare` (not `!:`): with ES2022 class fields an initialiser-less field
 * would overwrite, with undefined, the Output that the Resource constructor just assigned.
 */
export class RedisCluster extends pulumi.dynamic.Resource {
    declare public readonly state: pulumi.Output<ClusterStatus["state"]>;
    declare public readonly masters: pulumi.Output<RedisClusterStatusOutputs["masters"]>;
    declare public readonly replicas: pulumi.Output<RedisClusterStatusOutputs["replicas"]>;
    declare public readonly slotsCovered: pulumi.Output<number>;
    declare public readonly zonesOfMasters: pulumi.Output<string[]>;
    declare public readonly problems: pulumi.Output<string[]>;
    declare public readonly serverVersion: pulumi.Output<string>;
    declare public readonly memberAddresses: pulumi.Output<string[]>;
    declare public readonly pendingRepairs: pulumi.Output<string[]>;

    constructor(name: string, args: RedisClusterArgs, opts: pulumi.CustomResourceOptions = {}) {
        super(
            redisClusterProvider,
            name,
            {
                nodes: args.nodes,
                shards: args.shards,
                replicasPerShard: args.replicasPerShard,
                allowZoneDegradation: args.allowZoneDegradation ?? false,
                adminUsername: args.adminUsername ?? "admin",
                adminPassword: pulumi.secret(args.adminPassword),
                caCert: pulumi.secret(args.caCert),
                clientCert: args.clientCert === undefined ? undefined : pulumi.secret(args.clientCert),
                clientKey: args.clientKey === undefined ? undefined : pulumi.secret(args.clientKey),
                tlsServername: args.tlsServername,
                deleteAction: args.deleteAction ?? "keep",
                convergeTimeoutSec: args.convergeTimeoutSec,
                connectTimeoutSec: args.connectTimeoutSec,
                migrateBatchKeys: args.migrateBatchKeys,
                formationNodeTimeoutMs: args.formationNodeTimeoutMs,
                targetVersion: args.targetVersion,
                allowDowngrade: args.allowDowngrade,
                rollingRestart: args.rollingRestart,
                nodeReturnTimeoutSec: args.nodeReturnTimeoutSec,
                formation: args.formation,
                agentStore: args.agentStore,
                agentStoreCredentials: args.agentStoreCredentials === undefined ? undefined : pulumi.secret(args.agentStoreCredentials),
                heal: args.heal,
                agentWaitTimeoutSec: args.agentWaitTimeoutSec,
                // Outputs declared up front (undefined inputs become outputs of the resource).
                state: undefined,
                masters: undefined,
                replicas: undefined,
                slotsCovered: undefined,
                zonesOfMasters: undefined,
                problems: undefined,
                serverVersion: undefined,
                memberAddresses: undefined,
                pendingRepairs: undefined,
            },
            { ...opts, additionalSecretOutputs: [...(opts.additionalSecretOutputs ?? []), ...SECRET_KEYS] },
            "redisforge",
            "RedisCluster",
        );
    }
}
