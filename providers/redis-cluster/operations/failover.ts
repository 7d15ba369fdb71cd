/** Planned CLUSTER FAILOVER. */
import { nodeAddress } from "../types";
import { Pool, Target } from "../primitives/connections";
import { ClusterExecError, Resolved, sleep } from "../primitives/options";
import { parseInfo } from "../primitives/protocol";

/** Planned CLUSTER FAILOVER: waits for the replica's link, promotes it, waits until roles swapped. */
export async function plannedFailover(pool: Pool, replica: Target, master: Target, o: Resolved): Promise<void> {
    o.progress({ phase: "failover", message: `failover: ${replica.label} takes over from ${master.label}` });
    const c = await pool.get(replica);
    const deadline = Date.now() + o.convergeTimeoutMs;
    let sent = false;
    let last = "";
    while (Date.now() < deadline) {
        const info = parseInfo(String(await c.info("replication")));
        if (info.role === "master") {
            o.log(`failover done: ${replica.label} is master`);
            return;
        }
        if (!sent && info.master_link_status === "up") {
            try {
                await c.cluster("FAILOVER");
                sent = true;
            } catch (e) {
                last = (e as Error).message;
            }
        }
        last = last || `role:${info.role} master_link_status:${info.master_link_status}`;
        await sleep(o.pollIntervalMs);
    }
    throw ClusterExecError(`CLUSTER FAILOVER on ${replica.label} (taking over ${master.label}) failed after ${Math.round(o.convergeTimeoutMs / 1000)} s: ${last}`, nodeAddress(replica), "failover");
}
