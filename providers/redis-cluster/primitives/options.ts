/** Executor options, their defaults, the resolved form every operation receives, and the executor error type. */
import { Logger, ProgressEvent, ReshapeStep } from "../types";

/** Tunables of the executor. Every wait is bounded by one of these. */
export interface ExecutorOptions {
    /** Per-connection connect timeout, ms. Default 5000. */
    connectTimeoutMs?: number;
    /** Deadline for the cluster to converge (all nodes agree, cluster_state:ok, replicas linked), ms. Default 60000. */
    convergeTimeoutMs?: number;
    /** Poll interval of every wait, ms. Default 50. */
    pollIntervalMs?: number;
    /** Keys per MIGRATE command (classic path). Default 1000. */
    migrateBatchKeys?: number;
    /** Slots handled together in one pipelined round (classic path). Default 128. */
    migrateSlotsPerRound?: number;
    /** MIGRATE timeout, ms. Default 10000. */
    migrateTimeoutMs?: number;
    /** Use CLUSTER MIGRATION when every node is >= 8.4. Default true. */
    atomicMigration?: boolean;
    /**
     * During create only, on masters that hold no keys: set repl-diskless-sync-delay to 0 until
     * their replicas are linked, then restore the node's value. Default true.
     */
    fastInitialSync?: boolean;
    /**
     * While forming (create) and while a new node joins (reshape MEET): cluster-node-timeout on
     * those nodes, ms, so the server's rejoin delay (min(cluster-node-timeout, 5 s) before a master
     * that was alone reports cluster_state:ok) is short. Each node's own value is restored when the
     * step is done (a crash in between leaves it until the node restarts). 0 disables. Default 1000.
     */
    formationNodeTimeoutMs?: number;
    /** Addresses (host:port) that belonged to this cluster in an earlier run (from the provider's state). */
    formerNodes?: string[];
    /**
     * Heal mode (the converge agent between deploys): only these reshape step kinds may run. A plan
     * with any other step (slot moves, forgetting or removing nodes), or a cluster still to be
     * created, fails with a ClusterExecError (step "heal-guard") BEFORE anything changes.
     */
    onlyStepKinds?: ReshapeStep["kind"][];
    log?: Logger;
    onProgress?: (e: ProgressEvent) => void;
    /**
     * Called before every step with a short name (e.g. `addslots node0`, `migrate-round 3`);
     * throwing aborts the run there, as a crash would. Used by tests to prove resumability.
     */
    beforeStep?: (step: string) => void | Promise<void>;
}

export const EXECUTOR_DEFAULTS: Required<Omit<ExecutorOptions, "formerNodes" | "log" | "onProgress" | "beforeStep" | "onlyStepKinds">> = {
    connectTimeoutMs: 5000,
    convergeTimeoutMs: 60000,
    pollIntervalMs: 50,
    migrateBatchKeys: 1000,
    migrateSlotsPerRound: 128,
    migrateTimeoutMs: 10000,
    atomicMigration: true,
    fastInitialSync: true,
    formationNodeTimeoutMs: 1000,
};

// Classes here declare no field initializers or parameter properties: serializeFunction rebuilds a
// class from its constructor text, and ES2022 class fields would be lost on the engine side.

/** An executor failure naming the node and the step: a plain Error (see ClusterPlanError) with `node` and `step`. */
export interface ClusterExecError extends Error {
    node?: string;
    step?: string;
}

export function ClusterExecError(message: string, node?: string, step?: string): ClusterExecError {
    const e = new Error(message) as ClusterExecError;
    e.name = "ClusterExecError";
    e.node = node;
    e.step = step;
    return e;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Resolved extends Required<Omit<ExecutorOptions, "formerNodes" | "log" | "onProgress" | "beforeStep" | "onlyStepKinds">> {
    log: Logger;
    onlyStepKinds?: ReshapeStep["kind"][];
    progress: (e: ProgressEvent) => void;
    step: (name: string) => Promise<void>;
    formerNodes: Set<string>;
}

export function resolve(opts: ExecutorOptions): Resolved {
    return {
        ...EXECUTOR_DEFAULTS,
        ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
        log: opts.log ?? (() => undefined),
        progress: opts.onProgress ?? (() => undefined),
        step: async (name: string) => {
            if (opts.beforeStep) await opts.beforeStep(name);
        },
        formerNodes: new Set(opts.formerNodes ?? []),
    } as Resolved;
}
