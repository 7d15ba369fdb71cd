/**
 * Rolling upgrade (or forced downgrade) of a live cluster to one server version, one node at a time.
 *
 * Order (the only one that keeps every slot served and every write acknowledged by `WAIT 1`):
 *
 *   0. preflight: every node answers (or is down and will be restarted first), the cluster is ok,
 *      no node runs a newer version than the target unless `allowDowngrade`;
 *   1. replicas first: restart each replica not on the target (hook), wait until it is back as
 *      ITSELF (same node id: nodes.conf and the AOF survived), on the target version, replicating
 *      its master with `master_link_status:up` and no sync in progress, and every member has
 *      cleared its pfail/fail flag; only then the next node;
 *   2. then each master not on the target: a planned `CLUSTER FAILOVER` (operations/failover.ts) to
 *      one of its replicas that already runs the target (choosing, among them, the one whose zone
 *      holds the fewest masters), wait until the cluster agrees, restart the old master (it comes
 *      back as a replica of the new one) and wait for its sync as in 1;
 *   3. masters go back where they were: for every shard whose master moved in step 2, a planned
 *      failover back to the node that was master when the run began (`restoreMasters`, default
 *      on). So the zone spread after an upgrade is exactly the one before it, and the planned
 *      roles that the cloud components tag VMs with stay true (components/rolling-order.ts
 *      relies on them for the next upgrade's order).
 *
 * The zone invariant holds at every step: a failover swaps master and replica within one shard,
 * so no replica ever shares a zone with its master if none did before; it is checked after every
 * step anyway (`onStep` sees each check) and a violation stops the run.
 *
 * Design: this file is generic. It never starts or stops anything itself; the caller passes a
 * `restartNode` hook (the local stack: stop a redis-server by PID and start it with the new
 * binary, providers/local/restart-node.ts; a test: the same on a lab). On the clouds the node
 * restart IS a VM/container replacement that the engine performs; there the two halves
 * `prepareNodeRestart` (fail over away from a master) and `awaitNodeBack` run as gates around
 * each replacement (providers/redis-cluster/rolling-gate.ts).
 *
 * Idempotent and resumable: a node already on the target version is skipped, so a run that
 * aborted (a node did not come back within `nodeReturnTimeoutMs`: the error names the node, the
 * step, what was last seen and the hook's own diagnosis, e.g. the log tail) is finished by the
 * next run once the cause is fixed. A node found down at the start is restarted first.
 */
import { countSlots } from "../planner";
import { ClusterCredentials, ClusterNodeSpec, ClusterSpec, nodeAddress } from "../types";
import { Pool, Target } from "../primitives/connections";
import { ClusterExecError, ExecutorOptions, Resolved, resolve, sleep } from "../primitives/options";
import { NodeProbe, probeAll, probeOne, specTarget } from "../primitives/probes";
import { waitConverged } from "../primitives/waits";
import { plannedFailover, settleReplication } from "./failover";

/** Numeric compare of dotted versions ("7.0.15" < "8.6.3"). */
export function compareServerVersions(a: string, b: string): number {
    const x = a.split(".").map(Number);
    const y = b.split(".").map(Number);
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    return 0;
}

/** True when a node reporting `live` runs the `target` ("8.6" matches 8.6.x; "8.6.3" only 8.6.3). */
export function onTargetVersion(live: string | undefined, target: string): boolean {
    if (!live) return false;
    const t = target.split(".");
    return live.split(".").slice(0, t.length).join(".") === t.join(".");
}

/**
 * The error a downgrade request gets unless forced. Names the key, why (file formats), and the fix.
 * `nodes` are the nodes that run a newer version than `target`.
 */
export function downgradeRefusal(target: string, nodes: { label: string; version: string }[]): string {
    const newest = nodes.map((n) => n.version).sort(compareServerVersions).pop()!;
    const formats = Number(newest.split(".")[0]) >= 8 && Number(target.split(".")[0]) < 8
        ? ` A ${target.split(".").slice(0, 2).join(".")} server cannot load the RDB/AOF files an ${newest.split(".")[0]}.x server wrote (RDB format 12; 7.0 reads up to 10), nor a full sync from an 8.x master, so the restarted nodes would not start with their data.`
        : " Older servers may not read the files a newer one wrote.";
    return (
        `redisforge:redisVersion ${target} is a downgrade: ${nodes.map((n) => `${n.label} runs ${n.version}`).join(", ")}.${formats} ` +
        `Fix: set redisforge:redisVersion back to ${newest.split(".").slice(0, 2).join(".")} (or higher); to downgrade anyway (restore the data from a backup made by the older version afterwards), set redisforge:allowDowngrade true`
    );
}

/** One node as the restart hook sees it. */
export interface UpgradeNode {
    spec: ClusterNodeSpec;
    /** Version it reported before the restart (undefined when it was down). */
    fromVersion?: string;
    /** Version it must report after. */
    targetVersion: string;
    /** Its role when it was restarted. */
    role: "master" | "replica" | "down";
}

/**
 * Restarts one node on the target version. Must be bounded and must only touch that node's own
 * process/VM. Resolves once the restart was issued and the process runs (health is awaited by the
 * caller). May throw with a message naming the node and the fix.
 */
export type RestartNodeHook = (node: UpgradeNode) => Promise<void>;

export interface UpgradeOptions extends ExecutorOptions {
    /** The version every node must run afterwards, as redis_version reports it ("8.6.3") or a prefix ("8.6"). */
    targetVersion: string;
    restartNode: RestartNodeHook;
    /** Optional: lines that explain why a node did not come back (e.g. its log tail). */
    describeNode?: (node: ClusterNodeSpec) => Promise<string> | string;
    /** Allow a target lower than a running version. Default false (refused: downgradeRefusal). */
    allowDowngrade?: boolean;
    /** Bound on each node's return (restart + load + sync), ms. Default 60000. */
    nodeReturnTimeoutMs?: number;
    /** Fail masters back to the nodes that were masters when the run began. Default true. */
    restoreMasters?: boolean;
    /** Called after every step with what the zone check saw (tests record it). */
    onStep?: (e: UpgradeStepEvent) => void;
}

export interface UpgradeStepEvent {
    step: string;
    node: string;
    /** Masters (spec id -> zone) after the step. */
    masters: Record<string, string>;
    /** Replica -> master pairs sharing a zone (must stay empty). */
    zoneViolations: string[];
    versions: Record<string, string>;
}

export interface UpgradeReport {
    targetVersion: string;
    /** Spec ids restarted, in order. */
    restarted: string[];
    /** Spec ids already on the target. */
    skipped: string[];
    /** "new master <- old master" for every planned failover, in order. */
    failovers: string[];
    /** Spec ids of masters after the run. */
    mastersAfter: string[];
    durationMs: number;
}

interface Live {
    spec: ClusterNodeSpec;
    probe: NodeProbe;
}

function roleOf(p: NodeProbe): "master" | "replica" | "down" {
    if (!p.ok || !p.me) return "down";
    return p.me.master ? "master" : "replica";
}

/** Runs the rolling upgrade. Returns what it did; throws ClusterExecError naming node and step. */
export async function upgradeCluster(spec: ClusterSpec, creds: ClusterCredentials, opts: UpgradeOptions): Promise<UpgradeReport> {
    const o = resolve(opts);
    const pool = new Pool(creds, opts);
    const t0 = Date.now();
    const report: UpgradeReport = { targetVersion: opts.targetVersion, restarted: [], skipped: [], failovers: [], mastersAfter: [], durationMs: 0 };
    try {
        const probes = await probeAll(pool, spec.nodes);
        const live: Live[] = spec.nodes.map((s, i) => ({ spec: s, probe: probes[i] }));
        checkDowngrade(live, opts);
        const pending = live.filter((l) => !onTargetVersion(l.probe.version, opts.targetVersion));
        report.skipped = live.filter((l) => !pending.includes(l)).map((l) => l.spec.id);
        if (!pending.length) {
            o.log(`upgrade: every node runs ${opts.targetVersion}; nothing to do`);
            report.mastersAfter = live.filter((l) => roleOf(l.probe) === "master" && countSlots(l.probe.me!.slots) > 0).map((l) => l.spec.id);
            return report;
        }
        o.log(`upgrade to ${opts.targetVersion}: ${pending.map((l) => `${l.spec.id} (${l.probe.version ?? "down"}, ${roleOf(l.probe)})`).join(", ")}; already there: ${report.skipped.join(", ") || "none"}`);

        // Down nodes first: they serve nothing now, and the cluster must be whole before anything
        // else is restarted. (A rerun after an abort finds the node that did not come back here.)
        for (const l of pending.filter((x) => roleOf(x.probe) === "down")) {
            await restartAndAwait(pool, l.spec, undefined, "down", spec, creds, o, opts, report);
        }
        await settle(pool, spec, creds, o, "upgrade preflight");

        // Roles as the run begins (after down nodes rejoined): who to fail back to at the end.
        const start = await liveState(pool, spec);
        const originalMasterOfShard = new Map<string, string>(); // slot signature -> spec id
        for (const l of start) if (roleOf(l.probe) === "master" && countSlots(l.probe.me!.slots) > 0) originalMasterOfShard.set(shardKey(l.probe), l.spec.id);

        // 1. Replicas.
        for (const l of start.filter((x) => roleOf(x.probe) === "replica" && !onTargetVersion(x.probe.version, opts.targetVersion))) {
            await o.step(`upgrade-replica ${l.spec.id}`);
            await restartAndAwait(pool, l.spec, l.probe.version, "replica", spec, creds, o, opts, report);
        }

        // 2. Masters: fail over to an upgraded replica, then restart the old master.
        for (const l of start.filter((x) => roleOf(x.probe) === "master" && !onTargetVersion(x.probe.version, opts.targetVersion))) {
            await o.step(`upgrade-master ${l.spec.id}`);
            const moved = await prepareNodeRestart(spec, creds, l.spec, opts, pool);
            if (moved) report.failovers.push(`${moved} <- ${l.spec.id}`);
            await restartAndAwait(pool, l.spec, l.probe.version, moved ? "replica" : "master", spec, creds, o, opts, report);
        }

        // 3. Masters back where they were.
        if (opts.restoreMasters ?? true) {
            const now = await liveState(pool, spec);
            for (const l of now.filter((x) => roleOf(x.probe) === "master" && countSlots(x.probe.me!.slots) > 0)) {
                const wanted = originalMasterOfShard.get(shardKey(l.probe));
                if (!wanted || wanted === l.spec.id) continue;
                const back = now.find((x) => x.spec.id === wanted);
                if (!back || back.probe.me?.masterId !== l.probe.myId) continue; // not its replica any more: leave it
                await o.step(`restore-master ${wanted}`);
                await plannedFailover(pool, specTarget(back.spec), specTarget(l.spec), o);
                report.failovers.push(`${wanted} <- ${l.spec.id} (back)`);
                await settle(pool, spec, creds, o, `failover back to ${wanted}`);
                await zoneCheck(pool, spec, o, opts, `restore-master`, wanted);
            }
        }

        const end = await liveState(pool, spec);
        const behind = end.filter((l) => !onTargetVersion(l.probe.version, opts.targetVersion));
        if (behind.length) {
            throw ClusterExecError(`upgrade: after the run ${behind.map((l) => `${l.spec.id} runs ${l.probe.version ?? "(down)"}`).join(", ")}, not ${opts.targetVersion}; rerun to finish`, nodeAddress(behind[0].spec), "upgrade-verify");
        }
        report.mastersAfter = end.filter((l) => roleOf(l.probe) === "master" && countSlots(l.probe.me!.slots) > 0).map((l) => l.spec.id);
        report.durationMs = Date.now() - t0;
        o.log(`upgrade to ${opts.targetVersion} done in ${(report.durationMs / 1000).toFixed(1)} s: restarted ${report.restarted.join(", ")}; failovers ${report.failovers.join(", ") || "none"}`);
        return report;
    } finally {
        await pool.closeAll();
    }
}

/** Throws downgradeRefusal when a node runs a newer version than the target and it is not forced. */
function checkDowngrade(live: Live[], opts: UpgradeOptions): void {
    const newer = live.filter((l) => l.probe.version && !onTargetVersion(l.probe.version, opts.targetVersion) && compareServerVersions(l.probe.version, opts.targetVersion) > 0);
    if (!newer.length) return;
    if (!opts.allowDowngrade) {
        throw ClusterExecError(downgradeRefusal(opts.targetVersion, newer.map((l) => ({ label: `${l.spec.id} ${nodeAddress(l.spec)}`, version: l.probe.version! }))), nodeAddress(newer[0].spec), "upgrade-preflight");
    }
    opts.log?.(`allowDowngrade: downgrading ${newer.map((l) => l.spec.id).join(", ")} to ${opts.targetVersion}`);
}

/** Masters are told apart by the slots they own; a failover keeps them, so this names a shard. */
function shardKey(p: NodeProbe): string {
    return (p.me?.slots ?? []).map((r) => `${r.start}-${r.end}`).join(",");
}

async function liveState(pool: Pool, spec: ClusterSpec): Promise<Live[]> {
    const probes = await probeAll(pool, spec.nodes);
    return spec.nodes.map((s, i) => ({ spec: s, probe: probes[i] }));
}

/** Every spec node reachable, agreeing on one slot map, cluster_state:ok, nobody flagged failed. */
async function settle(pool: Pool, spec: ClusterSpec, creds: ClusterCredentials, o: Resolved, what: string): Promise<void> {
    // A replica of the shard left following the demoted master is re-pointed (see settleReplication).
    await settleReplication(pool, spec.nodes.map(specTarget), o, what);
    await waitConverged(pool, { members: spec.nodes, replicaOf: new Map(), fullCoverage: true }, creds, o, what);
}

/**
 * Before a node's restart (local hook or a VM replacement): if it is a master, fail over to its
 * best replica — on the target version when one is given and available, linked, in the zone with
 * the fewest masters — and wait until the cluster agrees. Returns the spec id of the new master,
 * or null when the node was not a master (or has no replica: then its slots are unserved while it
 * restarts, which is logged).
 */
export async function prepareNodeRestart(spec: ClusterSpec, creds: ClusterCredentials, node: ClusterNodeSpec, opts: ExecutorOptions & { targetVersion?: string }, sharedPool?: Pool): Promise<string | null> {
    const o = resolve(opts);
    const pool = sharedPool ?? new Pool(creds, opts);
    try {
        const all = await liveState(pool, spec);
        const me = all.find((l) => l.spec.id === node.id)!;
        if (roleOf(me.probe) !== "master" || countSlots(me.probe.me!.slots) === 0) return null;
        const replicas = all.filter((l) => l.probe.ok && l.probe.me && !l.probe.me.master && l.probe.me.masterId === me.probe.myId && l.probe.replication?.master_link_status === "up");
        if (!replicas.length) {
            o.log(`upgrade: master ${node.id} has no linked replica; its slots are not served while it restarts (add replicas: replicasPerShard >= 1)`);
            return null;
        }
        const mastersPerZone = new Map<string, number>();
        for (const l of all) if (l !== me && roleOf(l.probe) === "master" && countSlots(l.probe.me!.slots) > 0) mastersPerZone.set(l.spec.zone, (mastersPerZone.get(l.spec.zone) ?? 0) + 1);
        const score = (l: Live) => [opts.targetVersion && onTargetVersion(l.probe.version, opts.targetVersion) ? 0 : 1, mastersPerZone.get(l.spec.zone) ?? 0, spec.nodes.indexOf(l.spec)];
        replicas.sort((a, b) => {
            const [x, y] = [score(a), score(b)];
            for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
            return 0;
        });
        const to = replicas[0];
        await plannedFailover(pool, specTarget(to.spec), specTarget(node), o);
        await settle(pool, spec, creds, o, `failover ${to.spec.id} <- ${node.id}`);
        // The old master must have become a replica of the new one before it is stopped, or the
        // cluster could see two masters of one shard when it returns.
        const deadline = Date.now() + o.convergeTimeoutMs;
        let last = "";
        while (Date.now() < deadline) {
            const p = await probeOne(pool, specTarget(node), node);
            if (p.ok && p.me && !p.me.master && p.me.masterId === to.probe.myId) return to.spec.id;
            last = p.ok ? `role ${p.me?.master ? "master" : "replica"} of ${p.me?.masterId ?? "-"}` : p.error ?? "unreachable";
            await sleep(o.pollIntervalMs);
        }
        throw ClusterExecError(`upgrade: after CLUSTER FAILOVER ${to.spec.id} <- ${node.id}, ${node.id} ${nodeAddress(node)} did not become its replica within ${Math.round(o.convergeTimeoutMs / 1000)} s (last: ${last}); nothing was restarted; rerun`, nodeAddress(node), "upgrade-failover");
    } finally {
        if (!sharedPool) await pool.closeAll();
    }
}

async function restartAndAwait(
    pool: Pool,
    node: ClusterNodeSpec,
    fromVersion: string | undefined,
    role: UpgradeNode["role"],
    spec: ClusterSpec,
    creds: ClusterCredentials,
    o: Resolved,
    opts: UpgradeOptions,
    report: UpgradeReport,
): Promise<void> {
    const before = await probeOne(pool, specTarget(node), node);
    o.progress({ phase: "converge", message: `upgrade: restarting ${node.id} (${role}, ${fromVersion ?? "down"}) on ${opts.targetVersion}` });
    pool.drop(specTarget(node));
    try {
        await opts.restartNode({ spec: node, fromVersion, targetVersion: opts.targetVersion, role });
    } catch (e) {
        throw ClusterExecError(`upgrade: restarting ${node.id} ${nodeAddress(node)} on ${opts.targetVersion} failed: ${(e as Error).message}. Fix the cause and rerun (nodes already on ${opts.targetVersion} are skipped)`, nodeAddress(node), "upgrade-restart");
    }
    report.restarted.push(node.id);
    await awaitNodeBack(spec, creds, node, { ...opts, expectNodeId: before.ok ? before.myId : undefined }, pool);
    await zoneCheck(pool, spec, o, opts, `restart-${role}`, node.id);
}

/**
 * After a node's restart: waits (bounded by `nodeReturnTimeoutMs`) until it answers as itself on
 * the target version, a replica is linked and synced, every member has cleared its failure flag,
 * and the cluster is ok. Throws a diagnosis naming the node.
 */
export async function awaitNodeBack(
    spec: ClusterSpec,
    creds: ClusterCredentials,
    node: ClusterNodeSpec,
    opts: ExecutorOptions & { targetVersion?: string; nodeReturnTimeoutMs?: number; expectNodeId?: string; describeNode?: UpgradeOptions["describeNode"] },
    sharedPool?: Pool,
): Promise<void> {
    const o = resolve(opts);
    const pool = sharedPool ?? new Pool(creds, opts);
    const limit = opts.nodeReturnTimeoutMs ?? 60000;
    const deadline = Date.now() + limit;
    const t = specTarget(node);
    let last = "not probed yet";
    try {
        while (Date.now() < deadline) {
            last = await notBackYet(pool, spec, node, t, opts);
            if (!last) {
                o.log(`upgrade: ${node.id} is back${opts.targetVersion ? ` on ${opts.targetVersion}` : ""}`);
                return;
            }
            await sleep(Math.max(o.pollIntervalMs, 100));
        }
        let extra = "";
        try {
            extra = opts.describeNode ? String(await opts.describeNode(node)) : "";
        } catch (e) {
            extra = `(no node diagnosis: ${(e as Error).message})`;
        }
        throw ClusterExecError(
            `upgrade: ${node.id} ${nodeAddress(node)} did not come back healthy${opts.targetVersion ? ` on ${opts.targetVersion}` : ""} within ${Math.round(limit / 1000)} s after its restart (last seen: ${last}).` +
                `${extra ? `\n  node: ${extra.split("\n").join("\n  ")}` : ""}\n  Fix the node (its log says why), then rerun \`pulumi up\`: nodes already on the target are skipped and the upgrade resumes with this one.`,
            nodeAddress(node),
            "upgrade-wait",
        );
    } finally {
        if (!sharedPool) await pool.closeAll();
    }
}

/** "" when the node is back; otherwise what is still missing. */
async function notBackYet(pool: Pool, spec: ClusterSpec, node: ClusterNodeSpec, t: Target, opts: { targetVersion?: string; expectNodeId?: string }): Promise<string> {
    const p = await probeOne(pool, t, node);
    if (!p.ok) return p.error ?? "unreachable";
    if (opts.targetVersion && !onTargetVersion(p.version, opts.targetVersion)) return `runs ${p.version}, not ${opts.targetVersion}`;
    if (opts.expectNodeId && p.myId !== opts.expectNodeId) return `answers with node id ${p.myId}, was ${opts.expectNodeId} (nodes.conf lost? the node would have to be re-added)`;
    if (p.clusterInfo?.cluster_state !== "ok") return `cluster_state:${p.clusterInfo?.cluster_state}`;
    if (p.me && !p.me.master) {
        const r = p.replication ?? {};
        if (r.master_link_status !== "up") return `replica, master_link_status:${r.master_link_status ?? "?"}`;
        if (r.master_sync_in_progress && r.master_sync_in_progress !== "0") return "replica, initial sync in progress";
    }
    // Everyone else must see it alive again (pfail/fail cleared) before the next node goes down.
    const others = await probeAll(pool, spec.nodes.filter((n) => n.id !== node.id));
    for (const q of others) {
        if (!q.ok) return `${q.target.label} unreachable`;
        const seen = (q.view ?? []).find((n) => n.id === p.myId);
        if (!seen) return `${q.target.label} does not know ${node.id}`;
        if (seen.failed || !seen.connected) return `${q.target.label} still flags ${node.id} ${seen.flags.join(",")}${seen.connected ? "" : " (bus link down)"}`;
        if (q.clusterInfo?.cluster_state !== "ok") return `${q.target.label} cluster_state:${q.clusterInfo?.cluster_state}`;
    }
    return "";
}

async function zoneCheck(pool: Pool, spec: ClusterSpec, o: Resolved, opts: UpgradeOptions, step: string, node: string): Promise<void> {
    const all = await liveState(pool, spec);
    const byId = new Map(all.filter((l) => l.probe.myId).map((l) => [l.probe.myId!, l]));
    const masters: Record<string, string> = {};
    const violations: string[] = [];
    const versions: Record<string, string> = {};
    for (const l of all) {
        versions[l.spec.id] = l.probe.version ?? "down";
        if (roleOf(l.probe) === "master" && countSlots(l.probe.me!.slots) > 0) masters[l.spec.id] = l.spec.zone;
        if (roleOf(l.probe) === "replica") {
            const m = byId.get(l.probe.me!.masterId ?? "");
            if (m && m.spec.zone === l.spec.zone) violations.push(`${l.spec.id} replicates ${m.spec.id} in zone ${l.spec.zone}`);
        }
    }
    opts.onStep?.({ step, node, masters, zoneViolations: violations, versions });
    if (violations.length && !spec.allowZoneDegradation) {
        throw ClusterExecError(`upgrade: after ${step} ${node} a replica shares its master's zone: ${violations.join("; ")}; stopped before the next node`, undefined, "upgrade-zones");
    }
    o.log(`upgrade: after ${step} ${node}: masters ${Object.entries(masters).map(([id, z]) => `${id}@${z}`).join(", ")}`);
}
