/** Forming a cluster from fresh (or partly formed) nodes: epochs, slots, MEET, REPLICATE, converged. */
import { expandRanges, planPlacement, toRanges } from "../planner";
import { ClusterCredentials, ClusterSpec, nodeAddress } from "../types";
import { Pool } from "../primitives/connections";
import { ClusterExecError, Resolved, sleep } from "../primitives/options";
import { NodeProbe, knownMembers } from "../primitives/probes";
import { parseClusterNodes } from "../primitives/protocol";
import { SavedConfig, overrideConfig, restoreConfig } from "../primitives/runtime-config";
import { meetAgain, REMEET_INTERVAL_MS, waitConverged } from "../primitives/waits";
import { converge } from "./converge";

export async function createCluster(pool: Pool, spec: ClusterSpec, probes: NodeProbe[], placement: ReturnType<typeof planPlacement>, creds: ClusterCredentials, o: Resolved): Promise<void> {
    const specById = new Map(spec.nodes.map((n) => [n.id, n]));
    const probeById = new Map(probes.map((p) => [p.spec!.id, p]));
    const usedIds = placement.shards.flatMap((s) => [s.master, ...s.replicas]);
    const used = usedIds.map((id) => probeById.get(id)!);
    const t0 = Date.now();

    // A fresh master that idled alone counts as "minority" until it owns slots, and then reports
    // cluster_state:ok only min(cluster-node-timeout, 5 s) later (rejoin delay). While forming,
    // a short node timeout makes that delay short; every node gets its own value back at the end.
    // Only nodes not yet ok: a re-run on a healthy cluster changes nothing.
    const notOk = used.filter((p) => p.clusterInfo?.cluster_state !== "ok").map((p) => p.target);
    const saved: SavedConfig[] = o.formationNodeTimeoutMs > 0 ? await overrideConfig(pool, notOk, "cluster-node-timeout", String(o.formationNodeTimeoutMs), o) : [];

    const formSteps = async (): Promise<void> => {
        // 1. Distinct config epochs (only possible while a node knows nobody else), in parallel.
        await o.step("set-config-epoch");
        await Promise.all(
            used.map(async (p, i) => {
                if (knownMembers(p).length > 1 || p.me!.configEpoch !== 0) return;
                const c = await pool.get(p.target);
                try {
                    await c.cluster("SET-CONFIG-EPOCH", i + 1);
                    o.log(`SET-CONFIG-EPOCH ${i + 1} on ${p.target.label}`);
                } catch (e) {
                    // Lost a race with a MEET from an earlier run: harmless, epochs get resolved by the bus.
                    o.log(`CLUSTER SET-CONFIG-EPOCH on ${p.target.label} skipped: ${(e as Error).message}`);
                }
            }),
        );

        // 2. Slots: ADDSLOTSRANGE only the planned slots each master does not have yet.
        await o.step("addslots");
        o.progress({ phase: "create", message: `assigning slots to ${placement.shards.length} masters` });
        await Promise.all(
            placement.shards.map(async (s) => {
                const p = probeById.get(s.master)!;
                const have = new Set(expandRanges(p.me!.slots));
                const missing = toRanges(expandRanges(s.slots).filter((x) => !have.has(x)));
                if (!missing.length) return;
                const c = await pool.get(p.target);
                const args = missing.flatMap((r) => [r.start, r.end]);
                o.log(`ADDSLOTSRANGE on ${p.target.label}: ${missing.map((r) => `${r.start}-${r.end}`).join(" ")}`);
                try {
                    await c.call("CLUSTER", "ADDSLOTSRANGE", ...args);
                } catch (e) {
                    throw ClusterExecError(`CLUSTER ADDSLOTSRANGE on ${p.target.label} failed: ${(e as Error).message}`, p.addr, "addslots");
                }
            }),
        );

        // 3. MEET: every node meets every node it does not know (full mesh: no waiting on gossip).
        await o.step("meet");
        o.progress({ phase: "meet", message: `introducing ${used.length} nodes` });
        const busPort = new Map(used.map((p) => [p.addr, p.me!.busPort]));
        await Promise.all(
            used.map(async (p) => {
                const known = new Set(knownMembers(p).map((n) => nodeAddress(n)));
                const c = await pool.get(p.target);
                const pipe = c.pipeline();
                const targets = used.filter((q) => q !== p && !known.has(q.addr));
                for (const q of targets) pipe.call("CLUSTER", "MEET", q.target.host, q.target.port, busPort.get(q.addr)!);
                if (!targets.length) return;
                o.log(`MEET ${p.target.label} -> ${targets.map((q) => q.addr).join(", ")}`);
                const res = await pipe.exec();
                res!.forEach(([err], i) => {
                    if (err) throw ClusterExecError(`CLUSTER MEET ${p.addr} -> ${targets[i].addr} failed after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${err.message}`, p.addr, "meet");
                });
            }),
        );

        // 4. REPLICATE as soon as each replica knows its master (no need to wait for the whole mesh).
        await o.step("replicate");
        const replicaOf = new Map<string, string>();
        for (const s of placement.shards) for (const r of s.replicas) replicaOf.set(nodeAddress(specById.get(r)!), nodeAddress(specById.get(s.master)!));
        // An EMPTY master has nothing to batch: skip repl-diskless-sync-delay (default 5 s) for the
        // first sync, and put the node's own value back once the replicas are linked.
        if (o.fastInitialSync) {
            const empty = placement.shards
                .map((s) => ({ s, p: probeById.get(s.master)! }))
                .filter(({ s, p }) => s.replicas.length && (p.dbsize ?? 0) === 0 && p.clusterInfo?.cluster_state !== "ok")
                .map(({ p }) => p.target);
            saved.push(...(await overrideConfig(pool, empty, "repl-diskless-sync-delay", "0", o)));
        }
        await replicateAll(pool, replicaOf, probes, o);

        // 5. Converged: every node knows every node, one slot map, cluster_state:ok, replicas linked.
        await o.step("wait-converged");
        o.progress({ phase: "converge", message: "waiting for the cluster to agree" });
        await waitConverged(pool, { members: used.map((p) => p.spec!), replicaOf, fullCoverage: true }, creds, o, "create");
    };
    try {
        await formSteps();
    } finally {
        await restoreConfig(pool, saved, o);
    }
    o.log(`cluster formed in ${Date.now() - t0} ms`);
}

/** CLUSTER REPLICATE for every replica -> master pair not yet in place; waits (bounded) until the replica knows the master. */
export async function replicateAll(pool: Pool, replicaOf: Map<string, string>, probes: NodeProbe[], o: Resolved): Promise<void> {
    const byAddr = new Map(probes.map((p) => [p.addr, p]));
    await Promise.all(
        [...replicaOf].map(async ([rAddr, mAddr]) => {
            const r = byAddr.get(rAddr)!;
            const m = byAddr.get(mAddr)!;
            const masterId = m.myId!;
            const c = await pool.get(r.target);
            const deadline = Date.now() + o.convergeTimeoutMs;
            let lastErr = "";
            let lastMeet = Date.now();
            while (Date.now() < deadline) {
                const view = parseClusterNodes(String(await c.cluster("NODES")));
                const me = view.find((n) => n.myself)!;
                if (me.masterId === masterId) return;
                // The replica has no entry at all for its master (a dropped MEET handshake): meet again.
                if (Date.now() - lastMeet >= REMEET_INTERVAL_MS && m.me?.busPort && !view.some((n) => n.host && nodeAddress(n) === mAddr)) {
                    lastMeet = Date.now();
                    await meetAgain(pool, r, m, o, "replicate");
                }
                if (view.some((n) => n.id === masterId && !n.handshake)) {
                    try {
                        await c.cluster("REPLICATE", masterId);
                        o.log(`REPLICATE ${r.target.label} -> ${m.target.label}`);
                        return;
                    } catch (e) {
                        lastErr = (e as Error).message;
                    }
                }
                await sleep(o.pollIntervalMs);
            }
            throw ClusterExecError(
                `CLUSTER REPLICATE ${r.target.label} -> ${m.target.label} failed after ${Math.round(o.convergeTimeoutMs / 1000)} s: ${lastErr || "the replica never learned the master's node id (cluster bus problem?)"}`,
                rAddr,
                "replicate",
            );
        }),
    );
}
