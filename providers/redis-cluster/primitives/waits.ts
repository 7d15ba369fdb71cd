/** Bounded waits for convergence, and the diagnosis reported when one runs out. */
import * as net from "net";
import * as tls from "tls";
import { ClusterCredentials, ClusterNodeSpec, nodeAddress } from "../types";
import { converge } from "../operations/converge";
import { Pool, Target } from "./connections";
import { ClusterExecError, Resolved, resolve, sleep } from "./options";
import { NodeProbe, knownMembers, probeAll } from "./probes";
import { ParsedNode, parseClusterNodes, parseInfo } from "./protocol";

export interface ConvergeTarget {
    /** Addresses that must all be members and agree. */
    members: ClusterNodeSpec[];
    /**
     * Replica address -> master address; or "observed": whatever replication the nodes report at
     * each look, once settled (no replica follows a replica) with every link up. A reshape waits
     * so: the server's own replica migration (cluster-migration-barrier) may move a replica to an
     * orphaned master after the reshape looked, and a snapshot would then wait for a link the
     * cluster has dropped for good (likely what a CI chaos run hit: "node3 is not yet a replica of
     * node8" for 60 s).
     */
    replicaOf: Map<string, string> | "observed";
    /** Require every slot covered. */
    fullCoverage: boolean;
}

/** A replica that follows a replica (`via`), whose own master `top` reports itself a master. */
export interface ReplicationChain {
    replica: NodeProbe;
    via: NodeProbe;
    top: NodeProbe;
}

/**
 * The replication each answering node reports (replica address -> its master's address), or why it
 * is not settled yet: a replica whose master is itself a replica in its own view is still following
 * a master that a failover just demoted (usually it switches to the new master at the next gossip),
 * so recording that pair would make the wait below expect a link the cluster is about to drop.
 * `chain` names such a replica with the master it should follow, when that one is probed and
 * reports itself a master (the server does not always switch: see settleReplication).
 */
export function observedReplicaOf(probes: NodeProbe[]): { replicaOf: Map<string, string>; unsettled: string | null; chain?: ReplicationChain } {
    const ok = probes.filter((p) => p.ok && p.myId);
    const byId = new Map(ok.map((p) => [p.myId!, p]));
    const replicaOf = new Map<string, string>();
    for (const p of ok) {
        if (!p.me || p.me.master || !p.me.masterId) continue;
        const m = byId.get(p.me.masterId);
        if (!m) continue;
        if (m.me && !m.me.master) {
            const top = m.me.masterId ? byId.get(m.me.masterId) : undefined;
            const chain = top?.me?.master && top !== p ? { replica: p, via: m, top } : undefined;
            return { replicaOf, unsettled: `${p.target.label} still follows ${m.target.label}, which is a replica now`, chain };
        }
        replicaOf.set(p.addr, m.addr);
    }
    return { replicaOf, unsettled: null };
}

export function slotSignature(view: ParsedNode[]): string {
    const owners = view
        .filter((n) => n.master && n.slots.length && !n.handshake)
        .map((n) => `${n.id}:${n.slots.map((r) => `${r.start}-${r.end}`).join(",")}`)
        .sort();
    return owners.join(";");
}

/** Why the cluster has not converged: which node cannot see which, and whether the bus port answers TLS. */
export async function diagnose(pool: Pool, want: ConvergeTarget, creds: ClusterCredentials, connectTimeoutMs: number): Promise<string> {
    const probes = await probeAll(pool, want.members);
    const lines: string[] = [];
    const ids = new Map<string, string>();
    for (const p of probes) if (p.myId) ids.set(p.myId, p.addr);
    for (const p of probes) {
        if (!p.ok) { lines.push(`${p.target.label}: unreachable: ${p.error}`); continue; }
        const known = new Map(knownMembers(p).map((n) => [nodeAddress(n), n]));
        for (const q of probes) {
            if (q === p || !q.ok) continue;
            const n = known.get(q.addr);
            if (!n) {
                const hs = (p.view ?? []).find((x) => x.handshake && nodeAddress(x) === q.addr);
                lines.push(`${p.target.label} cannot see ${q.target.label}${hs ? " (stuck in handshake: the cluster bus connection is not completing)" : " (unknown node: MEET not received)"}`);
            } else if (n.failed) lines.push(`${p.target.label} marks ${q.target.label} as ${n.flags.filter((f) => f.startsWith("fail")).join(",")}`);
            else if (!n.connected) lines.push(`${p.target.label} has no bus link to ${q.target.label}`);
            else if (n.id !== q.myId) lines.push(`${p.target.label} knows ${q.addr} as ${n.id} but the node there is ${q.myId} (stale member: forget it)`);
        }
        const ref = probes.find((x) => x.ok && x.view);
        if (ref && ref !== p && p.view && slotSignature(p.view) !== slotSignature(ref.view!)) {
            lines.push(`${p.target.label} disagrees with ${ref.target.label} on the slot map: ${slotSignature(p.view)} vs ${slotSignature(ref.view!)}`);
        }
        if (p.clusterInfo?.cluster_state !== "ok") lines.push(`${p.target.label}: cluster_state:${p.clusterInfo?.cluster_state} (slots assigned ${p.clusterInfo?.cluster_slots_assigned}, ok ${p.clusterInfo?.cluster_slots_ok})`);
        const master = want.replicaOf === "observed" ? (p.me && !p.me.master ? p.me.masterId : undefined) : want.replicaOf.get(p.addr);
        if (master && p.replication?.master_link_status !== "up") lines.push(`${p.target.label}: replica of ${master}, master_link_status:${p.replication?.master_link_status ?? "?"}`);
        // Bus port: TCP then TLS handshake from here with the same CA.
        if (p.me?.busPort) lines.push(`${p.target.label}: bus port ${p.me.busPort}: ${await checkBusPort(p.target.host, p.me.busPort, creds, connectTimeoutMs)}`);
    }
    return lines.join("\n  ");
}

export function checkBusPort(host: string, port: number, creds: ClusterCredentials, timeoutMs: number): Promise<string> {
    return new Promise((resolve) => {
        const sock = net.connect({ host, port });
        const timer = setTimeout(() => { sock.destroy(); resolve("TCP connect timed out (firewall?)"); }, timeoutMs);
        sock.on("error", (e) => { clearTimeout(timer); resolve(`TCP connect failed: ${e.message}`); });
        sock.on("connect", () => {
            const t = tls.connect({ socket: sock, ca: creds.tls.ca, cert: creds.tls.cert, key: creds.tls.key, servername: creds.tls.servername, rejectUnauthorized: true });
            t.on("secureConnect", () => { clearTimeout(timer); t.destroy(); resolve("reachable, TLS handshake ok"); });
            t.on("error", (e) => { clearTimeout(timer); t.destroy(); resolve(`TLS handshake failed: ${e.message}`); });
        });
    });
}

/**
 * Pairs of answering members (a, b) where a has no entry at all for b's address: not a member, not
 * even a handshake. Redis drops a MEET handshake that does not finish within the node timeout, and
 * gossip alone may not bring the node back while handshakes keep timing out (the sixth VM run: one
 * node never learned another in 12 minutes on a loaded emulated bus).
 */
export function unknownPairs(probes: NodeProbe[]): { from: NodeProbe; to: NodeProbe }[] {
    const ok = probes.filter((p) => p.ok && p.view && p.me?.busPort);
    const pairs: { from: NodeProbe; to: NodeProbe }[] = [];
    for (const a of ok) {
        const seen = new Set(a.view!.filter((n) => n.host).map((n) => nodeAddress(n)));
        for (const b of ok) if (b !== a && !seen.has(b.addr)) pairs.push({ from: a, to: b });
    }
    return pairs;
}

/** Pause between two rounds of repair MEETs while a wait is not converged, ms. */
export const REMEET_INTERVAL_MS = 5000;

/** `from` meets `to` again (idempotent for the cluster); a failure is logged, the wait goes on. */
export async function meetAgain(pool: Pool, from: NodeProbe, to: NodeProbe, o: Resolved, what: string): Promise<void> {
    o.log(`${what}: ${from.target.label} does not know ${to.target.label} (a dropped handshake?): MEET again`);
    try {
        await (await pool.get(from.target)).call("CLUSTER", "MEET", to.target.host, to.target.port, to.me!.busPort);
    } catch (e) {
        o.log(`MEET ${from.addr} -> ${to.addr}: ${(e as Error).message}`);
    }
}

export async function waitConverged(pool: Pool, want: ConvergeTarget, creds: ClusterCredentials, o: Resolved, what: string): Promise<void> {
    const deadline = Date.now() + o.convergeTimeoutMs;
    let last = "";
    let lastMeet = Date.now();
    for (let i = 0; Date.now() < deadline && i < 1e6; i++) {
        const probes = await probeAll(pool, want.members);
        last = convergeProblem(probes, want) ?? "";
        if (!last) return;
        // Repair: a member that lost another one (dropped handshake) meets it again, directly.
        if (Date.now() - lastMeet >= REMEET_INTERVAL_MS) {
            lastMeet = Date.now();
            for (const { from, to } of unknownPairs(probes)) await meetAgain(pool, from, to, o, what);
        }
        await sleep(o.pollIntervalMs);
    }
    const diag = await diagnose(pool, want, creds, o.connectTimeoutMs);
    throw ClusterExecError(
        `${what}: the cluster did not converge within ${Math.round(o.convergeTimeoutMs / 1000)} s (last problem: ${last}). Diagnosis:\n  ${diag || "(no node-level problem found)"}`,
        undefined,
        "converge",
    );
}

export function convergeProblem(probes: NodeProbe[], want: ConvergeTarget): string | null {
    const ids = new Set<string>();
    for (const p of probes) {
        if (!p.ok) return `${p.target.label} unreachable`;
        ids.add(p.myId!);
    }
    let sig: string | null = null;
    for (const p of probes) {
        const known = knownMembers(p);
        for (const id of ids) {
            const n = known.find((k) => k.id === id);
            if (!n) return `${p.target.label} does not know ${id}`;
            if (n.failed) return `${p.target.label} marks ${nodeAddress(n)} failed`;
        }
        if ((p.view ?? []).some((n) => n.handshake)) return `${p.target.label} has nodes in handshake`;
        const s = slotSignature(p.view!);
        if (sig === null) sig = s;
        else if (s !== sig) return `${p.target.label} disagrees on the slot map`;
        if (want.fullCoverage && p.clusterInfo?.cluster_state !== "ok") return `${p.target.label} cluster_state:${p.clusterInfo?.cluster_state}`;
    }
    let replicaOf: Map<string, string>;
    if (want.replicaOf === "observed") {
        const observed = observedReplicaOf(probes);
        if (observed.unsettled) return observed.unsettled;
        replicaOf = observed.replicaOf;
    } else replicaOf = want.replicaOf;
    for (const p of probes) {
        const m = replicaOf.get(p.addr);
        if (m) {
            const mp = probes.find((x) => x.addr === m);
            if (p.me?.masterId !== mp?.myId) return `${p.target.label} is not yet a replica of ${m}`;
            if (p.replication?.master_link_status !== "up") return `${p.target.label} master_link_status:${p.replication?.master_link_status}`;
        }
    }
    return null;
}

export async function waitKnownByAll(pool: Pool, targets: Target[], nodeId: string, addr: string, o: Resolved): Promise<void> {
    const deadline = Date.now() + o.convergeTimeoutMs;
    let missing: string[] = [];
    while (Date.now() < deadline) {
        missing = [];
        await Promise.all(
            targets.map(async (t) => {
                const c = await pool.get(t);
                const view = parseClusterNodes(String(await c.cluster("NODES")));
                if (!view.some((n) => n.id === nodeId && !n.handshake)) missing.push(t.label);
            }),
        );
        if (!missing.length) return;
        await sleep(o.pollIntervalMs);
    }
    throw ClusterExecError(`CLUSTER MEET -> ${addr} failed after ${Math.round(o.convergeTimeoutMs / 1000)} s: not known by ${missing.join(", ")} (cluster bus port reachable? TLS?)`, addr, "meet");
}

/** Waits (bounded) until a node reports cluster_state:ok. */
export async function waitStateOk(pool: Pool, t: Target, o: Resolved): Promise<void> {
    const c = await pool.get(t);
    const deadline = Date.now() + o.convergeTimeoutMs;
    let state = "";
    while (Date.now() < deadline) {
        state = parseInfo(String(await c.cluster("INFO"))).cluster_state;
        if (state === "ok") return;
        await sleep(o.pollIntervalMs);
    }
    throw ClusterExecError(`${t.label}: cluster_state is still ${state} after ${Math.round(o.convergeTimeoutMs / 1000)} s (it does not see every slot covered: cluster bus links?)`, nodeAddress(t), "wait-state");
}
