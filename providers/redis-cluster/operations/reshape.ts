/** Reshaping a formed cluster step by step after the planner's plan (meet, migrate, replicate, failover, forget, remove). */
import { countSlots, expandRanges, planReshape } from "../planner";
import { ClusterCredentials, ClusterNodeSpec, ClusterSpec, LiveTopology, nodeAddress, ReshapeStep } from "../types";
import { Pool, Target } from "../primitives/connections";
import { ClusterExecError, Resolved, sleep } from "../primitives/options";
import { NodeProbe, probeAll, probeOne, specTarget, topologyFromProbes } from "../primitives/probes";
import { parseClusterNodes, versionAtLeast } from "../primitives/protocol";
import { SavedConfig, overrideConfig, restoreConfig } from "../primitives/runtime-config";
import { waitConverged, waitKnownByAll, waitStateOk } from "../primitives/waits";
import { replicateAll } from "./create";
import { plannedFailover, settleReplication } from "./failover";
import { runAtomicMigrations, settleLeftoverTasks } from "./migrate-atomic";
import { migrateClassic } from "./migrate-classic";
import { MigrationProgress } from "./migration-progress";

/**
 * cluster-allow-replica-migration as the rendered redis.conf leaves it (not set: Redis's default);
 * tests/unit/render.test.ts checks the rendered config leaves it so.
 */
export const REPLICA_MIGRATION_CONFIGURED = "yes";

export async function reshapeCluster(pool: Pool, spec: ClusterSpec, specProbes: NodeProbe[], creds: ClusterCredentials, o: Resolved): Promise<void> {
    let { topology, probes } = await topologyFromProbes(pool, specProbes, spec.nodes);
    // Atomic CLUSTER MIGRATION only when every reachable member is >= 8.4 (a rolling upgrade runs
    // mixed versions: the classic path works on every version).
    const atomic = o.atomicMigration && [...probes.values()].filter((p) => p.ok).every((p) => p.version && versionAtLeast(p.version, 8, 4));
    // A task left running by an earlier (crashed) run moves slots on its own: wait for it, then
    // plan from the topology it leaves. Starting an IMPORT (or, on the classic path, SETSLOT: "Slot
    // N is currently in an active atomic slot migration") now would collide with it. Asked of every
    // member >= 8.4, also in a mixed cluster (a node may have been upgraded after such a crash).
    const asmMembers = [...probes.values()].filter((p) => p.ok && p.myId && p.version && versionAtLeast(p.version, 8, 4)).map((p) => ({ target: p.target, nodeId: p.myId! }));
    if (asmMembers.length) {
        const leftovers = await settleLeftoverTasks(pool, asmMembers, o);
        if (leftovers.length) ({ topology, probes } = await topologyFromProbes(pool, await probeAll(pool, spec.nodes), spec.nodes));
    }
    // A member that answers as itself while others still flag it failed (just back from a
    // partition or a restart) is not forgotten: forgetting a live node splits it from the cluster
    // for good. Wait (bounded) until the flags clear; give up with the names if they do not.
    ({ topology, probes } = await waitStaleFailFlags(pool, spec, topology, probes, o));
    if (!topology.nodes.some((n) => !n.failed)) {
        throw ClusterExecError(
            `reshape: no healthy member of a formed cluster among ${spec.nodes.map((n) => `${n.id} ${nodeAddress(n)}`).join(", ")}; ` +
                `nothing to reshape from. Check the nodes (CLUSTER NODES) or CLUSTER RESET them to create anew`,
            undefined,
            "reshape",
        );
    }
    const plan = planReshape(topology, spec);
    for (const d of plan.degradations) o.log(`zone degradation: ${d}`);
    o.log(`reshape plan: ${plan.steps.map(describeStep).join("; ") || "(nothing to do)"}`);
    if (o.onlyStepKinds) {
        const refused = plan.steps.filter((s) => !o.onlyStepKinds!.includes(s.kind));
        if (refused.length) {
            throw ClusterExecError(`heal: not done without a new spec (needs slot moves or node removals): ${refused.map(describeStep).join("; ")}`, undefined, "heal-guard");
        }
    }
    const targetOf = (addr: string): Target => {
        const s = spec.nodes.find((n) => nodeAddress(n) === addr);
        if (s) return specTarget(s);
        const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
        return { host, port, label: `(leaving) ${addr}` };
    };
    const idOf = async (addr: string): Promise<string> => {
        const p = await probeOne(pool, targetOf(addr));
        if (!p.ok || !p.myId) throw ClusterExecError(`${targetOf(addr).label}: unreachable during reshape: ${p.error}`, addr, "reshape");
        return p.myId;
    };
    const healthyMembers = () => topology.nodes.filter((n) => !n.failed).map((n) => nodeAddress(n));
    const slotsTotal = plan.steps.reduce((a, s) => a + (s.kind === "migrate" ? s.count : s.kind === "fix-open-slot" ? 1 : 0), 0);
    const mig = new MigrationProgress(slotsTotal, o);
    const members = new Set(healthyMembers());
    const currentMembers = () => [...members];
    if (plan.steps.some((s) => s.kind === "migrate" || s.kind === "fix-open-slot")) {
        o.log(atomic ? "slot migration: atomic CLUSTER MIGRATION (every node >= 8.4)" : `slot migration: classic SETSLOT + MIGRATE (${o.atomicMigration ? "some node < 8.4" : "atomicMigration is off"})`);
    }

    // Runtime config changed for speed on joining nodes; restored when the reshape ends. The
    // server's own replica migration is off while the reshape places replicas: it moves a replica
    // to a master left without replicas, whatever the zones (the likely cause of a CI chaos run's
    // 60 s wait for a replica link after a zone came back). Back to the rendered config's value when done, also
    // where an interrupted run left it off.
    const saved: SavedConfig[] = [];
    const answering = [...probes.values()].filter((p) => p.ok).map((p) => p.target);
    saved.push(...(await overrideConfig(pool, answering, "cluster-allow-replica-migration", "no", o, REPLICA_MIGRATION_CONFIGURED)));
    const steps = replicasOfNewMastersFirst(plan.steps, topology);
    const emptyMasters = new Set(topology.nodes.filter((n) => countSlots(n.slots) === 0).map((n) => nodeAddress(n)));
    for (const s of plan.steps) if (s.kind === "meet") emptyMasters.add(s.node);
    try {
        // Group consecutive migrate steps so different source->target pairs run in parallel.
        for (let i = 0; i < steps.length; i++) {
            const step = steps[i];
            await o.step(`${step.kind} ${"node" in step ? step.node : ""}`.trim());
            switch (step.kind) {
                case "fix-open-slot": {
                    o.log(`finishing half-migrated slot ${step.slot} ${step.from} -> ${step.to}`);
                    await migrateClassic(pool, targetOf(step.from), targetOf(step.to), [step.slot], creds, o, mig, true);
                    break;
                }
                case "forget": {
                    o.progress({ phase: "forget", message: `forgetting ${step.node} (${step.reason})` });
                    await forgetEverywhere(pool, currentMembers().map(targetOf), step.nodeId, o);
                    members.delete(step.node);
                    break;
                }
                case "meet": {
                    // Consecutive MEETs join together, and every member meets every joining node
                    // directly (as create's full mesh): a MEET from one seed reaches the others by
                    // gossip only, measured here at 0.6-3.4 s per node.
                    const joining: { addr: string; t: Target; busPort: number; id: string }[] = [];
                    let j = i;
                    while (j < steps.length && steps[j].kind === "meet") {
                        const addr = (steps[j] as Extract<ReshapeStep, { kind: "meet" }>).node;
                        const t = targetOf(addr);
                        const p = await probeOne(pool, t);
                        if (!p.ok || !p.me) throw ClusterExecError(`${t.label}: unreachable before MEET: ${p.error}`, addr, "meet");
                        joining.push({ addr, t, busPort: p.me.busPort, id: p.myId! });
                        j++;
                    }
                    i = j - 1;
                    if (o.formationNodeTimeoutMs > 0) saved.push(...(await overrideConfig(pool, joining.map((x) => x.t), "cluster-node-timeout", String(o.formationNodeTimeoutMs), o)));
                    const seeds = currentMembers().filter((a) => !joining.some((x) => x.addr === a));
                    // Joining nodes meet each other too (they would otherwise learn of each other by gossip).
                    await Promise.all(
                        [...seeds, ...joining.map((x) => x.addr)].map(async (seedAddr) => {
                            const seed = await pool.get(targetOf(seedAddr));
                            const view = parseClusterNodes(String(await seed.cluster("NODES")));
                            const todo = joining.filter((x) => x.addr !== seedAddr && !view.some((n) => n.id === x.id && !n.handshake));
                            if (!todo.length) return;
                            const pipe = seed.pipeline();
                            for (const x of todo) pipe.call("CLUSTER", "MEET", x.t.host, x.t.port, x.busPort);
                            const res = (await pipe.exec())!;
                            res.forEach(([err], k) => {
                                if (err) throw ClusterExecError(`CLUSTER MEET ${seedAddr} -> ${todo[k].addr} failed: ${err.message}`, todo[k].addr, "meet");
                            });
                        }),
                    );
                    o.log(`MEET ${joining.map((x) => x.t.label).join(", ")} from ${seeds.length} members`);
                    for (const x of joining) members.add(x.addr);
                    await Promise.all(joining.map((x) => waitKnownByAll(pool, currentMembers().map(targetOf), x.id, x.addr, o)));
                    break;
                }
                case "migrate": {
                    // Run this and the following migrate steps concurrently (they have distinct pairs).
                    const batch: Extract<ReshapeStep, { kind: "migrate" }>[] = [];
                    let j = i;
                    while (j < steps.length && steps[j].kind === "migrate") batch.push(steps[j++] as Extract<ReshapeStep, { kind: "migrate" }>);
                    i = j - 1;
                    // A just-met target answers CLUSTERDOWN to MIGRATE until it has the whole slot map.
                    await Promise.all([...new Set(batch.map((m) => m.to))].map((a) => waitStateOk(pool, targetOf(a), o)));
                    for (const m of batch.filter((x) => !x.from)) {
                        const c = await pool.get(targetOf(m.to));
                        await c.call("CLUSTER", "ADDSLOTSRANGE", ...m.slots.flatMap((r) => [r.start, r.end]));
                    }
                    const moves = batch.filter((x) => x.from);
                    if (atomic) {
                        // One task per node at a time; disjoint pairs in parallel (migrate-atomic.ts).
                        await runAtomicMigrations(pool, moves.map((m) => ({ from: targetOf(m.from!), to: targetOf(m.to), ranges: m.slots })), o, mig);
                    } else {
                        // allSettled: every stream ends before an error propagates, so the pool
                        // (closed by converge's finally) is never closed under a running stream.
                        const settled = await Promise.allSettled(moves.map((m) => migrateClassic(pool, targetOf(m.from!), targetOf(m.to), expandRanges(m.slots), creds, o, mig, false)));
                        const failed = settled.filter((r): r is PromiseRejectedResult => r.status === "rejected");
                        if (failed.length) throw failed[0].reason;
                    }
                    break;
                }
                case "replicate": {
                    // A new, still empty master has nothing to batch: no repl-diskless-sync-delay
                    // (5 s) before its replica's first sync (its own value comes back at the end).
                    if (o.fastInitialSync && emptyMasters.has(step.master)) {
                        const mp = await probeOne(pool, targetOf(step.master));
                        if (mp.ok && (mp.dbsize ?? 0) === 0 && countSlots(mp.me?.slots ?? []) === 0) saved.push(...(await overrideConfig(pool, [targetOf(step.master)], "repl-diskless-sync-delay", "0", o)));
                    }
                    const masterId = await idOf(step.master);
                    const nodeProbe = await probeOne(pool, targetOf(step.node));
                    await replicateAll(pool, new Map([[step.node, step.master]]), [nodeProbe, { ...nodeProbe, addr: step.master, myId: masterId, target: targetOf(step.master) }], o);
                    break;
                }
                case "failover": {
                    await plannedFailover(pool, targetOf(step.node), targetOf(step.master), o);
                    break;
                }
                case "remove": {
                    o.progress({ phase: "forget", message: `removing ${step.node} (${step.reason})` });
                    const others = currentMembers().filter((a) => a !== step.node).map(targetOf);
                    // A removed node must be empty: its slots were drained by earlier steps.
                    const p = await probeOne(pool, targetOf(step.node));
                    if (p.ok && p.me && countSlots(p.me.slots) > 0) {
                        throw ClusterExecError(`remove ${step.node}: still owns ${countSlots(p.me.slots)} slots; refusing to forget it (drain first)`, step.node, "remove");
                    }
                    // Nodes removed by later steps may still replicate this one ("Can't forget my
                    // master"): they are soft-reset by their own step, so they are skipped here.
                    const removedLater = new Set(steps.slice(i + 1).filter((s) => s.kind === "remove").map((s) => (s as { node: string }).node));
                    await forgetEverywhere(pool, others, step.nodeId, o, (t) => removedLater.has(`${t.host}:${t.port}`));
                    if (p.ok) {
                        const c = await pool.get(targetOf(step.node));
                        // SOFT reset: the node forgets the cluster; a replica's dataset is a copy, a drained master is empty.
                        if (p.me?.master && (p.dbsize ?? 0) > 0) {
                            throw ClusterExecError(`remove ${step.node}: master still holds ${p.dbsize} keys in no slot it owns; inspect it before removal`, step.node, "remove");
                        }
                        await c.cluster("RESET", "SOFT");
                    }
                    members.delete(step.node);
                    break;
                }
            }
        }

        // Wait for agreement over the final members: first for the replication the nodes report
        // once no replica follows a master that a failover step demoted (folding a chain the
        // server leaves), bounded; if it never settles, the error names the replica.
        await settleReplication(pool, currentMembers().map(targetOf), o);
        const memberSpecs: ClusterNodeSpec[] = currentMembers().map((a) => spec.nodes.find((n) => nodeAddress(n) === a) ?? { id: a, host: targetOf(a).host, port: targetOf(a).port, zone: "?" });
        await waitConverged(pool, { members: memberSpecs, replicaOf: "observed", fullCoverage: true }, creds, o, "reshape");
    } finally {
        await restoreConfig(pool, saved, o);
    }
}

/** Members flagged failed in the main view although they answer here with their own node id. */
function staleFailed(topology: LiveTopology, probes: Map<string, NodeProbe>): LiveTopology["nodes"] {
    return topology.nodes.filter((n) => {
        const p = probes.get(nodeAddress(n));
        return n.failed && !!p?.ok && p.myId === n.nodeId;
    });
}

/**
 * Re-reads the topology until no member that answers as itself is flagged failed (the cluster
 * clears the flag once the node is reachable again: at once for a replica, after the failover
 * settled for a master). Bounded by convergeTimeoutMs; then throws naming the nodes and who flags them.
 */
async function waitStaleFailFlags(
    pool: Pool,
    spec: ClusterSpec,
    topology: LiveTopology,
    probes: Map<string, NodeProbe>,
    o: Resolved,
): Promise<{ topology: LiveTopology; probes: Map<string, NodeProbe> }> {
    let stale = staleFailed(topology, probes);
    if (!stale.length) return { topology, probes };
    o.log(`waiting for the failure flag of ${stale.map((n) => nodeAddress(n)).join(", ")} to clear (the node${stale.length > 1 ? "s answer" : " answers"} as itself)`);
    const deadline = Date.now() + o.convergeTimeoutMs;
    for (let i = 0; Date.now() < deadline && i < 100000; i++) {
        await sleep(Math.min(500, Math.max(o.pollIntervalMs, 50)));
        ({ topology, probes } = await topologyFromProbes(pool, await probeAll(pool, spec.nodes), spec.nodes));
        stale = staleFailed(topology, probes);
        if (!stale.length) return { topology, probes };
    }
    throw ClusterExecError(
        `reshape: ${stale.map((n) => nodeAddress(n)).join(", ")} answer${stale.length > 1 ? "" : "s"} as ${stale.length > 1 ? "themselves" : "itself"} but ${stale.length > 1 ? "are" : "is"} still flagged failed by the cluster after ${Math.round(o.convergeTimeoutMs / 1000)} s; ` +
            `not forgetting a live node. Check the cluster bus between the nodes (partition? firewall on the bus port?) and rerun`,
        nodeAddress(stale[0]),
        "reshape",
    );
}

/**
 * The planner attaches replicas after the slots moved. A replica of a NEW master (one that owns no
 * slot yet) is attached before the first migration instead: its first sync is then of an empty
 * dataset (instant, with repl-diskless-sync-delay 0), and the keys reach it through the replication
 * stream while they move, so the shard is healthy when the last slot lands (measured: the wait for
 * a post-migration full sync of the moved keys was ~7 s of a 3 -> 4 reshape with 500 000 keys).
 * Only replicate steps whose replica and master both own no slot now, and whose nodes take no part
 * in any other step before it, are moved; everything else keeps the planner's order. Pure.
 */
export function replicasOfNewMastersFirst(steps: ReshapeStep[], topology: LiveTopology): ReshapeStep[] {
    const firstMigrate = steps.findIndex((s) => s.kind === "migrate" && !!s.from);
    if (firstMigrate < 0) return steps;
    const slotsOf = new Map(topology.nodes.map((n) => [nodeAddress(n), countSlots(n.slots)]));
    const empty = (addr: string) => (slotsOf.get(addr) ?? 0) === 0;
    const involves = (s: ReshapeStep, addr: string) =>
        ("node" in s && s.node === addr) || ("master" in s && s.master === addr) || ("from" in s && s.from === addr) || ("to" in s && s.to === addr);
    const hoisted: ReshapeStep[] = [];
    const rest: ReshapeStep[] = [];
    steps.forEach((s, i) => {
        if (i > firstMigrate && s.kind === "replicate" && empty(s.node) && empty(s.master)) {
            const between = steps.slice(firstMigrate, i);
            // The master may receive slots in between (that is the point); the replica may not appear at all.
            if (!between.some((b) => involves(b, s.node)) && !between.some((b) => b.kind !== "migrate" && involves(b, s.master))) {
                hoisted.push(s);
                return;
            }
        }
        rest.push(s);
    });
    return [...rest.slice(0, firstMigrate), ...hoisted, ...rest.slice(firstMigrate)];
}

export function describeStep(s: ReshapeStep): string {
    switch (s.kind) {
        case "migrate": return `migrate ${s.count} slots ${s.from || "(unassigned)"} -> ${s.to}`;
        case "fix-open-slot": return `finish slot ${s.slot} ${s.from} -> ${s.to}`;
        case "replicate": return `replicate ${s.node} -> ${s.master}`;
        case "failover": return `failover ${s.node} takes over ${s.master} (${s.reason})`;
        default: return `${s.kind} ${s.node}`;
    }
}

/** CLUSTER FORGET on every node at once (all within the 60 s ban window, so gossip cannot bring it back). */
export async function forgetEverywhere(pool: Pool, targets: Target[], nodeId: string, o: Resolved, leavingLater: (t: Target) => boolean = () => false): Promise<void> {
    const results = await Promise.all(
        targets.map(async (t) => {
            try {
                const c = await pool.get(t);
                const view = parseClusterNodes(String(await c.cluster("NODES")));
                const me = view.find((n) => n.myself);
                if (me?.id === nodeId) return null;
                if (me && me.masterId === nodeId && leavingLater(t)) return null;
                if (!view.some((n) => n.id === nodeId)) return null;
                await c.cluster("FORGET", nodeId);
                return null;
            } catch (e) {
                const msg = (e as Error).message;
                if (/Unknown node/i.test(msg)) return null;
                return `${t.label}: ${msg}`;
            }
        }),
    );
    const errs = results.filter((x): x is string => !!x);
    if (errs.length) throw ClusterExecError(`CLUSTER FORGET ${nodeId} failed on: ${errs.join("; ")}`, undefined, "forget");
    o.log(`forgot ${nodeId} on ${targets.length} nodes`);
}
