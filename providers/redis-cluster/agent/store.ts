/**
 * What the converge agent and the deployer share: a small object store with compare-and-swap
 * writes (S3 conditional writes, GCS generation preconditions, Azure Blob ETags all offer it),
 * and the three documents kept in it under one prefix per cluster:
 *
 *   <prefix>/spec.json    written by the deployer (`pulumi up`): the desired cluster (no secret:
 *                         node addresses, zones, counts; credentials stay in the secret store)
 *   <prefix>/status.json  written by the agent that holds the lease: phase, plan, progress, last
 *                         error, observed topology, what needs an operator's decision
 *   <prefix>/lease.json   who acts: holder, term, a sequence bumped at every renewal
 *
 * The agent's identity needs read on spec.json and read/write on status.json and lease.json,
 * nothing else; the deployer's needs write on spec.json and read on status.json.
 */
import { ClusterSpec, ClusterStatus, ProgressEvent } from "../types";

/** One stored object: its body and the version a conditional write names (S3/Azure ETag, GCS generation). */
export interface Stored {
    body: string;
    version: string;
}

export interface CasStore {
    /** Human-readable location (for logs and errors), e.g. `s3://bucket/prefix`. */
    readonly where: string;
    /** The object, or undefined when it does not exist. */
    read(key: string): Promise<Stored | undefined>;
    /**
     * Writes `body` when the condition holds: `{ ifAbsent: true }` (create only) or `{ ifVersion }`
     * (replace exactly that version), or unconditionally without either. Returns the new version, or
     * "conflict" when the condition did not hold (412/409): someone else wrote first.
     */
    write(key: string, body: string, cond?: { ifAbsent?: boolean; ifVersion?: string }): Promise<{ version: string } | "conflict">;
}

export const SPEC_KEY = "spec.json";
export const STATUS_KEY = "status.json";
export const LEASE_KEY = "lease.json";

/** What the agent's identity may do under a cluster's prefix, and nothing more (the cloud grants). */
export const AGENT_DOC_ACCESS = { read: [SPEC_KEY], readWrite: [STATUS_KEY, LEASE_KEY] } as const;

/** spec.json: what the deployer asks for. `generation` grows with every change the deployer publishes. */
export interface AgentSpecDoc {
    format: 1;
    generation: number;
    spec: ClusterSpec;
    /** Repair between deploys what needs no data movement (re-spread masters, re-attach replicas). */
    heal: boolean;
    /** Executor tunables the deployer chose (bounded waits); never credentials. */
    convergeTimeoutMs?: number;
    formationNodeTimeoutMs?: number;
    /** Each connection's bound (scaled on a slow substrate: a TLS handshake under emulation takes seconds). */
    connectTimeoutMs?: number;
    publishedAt: string;
}

export type AgentPhase = "waiting-for-spec" | "converging" | "converged" | "healing" | "failed" | "needs-decision";

/** status.json: what the acting agent reports. */
export interface AgentStatusDoc {
    format: 1;
    /** The agent that wrote this (host name + pid). */
    agent: string;
    /** The lease term it held when writing. */
    term: number;
    phase: AgentPhase;
    /** The spec generation the cluster was last converged to (0: never). */
    appliedGeneration: number;
    /** The generation being worked on (= appliedGeneration when idle). */
    generation: number;
    /** The steps planned for the current run, one line each (what `preview` shows in agent mode). */
    plan: string[];
    progress?: ProgressEvent;
    lastError?: string;
    /** Repairs the agent will not do on its own (slot moves, forgetting nodes, lost capacity). */
    needsDecision: string[];
    /** Repairs done without a new spec since the agent started (heal mode), newest last (at most 20). */
    healed: { at: string; repairs: string[] }[];
    observed?: ClusterStatus;
    updatedAt: string;
}

export interface LeaseDoc {
    format: 1;
    holder: string;
    term: number;
    /** Bumped at every renewal, so every renewal is a new version even where versions are content hashes. */
    seq: number;
    ttlMs: number;
    renewedAt: string;
}

export function parseDoc<T>(s: Stored | undefined, what: string): T | undefined {
    if (!s) return undefined;
    try {
        return JSON.parse(s.body) as T;
    } catch (e) {
        throw new Error(`${what}: not valid JSON (${(e as Error).message}); the object was written by something else than RedisForge`);
    }
}
