/**
 * Backups of a local stack and the restore drill, end to end on the real engine and the real entries:
 * a throw-away `local` stack (3 masters x 1 replica, TLS) with 20 000 keys → `npm run backup` to the
 * stack's directory remote and, through the rendered S3 / GCS / Azure remotes, to the three
 * emulators (tests/integration/backup/stores.ts) → `npm run restore-drill` from each: exit 0, every
 * node restored with its id/role/slots, the keys per slot range as recorded, cluster_state ok, the
 * drill metric written and accepted by `promtool check metrics`; the live cluster untouched → planted
 * mismatches: a corrupted file (sha256) and a missing key range (a consistent backup that lost keys)
 * each exit 1 naming the problem; `--at` picks the earlier good backup and passes.
 */
import { execFile, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import Redis from "ioredis";
import { keySlot } from "../integration/redis-cluster/helpers";
import { rcloneSync, startStore, STORE_KINDS, TestStore } from "../integration/backup/stores";
import { RCLONE_REMOTE_NAME } from "../../templates/backup";
import { redisRuntime } from "../../lab/redis-runtime";
import { DRILL_LAST_SUCCESS_METRIC, DRILL_MISMATCHES_METRIC, drillMetricFile } from "../../infra/restore-drill/report";
import { must, PULUMI, ROOT, RunResult, ThrowAwayStack } from "./stack-harness";

jest.setTimeout(900_000);
const runtime = redisRuntime();
const KEYS = 20_000;

if (!PULUMI) console.warn("tests/e2e/restore-drill.test.ts SKIPPED: no pulumi binary; run `bash scripts/install-pulumi.sh`");
const maybe = PULUMI ? describe : describe.skip;

maybe("local-stack backups and the restore drill", () => {
    const st = new ThrowAwayStack({ prefix: "drill", portBase: 16000, config: { "redisforge:redisVersion": runtime.version.split(".").slice(0, 2).join(".") } });
    const stores = new Map<string, TestStore>();
    const textfileDir = path.join(st.tmp, "textfile");
    const figures: string[] = [];
    /** Timestamps of the first backup of every node to the directory remote. */
    let firstDirBackup = "";

    const tsx = path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs");
    function entry(script: string, args: string[], env: Record<string, string> = {}, timeoutMs = 600_000): Promise<RunResult> {
        const start = Date.now();
        return new Promise((resolve) => {
            execFile(process.execPath, [tsx, script, ...args], { cwd: ROOT, env: { ...st.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
                const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
                resolve({ code, stdout: String(stdout), stderr: String(stderr), ms: Date.now() - start });
            });
        });
    }
    const storeArgs = (s: TestStore) => ["--remote", `${RCLONE_REMOTE_NAME}:${s.bucket}`, "--rclone-config", s.rcloneConfig];
    const backup = (s?: TestStore) => entry("infra/cli/index.ts", ["backup", "--stack", st.stack, ...(s ? storeArgs(s) : [])], s?.env);
    const drill = (s?: TestStore, extra: string[] = []) => entry("infra/cli/index.ts", ["restore-drill", "--stack", st.stack, ...(s ? storeArgs(s) : []), "--textfile-dir", textfileDir, ...extra], s?.env);
    const dirStoreRoot = () => path.join(ROOT, ".local-stack", `${st.stack}.backups`);

    /** The live cluster's CLUSTER NODES (without ping/pong times), read as admin from node 0. */
    async function liveState(): Promise<string> {
        const o = await st.outputs();
        const n = (o.nodes as { host: string; port: number }[])[0];
        const dir = o.clientDir as string;
        const c = new Redis({
            host: n.host,
            port: n.port,
            username: "admin",
            password: o.adminPassword as string,
            tls: { ca: fs.readFileSync(path.join(dir, "ca.crt")), cert: fs.readFileSync(path.join(dir, "client.crt")), key: fs.readFileSync(path.join(dir, "client.key")) },
            connectTimeout: 5000,
            maxRetriesPerRequest: 2,
        });
        try {
            const nodes = (await c.call("CLUSTER", "NODES")) as string;
            return nodes
                .trim()
                .split("\n")
                .map((l) => l.split(" ").filter((_, i) => i !== 4 && i !== 5).join(" ")) // without ping/pong times
                .sort()
                .join("\n");
        } finally {
            c.disconnect();
        }
    }

    beforeAll(async () => {
        st.init();
        must(await st.pulumi(["up", "--yes", "--skip-preview"], 480_000), "pulumi up");
        const c = await st.clusterClient();
        try {
            for (let i = 0; i < KEYS; i += 2000) {
                const batch: Promise<unknown>[] = [];
                for (let j = i; j < Math.min(KEYS, i + 2000); j++) batch.push(c.set(`rf:drill:${j}`, `value-${j}`));
                await Promise.all(batch);
            }
            for (const m of c.nodes("master")) await m.call("WAIT", "1", "5000");
        } finally {
            c.disconnect();
        }
        fs.mkdirSync(textfileDir, { recursive: true });
        for (const k of STORE_KINDS) stores.set(k, await startStore(k, path.join(st.tmp, "stores")));
    }, 900_000);

    afterAll(async () => {
        for (const s of stores.values()) await s.stop();
        await st.cleanup();
        fs.rmSync(dirStoreRoot(), { recursive: true, force: true });
    }, 300_000);

    it("npm run backup writes every node to the directory remote, then to S3, GCS and Azure", async () => {
        const r = must(await backup(), "backup to the directory remote");
        expect(r.stdout).toMatch(/6\/6 node\(s\) backed up/);
        firstDirBackup = [...r.stdout.matchAll(/\/(\d{8}T\d{6}Z) \(\d+ ms\)/g)].map((m) => m[1]).sort().pop()!;
        expect(firstDirBackup).toMatch(/^\d{8}T\d{6}Z$/);
        figures.push(`backup directory: ${(r.ms / 1000).toFixed(1)} s for 6 nodes (entry, incl. reading the stack outputs)`);
        for (const k of STORE_KINDS) {
            const s = stores.get(k)!;
            const b = must(await backup(s), `backup to ${k}`);
            expect(b.stdout).toMatch(/6\/6 node\(s\) backed up/);
            const objects = rcloneSync(s.rcloneConfig, s.env, ["lsf", "-R", "--files-only", `${RCLONE_REMOTE_NAME}:${s.bucket}`]).out.trim().split("\n").filter(Boolean);
            figures.push(`backup ${k}: ${(b.ms / 1000).toFixed(1)} s for 6 nodes, ${objects.length} objects`);
        }
    });

    it.each(["directory", ...STORE_KINDS])("restore-drill from %s passes and leaves the live cluster alone", async (k) => {
        const s = k === "directory" ? undefined : stores.get(k)!;
        const before = await liveState();
        const r = await drill(s);
        expect({ code: r.code, out: r.code === 0 ? "" : r.stdout + r.stderr }).toEqual({ code: 0, out: "" });
        expect(r.stdout).toContain("PASSED");
        expect(r.stdout).toMatch(/mismatches: {5}0/);
        expect(r.stdout).toContain(`keys restored:  ${KEYS} (backups recorded ${KEYS})`);
        expect(r.stdout.match(/sha256 ok/g)).toHaveLength(6);
        // the keys per slot range add up, over ranges covering all 16384 slots
        const ranges = [...r.stdout.matchAll(/slots (\d+)(?:-(\d+))? +(\d+) key/g)];
        expect(ranges.reduce((a, m) => a + (Number(m[2] ?? m[1]) - Number(m[1]) + 1), 0)).toBe(16384);
        expect(ranges.reduce((a, m) => a + Number(m[3]), 0)).toBe(KEYS);
        const file = path.join(textfileDir, drillMetricFile(st.stack));
        const text = fs.readFileSync(file, "utf8");
        expect(Number(new RegExp(`^${DRILL_LAST_SUCCESS_METRIC}\\{cluster="${st.stack}"\\} (\\d+)$`, "m").exec(text)?.[1])).toBeGreaterThan(Date.now() / 1000 - 600);
        const check = spawnSync("promtool", ["check", "metrics"], { input: text });
        expect(`${check.stdout}${check.stderr}`).toBe("");
        expect(await liveState()).toBe(before);
        figures.push(`drill ${k}: ${/time: +(.*)/.exec(r.stdout)?.[1]}`);
        if (k === "s3") console.log(`one drill report (S3):\n${r.stdout}`);
    });

    it("a corrupted file: the drill exits 1 naming the file; --at the earlier good backup passes", async () => {
        // a second backup to the directory remote, then one of its files corrupted
        must(await backup(), "second backup to the directory remote");
        const objects = path.join(dirStoreRoot(), "objects", st.stack);
        const node = fs.readdirSync(objects).sort()[0];
        const newest = fs.readdirSync(path.join(objects, node)).sort().pop()!;
        expect(newest > firstDirBackup).toBe(true);
        const aofDir = path.join(objects, node, newest, "appendonlydir");
        const base = fs.readdirSync(aofDir).find((f) => /base/.test(f))!;
        const buf = fs.readFileSync(path.join(aofDir, base));
        buf[Math.floor(buf.length / 2)] ^= 0x01;
        fs.writeFileSync(path.join(aofDir, base), buf);

        const bad = await drill();
        expect(bad.code).toBe(1);
        expect(bad.stdout).toContain("FAILED");
        expect(bad.stdout).toContain(`${node}@${newest}: restore refused`);
        expect(bad.stdout).toContain(`appendonlydir/${base}: sha256 mismatch`);
        const text = fs.readFileSync(path.join(textfileDir, drillMetricFile(st.stack)), "utf8");
        expect(text).toMatch(new RegExp(`^${DRILL_MISMATCHES_METRIC}\\{cluster="${st.stack}"\\} [1-9]`, "m"));
        expect(text).toMatch(new RegExp(`^${DRILL_LAST_SUCCESS_METRIC}\\{`, "m")); // the last success is kept

        const good = await drill(undefined, ["--at", firstDirBackup]);
        expect({ code: good.code, out: good.code === 0 ? "" : good.stdout + good.stderr }).toEqual({ code: 0, out: "" });
        expect(good.stdout).not.toContain(newest);
    });

    it("a missing key range (a consistent backup that lost keys): the drill exits 1 naming the shard and the counts", async () => {
        const s = stores.get("s3")!;
        const rc = (args: string[], input?: Buffer) => rcloneSync(s.rcloneConfig, s.env, args, input);
        const remote = (rel: string) => `${RCLONE_REMOTE_NAME}:${s.bucket}/${st.stack}/${rel}`;
        // a master's newest backup
        const list = rc(["lsf", "-R", "--files-only", "--include", "/*/*/manifest.json", remote("")]).out.trim().split("\n");
        let target: { dir: string; manifest: { role: string; slots: string[]; files: { path: string; size: number; sha256: string }[] } } | undefined;
        for (const rel of list) {
            const m = JSON.parse(rc(["cat", remote(rel)]).stdout.toString());
            if (m.role === "master") {
                target = { dir: path.dirname(rel), manifest: m };
                break;
            }
        }
        expect(target).toBeDefined();
        const [a] = target!.manifest.slots[0].split("-").map(Number);
        // the keys of slots a..a+199 deleted at the end of the AOF; manifest updated to match (consistent, but short)
        const gone: string[] = [];
        for (let j = 0; j < KEYS; j++) {
            const slot = keySlot(`rf:drill:${j}`);
            if (slot >= a && slot < a + 200) gone.push(`rf:drill:${j}`);
        }
        expect(gone.length).toBeGreaterThan(50);
        const incr = target!.manifest.files.filter((f) => /incr\.aof$/.test(f.path)).pop()!;
        const dels = gone.map((k) => `*2\r\n$3\r\nDEL\r\n$${k.length}\r\n${k}\r\n`).join("");
        const body = Buffer.concat([rc(["cat", remote(`${target!.dir}/${incr.path}`)]).stdout, Buffer.from(dels)]);
        expect(rc(["rcat", remote(`${target!.dir}/${incr.path}`)], body).code).toBe(0);
        incr.size = body.length;
        incr.sha256 = createHash("sha256").update(body).digest("hex");
        expect(rc(["rcat", remote(`${target!.dir}/manifest.json`)], Buffer.from(JSON.stringify(target!.manifest))).code).toBe(0);

        const r = await drill(s);
        expect(r.code).toBe(1);
        expect(r.stdout).toContain("FAILED");
        expect(r.stdout).toMatch(new RegExp(`${path.dirname(target!.dir)} \\(slots [^)]*\\): \\d+ key\\(s\\) restored, the backup recorded \\d+`));
        const m = new RegExp(`(\\d+) key\\(s\\) restored, the backup recorded (\\d+)`).exec(r.stdout)!;
        expect(Number(m[2]) - Number(m[1])).toBe(gone.length);
        console.log(`planted mismatch report:\n${r.stdout}`);
    });

    afterAll(() => console.log(`FIGURES restore drill (local stack 3x1, ${KEYS} keys, Redis ${runtime.version}):\n  ${figures.join("\n  ")}`));
});
