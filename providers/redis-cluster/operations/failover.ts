/** Planned CLUSTER FAILOVER. */
import { nodeAddress } from "../types";
import { Pool, Target } from "../primitives/connections";
import { ClusterExecError, Resolved, sleep } from "../primitives/options";
import { probeOne } from "../primitives/probes";
import { parseInfo } from "../primitives/protocol";
import { observedReplicaOf } from "../primitives/waits";

/**
 * How long one CLUSTER FAILOVER is given before it is sent again, ms. The server abandons a manual
 * failover after CLUSTER_MF_TIMEOUT (5 s: "Manual failover timed out") without telling the caller,
 * e.g. when the master did not answer MFSTART in time or the masters refused their votes (a master
 * votes for a replica of the same failed-over master at most once per 2 x cluster-node-timeout, so a
 * failover started by a deploy that was killed blocks the next one for a while).
 */
export const FAILOVER_RESEND_MS = 6000;

/**
 * Planned CLUSTER FAILOVER: waits for the replica's link, promotes it, waits until roles swapped
 * (the replica reports master, then the old master reports replica: until it does, the shard's
 * other replicas may still follow it).
 * Re-sends the command every FAILOVER_RESEND_MS while the replica is still a replica (bounded by
 * convergeTimeoutMs); the error names the attempts and the last state seen.
 */
export async function plannedFailover(pool: Pool, replica: Target, master: Target, o: Resolved): Promise<void> {
    o.progress({ phase: "failover", message: `failover: ${replica.label} takes over from ${master.label}` });
    const c = await pool.get(replica);
    const deadline = Date.now() + o.convergeTimeoutMs;
    let sentAt = 0;
    /** When CLUSTER FAILOVER may be sent (again): at once, FAILOVER_RESEND_MS after an accepted one, at the next poll after a refusal. */
    let nextAt = 0;
    let attempts = 0;
    /** The last refusal of CLUSTER FAILOVER ("" while none), and the last role/link seen. */
    let last = "";
    let seen = "";
    while (Date.now() < deadline) {
        const info = parseInfo(String(await c.info("replication")));
        if (info.role === "master") {
            o.log(`failover done: ${replica.label} is master${attempts > 1 ? ` (CLUSTER FAILOVER sent ${attempts} times)` : ""}`);
            await waitDemoted(pool, master, deadline, o);
            return;
        }
        if (info.master_link_status === "up" && Date.now() >= nextAt) {
            if (sentAt && !last) o.log(`failover: ${replica.label} is still a replica ${Math.round((Date.now() - sentAt) / 1000)} s after CLUSTER FAILOVER (the server gave it up); sending it again`);
            attempts++;
            sentAt = Date.now();
            try {
                await c.cluster("FAILOVER");
                last = "";
                nextAt = sentAt + FAILOVER_RESEND_MS;
            } catch (e) {
                // Refused at once (e.g. the replica's view of its master is not settled yet): retry at the next poll.
                last = `CLUSTER FAILOVER answered: ${(e as Error).message}`;
                o.log(`failover: ${replica.label}: ${last}; retrying`);
                nextAt = 0;
            }
        }
        seen = `role:${info.role} master_link_status:${info.master_link_status}`;
        await sleep(o.pollIntervalMs);
    }
    const state = last || seen;
    throw ClusterExecError(
        `CLUSTER FAILOVER on ${replica.label} (taking over ${master.label}) failed after ${Math.round(o.convergeTimeoutMs / 1000)} s and ${attempts} attempt(s): ${state}. ` +
            `Check the nodes' logs for "Manual failover" and "Failover auth denied"; run again once every master is reachable.`,
        nodeAddress(replica),
        "failover",
    );
}

/** After the promotion: the old master turns replica at the new master's next gossip (bounded by the failover's deadline; a node that does not answer is left to the final convergence wait). */
async function waitDemoted(pool: Pool, master: Target, deadline: number, o: Resolved): Promise<void> {
    let role = "";
    while (Date.now() < deadline) {
        try {
            role = parseInfo(String(await (await pool.get(master)).info("replication"))).role ?? "";
        } catch (e) {
            role = `unreachable (${(e as Error).message})`;
        }
        if (role === "slave") return;
        await sleep(o.pollIntervalMs);
    }
    o.log(`failover: ${master.label} still reports role ${role || "?"} at the deadline; the convergence wait checks it`);
}

/** How long a replica may follow a demoted master before settleReplication re-points it, ms. */
export const CHAIN_GRACE_MS = 2000;

/**
 * Waits (bounded by convergeTimeoutMs) until no member follows a replica, then returns the
 * replication the members report (replica address -> master address). After a failover the
 * shard's other replicas switch to the new master at the next gossip, except in one order of
 * events (seen on 8.6.3): a replica that hears of the failover from the demoted master itself
 * before any slot claim keeps following it, and the server's own repair ("I'm a sub-replica!")
 * runs only when a later claim changes that replica's slot map, which may never come. A chain seen
 * for CHAIN_GRACE_MS is folded here: CLUSTER REPLICATE <the master its master follows>, the link
 * the server would have made.
 */
export async function settleReplication(pool: Pool, members: Target[], o: Resolved, what = "reshape"): Promise<Map<string, string>> {
    const deadline = Date.now() + o.convergeTimeoutMs;
    /** Chain (replica>top) -> when it was first seen, or when it was last acted on. */
    const since = new Map<string, number>();
    const observe = async () => observedReplicaOf(await Promise.all(members.map((t) => probeOne(pool, t))));
    let observed = await observe();
    for (let k = 0; observed.unsettled && Date.now() < deadline && k < 1e5; k++) {
        const ch = observed.chain;
        if (ch) {
            const key = `${ch.replica.addr}>${ch.top.addr}`;
            const first = since.get(key) ?? Date.now();
            since.set(key, first);
            if (Date.now() - first >= CHAIN_GRACE_MS) {
                const how = `${ch.replica.target.label} -> ${ch.top.target.label}`;
                since.set(key, Date.now());
                try {
                    await (await pool.get(ch.replica.target)).cluster("REPLICATE", ch.top.myId!);
                    o.log(`${ch.replica.target.label} still follows ${ch.via.target.label} ${Math.round((Date.now() - first) / 100) / 10} s after that one became a replica of ${ch.top.target.label} (a chain the server does not fold): REPLICATE ${how}`);
                } catch (e) {
                    o.log(`REPLICATE ${how} (folding a replication chain) answered: ${(e as Error).message}; retrying in ${CHAIN_GRACE_MS / 1000} s`);
                }
            }
        }
        await sleep(o.pollIntervalMs);
        observed = await observe();
    }
    if (!observed.unsettled) return observed.replicaOf;
    throw ClusterExecError(`${what}: replication did not settle within ${Math.round(o.convergeTimeoutMs / 1000)} s: ${observed.unsettled}`, undefined, "converge");
}
