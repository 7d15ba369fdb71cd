/**
 * Slot migration on real TLS redis-server nodes, per server version:
 * - both versions: progress counts exactly the keys whose slot moved (3 -> 4 -> 6 shards);
 * - >= 8.4 (atomic CLUSTER MIGRATION): STATUS ALL of every node, polled throughout, never shows a
 *   node in two tasks at once nor a task that failed or was retried, while disjoint pairs do run
 *   in parallel; a SIGKILLed converge leaves a running task (plus one that fails and is retried by
 *   the server) that the next converge finds and waits for; a task that keeps failing is given up
 *   after the bounded retry count and cancelled on both ends; a cluster with one 7.0.15 node keeps
 *   the classic path.
 * Tests that fit only the atomic path skip on older servers (run with REDISFORGE_REDIS=8.6).
 */
import { spawn } from "child_process";
import type { Redis as RedisClient } from "ioredis";
import * as path from "path";
import { Lab, redisServerVersion } from "../../../lab/lab";
import { redisRuntime } from "../../../lab/redis-runtime";
import { converge, parseClusterNodes, versionAtLeast } from "../../../providers/redis-cluster/executor";
import { ATOMIC_DEFAULTS, migrateAtomic } from "../../../providers/redis-cluster/operations/migrate-atomic";
import { MigrationProgress } from "../../../providers/redis-cluster/operations/migration-progress";
import { AtomicTask, isFinalState, parseMigrationStatus } from "../../../providers/redis-cluster/primitives/atomic-status";
import { Pool } from "../../../providers/redis-cluster/primitives/connections";
import { resolve } from "../../../providers/redis-cluster/primitives/options";
import { ProgressEvent } from "../../../providers/redis-cluster/types";
import { clusterInfo, keySlot, labCreds, labSpec, loadKeys, slotOwners, startLab, verifyKeys } from "./helpers";

jest.setTimeout(240_000);

const KEYS = 120_000;
let lab: Lab;
let atomic = false;
const clients: RedisClient[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function client(i: number): Promise<RedisClient> {
    const Redis = (await import("ioredis")).default;
    if (!clients[i]) {
        clients[i] = new Redis({ ...lab.clientOptions(i), lazyConnect: true, maxRetriesPerRequest: 1 });
        await clients[i].connect();
    }
    return clients[i];
}
async function statusAllOf(i: number): Promise<AtomicTask[]> {
    return parseMigrationStatus(await (await client(i)).call("CLUSTER", "MIGRATION", "STATUS", "ALL"));
}
function masterSlotCounts(nodesText: string): number[] {
    return parseClusterNodes(nodesText)
        .filter((n) => n.master && n.slots.length)
        .map((n) => n.slots.reduce((a, r) => a + r.end - r.start + 1, 0));
}
/** Keys k:0..count-1 whose owning master differs between two slot-owner maps. */
function keysThatMoved(before: Int32Array, after: Int32Array, count = KEYS): number {
    let n = 0;
    for (let i = 0; i < count; i++) {
        const s = keySlot(`k:${i}`);
        if (before[s] !== after[s]) n++;
    }
    return n;
}

beforeAll(async () => {
    lab = await startLab("atomic", 6);
    expect(lab.state.serverVersion).toBe(RUNTIME_VERSION);
    atomic = versionAtLeast(lab.state.serverVersion, 8, 4);
    if (!atomic) process.stdout.write(`atomic-migration.test: redis ${lab.state.serverVersion} < 8.4: the atomic-only tests are skipped (run with REDISFORGE_REDIS=8.6)\n`);
    expect((await converge(labSpec(lab, [0, 1, 2], 3, 0), labCreds(lab))).state).toBe("ok");
    await loadKeys(lab, 0, KEYS);
});
afterAll(async () => {
    for (const c of clients) c?.disconnect();
    await lab?.stop({ removeData: true });
});

/** The version the lab will run (REDISFORGE_REDIS); atomic-only tests skip below 8.4, saying so. */
const RUNTIME_VERSION = redisRuntime().version;
const itAtomic = versionAtLeast(RUNTIME_VERSION, 8, 4) ? it : it.skip;

describe("slot migration: scheduling and progress", () => {
    it("3 -> 4 -> 6 shards: progress reports exactly the keys that moved; on >= 8.4 no node is ever in two tasks, disjoint pairs run in parallel", async () => {
        // Every node's STATUS ALL, polled as fast as it answers for the whole reshape.
        let polling = atomic;
        const violations: string[] = [];
        let maxConcurrent = 0;
        let polls = 0;
        const poller = (async () => {
            while (polling) {
                const lists = await Promise.all(lab.nodes.map((_, i) => statusAllOf(i)));
                polls++;
                const active = new Set<string>();
                lists.forEach((tasks, i) => {
                    const running = tasks.filter((t) => !isFinalState(t.state));
                    if (running.length > 1) violations.push(`node${i} in ${running.length} tasks: ${running.map((t) => t.id).join(", ")}`);
                    for (const t of tasks) if (t.state === "failed" || t.retries > 0 || t.state === "canceled") violations.push(`node${i}: task ${t.id} ${t.state} retries ${t.retries}: ${t.lastError}`);
                    running.forEach((t) => active.add(t.id));
                });
                maxConcurrent = Math.max(maxConcurrent, active.size);
                await sleep(2);
            }
        })();
        const figures: string[] = [];
        try {
            for (const [idx, shards] of [
                [[0, 1, 2, 3], 4],
                [[0, 1, 2, 3, 4, 5], 6],
            ] as [number[], number][]) {
                const before = await slotOwners(lab, 0);
                const events: ProgressEvent[] = [];
                const log: string[] = [];
                const status = await converge(labSpec(lab, idx, shards, 0), labCreds(lab), { onProgress: (e) => events.push(e), log: (m) => log.push(m) });
                expect(status.state).toBe("ok");
                const after = await slotOwners(lab, 0);
                const moved = keysThatMoved(before, after);
                const last = events.filter((e) => e.phase === "migrate" && e.keysMoved !== undefined).pop()!;
                expect(moved).toBeGreaterThan(0);
                expect(last.keysMoved).toBe(moved);
                expect(last.slotsMoved).toBe(last.slotsTotal);
                expect(log).toContain(atomic ? "slot migration: atomic CLUSTER MIGRATION (every node >= 8.4)" : "slot migration: classic SETSLOT + MIGRATE (some node < 8.4)");
                const counts = masterSlotCounts(await lab.cli(0, ["CLUSTER", "NODES"]));
                expect(counts).toHaveLength(shards);
                expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
                figures.push(`3->${shards === 4 ? 4 : "4->6"}: ${last.slotsMoved} slots, ${last.keysMoved} keys, ${Math.round(last.keysPerSec!)} keys/s`);
            }
        } finally {
            polling = false;
            await poller;
        }
        process.stdout.write(`migration (${lab.state.serverVersion}, ${atomic ? "atomic" : "classic"}): ${figures.join("; ")}${atomic ? `; STATUS ALL polls ${polls}, at most ${maxConcurrent} tasks at once` : ""}\n`);
        expect(await verifyKeys(lab, 0, KEYS)).toEqual([]);
        if (atomic) {
            expect(polls).toBeGreaterThan(10);
            expect(violations).toEqual([]);
            // 4 -> 6 has disjoint source -> target pairs: the scheduler runs them side by side.
            expect(maxConcurrent).toBeGreaterThanOrEqual(2);
        }
    });
});

describe("atomic migration (>= 8.4): crash, leftovers, bounded retries", () => {
    itAtomic("SIGKILL of converge mid-task: the next converge finds the running task (and a failing, retried one) and waits for them; every key reads back, slots balanced", async () => {
        // 6 -> 3 shards. The drained nodes' snapshot is slowed by the server's own test knob
        // rdb-key-save-delay (us per key; read by the fork at fork time), so the first task is
        // still running when the converge process is killed and when the next one starts.
        // 500 us x ~10-20k keys: the task runs 5-10 s, well past the kill, the wait for the other
        // (fast) tasks and the second IMPORT below.
        await (await client(3)).config("SET", "rdb-key-save-delay", "500");
        const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "converge-child.script.ts"), lab.dir, "3", "0", "0,1,2"], {
            cwd: path.resolve(__dirname, "../../.."),
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stderr = "";
        child.stderr.on("data", (d) => (stderr += d));
        // Killed once the slow source (node3) reports its task started (the other two sources'
        // tasks are fast and may be done by then).
        const slowSrc = `${lab.nodes[3].host}:${lab.nodes[3].port} ->`;
        const taskId = await new Promise<string>((resolveId, reject) => {
            let buf = "";
            const timer = setTimeout(() => reject(new Error(`the child never started a task within 90 s; stderr: ${stderr}`)), 90_000);
            child.stdout.on("data", (d) => {
                buf += d;
                const lines = buf.split("\n");
                buf = lines.pop()!;
                for (const line of lines) {
                    const e = JSON.parse(line) as ProgressEvent | { phase: "done" };
                    const m = /task ([0-9a-f]{40}) started: (.*)/.exec((e as ProgressEvent).message ?? "");
                    if (m && m[2].includes(slowSrc)) {
                        clearTimeout(timer);
                        process.kill(child.pid!, "SIGKILL");
                        resolveId(m[1]);
                        return;
                    }
                    if (e.phase === "done") {
                        clearTimeout(timer);
                        reject(new Error("the child finished before it could be killed"));
                    }
                }
            });
            child.on("exit", (code, sig) => {
                if (sig !== "SIGKILL") {
                    clearTimeout(timer);
                    reject(new Error(`child exited early: code ${code}; stderr: ${stderr}`));
                }
            });
        });
        await new Promise((r) => (child.exitCode !== null || child.signalCode ? r(null) : child.on("exit", r)));
        // The slow task stays slow until the resumed converge has found it (else it may complete
        // before converge looks, and there is no leftover to find); then it is sped up.
        const slowSource = await client(3);

        // The task outlived its process; the fast ones the child started meanwhile end on their own.
        let all: AtomicTask[] = [];
        for (const until = Date.now() + 5000; Date.now() < until; await sleep(20)) {
            all = (await Promise.all(lab.nodes.map((_, i) => statusAllOf(i)))).flat();
            if (all.filter((t) => !isFinalState(t.state) && t.operation === "import").length <= 1) break;
        }
        const leftover = all.find((t) => t.id === taskId && t.operation === "import")!;
        expect(leftover).toBeDefined();
        expect(isFinalState(leftover.state)).toBe(false);
        expect(all.filter((t) => !isFinalState(t.state) && t.operation === "import").map((t) => t.id)).toEqual([taskId]);
        // A second leftover that the server keeps retrying: another IMPORT from the same (busy)
        // source, for slots outside the running task, onto an idle node that stays.
        const ids = await Promise.all(lab.nodes.map(async (_, i) => String(await (await client(i)).cluster("MYID"))));
        const srcIdx = ids.indexOf(leftover.source);
        const dstIdx = ids.indexOf(leftover.dest);
        const srcSlots = parseClusterNodes(await lab.cli(srcIdx, ["CLUSTER", "NODES"])).find((n) => n.myself)!.slots;
        const inTask = (s: number) => leftover.slots.some((r) => s >= r.start && s <= r.end);
        const free = srcSlots.flatMap((r) => Array.from({ length: r.end - r.start + 1 }, (_, k) => r.start + k)).filter((s) => !inTask(s));
        // A contiguous run of up to 100 free slots.
        let runEnd = 0;
        while (runEnd + 1 < Math.min(free.length, 100) && free[runEnd + 1] === free[runEnd] + 1) runEnd++;
        const otherIdx = [0, 1, 2].find((i) => i !== dstIdx)!;
        let retriedId = "";
        if (free.length) {
            retriedId = String(await (await client(otherIdx)).call("CLUSTER", "MIGRATION", "IMPORT", free[0], free[runEnd]));
            // It goes `failed` (source busy) and is retried by the server.
            const deadline = Date.now() + 5000;
            let st = "";
            while (Date.now() < deadline && st !== "failed") {
                st = (await statusAllOf(otherIdx)).find((t) => t.id === retriedId)?.state ?? "";
                if (st !== "failed") await sleep(20);
            }
            expect(st).toBe("failed");
        } else process.stdout.write("atomic-migration.test: the running task holds every slot of its source; no second (retried) leftover this run\n");

        const log: string[] = [];
        let status;
        let spedUp: Promise<unknown> = Promise.resolve();
        try {
            status = await converge(labSpec(lab, [0, 1, 2], 3, 0), labCreds(lab), {
                log: (m) => {
                    log.push(m);
                    if (m.includes(`left by an earlier run: task ${taskId}`)) spedUp = slowSource.config("SET", "rdb-key-save-delay", "0");
                },
            });
            await spedUp;
        } catch (e) {
            throw new Error(`resumed converge failed: ${(e as Error).message}\nlog:\n${log.join("\n")}`);
        }
        const text = log.join("\n");
        expect(text).toContain(`found a migration task left by an earlier run: task ${taskId}`);
        expect(text).toContain(`leftover task ${taskId} completed`);
        if (retriedId) {
            expect(text).toContain(`found a migration task left by an earlier run: task ${retriedId}`);
            expect(text).toMatch(new RegExp(`task ${retriedId} .*failed \\(server retry \\d+`));
            expect(text).toContain(`leftover task ${retriedId} completed`);
        }
        // No IMPORT of this run met a busy node.
        expect(text).not.toMatch(/busy with|another ASM task/);
        expect({ state: status.state, problems: status.problems }).toEqual({ state: "ok", problems: [] });
        expect(status.masters).toHaveLength(3);
        const counts = masterSlotCounts(await lab.cli(0, ["CLUSTER", "NODES"]));
        expect(counts).toHaveLength(3);
        expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
        for (const i of [3, 4, 5]) {
            expect((await clusterInfo(lab, i)).cluster_known_nodes).toBe("1");
            expect((await lab.cli(i, ["DBSIZE"])).trim()).toBe("0");
        }
        expect(await verifyKeys(lab, 0, KEYS)).toEqual([]);
    });

    itAtomic("a task that keeps failing is given up after the bounded retry count and cancelled on both ends, with a diagnosis", async () => {
        // Node 0 (a source) is kept busy by a slow task to node 1; our task 0 -> 2 then fails at
        // every server retry ("another ASM task is already in progress" on the source).
        const view = parseClusterNodes(await lab.cli(0, ["CLUSTER", "NODES"]));
        const me = view.find((n) => n.myself)!;
        const start = me.slots[0].start;
        await (await client(0)).config("SET", "rdb-key-save-delay", "2000");
        const slowId = String(await (await client(1)).call("CLUSTER", "MIGRATION", "IMPORT", start, start + 399));
        const saved = ATOMIC_DEFAULTS.maxRetries;
        ATOMIC_DEFAULTS.maxRetries = 1;
        const pool = new Pool(labCreds(lab), {});
        const log: string[] = [];
        const o = resolve({ log: (m) => log.push(m) });
        const t = (i: number) => ({ host: lab.nodes[i].host, port: lab.nodes[i].port, label: `node${i} ${lab.nodes[i].host}:${lab.nodes[i].port}` });
        let err: (Error & { node?: string; step?: string }) | undefined;
        const t0 = Date.now();
        try {
            await migrateAtomic(pool, t(0), t(2), [{ start: start + 400, end: start + 499 }], o, new MigrationProgress(100, o));
        } catch (e) {
            err = e as Error;
        } finally {
            ATOMIC_DEFAULTS.maxRetries = saved;
            await pool.closeAll();
            await (await client(0)).config("SET", "rdb-key-save-delay", "0");
            await (await client(1)).call("CLUSTER", "MIGRATION", "CANCEL", "ID", slowId);
            await (await client(0)).call("CLUSTER", "MIGRATION", "CANCEL", "ID", slowId);
        }
        expect(err).toBeDefined();
        const id = /task ([0-9a-f]{40})/.exec(err!.message)![1];
        expect(err!.message).toMatch(/gave up/);
        expect(err!.message).toMatch(/still failing after \d+ server retries \(limit 1\)/);
        expect(err!.message).toMatch(/last_error: .*Another ASM task is already in progress/i);
        expect(err!.message).toContain(`node2 ${lab.nodes[2].host}:${lab.nodes[2].port}: cancelled`);
        expect(err!.message).toContain(`node0 ${lab.nodes[0].host}:${lab.nodes[0].port}`);
        expect(err!.step).toBe("migrate");
        expect(log.some((l) => l.includes(`task ${id}`) && /failed \(server retry/.test(l))).toBe(true);
        expect(Date.now() - t0).toBeLessThan(30_000);
        // Cancelled on the importing end; the slots stayed with node 0.
        expect((await statusAllOf(2)).find((x) => x.id === id)?.state).toBe("canceled");
        const owners = await slotOwners(lab, 0);
        expect(owners[start + 450]).toBe(0);
        // The cluster is still whole (the slow task was cancelled too).
        expect((await converge(labSpec(lab, [0, 1, 2], 3, 0), labCreds(lab))).state).toBe("ok");
        expect(await verifyKeys(lab, 0, KEYS)).toEqual([]);
    });

    itAtomic("a cluster with one node older than 8.4 keeps the classic path (rolling upgrade), every key moves", async () => {
        // A second cluster in the same lab: two idle 8.6 nodes (3, 4) and a 7.0.15 node (Debian's
        // redis-server on PATH). The lab runs one binary, so the added node's binary and config
        // version are switched for that one call. Data may only move old -> new (8.6 writes an RDB
        // 7.0 cannot read: MIGRATE to the 7.0 node fails with "DUMP payload version"), as in a
        // real rolling upgrade; so the 7.0 node is a source and the new shard is an 8.6 node (5).
        const systemVersion = redisServerVersion("redis-server");
        expect(versionAtLeast(systemVersion, 8, 4)).toBe(false);
        const [server, version] = [lab.state.redisServer, lab.state.serverVersion];
        lab.state.redisServer = "redis-server";
        lab.state.serverVersion = systemVersion;
        let old;
        try {
            old = (await lab.addNodes(1))[0];
        } finally {
            lab.state.redisServer = server;
            lab.state.serverVersion = version;
        }
        expect(await lab.cli(old.index, ["INFO", "server"])).toContain(`redis_version:${systemVersion}`);
        expect((await converge(labSpec(lab, [3, 4, old.index], 3, 0), labCreds(lab))).state).toBe("ok");
        const N = 30_000;
        await loadKeys(lab, 3, N);
        const log: string[] = [];
        const events: ProgressEvent[] = [];
        const before = await slotOwners(lab, 3);
        const status = await converge(labSpec(lab, [3, 4, old.index, 5], 4, 0), labCreds(lab), { log: (m) => log.push(m), onProgress: (e) => events.push(e) });
        expect(status.state).toBe("ok");
        expect(log).toContain("slot migration: classic SETSLOT + MIGRATE (some node < 8.4)");
        expect(log.some((l) => /^task [0-9a-f]{40}/.test(l))).toBe(false);
        const moved = keysThatMoved(before, await slotOwners(lab, 3), N);
        expect(moved).toBeGreaterThan(0);
        expect(events.filter((e) => e.phase === "migrate" && e.keysMoved !== undefined).pop()!.keysMoved).toBe(moved);
        const counts = masterSlotCounts(await lab.cli(3, ["CLUSTER", "NODES"]));
        expect(counts.sort()).toEqual([4096, 4096, 4096, 4096]);
        expect(await verifyKeys(lab, 3, N)).toEqual([]);
        // The first cluster was not touched.
        expect(await verifyKeys(lab, 0, KEYS)).toEqual([]);
    });
});
