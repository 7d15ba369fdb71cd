/** Atomic slot migration (Redis >= 8.4): CLUSTER MIGRATION IMPORT / STATUS / CANCEL. */
import { countSlots } from "../planner";
import { nodeAddress, SlotRange } from "../types";
import { Pool, Target } from "../primitives/connections";
import { ClusterExecError, Resolved, sleep } from "../primitives/options";
import { MigrationProgress } from "./migration-progress";

/**
 * Atomic slot migration (Redis >= 8.4): CLUSTER MIGRATION IMPORT on the target, poll STATUS,
 * CANCEL on both ends on failure or timeout. NOT exercised by the tests here (7.0.15 only).
 */
export async function migrateAtomic(pool: Pool, from: Target, to: Target, ranges: SlotRange[], o: Resolved, mig: MigrationProgress): Promise<void> {
    const dst = await pool.get(to);
    const src = await pool.get(from);
    const args = ranges.flatMap((r) => [r.start, r.end]);
    let taskId: string;
    try {
        taskId = String(await dst.call("CLUSTER", "MIGRATION", "IMPORT", ...args));
    } catch (e) {
        throw ClusterExecError(`CLUSTER MIGRATION IMPORT on ${to.label} (from ${from.label}) failed: ${(e as Error).message}`, nodeAddress(to), "migrate");
    }
    const deadline = Date.now() + Math.max(o.convergeTimeoutMs, 10 * 60 * 1000);
    let state = "";
    try {
        while (Date.now() < deadline) {
            const reply = (await dst.call("CLUSTER", "MIGRATION", "STATUS", "ID", taskId)) as unknown;
            state = atomicState(reply);
            if (state === "completed") {
                mig.add(countSlots(ranges), 0);
                return;
            }
            if (state === "failed" || state === "canceled") throw new Error(`task ${taskId} ${state}: ${JSON.stringify(reply)}`);
            await sleep(Math.max(o.pollIntervalMs, 100));
        }
        throw new Error(`task ${taskId} still ${state || "running"} at the deadline`);
    } catch (e) {
        await Promise.all([
            dst.call("CLUSTER", "MIGRATION", "CANCEL", "ID", taskId).catch(() => undefined),
            src.call("CLUSTER", "MIGRATION", "CANCEL", "ID", taskId).catch(() => undefined),
        ]);
        throw ClusterExecError(`CLUSTER MIGRATION ${from.label} -> ${to.label} failed, cancelled on both ends: ${(e as Error).message}`, nodeAddress(to), "migrate");
    }
}

/** Finds the `state` field in a CLUSTER MIGRATION STATUS reply (a flat or nested key/value array). */
export function atomicState(reply: unknown): string {
    const walk = (x: unknown): string => {
        if (Array.isArray(x)) {
            for (let i = 0; i + 1 < x.length; i++) if (String(x[i]) === "state") return String(x[i + 1]).toLowerCase();
            for (const y of x) { const s = walk(y); if (s) return s; }
        }
        return "";
    };
    return walk(reply);
}
