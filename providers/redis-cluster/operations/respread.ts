/**
 * Drift of a formed cluster against its spec, read-only: what `converge` would do now.
 *
 * Why it exists: after an automatic failover (a master crashed, its replica in another zone was
 * promoted, the old master came back as a replica) the live layout differs from the spec although
 * the resource's inputs did not change: masters crowd one zone, so losing that zone loses the
 * majority of masters. The pure planner already repairs this (planReshape step 7: a planned
 * CLUSTER FAILOVER to the shard's replica in an under-filled zone, no slot moves); this module
 * makes the repair visible BEFORE it runs, so the dynamic provider's `read` can report it
 * (`pendingRepairs`, `pulumi refresh`) and its `diff` can ask for an update and say why
 * (`pulumi preview`).
 *
 * Changes nothing: CLUSTER NODES / INFO probes and the pure planner only.
 */
import { planReshape } from "../planner";
import { ClusterCredentials, ClusterSpec, ClusterStatus, nodeAddress, ReshapeStep } from "../types";
import { Pool } from "../primitives/connections";
import { ExecutorOptions, resolve } from "../primitives/options";
import { probeAll, topologyFromProbes } from "../primitives/probes";
import { statusFromPool } from "./check";
import { describeStep } from "./reshape";

/** What the live cluster needs to match `spec`, as the next converge would do it. */
export interface DriftReport {
    /** The same verdict `checkCluster` (and `npm run scale -- status`) gives. */
    status: ClusterStatus;
    /** One line per planned step (`failover ...: replica X (zone a) takes over master Y (zone b, 5461 slots) ...`). Empty: nothing to repair. */
    repairs: string[];
    /** The planned steps themselves (failover steps name replica and master by address). */
    steps: ReshapeStep[];
    /**
     * Whether `converge` can act on the repairs now: every spec node answered and the planner
     * found a plan. False when a node is down (converge's preflight would refuse) or the cluster
     * is not formed yet; `repairs` then says why, and an update is not forced by drift alone.
     */
    actionable: boolean;
    /** Spec nodes that answered the probe. 0: nothing is known about the live cluster. */
    reachedNodes: number;
}

/** Reads the cluster (probes only) and plans, with the pure planner, what converge would change. */
export async function inspectDrift(spec: ClusterSpec, creds: ClusterCredentials, opts: ExecutorOptions = {}): Promise<DriftReport> {
    const o = resolve(opts);
    const pool = new Pool(creds, opts);
    try {
        const probes = await probeAll(pool, spec.nodes);
        const { topology } = await topologyFromProbes(pool, probes, spec.nodes);
        const status = await statusFromPool(pool, spec, o);
        const down = probes.filter((p) => !p.ok);
        const reachedNodes = probes.length - down.length;
        if (!topology.nodes.length) return { status, repairs: [], steps: [], actionable: false, reachedNodes };
        let steps: ReshapeStep[];
        try {
            steps = planReshape(topology, spec).steps;
        } catch (e) {
            return { status, repairs: [`no repair can be planned now: ${(e as Error).message}`], steps: [], actionable: false, reachedNodes };
        }
        const zoneOf = new Map(spec.nodes.map((n) => [nodeAddress(n), n.zone]));
        const slotsOf = new Map(status.masters.map((m) => [m.address, m.slots]));
        const repairs = steps.map((s) =>
            s.kind === "failover"
                ? `planned CLUSTER FAILOVER: replica ${s.node} (${zoneOf.get(s.node) ?? "?"}) takes over master ${s.master} (${zoneOf.get(s.master) ?? "?"}, ${slotsOf.get(s.master) ?? 0} slots stay in the shard, no slot moves) because ${s.reason}`
                : describeStep(s),
        );
        if (down.length && steps.length) {
            repairs.push(`not repaired while ${down.map((p) => p.target.label).join(", ")} ${down.length === 1 ? "is" : "are"} unreachable (converge checks every node first); start ${down.length === 1 ? "it" : "them"}, then run pulumi up`);
        }
        return { status, repairs, steps, actionable: down.length === 0 && steps.length > 0, reachedNodes };
    } finally {
        await pool.closeAll();
    }
}
