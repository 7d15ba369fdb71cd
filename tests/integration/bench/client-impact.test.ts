/**
 * The client-impact scenario (bench/client-impact.ts) in quick mode on a tiny key count, on the
 * runtime under test ($REDISFORGE_REDIS: 7.0 classic; 8.6 atomic and classic), through the real
 * CLI (`bench/run.ts --impact-only --json`). Asserts the report's shape, that no key was lost
 * and that the client's counters add up; never the figures (this is not a timed test).
 * Plus: the measurement itself notices a lost key and a failed command (in-process, on a lab).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import Redis from "ioredis";
import { ClientLoad, classifyFailure, classifySeen, FAILURE_KINDS, SEEN_KINDS } from "../../../bench/client-load";
import type { ImpactTrialResult } from "../../../bench/client-impact";
import { convergeLab } from "../../../lab/form";
import { Lab } from "../../../lab/lab";
import { compareVersions, redisRuntime } from "../../../lab/redis-runtime";

const ROOT = path.resolve(__dirname, "../../..");
const TSX = path.join(ROOT, "node_modules/.bin/tsx");
const RUNTIME = process.env.REDISFORGE_REDIS || "system";
const VERSION = redisRuntime(RUNTIME).version;
const MOVERS = compareVersions(VERSION, "8.4") >= 0 ? ["atomic", "classic"] : ["classic"];
const KEYS = 2000;

test.each([
    ["MOVED 3999 127.0.0.1:6381", "moved"],
    ["ASK 3999 127.0.0.1:6381", "ask"],
    ["TRYAGAIN Multiple keys request during rehashing of slot", "tryagain"],
    ["CLUSTERDOWN The cluster is down", "clusterdown"],
    ["Command timed out", "timeout"],
    ["Connection is closed.", "connection"],
    ["NOPERM this user has no permissions", "other"],
])("classifySeen(%s) = %s", (message, kind) => {
    expect(classifySeen(new Error(message))).toBe(kind);
});

test.each([
    ["Too many Cluster redirections. Last error: ReplyError: TRYAGAIN Multiple keys request during rehashing of slot", "tryagain"],
    ["Too many Cluster redirections. Last error: ReplyError: CLUSTERDOWN Hash slot not served", "clusterdown"],
    ["Too many Cluster redirections. Last error: ReplyError: MOVED 1 127.0.0.1:1", "redirect-loop"],
    ["Command timed out", "timeout"],
    ["Connection is closed.", "connection"],
    ["WRONGTYPE Operation against a key holding the wrong kind of value", "other"],
])("classifyFailure(%s) = %s", (message, kind) => {
    expect(classifyFailure(new Error(message))).toBe(kind);
});

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

test(`bench client impact, quick mode on ${VERSION} (${MOVERS.join(", ")}): report shape, keys lost 0, counters consistent`, () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "redisforge-bench-impact-"));
    const dir = path.join(tmp, "lab");
    const json = path.join(tmp, "report.json");
    const paths = MOVERS.map((m) => `${RUNTIME}:${m}`).join(",");
    const r = spawnSync(TSX, ["bench/run.ts", "--impact-only", "--impact-paths", paths, "--keys", String(KEYS), "--repeat", "1", "--settle-ms", "0", "--dir", dir, "--json", json], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 280000,
        killSignal: "SIGTERM",
    });
    try {
        const all = `${r.stdout}\n${r.stderr}`;
        expect({ code: r.status, all }).toEqual({ code: 0, all: expect.stringContaining("RESULTS") });
        for (const m of MOVERS) {
            expect(r.stdout).toMatch(new RegExp(`^ {2}impact ${VERSION.replace(/\./g, "\\.")} ${m} #1: \\d+ keys \\(\\d+ slots\\) moved in \\d+\\.\\d{3} s = \\d+ keys/s end to end`, "m"));
        }
        expect(r.stdout).toMatch(/^ {4}latency during the move: p50 \d+\.\d ms, p99 \d+\.\d ms, max \d+\.\d ms/m);
        expect(r.stdout).toMatch(/^GOAL keys lost over every client-impact trial \(\d+\) = 0 \(target 0: MET\)$/m);
        if (MOVERS.includes("atomic")) {
            expect(r.stdout).toMatch(/^GOAL \S+ atomic\/classic path end-to-end keys\/s = \d+\.\d{2} .*\(target >= 1\.50: (MET|MISSED)\)$/m);
            expect(r.stdout).toMatch(/^GOAL \S+ atomic client-visible errors \(sum over 1 moves\) = \d+ \(target 0: (MET|MISSED)\)$/m);
        }
        expect(fs.existsSync(dir)).toBe(false);

        const report = JSON.parse(fs.readFileSync(json, "utf8")) as { impact: ImpactTrialResult[]; goals: Array<{ name: string; met: boolean }> };
        expect(report.impact.map((t) => t.mover).sort()).toEqual([...MOVERS].sort());
        for (const t of report.impact) {
            const ctx = `${t.serverVersion} ${t.mover}`;
            expect({ ctx, error: t.error }).toEqual({ ctx, error: undefined });
            expect(t.serverVersion).toBe(VERSION);
            const c = t.client!;
            // Nothing lost: every loaded key and every key the client wrote reads back.
            expect({ ctx, lost: t.keysLost }).toEqual({ ctx, lost: expect.objectContaining({ loaded: 0, client: 0, total: 0, loadedChecked: KEYS }) });
            expect(t.keysLost!.clientChecked).toBeGreaterThan(0);
            // The move moved something, and the figures derive from it.
            expect(t.slotsMoved).toBeGreaterThan(0);
            expect(t.keysMoved).toBeGreaterThan(0);
            expect(t.keysMoved).toBeLessThanOrEqual(KEYS);
            expect(t.keysPerSec).toBeCloseTo(t.keysMoved! / (t.ms! / 1000), 6);
            // Counters add up.
            expect(Object.keys(c.seen).sort()).toEqual([...SEEN_KINDS].sort());
            expect(Object.keys(c.failures).sort()).toEqual([...FAILURE_KINDS].sort());
            expect(c.ok + c.failed).toBe(c.commands);
            expect(sum(c.failures)).toBe(c.failed);
            expect(c.writes.acked + c.writes.failed).toBe(c.writes.issued);
            expect(c.writes.issued).toBeLessThanOrEqual(c.commands);
            expect(c.writes.failed).toBeLessThanOrEqual(c.failed);
            expect(c.latency.samples).toBe(c.commands);
            expect(t.moveLatency!.samples).toBeLessThanOrEqual(c.commands);
            expect(t.moveLatency!.p50Ms).toBeLessThanOrEqual(t.moveLatency!.p99Ms);
            expect(t.moveLatency!.p99Ms).toBeLessThanOrEqual(t.moveLatency!.maxMs);
            expect(t.baselineLatency!.samples).toBeGreaterThan(0);
            expect(t.clientVisibleErrors).toBe(c.failed + c.wrongReads + c.seen.tryagain + c.seen.clusterdown);
            // The client ran through the move (not stalled at start), and the redirect counting
            // works: slots changed owner under its slot cache, so it followed at least one MOVED.
            expect(c.commands).toBeGreaterThan(0.3 * (c.durationMs / 1000) * 1000);
            expect(c.seen.moved).toBeGreaterThan(0);
        }
        expect(report.goals.find((g) => g.name.startsWith("keys lost"))?.met).toBe(true);
    } finally {
        if (fs.existsSync(path.join(dir, "lab.json"))) void Lab.load(dir).stop({ removeData: true });
        fs.rmSync(tmp, { recursive: true, force: true });
    }
}, 300000);

test("the client-impact measurement counts timed-out commands, keeps their writes as possible values, and notices a lost key", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redisforge-client-load-"));
    const lab = await Lab.start({ dir, count: 3 });
    let load: ClientLoad | undefined;
    try {
        await convergeLab(lab, [0, 1, 2], 3, 0);
        const app = lab.clientOptions(0, "app");
        load = new ClientLoad({ seeds: [{ host: app.host, port: app.port }], auth: { username: "app", password: app.password, tls: app.tls }, workers: 2, opsPerSec: 400, keysPerWorker: 20, commandTimeoutMs: 300 });
        const t0 = performance.now();
        await load.start();
        await new Promise((r) => setTimeout(r, 1500));
        const clean = load.window(t0, performance.now());
        expect(clean.commands).toBeGreaterThan(100);
        expect(clean.failed).toBe(0);
        // Writes stall for 1 s on every master: the client's writes time out (300 ms), and
        // are applied when the pause ends: the read-back must accept them.
        const t1 = performance.now();
        await Promise.all([0, 1, 2].map((i) => lab.cli(i, ["CLIENT", "PAUSE", "1000", "WRITE"])));
        await new Promise((r) => setTimeout(r, 2000));
        await load.stop();
        const paused = load.window(t1, performance.now());
        expect(paused.failures.timeout).toBeGreaterThan(0);
        expect(paused.seen.timeout).toBeGreaterThanOrEqual(paused.failures.timeout);
        expect(paused.failed).toBe(Object.values(paused.failures).reduce((a, b) => a + b, 0));
        expect(paused.writes.failed).toBeGreaterThan(0);
        expect(paused.wrongReads).toBe(0);
        expect((await load.verify()).lost).toBe(0);
        // Delete one of the client's keys behind its back: verify counts it as lost.
        const admin = new Redis.Cluster([{ host: app.host, port: app.port }], { redisOptions: { ...lab.clientOptions(0), enableReadyCheck: false } });
        try {
            expect(await admin.del("impact:w0:k0")).toBe(1);
        } finally {
            admin.disconnect();
        }
        const v = await load.verify();
        expect(v.lost).toBe(1);
        expect(v.lostSamples[0]).toMatch(/^impact:w0:k0=null/);
    } finally {
        load?.close();
        await lab.stop({ removeData: true });
    }
}, 120000);
