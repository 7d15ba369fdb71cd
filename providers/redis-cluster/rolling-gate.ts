/**
 * RollingGate: the cloud half of the rolling upgrade. On the clouds a node "restarts on a new
 * version" when the engine replaces/updates its VM (new image digest or redisVersion in its
 * user-data); the engine would do that for every node at once. The components chain one gate
 * before and one after each node's VM, in the upgrade order (planned replicas first, then planned
 * masters; components/redisforge.ts):
 *
 *   before(n1) -> VM(n1) -> after(n1) -> before(n2) -> VM(n2) -> after(n2) -> ...
 *
 * The links are data dependencies (the VM's user-data waits on its before-gate's id, the
 * after-gate takes the VM's id, the next before-gate takes the previous after-gate's id), so the
 * engine cannot reorder or parallelise them. A gate acts only when the version/image it carries
 * changes (an update); on create (a new cluster) it does nothing:
 *
 * - `before`: if the node is a master, a planned CLUSTER FAILOVER to its linked replica (preferring
 *   one already on the target version), waiting until the node is a replica
 *   (operations/upgrade.ts prepareNodeRestart);
 * - `after`: waits (bounded) until the node answers as a cluster member on the target version,
 *   linked and synced if a replica, and every member sees it healthy (awaitNodeBack); the error
 *   names the node and says that a rerun resumes.
 *
 * The members are discovered from the node's own CLUSTER NODES at run time (a gate cannot take
 * the other nodes' addresses as inputs without a dependency cycle through their VMs); zones are
 * not known here, so the masters are put back into their zones by the RedisCluster resource that
 * runs after every VM (its converge moves crowded masters with planned failovers).
 *
 * Like every dynamic provider here: ioredis is required inside the executor's functions (the
 * provider is serialised by the engine); credentials are secret inputs and outputs.
 */
import * as pulumi from "@pulumi/pulumi";
import { awaitNodeBack, prepareNodeRestart } from "./operations/upgrade";
import { Pool } from "./primitives/connections";
import { knownMembers, probeOne } from "./primitives/probes";
import { ClusterCredentials, ClusterSpec } from "./types";

/** What every gate of the rolling chain takes (RollingGate here, AgentGate in formation `agent`). */
export interface GateChainArgs {
    /** "before": the node may be taken away; "after": wait until the node is back. */
    phase: "before" | "after";
    /** Node key (messages), e.g. `node3`. */
    nodeKey: string;
    /** Its private IP (reserved address: known before the VM exists). */
    host: pulumi.Input<string>;
    port: number;
    /** The version the node runs after its replacement, e.g. "8.4" (redis_version prefix). */
    redisVersion: pulumi.Input<string>;
    /** The image ref it runs (a digest change is a restart too). */
    image: pulumi.Input<string>;
    /** Id of the previous gate in the chain (data dependency: orders this gate after it). */
    after?: pulumi.Input<string>;
    /** `after` gates: the node's VM id (data dependency: waits for the VM's update/replacement). */
    vmId?: pulumi.Input<string>;
}

/** A gate that connects to the node: "before" fails over away from a master. */
export interface RollingGateArgs extends GateChainArgs {
    adminPassword: pulumi.Input<string>;
    caCert: pulumi.Input<string>;
    clientCert: pulumi.Input<string>;
    clientKey: pulumi.Input<string>;
    /** Bound on a node's return, seconds. Default 600 (a VM replacement boots a machine). */
    timeoutSec?: number;
}

/** The chain fields as a gate's provider receives them (resolved). */
export interface GateChainInputs {
    phase: "before" | "after";
    nodeKey: string;
    host: string;
    port: number;
    redisVersion: string;
    image: string;
}

interface GateInputs extends GateChainInputs {
    adminPassword: string;
    caCert: string;
    clientCert: string;
    clientKey: string;
    timeoutSec?: number;
}

const SECRETS = ["adminPassword", "caCert", "clientCert", "clientKey"];

/** Pure: a gate acts only when what the node runs changes. */
export function gateChanges(olds: Partial<GateChainInputs>, news: Partial<GateChainInputs>): boolean {
    return olds.redisVersion !== news.redisVersion || olds.image !== news.image || olds.host !== news.host || olds.port !== news.port;
}

async function discover(i: GateInputs): Promise<{ spec: ClusterSpec; creds: ClusterCredentials }> {
    const creds: ClusterCredentials = { username: "admin", password: i.adminPassword, tls: { ca: i.caCert, cert: i.clientCert, key: i.clientKey } };
    const pool = new Pool(creds, {});
    try {
        const p = await probeOne(pool, { host: i.host, port: Number(i.port), label: `${i.nodeKey} ${i.host}:${i.port}` });
        if (!p.ok || !p.view) return { spec: { nodes: [{ id: i.nodeKey, host: i.host, port: Number(i.port), zone: "?" }], shards: 1, replicasPerShard: 0 }, creds };
        const nodes = knownMembers(p).map((n) => ({ id: n.myself ? i.nodeKey : `${n.host}:${n.port}`, host: n.host, port: n.port, zone: "?" }));
        return { spec: { nodes, shards: 1, replicasPerShard: 0, allowZoneDegradation: true }, creds };
    } finally {
        await pool.closeAll();
    }
}

export const rollingGateProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: GateInputs) {
        // A new node or a new cluster: nothing to hand over or wait for (RedisCluster forms it).
        return { id: `roll-${inputs.phase}-${inputs.nodeKey}`, outs: inputs };
    },
    async diff(_id: string, olds: GateInputs, news: GateInputs) {
        return { changes: gateChanges(olds, news) || olds.phase !== news.phase, replaces: [], deleteBeforeReplace: false };
    },
    async update(_id: string, olds: GateInputs, news: GateInputs) {
        if (!gateChanges(olds, news)) return { outs: news };
        const { spec, creds } = await discover(news);
        const node = spec.nodes.find((n) => n.id === news.nodeKey)!;
        if (news.phase === "before") {
            if (spec.nodes.length > 1) await prepareNodeRestart(spec, creds, node, { targetVersion: news.redisVersion });
        } else {
            // The node's VM was replaced/updated just before this gate; its address stays (reserved).
            const full = spec.nodes.length > 1 ? spec : (await discoverAfterBoot(news, Number(news.timeoutSec ?? 600) * 1000)).spec;
            await awaitNodeBack(full, creds, full.nodes.find((n) => n.id === news.nodeKey)!, { targetVersion: news.redisVersion, nodeReturnTimeoutMs: Number(news.timeoutSec ?? 600) * 1000 });
        }
        return { outs: news };
    },
};

/** After a replacement the node may still be booting: retry discovery (bounded) until it answers. */
async function discoverAfterBoot(i: GateInputs, limitMs: number): Promise<{ spec: ClusterSpec; creds: ClusterCredentials }> {
    const deadline = Date.now() + limitMs;
    let last = await discover(i);
    while (last.spec.nodes.length <= 1 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 2000));
        last = await discover(i);
    }
    return last;
}

/** One gate of the rolling chain (see the file header). */
export class RollingGate extends pulumi.dynamic.Resource {
    constructor(name: string, args: RollingGateArgs, opts: pulumi.CustomResourceOptions = {}) {
        super(
            rollingGateProvider,
            name,
            {
                ...args,
                adminPassword: pulumi.secret(args.adminPassword),
                caCert: pulumi.secret(args.caCert),
                clientCert: pulumi.secret(args.clientCert),
                clientKey: pulumi.secret(args.clientKey),
            },
            { ...opts, additionalSecretOutputs: [...(opts.additionalSecretOutputs ?? []), ...SECRETS] },
            "redisforge",
            "RollingGate",
        );
    }
}
