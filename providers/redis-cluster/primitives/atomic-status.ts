/**
 * Atomic slot migration (Redis >= 8.4, `CLUSTER MIGRATION`): the task record, its parser, and the
 * few calls every user of it needs (STATUS ALL / ID, CANCEL on both ends, bounded).
 *
 * What the server does (observed on 8.6.3, the docs are incomplete):
 * - `IMPORT s e [s e ...]` on the target returns a 40-hex task id; all ranges must belong to one
 *   source ("ERR slots belong to different source nodes").
 * - One task per node at a time. A busy target refuses IMPORT at once ("ERR another ASM task is
 *   already in progress"); a busy source makes the other target's task go `failed`, and the target
 *   retries about every second (`retries` grows) and may still reach `completed`. The source keeps
 *   no record of the attempts it refused.
 * - `completed` and `canceled` are final; every other state (`connecting`, `handshake-reply`,
 *   `accumulate-buffer`, `wait-stream-eof`, `failed`, ...) may still change.
 * - `STATUS ALL` / `STATUS ID <id>` return an array of tasks, newest first, finished ones included
 *   (history); an unknown id gives an empty array. In RESP2 each task is a flat key/value array of
 *   24 elements (id, slots, source, dest, operation, state, last_error, retries, create_time,
 *   start_time, end_time, write_pause_ms), in RESP3 a map. The importing node reports
 *   `operation import`, the source `migrate`, under the same id.
 * - `CANCEL ID <id>` returns how many tasks it cancelled (0 or 1) on that node; the other end
 *   has to be told too.
 * - A task runs inside the server: the client that started it may disconnect or die.
 */
import type { Redis as RedisClient } from "ioredis";
import { SlotRange } from "../types";
import { bounded } from "./connections";

export interface AtomicTask {
    id: string;
    /** Slot ranges of the task. */
    slots: SlotRange[];
    /** Node id of the source (the node that owned the slots). */
    source: string;
    /** Node id of the importing node. */
    dest: string;
    /** `import` on the target, `migrate` on the source. */
    operation: string;
    state: string;
    lastError: string;
    /** Attempts the importing node made after a failure. */
    retries: number;
    createTime: number;
    startTime: number;
    /** -1 while the task runs. */
    endTime: number;
    writePauseMs: number;
}

/** `completed` and `canceled` never change again; everything else (including `failed`) may. */
export function isFinalState(state: string): boolean {
    return state === "completed" || state === "canceled" || state === "cancelled";
}

function parseSlots(text: string): SlotRange[] {
    const out: SlotRange[] = [];
    for (const part of text.trim().split(/\s+/)) {
        if (!part) continue;
        const m = /^(\d+)(?:-(\d+))?$/.exec(part);
        if (!m) throw new Error(`CLUSTER MIGRATION STATUS: cannot read slot range "${part}" in "${text}"`);
        out.push({ start: Number(m[1]), end: Number(m[2] ?? m[1]) });
    }
    return out;
}

function str(v: unknown): string {
    return Buffer.isBuffer(v) ? v.toString() : v === null || v === undefined ? "" : String(v);
}

/** One task from a flat key/value array (RESP2), a Map or a plain object (RESP3 clients). */
function parseTask(x: unknown): AtomicTask {
    const f = new Map<string, unknown>();
    if (Array.isArray(x)) {
        if (x.length % 2 !== 0) throw new Error(`CLUSTER MIGRATION STATUS: a task entry has an odd number of elements (${x.length}): ${JSON.stringify(x)}`);
        for (let i = 0; i < x.length; i += 2) f.set(str(x[i]), x[i + 1]);
    } else if (x instanceof Map) {
        for (const [k, v] of x) f.set(str(k), v);
    } else if (x && typeof x === "object") {
        for (const [k, v] of Object.entries(x)) f.set(k, v);
    } else {
        throw new Error(`CLUSTER MIGRATION STATUS: unexpected task entry ${JSON.stringify(x)}`);
    }
    const id = str(f.get("id"));
    const state = str(f.get("state")).toLowerCase();
    if (!/^[0-9a-f]{40}$/.test(id) || !state) throw new Error(`CLUSTER MIGRATION STATUS: a task entry without id or state: ${JSON.stringify(x)}`);
    const num = (k: string) => (f.has(k) ? Number(str(f.get(k))) : NaN);
    return {
        id,
        slots: parseSlots(str(f.get("slots"))),
        source: str(f.get("source")),
        dest: str(f.get("dest")),
        operation: str(f.get("operation")).toLowerCase(),
        state,
        lastError: str(f.get("last_error")),
        retries: num("retries") || 0,
        createTime: num("create_time"),
        startTime: num("start_time"),
        endTime: num("end_time"),
        writePauseMs: num("write_pause_ms") || 0,
    };
}

/**
 * Parses a CLUSTER MIGRATION STATUS ALL / ID reply: an array of tasks (newest first), each a flat
 * key/value array (RESP2) or a map (RESP3). An empty array means no such task. A single flat task
 * array (not wrapped) is accepted as well. Throws, quoting the reply, on anything else.
 */
export function parseMigrationStatus(reply: unknown): AtomicTask[] {
    if (!Array.isArray(reply)) throw new Error(`CLUSTER MIGRATION STATUS: expected an array, got ${JSON.stringify(reply)}`);
    if (reply.length === 0) return [];
    // Unwrapped single task: ["id", "<hex>", "slots", ...].
    if (!Array.isArray(reply[0]) && !(reply[0] instanceof Map) && typeof reply[0] !== "object") return [parseTask(reply)];
    return reply.map(parseTask);
}

/** Every task a node remembers (history included), newest first. Bounded by `timeoutMs`. */
export async function statusAll(c: RedisClient, timeoutMs: number): Promise<AtomicTask[]> {
    return parseMigrationStatus(await bounded(c.call("CLUSTER", "MIGRATION", "STATUS", "ALL"), timeoutMs, "CLUSTER MIGRATION STATUS ALL"));
}

/** One task as this node sees it, or null when it does not know the id. Bounded by `timeoutMs`. */
export async function statusId(c: RedisClient, id: string, timeoutMs: number): Promise<AtomicTask | null> {
    const tasks = parseMigrationStatus(await bounded(c.call("CLUSTER", "MIGRATION", "STATUS", "ID", id), timeoutMs, `CLUSTER MIGRATION STATUS ID ${id}`));
    return tasks.find((t) => t.id === id) ?? null;
}

/**
 * CANCEL ID on each given client (the target and the source), each bounded by `timeoutMs`; never
 * throws. Returns one line per end for the caller's message ("cancelled", "not running", or the error).
 */
export async function cancelEverywhere(ends: { label: string; client: RedisClient | undefined }[], id: string, timeoutMs: number): Promise<string[]> {
    return Promise.all(
        ends.map(async ({ label, client }) => {
            if (!client) return `${label}: not reachable, not cancelled`;
            try {
                const n = Number(await bounded(client.call("CLUSTER", "MIGRATION", "CANCEL", "ID", id), timeoutMs, `CLUSTER MIGRATION CANCEL ID ${id}`));
                return `${label}: ${n > 0 ? "cancelled" : "not running there"}`;
            } catch (e) {
                return `${label}: CANCEL failed: ${(e as Error).message}`;
            }
        }),
    );
}

export function describeTask(t: AtomicTask): string {
    return `task ${t.id} (${t.slots.map((r) => (r.start === r.end ? `${r.start}` : `${r.start}-${r.end}`)).join(" ")}, state ${t.state}, retries ${t.retries}${t.lastError ? `, last_error: ${t.lastError}` : ""})`;
}
