/** DESTRUCTIVE reset of every node (deleteAction "reset"). */
import { ClusterCredentials, ClusterNodeSpec, nodeAddress } from "../types";
import { Pool } from "../primitives/connections";
import { ExecutorOptions } from "../primitives/options";
import { specTarget } from "../primitives/probes";

/**
 * DESTRUCTIVE: FLUSHALL and CLUSTER RESET HARD on every reachable node (only for
 * `deleteAction: "reset"`). Unreachable nodes are reported, not fatal.
 */
export async function resetCluster(nodes: ClusterNodeSpec[], creds: ClusterCredentials, opts: ExecutorOptions = {}): Promise<string[]> {
    const pool = new Pool(creds, opts);
    const problems: string[] = [];
    try {
        await Promise.all(
            nodes.map(async (n) => {
                try {
                    const c = await pool.get(specTarget(n));
                    // Replicas refuse FLUSHALL (read-only); RESET HARD flushes them anyway.
                    if (/role:master/.test(String(await c.info("replication")))) await c.flushall();
                    await c.cluster("RESET", "HARD");
                } catch (e) {
                    problems.push(`${n.id} ${nodeAddress(n)}: ${(e as Error).message}`);
                }
            }),
        );
        return problems;
    } finally {
        await pool.closeAll();
    }
}
