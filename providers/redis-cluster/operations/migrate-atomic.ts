/**
 * Atomic slot migration (Redis >= 8.4): CLUSTER MIGRATION IMPORT on the target, STATUS polled
 * adaptively, CANCEL on both ends when the executor gives up. Server behaviour the code relies on
 * is described (as observed on 8.6.3) in ../primitives/atomic-status.ts.
 *
 * Scheduling (runAtomicMigrations): the server runs one task per node at a time, so the jobs of a
 * batch (one per source -> target pair, all ranges of the pair in one task) are started greedily,
 * largest first, whenever neither end is in a running task. Pairs with disjoint nodes run in
 * parallel; a pair that shares a node with a running one waits for it. A job that fails stops new
 * launches, but the batch returns only after every running task has ended (completed, or given up
 * and cancelled on both ends): the caller closes the connection pool after this returns, and a
 * poll loop must never outlive the pool.
 *
 * Resumability (settleLeftoverTasks): a task keeps running in the server after the process that
 * started it died. Before a reshape is planned, every member's STATUS ALL is read; a task that is
 * not final (running, or `failed` and being retried by the server) is waited for - adopted - within
 * the same bounds as our own tasks, and the topology is read again afterwards. A new IMPORT is
 * never started against a running one.
 */
import type { Redis as RedisClient } from "ioredis";
import { countSlots } from "../planner";
import { nodeAddress, SlotRange } from "../types";
import { AtomicTask, cancelEverywhere, describeTask, isFinalState, statusAll, statusId } from "../primitives/atomic-status";
import { bounded, Pool, Target } from "../primitives/connections";
import { ClusterExecError, Resolved, sleep } from "../primitives/options";
import { MigrationProgress } from "./migration-progress";

/**
 * Process-wide tunables of the atomic path (after ioredis' exported defaults object). The
 * scheduling default was measured on this project's lab (see the commit that set it).
 */
export const ATOMIC_DEFAULTS = {
    /**
     * Tasks running at once over disjoint node pairs. Measured (2-core lab, 8.6.3, 3 -> 6 shards,
     * 200k keys, three disjoint pairs): parallel is faster than one at a time, so unbounded.
     */
    maxParallelTasks: Number.POSITIVE_INFINITY,
    /** Server retries of a `failed` task before the executor gives up (the server retries about once a second). */
    maxRetries: 30,
    /** First STATUS poll after IMPORT, ms; each following wait is 1.5x longer, up to pollMaxMs. */
    pollFirstMs: 10,
    /** Longest wait between two STATUS polls, ms. */
    pollMaxMs: 250,
    /** Per-task deadline, ms (at least the converge timeout). */
    taskTimeoutMs: 10 * 60 * 1000,
    /** Bound of each STATUS / CANCEL / IMPORT call, ms. */
    callTimeoutMs: 5000,
    /** IMPORT attempts when the target is busy with a task we did not start (each waits for that task first). */
    importAttempts: 3,
};

/** One source -> target move: every range of the pair goes in one task. */
export interface AtomicJob {
    from: Target;
    to: Target;
    ranges: SlotRange[];
}

export type TaskVerdict = { kind: "done" } | { kind: "wait" } | { kind: "give-up"; reason: string };

/**
 * What to do with a task after one STATUS poll (pure). `completed` is done; `canceled` and an
 * unknown id are final failures; `failed` is transient (the server retries) until `maxRetries`;
 * anything else waits until the deadline.
 */
export function judgeTask(t: AtomicTask | null, now: number, deadline: number, maxRetries: number): TaskVerdict {
    if (!t) return { kind: "give-up", reason: "the importing node no longer knows the task (restarted?)" };
    if (t.state === "completed") return { kind: "done" };
    if (isFinalState(t.state)) return { kind: "give-up", reason: `the task was canceled${t.lastError ? ` (${t.lastError})` : ""}` };
    if (t.state === "failed" && t.retries > maxRetries) return { kind: "give-up", reason: `still failing after ${t.retries} server retries (limit ${maxRetries})` };
    if (now >= deadline) return { kind: "give-up", reason: `still ${t.state} at the deadline` };
    return { kind: "wait" };
}

interface Follow {
    /** Client of the node whose record drives the task (the importing node when reachable). */
    client: RedisClient;
    id: string;
    /** `<from> -> <to>` for messages. */
    pair: string;
    deadline: number;
}

/**
 * Polls STATUS ID until the task is final or the executor gives up (adaptive: pollFirstMs, x1.5, up
 * to pollMaxMs). Reports each new `failed` attempt (last_error, retries). Returns the final record
 * and the verdict; never cancels (the caller does, with both ends at hand).
 */
async function followTask(f: Follow, o: Resolved, mig: MigrationProgress | undefined): Promise<{ task: AtomicTask | null; verdict: TaskVerdict }> {
    let delay = ATOMIC_DEFAULTS.pollFirstMs;
    let reported = -1;
    let task: AtomicTask | null = null;
    // Bounded in time by the deadline and in count by it too (each poll waits at least pollFirstMs).
    const maxPolls = Math.ceil((f.deadline - Date.now()) / ATOMIC_DEFAULTS.pollFirstMs) + 2;
    for (let i = 0; i < maxPolls; i++) {
        task = await statusId(f.client, f.id, ATOMIC_DEFAULTS.callTimeoutMs);
        const verdict = judgeTask(task, Date.now(), f.deadline, ATOMIC_DEFAULTS.maxRetries);
        if (task && task.state === "failed" && task.retries !== reported) {
            reported = task.retries;
            const msg = `task ${f.id} ${f.pair}: failed (server retry ${task.retries}/${ATOMIC_DEFAULTS.maxRetries}), last_error: ${task.lastError || "(none)"}`;
            o.log(msg);
            mig?.note(msg);
        }
        if (verdict.kind !== "wait") return { task, verdict };
        await sleep(delay);
        delay = Math.min(ATOMIC_DEFAULTS.pollMaxMs, Math.ceil(delay * 1.5));
    }
    return { task, verdict: { kind: "give-up", reason: `no final state after ${maxPolls} polls` } };
}

/** Keys in `ranges` on the source, one CLUSTER SLOT-STATS per range (8.0+), else pipelined COUNTKEYSINSLOT. */
export async function countKeys(src: RedisClient, ranges: SlotRange[]): Promise<number> {
    try {
        let n = 0;
        for (const r of ranges) {
            const reply = (await src.call("CLUSTER", "SLOT-STATS", "SLOTSRANGE", r.start, r.end)) as [number, unknown[]][];
            for (const [, stats] of reply) {
                const i = stats.findIndex((x) => String(x) === "key-count");
                if (i >= 0) n += Number(stats[i + 1]);
            }
        }
        return n;
    } catch {
        const p = src.pipeline();
        for (const r of ranges) for (let s = r.start; s <= r.end; s++) p.cluster("COUNTKEYSINSLOT", s);
        let n = 0;
        for (const [e, v] of (await p.exec()) ?? []) if (!e) n += Number(v);
        return n;
    }
}

const BUSY = /another ASM task is already in progress/i;

/**
 * Moves `ranges` from -> to in one atomic task: counts the keys, IMPORTs (after waiting for a task
 * the target is already running, bounded), follows the task to the end. On any failure the task is
 * cancelled on both ends (bounded) before the error is thrown.
 */
export async function migrateAtomic(pool: Pool, from: Target, to: Target, ranges: SlotRange[], o: Resolved, mig: MigrationProgress): Promise<void> {
    const pair = `${from.label} -> ${to.label}`;
    const slotsText = ranges.map((r) => `${r.start}-${r.end}`).join(" ");
    await o.step(`atomic-import ${nodeAddress(from)}->${nodeAddress(to)} ${ranges[0]?.start}`);
    const src = await pool.get(from);
    const dst = await pool.get(to);
    const keys = await countKeys(src, ranges);
    const deadline = Date.now() + Math.max(o.convergeTimeoutMs, ATOMIC_DEFAULTS.taskTimeoutMs);
    mig.start();

    let id = "";
    for (let attempt = 1; !id; attempt++) {
        try {
            id = String(await bounded(dst.call("CLUSTER", "MIGRATION", "IMPORT", ...ranges.flatMap((r) => [r.start, r.end])), ATOMIC_DEFAULTS.callTimeoutMs, "CLUSTER MIGRATION IMPORT"));
        } catch (e) {
            const msg = (e as Error).message;
            if (!BUSY.test(msg) || attempt >= ATOMIC_DEFAULTS.importAttempts) {
                throw ClusterExecError(
                    `CLUSTER MIGRATION IMPORT ${slotsText} on ${to.label} (from ${from.label}) failed at attempt ${attempt}: ${msg}. ` +
                        (BUSY.test(msg) ? "The node keeps starting other migration tasks; check CLUSTER MIGRATION STATUS ALL on it and rerun" : "Check both nodes (CLUSTER NODES) and rerun"),
                    nodeAddress(to),
                    "migrate",
                );
            }
            // The target runs a task we did not start (another operator, or an earlier run): wait for it.
            const foreign = (await statusAll(dst, ATOMIC_DEFAULTS.callTimeoutMs)).find((t) => !isFinalState(t.state));
            if (foreign) {
                o.log(`${to.label} is busy with ${describeTask(foreign)}; waiting for it before IMPORT`);
                const r = await followTask({ client: dst, id: foreign.id, pair: `(foreign) -> ${to.label}`, deadline }, o, mig);
                if (r.verdict.kind === "give-up") {
                    throw ClusterExecError(
                        `${to.label}: busy with a migration task this run did not start, ${describeTask(r.task ?? foreign)}, which ${r.verdict.reason}. ` +
                            `Cancel it (CLUSTER MIGRATION CANCEL ID ${foreign.id} on both nodes) or let it finish, then rerun`,
                        nodeAddress(to),
                        "migrate",
                    );
                }
            }
        }
    }
    const started = `task ${id} started: ${pair}, ${countSlots(ranges)} slots (${slotsText}), ${keys} keys`;
    o.log(started);
    mig.note(started);

    let result: { task: AtomicTask | null; verdict: TaskVerdict };
    try {
        result = await followTask({ client: dst, id, pair, deadline }, o, mig);
    } catch (e) {
        result = { task: null, verdict: { kind: "give-up", reason: `polling failed: ${(e as Error).message}` } };
    }
    if (result.verdict.kind === "done") {
        mig.add(countSlots(ranges), keys);
        o.log(`task ${id} completed: ${pair}, ${countSlots(ranges)} slots, ${keys} keys${result.task?.writePauseMs ? `, write pause ${result.task.writePauseMs} ms` : ""}`);
        return;
    }
    const reason = result.verdict.kind === "give-up" ? result.verdict.reason : "";
    const cancel = await cancelEverywhere(
        [
            { label: to.label, client: dst },
            { label: from.label, client: src },
        ],
        id,
        ATOMIC_DEFAULTS.callTimeoutMs,
    );
    throw ClusterExecError(
        `CLUSTER MIGRATION ${pair} gave up: ${result.task ? describeTask(result.task) : `task ${id} (slots ${slotsText})`} ${reason}. ` +
            `Cancel: ${cancel.join("; ")}. The slots stay on ${from.label} until a task completes; fix the cause named by last_error and rerun converge`,
        nodeAddress(to),
        "migrate",
    );
}

/**
 * Runs a batch of atomic jobs so that no node is in two tasks at once (greedy, largest first, at
 * most ATOMIC_DEFAULTS.maxParallelTasks at a time unless `maxParallel` is given). Returns only
 * after every started task has ended; throws the first failure (naming the others).
 */
export async function runAtomicMigrations(pool: Pool, jobs: AtomicJob[], o: Resolved, mig: MigrationProgress, maxParallel = ATOMIC_DEFAULTS.maxParallelTasks): Promise<void> {
    // One task per pair: merge jobs of the same source -> target.
    const byPair = new Map<string, AtomicJob>();
    for (const j of jobs) {
        const k = `${nodeAddress(j.from)}>${nodeAddress(j.to)}`;
        const e = byPair.get(k);
        if (e) e.ranges = [...e.ranges, ...j.ranges].sort((a, b) => a.start - b.start);
        else byPair.set(k, { ...j, ranges: [...j.ranges] });
    }
    const pending = [...byPair.values()].sort((a, b) => countSlots(b.ranges) - countSlots(a.ranges));
    const busy = new Set<string>();
    const running = new Map<AtomicJob, Promise<void>>();
    const errors: Error[] = [];
    const limit = Math.max(1, maxParallel);
    // Each iteration launches what it can, then waits for one task to end: at most one per job, plus one.
    const maxIterations = byPair.size + 1;
    for (let guard = 0; guard <= maxIterations && (pending.length || running.size); guard++) {
        if (!errors.length) {
            for (let i = 0; i < pending.length && running.size < limit; ) {
                const j = pending[i];
                const ends = [nodeAddress(j.from), nodeAddress(j.to)];
                if (ends.some((a) => busy.has(a))) {
                    i++;
                    continue;
                }
                pending.splice(i, 1);
                ends.forEach((a) => busy.add(a));
                running.set(
                    j,
                    migrateAtomic(pool, j.from, j.to, j.ranges, o, mig)
                        .catch((e: Error) => void errors.push(e))
                        .finally(() => {
                            ends.forEach((a) => busy.delete(a));
                            running.delete(j);
                        }),
                );
            }
        } else pending.length = 0;
        if (running.size) await Promise.race(running.values());
    }
    if (errors.length) {
        const more = errors.length > 1 ? ` (and ${errors.length - 1} more: ${errors.slice(1).map((e) => e.message).join(" | ")})` : "";
        const first = errors[0] as ClusterExecError;
        throw ClusterExecError(`${first.message}${more}`, first.node, first.step ?? "migrate");
    }
    if (pending.length) throw ClusterExecError(`atomic migration scheduler stopped with ${pending.length} jobs left (internal error)`, undefined, "migrate");
}

/** A member the leftover search asks: its target and node id. */
export interface AtomicMember {
    target: Target;
    nodeId: string;
}

/**
 * Finds the atomic-migration tasks an earlier run (or anyone) left running on `members` and waits
 * for each to end, bounded like our own tasks. Returns the tasks that were not final when found
 * (the caller reads the topology again when there were any). A task that does not complete within
 * the bounds is cancelled on both ends and reported with a diagnosis.
 */
export async function settleLeftoverTasks(pool: Pool, members: AtomicMember[], o: Resolved): Promise<AtomicTask[]> {
    const byId = new Map(members.map((m) => [m.nodeId, m]));
    const found = new Map<string, { task: AtomicTask; on: AtomicMember }>();
    const lists = await Promise.all(
        members.map(async (m) => {
            try {
                return { m, tasks: await statusAll(await pool.get(m.target), ATOMIC_DEFAULTS.callTimeoutMs) };
            } catch (e) {
                o.log(`${m.target.label}: CLUSTER MIGRATION STATUS ALL failed (${(e as Error).message}); no leftover task search there`);
                return { m, tasks: [] as AtomicTask[] };
            }
        }),
    );
    for (const { m, tasks } of lists) {
        for (const t of tasks) {
            if (isFinalState(t.state)) continue;
            // The importing node drives (and retries) a task: prefer its record.
            const prev = found.get(t.id);
            if (!prev || (t.operation === "import" && prev.task.operation !== "import")) found.set(t.id, { task: t, on: m });
        }
    }
    if (!found.size) return [];
    const labelOf = (nodeId: string) => byId.get(nodeId)?.target.label ?? nodeId;
    // allSettled: every leftover is followed to its end before anything is thrown (the pool outlives the polls).
    const settled = await Promise.allSettled(
        [...found.values()].map(async ({ task, on }) => {
            const pair = `${labelOf(task.source)} -> ${labelOf(task.dest)}`;
            const msg = `found a migration task left by an earlier run: ${describeTask(task)} ${pair} (seen on ${on.target.label}); waiting for it`;
            o.log(msg);
            o.progress({ phase: "migrate", message: msg });
            const deadline = Date.now() + Math.max(o.convergeTimeoutMs, ATOMIC_DEFAULTS.taskTimeoutMs);
            let r: { task: AtomicTask | null; verdict: TaskVerdict };
            try {
                r = await followTask({ client: await pool.get(on.target), id: task.id, pair, deadline }, o, undefined);
            } catch (e) {
                r = { task: null, verdict: { kind: "give-up", reason: `polling failed: ${(e as Error).message}` } };
            }
            const fin = r.task ?? task;
            if (r.verdict.kind === "done") {
                const done = `leftover task ${task.id} completed: ${pair}, ${countSlots(fin.slots)} slots adopted`;
                o.log(done);
                o.progress({ phase: "migrate", message: done });
                return;
            }
            if (r.task && r.task.state !== "completed" && isFinalState(r.task.state)) {
                // Canceled by someone: final, the slots stayed on the source; the plan covers them.
                o.log(`leftover task ${task.id} ${pair} ended ${r.task.state}; its slots stay on the source and are planned again`);
                return;
            }
            const ends = [task.dest, task.source].map((nid) => byId.get(nid));
            const cancel = await cancelEverywhere(
                await Promise.all(ends.filter((e): e is AtomicMember => !!e).map(async (e) => ({ label: e.target.label, client: await pool.get(e.target).catch(() => undefined) }))),
                task.id,
                ATOMIC_DEFAULTS.callTimeoutMs,
            );
            throw ClusterExecError(
                `a migration task left by an earlier run, ${describeTask(fin)} ${pair}, ${r.verdict.kind === "give-up" ? r.verdict.reason : "did not end"}. ` +
                    `Cancel: ${cancel.join("; ")}. Fix the cause named by last_error and rerun converge`,
                byId.get(task.dest) ? nodeAddress(byId.get(task.dest)!.target) : undefined,
                "migrate-leftover",
            );
        }),
    );
    const failed = settled.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason as ClusterExecError);
    if (failed.length) {
        const more = failed.length > 1 ? ` (and ${failed.length - 1} more: ${failed.slice(1).map((e) => e.message).join(" | ")})` : "";
        throw ClusterExecError(`${failed[0].message}${more}`, failed[0].node, "migrate-leftover");
    }
    return [...found.values()].map((f) => f.task);
}
