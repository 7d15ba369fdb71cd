/** Classic slot migration (any version): SETSLOT IMPORTING/MIGRATING + pipelined MIGRATE ... KEYS. */
import { expandRanges } from "../planner";
import { ClusterCredentials, nodeAddress } from "../types";
import { Pool, Target } from "../primitives/connections";
import { ClusterExecError, Resolved } from "../primitives/options";
import { parseClusterNodes } from "../primitives/protocol";
import { MigrationProgress } from "./migration-progress";

/**
 * Classic migration of `slots` from -> to, in rounds of `migrateSlotsPerRound` slots. Per round,
 * two pipelines open it (SETSLOT IMPORTING on the target, then MIGRATING on the source), then
 * GETKEYSINSLOT + one `MIGRATE ... REPLACE AUTH2 ... KEYS` per slot (pipelined) until drained,
 * and it is closed by SETSLOT NODE on the target first, then on the source. Closing round k rides
 * in the same pipelines as opening round k+1, so a round costs two round trips plus the keys.
 * Other masters learn the new owner by gossip (the target bumps its epoch), as they would after a
 * failover. REPLACE makes a batch repeated after a crash harmless; a crash leaves open slots that
 * the next run finishes (planner: fix-open-slot).
 */
export async function migrateClassic(
    pool: Pool,
    from: Target,
    to: Target,
    slots: number[],
    creds: ClusterCredentials,
    o: Resolved,
    mig: MigrationProgress,
    resuming: boolean,
): Promise<void> {
    const src = await pool.get(from);
    const dst = await pool.get(to);
    const srcId = String(await src.cluster("MYID"));
    const dstId = String(await dst.cluster("MYID"));
    const fail = (what: string, e: unknown) =>
        ClusterExecError(`${what} ${nodeAddress(from)} -> ${nodeAddress(to)} failed: ${(e as Error)?.message ?? e}`, nodeAddress(from), "migrate");
    // Who owns what right now (a resumed run may find some slots already moved).
    const srcView = parseClusterNodes(String(await src.cluster("NODES"))).find((n) => n.myself)!;
    const srcOwns = new Set(expandRanges(srcView.slots));
    // Where the time goes, per stream (logged at the end).
    const ms = { setslot: 0, keys: 0, keysMoved: 0 };
    let tMark = Date.now();
    const lap = (k: "setslot" | "keys") => {
        const now = Date.now();
        ms[k] += now - tMark;
        tMark = now;
    };
    mig.start();
    let prev: number[] = [];
    // One pass per round plus a last pass that only closes the final round.
    for (let i = 0; i < slots.length + o.migrateSlotsPerRound; i += o.migrateSlotsPerRound) {
        const round = slots.slice(i, i + o.migrateSlotsPerRound);
        if (!round.length && !prev.length) break;
        if (prev.length) await o.step(`setslot-node ${nodeAddress(to)} ${prev[0]}`);
        if (round.length) await o.step(`migrate-round ${nodeAddress(from)}->${nodeAddress(to)} ${round[0]}`);
        // Target: close the previous round (NODE) and open this one (IMPORTING).
        const p1 = dst.pipeline();
        for (const x of prev) p1.cluster("SETSLOT", x, "NODE", dstId);
        for (const x of round) p1.cluster("SETSLOT", x, "IMPORTING", srcId);
        const r1 = prev.length + round.length ? (await p1.exec())! : [];
        r1.forEach(([e], k) => {
            if (!e) return;
            if (k < prev.length) throw fail("CLUSTER SETSLOT NODE (target)", e);
            if (!resuming && !/already the owner|I'm already/i.test(e.message)) throw fail("CLUSTER SETSLOT IMPORTING", e);
        });
        // Source: close the previous round, open this one (only slots it still owns).
        const owned = round.filter((x) => srcOwns.has(x));
        const p2 = src.pipeline();
        for (const x of prev) p2.cluster("SETSLOT", x, "NODE", dstId);
        for (const x of owned) p2.cluster("SETSLOT", x, "MIGRATING", dstId);
        const r2 = prev.length + owned.length ? (await p2.exec())! : [];
        let becameReplica = false;
        for (let k = 0; k < r2.length; k++) {
            const e = r2[k][0];
            if (!e) continue;
            // Redis >= 7 turns a master that lost its LAST slot into a replica of the new owner
            // (cluster-allow-replica-migration): then the source simply no longer owns anything.
            if (k < prev.length && /only with masters/i.test(e.message)) {
                const me = parseClusterNodes(String(await src.cluster("NODES"))).find((n) => n.myself)!;
                if (!me.master && !expandRanges(me.slots).some((x) => prev.includes(x))) {
                    becameReplica = true;
                    break;
                }
            }
            throw fail(k < prev.length ? "CLUSTER SETSLOT NODE (source)" : "CLUSTER SETSLOT MIGRATING", e);
        }
        if (becameReplica && round.length) throw fail("migration", new Error("the source turned replica before its last round"));
        if (prev.length) mig.add(prev.length, 0);
        lap("setslot");
        // Move this round's keys. A slot whose GETKEYSINSLOT returned fewer than a batch is drained
        // by the MIGRATE that follows: a MIGRATING slot accepts no new keys (they go to the target).
        let active = [...round];
        for (let iter = 0; active.length && iter < 100000; iter++) {
            const g = src.pipeline();
            for (const x of active) g.callBuffer("CLUSTER", "GETKEYSINSLOT", x, o.migrateBatchKeys);
            const keys = (await g.exec())!.map(([e, v], k) => {
                if (e) throw fail(`CLUSTER GETKEYSINSLOT ${active[k]}`, e);
                return v as Buffer[];
            });
            const m = src.pipeline();
            let n = 0;
            for (let k = 0; k < active.length; k++) {
                if (!keys[k].length) continue;
                m.callBuffer("MIGRATE", to.host, to.port, "", 0, o.migrateTimeoutMs, "REPLACE", "AUTH2", creds.username, creds.password, "KEYS", ...keys[k]);
                n += keys[k].length;
            }
            if (n === 0) break;
            for (const [e] of (await m.exec())!) if (e) throw fail("MIGRATE", e);
            ms.keysMoved += n;
            mig.add(0, n);
            active = active.filter((_, k) => keys[k].length >= o.migrateBatchKeys);
        }
        lap("keys");
        prev = round;
    }
    o.log(`stream ${nodeAddress(from)} -> ${nodeAddress(to)}: ${slots.length} slots, ${ms.keysMoved} keys; setslot ${ms.setslot} ms, keys ${ms.keys} ms`);
}
