/**
 * Forms (or reshapes) a cluster out of lab nodes with the project's cluster provider: the lab's
 * nodes, zones and admin credentials are turned into the executor's `converge(spec, creds, opts)`
 * input. The executor is loaded lazily so that the lab still starts plain nodes (and the
 * redis-cli path still works) on a checkout where the provider does not load.
 */
import * as fs from "fs";
import { ClusterObserver, ViewAuth } from "./cluster-view";
import type { Lab } from "./lab";

/** The subset of providers/redis-cluster's ClusterSpec the lab fills in. */
export interface LabClusterSpec {
    nodes: { id: string; host: string; port: number; zone: string }[];
    shards: number;
    replicasPerShard: number;
    allowZoneDegradation?: boolean;
}

/** The subset of providers/redis-cluster's ClusterCredentials the lab fills in (PEM strings). */
export interface LabClusterCredentials {
    username: string;
    password: string;
    tls: { ca: string; cert?: string; key?: string };
}

/** Progress event as the executor reports it (only the fields the lab prints). */
export interface LabProgress {
    phase: string;
    message: string;
    slotsMoved?: number;
    slotsTotal?: number;
    keysMoved?: number;
    keysPerSec?: number;
}

export interface ConvergeOptions {
    onProgress?: (e: LabProgress) => void;
    log?: (message: string) => void;
    /** Passed through to the executor untouched (tuning knobs such as a MIGRATE batch size). */
    [extra: string]: unknown;
}

type ConvergeFn = (spec: LabClusterSpec, creds: LabClusterCredentials, opts?: ConvergeOptions) => Promise<unknown>;

/** Modules that may export `converge`, in the order they are tried. */
const EXECUTOR_MODULES = ["../providers/redis-cluster/executor", "../providers/redis-cluster"];

/** Loads the cluster executor's `converge`; throws a clear error when it is not there. */
export function loadConverge(): ConvergeFn {
    const errors: string[] = [];
    for (const m of EXECUTOR_MODULES) {
        try {
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const mod = require(m) as { converge?: ConvergeFn };
            if (typeof mod.converge === "function") return mod.converge;
            errors.push(`${m}: no exported converge()`);
        } catch (e) {
            errors.push(`${m}: ${(e as Error).message.split("\n")[0]}`);
        }
    }
    throw new Error(`the cluster executor (converge) could not be loaded: ${errors.join("; ")}. Use --former redis-cli to form the lab with redis-cli instead.`);
}

/** The lab nodes `indices` as a cluster spec (ids node<i>, the lab's zone labels). */
export function labSpec(lab: Lab, indices: number[], shards: number, replicasPerShard: number): LabClusterSpec {
    return {
        nodes: indices.map((i) => {
            const n = lab.nodes[i];
            return { id: n.name, host: n.host, port: n.port, zone: n.zone };
        }),
        shards,
        replicasPerShard,
    };
}

/** Admin credentials and TLS material of a lab, as PEM strings. */
export function labCredentials(lab: Lab): LabClusterCredentials {
    return {
        username: "admin",
        password: lab.password("admin"),
        tls: {
            ca: fs.readFileSync(lab.tls.caFile, "utf8"),
            cert: fs.readFileSync(lab.tls.clientCertFile, "utf8"),
            key: fs.readFileSync(lab.tls.clientKeyFile, "utf8"),
        },
    };
}

/** Runs the executor's converge over lab nodes; returns what converge returns (its ClusterStatus). */
export async function convergeLab(lab: Lab, indices: number[], shards: number, replicasPerShard: number, opts: ConvergeOptions = {}): Promise<unknown> {
    const converge = loadConverge();
    return converge(labSpec(lab, indices, shards, replicasPerShard), labCredentials(lab), opts);
}

/** Observer auth (admin over mTLS) for a lab. */
export function labViewAuth(lab: Lab): ViewAuth {
    return {
        username: "admin",
        password: lab.password("admin"),
        tls: { ca: fs.readFileSync(lab.tls.caFile), cert: fs.readFileSync(lab.tls.clientCertFile), key: fs.readFileSync(lab.tls.clientKeyFile) },
    };
}

/** An observer of the lab nodes `indices` (all nodes by default); connect() it before timing. */
export function labObserver(lab: Lab, indices: number[] = lab.nodes.map((n) => n.index)): ClusterObserver {
    return new ClusterObserver(
        indices.map((i) => ({ host: lab.nodes[i].host, port: lab.nodes[i].port })),
        labViewAuth(lab),
    );
}
