/**
 * Forms and reshapes the local stack's cluster with the project's cluster executor
 * (providers/redis-cluster: pure planner + ioredis executor), as a dynamic resource whose inputs are
 * the desired spec and the admin credentials (secret). The operator's client certificate, which the
 * nodes require (mTLS), is read from the LocalFiles directory at run time, so no key sits in this
 * resource's inputs.
 *
 * Invariant: on update the resource converges the live cluster to the new spec BEFORE the engine
 * deletes nodes that left the program (the engine deletes removed resources last), so a node's slots
 * are drained before its process stops.
 */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSpec, ClusterStatus } from "../redis-cluster/types";
import type * as Executor from "../redis-cluster/executor";
import type { RedisProcess } from "./redis-process";

/** Absolute path of the cluster executor's source, handed to the provider as an input. */
export const EXECUTOR_SOURCE = path.join(__dirname, "..", "redis-cluster", "executor.ts");

/**
 * Loads the executor inside the provider process (plain node, run by the engine), compiling the
 * TypeScript source with tsx. Capturing the executor in the provider's closure instead would make
 * the engine serialise the whole module, which its closure serialiser cannot do for this code.
 */
function loadExecutor(executorPath: string): typeof Executor {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const p = require("path") as typeof import("path");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const tsx = require(require.resolve("tsx/cjs/api", { paths: [p.dirname(executorPath), process.cwd()] })) as { require: (id: string, from: string) => unknown };
    return tsx.require(executorPath, executorPath) as typeof Executor;
}

export interface LocalClusterNode {
    id: string;
    host: string;
    port: number;
    zone: string;
    /** The process resource of this node (the cluster depends on it). */
    process: RedisProcess;
}

export interface LocalClusterArgs {
    shards: number;
    replicasPerShard: number;
    nodes: LocalClusterNode[];
    adminPassword: pulumi.Output<string>;
    caCertPem: pulumi.Output<string>;
    /** Directory with client.crt / client.key / ca.crt (LocalFiles). */
    clientDir: pulumi.Output<string>;
}

interface Inputs {
    spec: ClusterSpec;
    executorPath: string;
    adminPassword: string;
    clientDir: string;
    /** Node pids: a restarted node changes this, and the cluster is re-checked. */
    pids: number[];
}

interface Outputs {
    spec: ClusterSpec;
    executorPath: string;
    clientDir: string;
    state: string;
    masters: number;
    replicas: number;
    slotsCovered: number;
    problems: string[];
    formerNodes: string[];
}

/** Admin credentials; the password comes from the input or, on refresh, from the 0600 operator file. */
function credentials(i: { adminPassword?: string; clientDir: string }) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const path = require("path") as typeof import("path");
    const read = (f: string) => fs.readFileSync(path.join(i.clientDir, f), "utf8");
    return { username: "admin", password: i.adminPassword ?? read("admin.password").trim(), tls: { ca: read("ca.crt"), cert: read("client.crt"), key: read("client.key") } };
}

function summary(spec: ClusterSpec, executorPath: string, clientDir: string, s: ClusterStatus, formerNodes: string[]): Outputs {
    return {
        spec,
        executorPath,
        clientDir,
        state: s.state,
        masters: s.masters.length,
        replicas: s.replicas.length,
        slotsCovered: s.slotsCovered,
        problems: s.problems,
        formerNodes,
    };
}

async function run(i: Inputs, formerNodes: string[]): Promise<Outputs> {
    const log: string[] = [];
    const status = await loadExecutor(i.executorPath).converge(i.spec, credentials(i), { formerNodes, log: (m: string) => log.push(m) });
    if (status.state !== "ok" || status.slotsCovered !== 16384) {
        throw new Error(`local cluster did not converge: state ${status.state}, ${status.slotsCovered}/16384 slots covered; problems: ${status.problems.join("; ")}\nexecutor log:\n${log.slice(-20).join("\n")}`);
    }
    const addrs = i.spec.nodes.map((n) => `${n.host}:${n.port}`);
    return summary(i.spec, i.executorPath, i.clientDir, status, addrs);
}

const localClusterProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: Outputs, news: Inputs) {
        const changed = JSON.stringify(olds.spec) !== JSON.stringify(news.spec) || olds.clientDir !== news.clientDir || olds.state !== "ok";
        return { changes: changed, replaces: [], deleteBeforeReplace: false };
    },
    async create(inputs: Inputs) {
        const outs = await run(inputs, []);
        return { id: `cluster-${inputs.spec.nodes.map((n) => n.port).join("-").slice(0, 60)}`, outs };
    },
    async update(_id: string, olds: Outputs, news: Inputs) {
        return { outs: await run(news, olds.formerNodes ?? []) };
    },
    async read(id: string, props: Outputs) {
        // Refresh reads the live cluster: a dead node, a missing replica or uncovered slots show up
        // as drift (`state` not ok), and the next `up` converges it again.
        try {
            const s = await loadExecutor(props.executorPath ?? EXECUTOR_SOURCE).checkCluster(props.spec, credentials({ clientDir: props.clientDir }));
            return { id, props: summary(props.spec, props.executorPath ?? EXECUTOR_SOURCE, props.clientDir, s, props.formerNodes ?? []) };
        } catch (e) {
            return { id, props: { ...props, state: "unreachable", problems: [(e as Error).message] } };
        }
    },
    async delete() {
        // The processes are deleted by their own resources; nothing to undo in the cluster itself.
    },
};

export class LocalCluster extends pulumi.dynamic.Resource {
    declare public readonly state: pulumi.Output<string>;
    declare public readonly masters: pulumi.Output<number>;
    declare public readonly replicas: pulumi.Output<number>;
    declare public readonly slotsCovered: pulumi.Output<number>;

    constructor(name: string, args: LocalClusterArgs, opts?: pulumi.CustomResourceOptions) {
        const spec: ClusterSpec = {
            nodes: args.nodes.map((n) => ({ id: n.id, host: n.host, port: n.port, zone: n.zone })),
            shards: args.shards,
            replicasPerShard: args.replicasPerShard,
        };
        super(
            localClusterProvider,
            name,
            {
                spec,
                executorPath: EXECUTOR_SOURCE,
                adminPassword: pulumi.secret(args.adminPassword),
                clientDir: args.clientDir,
                pids: pulumi.all(args.nodes.map((n) => n.process.pid)),
                state: undefined,
                masters: undefined,
                replicas: undefined,
                slotsCovered: undefined,
                problems: undefined,
                formerNodes: undefined,
            },
            { ...opts, dependsOn: args.nodes.map((n) => n.process) },
            "local",
            "Cluster",
        );
    }
}

/** Reads the live status without changing anything (scale script, tests). */
export async function localClusterStatus(spec: ClusterSpec, adminPassword: string, clientDir: string): Promise<ClusterStatus> {
    return loadExecutor(EXECUTOR_SOURCE).checkCluster(spec, credentials({ adminPassword, clientDir }));
}

export function localCluster(name: string, args: LocalClusterArgs, opts?: pulumi.CustomResourceOptions): LocalCluster {
    return new LocalCluster(name, args, opts);
}
