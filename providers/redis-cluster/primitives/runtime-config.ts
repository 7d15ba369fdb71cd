/** Runtime CONFIG values lowered for speed during a step, and putting the node's own values back. */
import { Pool, Target, bounded } from "./connections";
import { Resolved } from "./options";

/** A runtime CONFIG value changed for speed, with the node's own value to put back. */
export interface SavedConfig {
    target: Target;
    param: string;
    value: string;
}

/**
 * CONFIG SET param=value where it differs; returns what to restore. Failures are logged, not fatal.
 * With `restoreTo`, that value is put back instead of the one found, also on a node that already
 * has `value` (left so by a run that was killed before its restore).
 */
export async function overrideConfig(pool: Pool, targets: Target[], param: string, value: string, o: Resolved, restoreTo?: string): Promise<SavedConfig[]> {
    const saved: SavedConfig[] = [];
    await Promise.all(
        targets.map(async (t) => {
            try {
                const c = await pool.get(t);
                const cur = ((await c.config("GET", param)) as string[])[1];
                if (cur === undefined) return;
                if (cur !== value) {
                    await c.config("SET", param, value);
                    saved.push({ target: t, param, value: restoreTo ?? cur });
                    o.log(`CONFIG SET ${param} ${value} on ${t.label} (was ${cur}; ${restoreTo ?? cur} when done)`);
                } else if (restoreTo !== undefined && restoreTo !== value) {
                    saved.push({ target: t, param, value: restoreTo });
                    o.log(`${param} is already ${value} on ${t.label} (left by an interrupted run?); ${restoreTo} when done`);
                }
            } catch (e) {
                o.log(`could not set ${param}=${value} on ${t.label}: ${(e as Error).message}`);
            }
        }),
    );
    return saved;
}

export async function restoreConfig(pool: Pool, saved: SavedConfig[], o: Resolved): Promise<void> {
    await Promise.all(
        saved.map(async (s) => {
            try {
                // Bounded: a node that stopped answering must not hold up the error that ends this run.
                await bounded(
                    (async () => {
                        const c = await pool.get(s.target);
                        await c.config("SET", s.param, s.value);
                    })(),
                    2 * pool.connectTimeoutMs(),
                    `CONFIG SET ${s.param}`,
                );
            } catch (e) {
                o.log(`could not restore ${s.param}=${s.value} on ${s.target.label}: ${(e as Error).message} (it returns on restart)`);
            }
        }),
    );
}
