/** Runtime CONFIG values lowered for speed during a step, and putting the node's own values back. */
import { Pool, Target, bounded } from "./connections";
import { Resolved } from "./options";

/** A runtime CONFIG value changed for speed, with the node's own value to put back. */
export interface SavedConfig {
    target: Target;
    param: string;
    value: string;
}

/** CONFIG SET param=value where it differs; returns what to restore. Failures are logged, not fatal. */
export async function overrideConfig(pool: Pool, targets: Target[], param: string, value: string, o: Resolved): Promise<SavedConfig[]> {
    const saved: SavedConfig[] = [];
    await Promise.all(
        targets.map(async (t) => {
            try {
                const c = await pool.get(t);
                const cur = (await c.config("GET", param)) as string[];
                if (cur[1] !== undefined && cur[1] !== value) {
                    await c.config("SET", param, value);
                    saved.push({ target: t, param, value: cur[1] });
                    o.log(`CONFIG SET ${param} ${value} on ${t.label} (was ${cur[1]}; restored when done)`);
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
