/**
 * CLUSTER MIGRATION STATUS parsing and the task verdict, on replies captured from redis-server
 * 8.6.3 through ioredis (RESP2): STATUS ALL (several tasks, newest first) and STATUS ID (one task
 * in an array), an unknown id (empty array). The integration tests parse live replies as well
 * (tests/integration/redis-cluster/atomic-migration.test.ts).
 */
import { judgeTask } from "../../../providers/redis-cluster/operations/migrate-atomic";
import { isFinalState, parseMigrationStatus } from "../../../providers/redis-cluster/primitives/atomic-status";

// STATUS ALL on a source node after two tasks (captured 8.6.3, RESP2).
const STATUS_ALL_SOURCE = [
    ["id", "497dad9d1fd15e5524c38dd65f4db0581f8d866d", "slots", "100-199 300-310", "source", "84438dae38f03784e33b8251d4e5757113d5df42", "dest", "29a9dae370e852a4f2754e1e54a34b135a3dca05", "operation", "migrate", "state", "completed", "last_error", "", "retries", 0, "create_time", 1795938474501, "start_time", 1795938474501, "end_time", 1795938474665, "write_pause_ms", 2],
    ["id", "c9a585bf040eab4649dff60f079fd19e8c992452", "slots", "0-99", "source", "84438dae38f03784e33b8251d4e5757113d5df42", "dest", "4e57bfb24be7a39a426a895c8638fda5b2d33c3f", "operation", "migrate", "state", "completed", "last_error", "", "retries", 0, "create_time", 1795938473910, "start_time", 1795938473910, "end_time", 1795938474075, "write_pause_ms", 2],
];
// STATUS ID on the importing node of a task that waited for a busy source (captured 8.6.3).
const STATUS_ID_IMPORT = [
    ["id", "497dad9d1fd15e5524c38dd65f4db0581f8d866d", "slots", "100-199 300-310", "source", "84438dae38f03784e33b8251d4e5757113d5df42", "dest", "29a9dae370e852a4f2754e1e54a34b135a3dca05", "operation", "import", "state", "completed", "last_error", "", "retries", 1, "create_time", 1795938474006, "start_time", 1795938474494, "end_time", 1795938474663, "write_pause_ms", 0],
];
// A running task (state handshake-reply, end_time -1) and a failed one being retried (8.6.3).
const STATUS_RUNNING = [["id", "0c3a7da4d8ca8e387e28fc5b7c4545e50e562882", "slots", "0-99 200-299", "source", "99beccf0a1682d97aa1d85a545e1181ef1986153", "dest", "c6f06cd04cbaa9d6ef8a4ef2cd28e9da333190dc", "operation", "import", "state", "handshake-reply", "last_error", "", "retries", 0, "create_time", 1795937697134, "start_time", 1795937697134, "end_time", -1, "write_pause_ms", 0]];
const FAILED_ERROR = "Main channel - Failed to sync with source node: Error reply to CLUSTER SYNCSLOTS SYNC from the source: -ERR Another ASM task is already in progress (state: syncslots-reply, rdb_channel_state: none)";
const STATUS_FAILED = [["id", "ba956b51f643aa14b7d2d00a52a3313860dab5ae", "slots", "1000-1999", "source", "99beccf0a1682d97aa1d85a545e1181ef1986153", "dest", "f2ba8c640f0dd9dfb78fef08009831c63d9e89c0", "operation", "import", "state", "failed", "last_error", FAILED_ERROR, "retries", 2, "create_time", 1795937697300, "start_time", 1795937697300, "end_time", -1, "write_pause_ms", 0]];

describe("parseMigrationStatus", () => {
    it("reads STATUS ALL: every task, newest first, all twelve fields", () => {
        const tasks = parseMigrationStatus(STATUS_ALL_SOURCE);
        expect(STATUS_ALL_SOURCE[0]).toHaveLength(24);
        expect(tasks.map((t) => t.id)).toEqual(["497dad9d1fd15e5524c38dd65f4db0581f8d866d", "c9a585bf040eab4649dff60f079fd19e8c992452"]);
        expect(tasks[0]).toEqual({
            id: "497dad9d1fd15e5524c38dd65f4db0581f8d866d",
            slots: [
                { start: 100, end: 199 },
                { start: 300, end: 310 },
            ],
            source: "84438dae38f03784e33b8251d4e5757113d5df42",
            dest: "29a9dae370e852a4f2754e1e54a34b135a3dca05",
            operation: "migrate",
            state: "completed",
            lastError: "",
            retries: 0,
            createTime: 1795938474501,
            startTime: 1795938474501,
            endTime: 1795938474665,
            writePauseMs: 2,
        });
        expect(tasks[1].slots).toEqual([{ start: 0, end: 99 }]);
    });

    it("reads STATUS ID (one task in an array), a running and a failed task", () => {
        const [done] = parseMigrationStatus(STATUS_ID_IMPORT);
        expect([done.operation, done.state, done.retries]).toEqual(["import", "completed", 1]);
        const [running] = parseMigrationStatus(STATUS_RUNNING);
        expect([running.state, running.endTime]).toEqual(["handshake-reply", -1]);
        const [failed] = parseMigrationStatus(STATUS_FAILED);
        expect([failed.state, failed.retries, failed.lastError]).toEqual(["failed", 2, FAILED_ERROR]);
    });

    it("reads an unknown id as no task, and an unwrapped flat task or a RESP3-style map as one", () => {
        expect(parseMigrationStatus([])).toEqual([]);
        expect(parseMigrationStatus(STATUS_RUNNING[0])[0].id).toBe("0c3a7da4d8ca8e387e28fc5b7c4545e50e562882");
        const flat = STATUS_FAILED[0] as unknown[];
        const asMap = new Map<string, unknown>();
        for (let i = 0; i < flat.length; i += 2) asMap.set(String(flat[i]), flat[i + 1]);
        expect(parseMigrationStatus([asMap])).toEqual(parseMigrationStatus(STATUS_FAILED));
        expect(parseMigrationStatus([Object.fromEntries(asMap)])).toEqual(parseMigrationStatus(STATUS_FAILED));
    });

    it.each([
        ["an error string", "ERR wrong number of arguments for 'cluster|migration' command", /expected an array/],
        ["an odd key/value array", [["id", "x", "state"]], /odd number/],
        ["a task without state", [["id", "497dad9d1fd15e5524c38dd65f4db0581f8d866d", "slots", "0-1"]], /without id or state/],
        ["a bad slot range", [["id", "497dad9d1fd15e5524c38dd65f4db0581f8d866d", "state", "completed", "slots", "0..9"]], /slot range "0..9"/],
    ])("rejects %s, quoting it", (_name, reply, err) => {
        expect(() => parseMigrationStatus(reply)).toThrow(err);
    });
});

describe("judgeTask", () => {
    const [running] = parseMigrationStatus(STATUS_RUNNING);
    const [failed] = parseMigrationStatus(STATUS_FAILED);
    const [done] = parseMigrationStatus(STATUS_ID_IMPORT);
    const canceled = { ...running, state: "canceled", lastError: "Cancelled due to user request (state: accumulate-buffer, rdb_channel_state: rdbchannel-transfer)" };
    it.each([
        ["completed", done, 0, "done", ""],
        ["running before the deadline", running, 0, "wait", ""],
        ["running at the deadline", running, 1000, "give-up", "still handshake-reply at the deadline"],
        ["failed, retries within the limit (transient)", failed, 0, "wait", ""],
        ["failed, retries above the limit", { ...failed, retries: 31 }, 0, "give-up", "still failing after 31 server retries (limit 30)"],
        ["canceled (final)", canceled, 0, "give-up", "canceled (Cancelled due to user request"],
        ["unknown to the importing node", null, 0, "give-up", "no longer knows the task"],
    ])("%s", (_name, task, now, kind, reason) => {
        const v = judgeTask(task, now, 1000, 30);
        expect(v.kind).toBe(kind);
        if (reason) expect(v.kind === "give-up" && v.reason).toContain(reason);
    });
    it("only completed and canceled are final", () => {
        expect(["completed", "canceled", "failed", "handshake-reply", "wait-stream-eof", "accumulate-buffer"].map(isFinalState)).toEqual([true, true, false, false, false, false]);
    });
});
