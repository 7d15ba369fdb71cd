/**
 * The converge agent: runs on the nodes, inside the network, and keeps the cluster in the shape
 * the deployer published. The same executor as the RedisCluster resource's direct mode
 * (`converge`, `inspectDrift`, `checkCluster`), driven by documents in a CasStore (store.ts):
 *
 *   every ttl/3:         lease tick (lease.ts): renew while holding, take it when free
 *   every `intervalMs`, while holding the lease, one work round:
 *     spec.json newer than what was applied  -> converge (phase converging -> converged | failed)
 *     else, with `heal` in the spec          -> inspectDrift; repairs that move no data (planned
 *                                               failover, replicate, meet) run through converge
 *                                               with `onlyStepKinds`; anything else is reported
 *                                               in `needsDecision`, never done
 *     status.json written after every change of phase and on progress (at most every 2 s)
 *
 * Failure handling: a failed converge is retried on later rounds (bounded backoff, doubled up to
 * 8 x intervalMs) with `lastError` in the status; losing the lease makes `run` return "lease-lost"
 * (the process exits: an operation in flight stops with it, the next holder resumes, idempotent as
 * every converge is).
 */
import * as fs from "fs";
import { checkCluster, converge } from "../executor";
import { inspectDrift } from "../operations/respread";
import { ClusterExecError, ExecutorOptions } from "../primitives/options";
import { ClusterCredentials, ReshapeStep } from "../types";
import { Lease } from "./lease";
import { writeConvergeMetrics } from "./metrics";
import { AgentPhase, AgentSpecDoc, AgentStatusDoc, CasStore, parseDoc, SPEC_KEY, STATUS_KEY } from "./store";

/** Reshape steps that move no data and forget nothing: what healing may do without a new spec. */
export const HEAL_STEP_KINDS: ReshapeStep["kind"][] = ["failover", "replicate", "meet"];

export interface AgentOptions {
    store: CasStore;
    /** The agent's own ACL user (least privilege for converge) and TLS material. */
    creds: ClusterCredentials;
    holder: string;
    leaseTtlMs?: number;
    /** Pause between two work rounds, ms. Default 5000. */
    intervalMs?: number;
    /** Executor tunables (timeouts); the spec's convergeTimeoutMs wins when set. */
    executor?: ExecutorOptions;
    log?: (line: string) => void;
    /**
     * node_exporter textfile (e.g. /var/lib/prometheus/node-exporter/redisforge_converge.prom): the
     * lease holder writes redisforge_converge_{needs_decision,failed,leader,applied_generation} at
     * every status write (tmp file + rename); removed at start, so a former holder exports nothing.
     */
    metricsFile?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ConvergeAgent {
    readonly lease: Lease;
    private readonly o: AgentOptions;
    private status: AgentStatusDoc;
    private lastWrite = 0;
    private failures = 0;
    private retryAt = 0;
    private stopped = false;
    private heldOnce = false;
    private resumedTerm = -1;

    constructor(o: AgentOptions) {
        this.o = o;
        this.lease = new Lease(o.store, { holder: o.holder, ttlMs: o.leaseTtlMs });
        if (o.metricsFile) fs.rmSync(o.metricsFile, { force: true });
        this.status = { format: 1, agent: o.holder, term: 0, phase: "waiting-for-spec", appliedGeneration: 0, generation: 0, plan: [], needsDecision: [], healed: [], updatedAt: new Date().toISOString() };
    }

    private log(line: string): void {
        (this.o.log ?? ((l: string) => process.stdout.write(`${new Date().toISOString()} ${l}\n`)))(line);
    }

    /** Stops `run` after the current round. */
    stop(): void {
        this.stopped = true;
    }

    /**
     * Two loops until stopped: the lease is ticked every ttl/3 (renewed while holding, taken when
     * free), and the work round runs every `intervalMs` while held. When a held lease is lost,
     * `onLeaseLost` runs at once (default: exit the process with 75, which stops an operation in
     * flight) and `run` returns "lease-lost".
     */
    async run(onLeaseLost: (why: string) => void = (why) => { this.log(`lease lost (${why}): exiting`); process.exit(75); }): Promise<"stopped" | "lease-lost"> {
        const every = this.o.intervalMs ?? 5000;
        let lost: string | undefined;
        const renew = (async () => {
            while (!this.stopped && !lost) {
                const wasHeld = this.lease.held;
                const st = await this.lease.tick().catch((e) => ({ held: false as const, why: `store: ${(e as Error).message}` }));
                if (!st.held && (wasHeld || this.heldOnce)) {
                    lost = st.why;
                    onLeaseLost(st.why);
                    break;
                }
                if (st.held && !wasHeld) {
                    this.heldOnce = true;
                    this.log(`lease: acting as term ${st.term}`);
                }
                await sleep(this.lease.renewEveryMs);
            }
        })();
        while (!this.stopped && !lost) {
            if (this.lease.held) await this.work().catch((e) => this.log(`round failed: ${(e as Error).message}`));
            await sleep(every);
        }
        this.stopped = true;
        await renew;
        return lost ? "lease-lost" : "stopped";
    }

    /** One work round as the lease holder (run calls it; tests may too, after lease.tick()). */
    async work(): Promise<void> {
        if (!this.lease.held) return;
        if (this.resumedTerm !== this.lease.currentTerm) {
            // Resume from what the previous holder reported (applied generation, heal history).
            const prev = parseDoc<AgentStatusDoc>(await this.o.store.read(STATUS_KEY), `${this.o.store.where}/${STATUS_KEY}`);
            if (prev) this.status = { ...prev, agent: this.o.holder, healed: prev.healed ?? [], needsDecision: prev.needsDecision ?? [] };
            this.resumedTerm = this.lease.currentTerm;
            this.status.term = this.lease.currentTerm;
        }
        const spec = parseDoc<AgentSpecDoc>(await this.o.store.read(SPEC_KEY), `${this.o.store.where}/${SPEC_KEY}`);
        if (!spec) {
            await this.report("waiting-for-spec", {}, true);
            return;
        }
        if (spec.format !== 1 || !spec.spec || !Number.isInteger(spec.generation)) throw new Error(`${this.o.store.where}/${SPEC_KEY}: unknown format (format ${spec.format}, generation ${spec.generation})`);
        // Back off after a failure, unless the deployer published a new generation since.
        if (Date.now() < this.retryAt && spec.generation === this.status.generation) return;
        const exec = (extra: ExecutorOptions): ExecutorOptions => ({
            ...this.o.executor,
            convergeTimeoutMs: spec.convergeTimeoutMs ?? this.o.executor?.convergeTimeoutMs,
            formationNodeTimeoutMs: spec.formationNodeTimeoutMs ?? this.o.executor?.formationNodeTimeoutMs,
            connectTimeoutMs: spec.connectTimeoutMs ?? this.o.executor?.connectTimeoutMs,
            log: (line) => {
                this.log(line);
                if (line.startsWith("reshape plan: ")) this.status.plan = line.slice("reshape plan: ".length).split("; ");
            },
            onProgress: (e) => {
                this.status.progress = e;
                void this.report(this.status.phase, {}, false);
            },
            ...extra,
        });
        if (spec.generation !== this.status.appliedGeneration) {
            await this.report("converging", { generation: spec.generation, plan: [], lastError: undefined }, true);
            try {
                const observed = await converge(spec.spec, this.o.creds, exec({}));
                this.failures = 0;
                await this.report("converged", { appliedGeneration: spec.generation, generation: spec.generation, observed, needsDecision: [], progress: undefined }, true);
            } catch (e) {
                await this.fail(e as Error);
            }
            return;
        }
        const observed = await checkCluster(spec.spec, this.o.creds, exec({}));
        if (!spec.heal) {
            await this.report(this.status.phase === "failed" ? "failed" : "converged", { observed }, false);
            return;
        }
        const drift = await inspectDrift(spec.spec, this.o.creds, exec({}));
        const healable = drift.steps.filter((s) => HEAL_STEP_KINDS.includes(s.kind));
        const other = drift.steps.filter((s) => !HEAL_STEP_KINDS.includes(s.kind));
        const needsDecision = [
            ...drift.repairs.filter((_, i) => i >= drift.steps.length || !HEAL_STEP_KINDS.includes(drift.steps[i].kind)),
            ...(drift.reachedNodes < spec.spec.nodes.length ? [`${spec.spec.nodes.length - drift.reachedNodes} of ${spec.spec.nodes.length} nodes do not answer (lost capacity): replace them through a new spec (pulumi up)`] : []),
        ];
        if (!drift.actionable || healable.length === 0 || other.length > 0) {
            await this.report(needsDecision.length ? "needs-decision" : "converged", { observed: drift.status, needsDecision }, false);
            return;
        }
        const repairs = drift.repairs.filter((_, i) => i < drift.steps.length && HEAL_STEP_KINDS.includes(drift.steps[i].kind));
        this.log(`heal: ${repairs.join("; ")}`);
        await this.report("healing", { plan: repairs, needsDecision: [] }, true);
        try {
            const after = await converge(spec.spec, this.o.creds, exec({ onlyStepKinds: HEAL_STEP_KINDS }));
            this.failures = 0;
            this.status.healed = [...this.status.healed, { at: new Date().toISOString(), repairs }].slice(-20);
            await this.report("converged", { observed: after, lastError: undefined, progress: undefined }, true);
        } catch (e) {
            // The cluster changed between the inspection and the run, and the plan now moves data:
            // a decision, not a failure (nothing was changed: the guard runs before any step).
            if ((e as ClusterExecError).step === "heal-guard") await this.report("needs-decision", { needsDecision: [(e as Error).message], progress: undefined }, true);
            else await this.fail(e as Error);
        }
    }

    private async fail(e: Error): Promise<void> {
        this.failures++;
        const every = this.o.intervalMs ?? 5000;
        const backoff = Math.min(every * 2 ** (this.failures - 1), every * 8);
        this.retryAt = Date.now() + backoff;
        this.log(`converge failed (attempt ${this.failures}, retry in ${backoff} ms): ${e.message}`);
        await this.report("failed", { lastError: e.message, progress: undefined }, true);
    }

    /** Writes status.json (as the lease holder: unconditional, the lease is the lock); on progress at most every 2 s. */
    private async report(phase: AgentPhase, patch: Partial<AgentStatusDoc>, force: boolean): Promise<void> {
        Object.assign(this.status, patch, { phase, term: this.lease.currentTerm });
        const now = Date.now();
        if (!force && now - this.lastWrite < 2000) return;
        if (!this.lease.held) return;
        this.lastWrite = now;
        this.status.updatedAt = new Date().toISOString();
        this.writeMetrics();
        try {
            await this.o.store.write(STATUS_KEY, JSON.stringify(this.status));
        } catch (e) {
            this.log(`status not written (${(e as Error).message}); next write retries`);
        }
    }

    private writeMetrics(): void {
        if (!this.o.metricsFile) return;
        try {
            writeConvergeMetrics(this.o.metricsFile, this.status);
        } catch (e) {
            this.log(`metrics file ${this.o.metricsFile} not written: ${(e as Error).message}`);
        }
    }

    /** The status this agent last wrote (or would write). */
    get current(): AgentStatusDoc {
        return this.status;
    }
}
