/**
 * Backup and restore of a real lab cluster through a real object store server or emulator, one
 * test file per store (backup-restore-{s3,gcs,azure}.test.ts call backupRestoreSuite):
 * 6 TLS redis-server nodes formed by the cluster executor (3 masters x 1 replica), 20 000 keys,
 * templates/backup/redisforge-backup.sh run for every node against the store through the remote
 * its cloud's VM renders (stores.ts: what is overridden and how the identity is supplied), the
 * never-delete promise checked with the backup's own credentials, then every node stopped, its
 * Redis state wiped, restored with
 * redisforge-restore.sh and started again: same node ids, same slot map, cluster_state:ok, every
 * key reads back. Then the refusals: a non-empty data dir without --force, a flipped byte
 * (sha256 mismatch), a consistent manifest over a corrupt AOF (redis-check-aof), and a backup of a
 * node whose redis is down (fails, metric untouched).
 */
import { spawn } from "child_process";
import { runScript as runScriptWith } from "../../../infra/backup/run-script";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Lab } from "../../../lab/lab";
import { converge } from "../../../providers/redis-cluster/executor";
import { RCLONE_REMOTE_NAME } from "../../../templates/backup";
import { clusterInfo, labCreds, labSpec, loadKeys, startLab, verifyKeys } from "../redis-cluster/helpers";
import { rcloneSync, startStore, StoreKind, TestStore } from "./stores";

export function backupRestoreSuite(kind: StoreKind): void {
    jest.setTimeout(300000);

    const BACKUP_SH = path.resolve(__dirname, "../../../templates/backup/redisforge-backup.sh");
    const RESTORE_SH = path.resolve(__dirname, "../../../templates/backup/redisforge-restore.sh");
    let CONTAINER = "";
    const CLUSTER = "lab";
    const KEYS = 20000;
    const METRIC = "redisforge_backup_last_success_timestamp_seconds";

    const root = fs.mkdtempSync(path.join(os.tmpdir(), `redisforge-backup-${kind}-`));
    let lab: Lab | undefined;
    let store: TestStore | undefined;
    /** Figures printed at the end: backup of every node, restore of every node, objects. */
    const figures = { backupMs: 0, restoreMs: 0, okMs: 0, objects: 0, bytes: 0 };
    const rclone = (args: string[], env: Record<string, string>, input?: Buffer) => rcloneSync(rcloneConf, env, args, input);
    let rcloneConf = "";
    let rcloneEnv: Record<string, string> = {};
    let passwordFile = "";
    /** Timestamp of the backup taken in the first test, per node index. */
    const taken = new Map<number, string>();

    interface Run {
        code: number | null;
        stdout: string;
        stderr: string;
    }

    function runScript(script: string, args: string[], env: Record<string, string>, timeoutMs = 90000): Promise<Run> {
        return runScriptWith(script, args, { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root, ...rcloneEnv, ...env }, timeoutMs);
    }

    const textfileDir = (i: number) => path.join(root, "textfile", `node${i}`);
    const metricFile = (i: number) => path.join(textfileDir(i), "redisforge_backup.prom");

    function backupEnv(i: number): Record<string, string> {
        const n = lab!.nodes[i];
        return {
            REDISFORGE_CLUSTER: CLUSTER,
            REDISFORGE_NODE: n.name,
            BACKUP_REMOTE: `${RCLONE_REMOTE_NAME}:${CONTAINER}`,
            RCLONE_CONFIG: rcloneConf,
            REDIS_DATA_DIR: n.dataDir,
            REDIS_HOST: n.host,
            REDIS_PORT: String(n.port),
            REDIS_TLS_CA: lab!.tls.caFile,
            REDIS_TLS_CERT: lab!.tls.clientCertFile,
            REDIS_TLS_KEY: lab!.tls.clientKeyFile,
            REDIS_USER: "exporter",
            REDIS_PASSWORD_FILE: passwordFile,
            TEXTFILE_DIR: textfileDir(i),
        };
    }

    function restoreEnv(): Record<string, string> {
        return { BACKUP_REMOTE: `${RCLONE_REMOTE_NAME}:${CONTAINER}`, RCLONE_CONFIG: rcloneConf };
    }

    const remote = (rel: string) => `${RCLONE_REMOTE_NAME}:${CONTAINER}/${rel}`;
    const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

    function rcloneCat(rel: string): Buffer {
        const r = rclone(["cat", remote(rel)], rcloneEnv);
        if (r.code !== 0) throw new Error(`rclone cat ${rel}: ${r.out}`);
        return r.stdout;
    }

    interface Manifest {
        format: number;
        cluster: string;
        node: string;
        timestamp: string;
        redis_version: string;
        node_id: string;
        role: string;
        master_id: string | null;
        slots: string[];
        /** db0 keys before and after the copy. */
        keys?: { before: number; after: number };
        files: { path: string; size: number; sha256: string }[];
    }

    /** node id, role, master id and slot ranges of every node, from CLUSTER NODES of node `via`. */
    async function topology(via: number): Promise<Map<string, { addr: string; role: string; master: string; slots: string }>> {
        const out = await lab!.cli(via, ["CLUSTER", "NODES"]);
        const m = new Map<string, { addr: string; role: string; master: string; slots: string }>();
        for (const line of out.trim().split("\n")) {
            const f = line.trim().split(" ");
            m.set(f[0], { addr: f[1].split("@")[0], role: /master/.test(f[2]) ? "master" : "replica", master: f[3], slots: f.slice(8).join(" ") });
        }
        return m;
    }

    async function waitClusterOk(timeoutMs: number): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        let last = "";
        while (Date.now() < deadline) {
            const states = await Promise.all(lab!.nodes.map((n) => clusterInfo(lab!, n.index).then((i) => i.cluster_state).catch((e) => String(e))));
            if (states.every((s) => s === "ok")) return;
            last = states.join(",");
            await new Promise((r) => setTimeout(r, 250));
        }
        throw new Error(`cluster_state not ok on every node within ${timeoutMs} ms: ${last}`);
    }

    beforeAll(async () => {
        // The store with its bucket (created by the deployer's identity) and the VM's view of it.
        store = await startStore(kind, root);
        rcloneEnv = store.env;
        rcloneConf = store.rcloneConfig;
        CONTAINER = store.bucket;

        lab = await startLab("backup", 6);
        const status = (await converge(labSpec(lab, [0, 1, 2, 3, 4, 5], 3, 1), labCreds(lab))) as { state: string };
        expect(status.state).toBe("ok");
        await loadKeys(lab, 0, KEYS);
        expect(await verifyKeys(lab, 0, KEYS)).toEqual([]);
        // replicas caught up before their backups (WAIT on each master)
        for (const n of lab.nodes) {
            if (/role:master/.test(await lab.cli(n.index, ["INFO", "replication"]))) await lab.cli(n.index, ["WAIT", "1", "5000"]);
        }
        passwordFile = path.join(root, "exporter.env");
        fs.writeFileSync(passwordFile, `REDIS_PASSWORD=${lab.password("exporter")}\n`, { mode: 0o600 });
        for (const n of lab.nodes) fs.mkdirSync(textfileDir(n.index), { recursive: true });
    }, 180000);

    afterAll(async () => {
        await lab?.stop({ removeData: true });
        await store?.stop();
        fs.rmSync(root, { recursive: true, force: true });
    });

    describe("backup of every node of a live cluster", () => {
        it("uploads AOF + nodes.conf with a manifest that matches the node, and publishes the metric", async () => {
            const topo = await topology(0);
            const perNode: string[] = [];
            for (const n of lab!.nodes) {
                const before = Math.floor(Date.now() / 1000);
                const t0 = Date.now();
                const r = await runScript(BACKUP_SH, [], backupEnv(n.index));
                const ms = Date.now() - t0;
                figures.backupMs += ms;
                expect({ node: n.name, code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ node: n.name, code: 0, stderr: "" });
                const dest = r.stdout.trim();
                const m = /\/([0-9]{8}T[0-9]{6}Z)$/.exec(dest);
                expect(m).not.toBeNull();
                const ts = m![1];
                taken.set(n.index, ts);
                expect(dest).toBe(remote(`${CLUSTER}/${n.name}/${ts}`));

                // the objects
                const list = rclone(["lsf", "-R", "--files-only", remote(`${CLUSTER}/${n.name}/${ts}`)], rcloneEnv);
                expect(list.code).toBe(0);
                const objects = list.out.trim().split("\n").sort();
                expect(objects).toContain("manifest.json");
                expect(objects).toContain("nodes.conf");
                expect(objects).toContain("appendonlydir/appendonly.aof.manifest");
                expect(objects.some((o) => /^appendonlydir\/appendonly\.aof\.\d+\.base\.(rdb|aof)$/.test(o))).toBe(true);
                expect(objects.some((o) => /^appendonlydir\/appendonly\.aof\.\d+\.incr\.aof$/.test(o))).toBe(true);

                // the manifest agrees with the live node and with the uploaded bytes
                const manifest = JSON.parse(rcloneCat(`${CLUSTER}/${n.name}/${ts}/manifest.json`).toString()) as Manifest;
                const myId = (await lab!.cli(n.index, ["CLUSTER", "MYID"])).trim();
                expect(manifest).toMatchObject({ format: 1, cluster: CLUSTER, node: n.name, timestamp: ts, node_id: myId, redis_version: lab!.state.serverVersion });
                const live = topo.get(myId)!;
                expect(manifest.role).toBe(live.role);
                expect(manifest.slots.join(" ")).toBe(live.slots);
                if (live.role === "replica") expect(manifest.master_id).toBe(live.master);
                expect(manifest.files.map((f) => f.path).sort()).toEqual(objects.filter((o) => o !== "manifest.json"));
                figures.objects += objects.length;
                figures.bytes += manifest.files.reduce((a, f) => a + f.size, 0);
                // nothing writes during this backup: both counts are the node's DBSIZE
                const dbsize = Number((await lab!.cli(n.index, ["DBSIZE"])).trim());
                expect(manifest.keys).toEqual({ before: dbsize, after: dbsize });
                perNode.push(`${n.name} ${manifest.role} ${(manifest.files.reduce((a, f) => a + f.size, 0) / 1024).toFixed(0)} KiB in ${ms} ms`);
                for (const f of manifest.files) {
                    const body = rcloneCat(`${CLUSTER}/${n.name}/${ts}/${f.path}`);
                    expect({ path: f.path, size: body.length, sha256: sha256(body) }).toEqual({ path: f.path, size: f.size, sha256: f.sha256 });
                }

                // the metric, in the contract's format, validated by promtool
                const text = fs.readFileSync(metricFile(n.index), "utf8");
                const value = Number(new RegExp(`^${METRIC} (\\S+)$`, "m").exec(text)?.[1]);
                expect(value).toBeGreaterThanOrEqual(before);
                expect(value).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
                expect(text).toContain(`# TYPE ${METRIC} gauge`);
                expect(fs.readdirSync(textfileDir(n.index))).toEqual(["redisforge_backup.prom"]); // no .tmp left behind
                const check = await new Promise<Run>((resolve) => {
                    const p = spawn("promtool", ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
                    let stdout = "";
                    let stderr = "";
                    p.stdout.on("data", (d) => (stdout += d));
                    p.stderr.on("data", (d) => (stderr += d));
                    p.on("close", (code) => resolve({ code, stdout, stderr }));
                    p.stdin.end(text);
                });
                expect(check.stdout + check.stderr).toBe("");
                expect(check.code).toBe(0);
            }
            console.log(`${store!.label}: backup per node (6 nodes, ${KEYS} keys): ${perNode.join("; ")}; ${await store!.authEvidence()}`);
            // the staging dirs are cleaned up
            for (const n of lab!.nodes) expect(fs.readdirSync(path.join(n.dataDir, ".redisforge-backup"))).toEqual([".lock"]);
        });
    });

    describe("never delete", () => {
        const title = kind === "gcs"
            ? "the backup's credentials can write, read and list; the emulator has no IAM, so a delete is NOT refused here (stated, not proven)"
            : "the backup's credentials can write, read and list, and a delete fails (the object stays)";
        it(title, async () => {
            const ts = taken.get(1)!;
            const obj = `${CLUSTER}/node1/${ts}/nodes.conf`;
            const probe = `${CLUSTER}/never-delete-probe/${Date.now()}.txt`;
            expect(rclone(["rcat", remote(probe)], rcloneEnv, Buffer.from("write")).code).toBe(0); // write
            expect(rcloneCat(probe).toString()).toBe("write"); // read
            expect(rclone(["lsf", remote(`${CLUSTER}/node1/${ts}`)], rcloneEnv).out).toContain("nodes.conf"); // list
            const before = rcloneCat(obj);
            const del = rclone(["deletefile", remote(obj)], rcloneEnv);
            if (!store!.enforcesNoDelete) {
                // fake-gcs-server has no IAM: the delete goes through. Stated, not hidden: on GCS the
                // promise rests on the role binding (roles/storage.objectCreator + objectViewer).
                console.log(`${store!.label}: never-delete NOT provable here (no IAM in the emulator): delete exit ${del.code}`);
                expect(del.code).toBe(0);
                // put the object back (same bytes) for the restore that follows
                expect(rclone(["rcat", remote(obj)], rcloneEnv, before).code).toBe(0);
                return;
            }
            expect(del.code).not.toBe(0);
            expect(del.out).toMatch(/AccessDenied|403|AuthorizationPermissionMismatch|not authorized/i);
            expect(rclone(["lsf", remote(`${CLUSTER}/node1/${ts}`)], rcloneEnv).out).toContain("nodes.conf");
            console.log(`${store!.label}: never-delete: write/read/list ok, delete refused (${/AccessDenied|AuthorizationPermissionMismatch|403/.exec(del.out)?.[0]})`);
        });
    });

    describe("whole-cluster restore", () => {
        it("wipes every node, restores all of them and gets the same cluster and every key back", async () => {
            const topoBefore = await topology(0);
            const ids = await Promise.all(lab!.nodes.map(async (n) => (await lab!.cli(n.index, ["CLUSTER", "MYID"])).trim()));

            // An incomplete upload (no manifest.json) newer than the real backup: `latest` must skip it.
            const partial = rclone(["copyto", path.join(lab!.nodes[1].dataDir, "nodes.conf"), remote(`${CLUSTER}/node1/29991231T235959Z/nodes.conf`)], rcloneEnv);
            expect(partial.code).toBe(0);

            // --list shows complete backups only
            const list = await runScript(RESTORE_SH, ["--cluster", CLUSTER, "--node", "node1", "--list"], restoreEnv());
            expect(list.code).toBe(0);
            expect(list.stdout.trim().split("\n")).toEqual([taken.get(1)]);

            await lab!.stop();
            for (const n of lab!.nodes) {
                // everything redis-server wrote (replicas also keep the dump.rdb of their last full sync)
                fs.rmSync(path.join(n.dataDir, "nodes.conf"));
                fs.rmSync(path.join(n.dataDir, "appendonlydir"), { recursive: true });
                fs.rmSync(path.join(n.dataDir, "dump.rdb"), { force: true });
            }
            const t0 = Date.now();
            for (const n of lab!.nodes) {
                const r = await runScript(RESTORE_SH, ["--cluster", CLUSTER, "--node", n.name, "--data-dir", n.dataDir], restoreEnv());
                expect({ node: n.name, code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ node: n.name, code: 0, stderr: "" });
                expect(r.stdout.trim()).toBe(taken.get(n.index));
                const st = fs.statSync(path.join(n.dataDir, "nodes.conf"));
                expect(st.mode & 0o777).toBe(0o600);
                expect(st.uid).toBe(os.userInfo().uid);
                expect(fs.statSync(path.join(n.dataDir, "appendonlydir")).mode & 0o777).toBe(0o700);
                expect(fs.readdirSync(n.dataDir).filter((f) => f.startsWith(".redisforge-restore"))).toEqual([]);
            }
            const restoreMs = Date.now() - t0;
            figures.restoreMs = restoreMs;
            for (const n of lab!.nodes) await lab!.startNode(n.index, 30);
            await waitClusterOk(30000);
            figures.okMs = Date.now() - t0 - restoreMs;
            console.log(`${store!.label}: restore of 6 nodes: ${restoreMs} ms; start to cluster_state:ok on every node: ${figures.okMs} ms`);

            expect(await Promise.all(lab!.nodes.map(async (n) => (await lab!.cli(n.index, ["CLUSTER", "MYID"])).trim()))).toEqual(ids);
            const topoAfter = await topology(0);
            const slotMap = (t: typeof topoBefore) => [...t].filter(([, v]) => v.role === "master").map(([id, v]) => `${id} ${v.addr} ${v.slots}`).sort();
            expect(slotMap(topoAfter)).toEqual(slotMap(topoBefore));
            expect(await verifyKeys(lab!, 0, KEYS)).toEqual([]);
            let total = 0;
            for (const [id, v] of topoAfter) {
                if (v.role !== "master") continue;
                const i = ids.indexOf(id);
                total += Number((await lab!.cli(i, ["DBSIZE"])).trim());
            }
            expect(total).toBe(KEYS);
            console.log(
                `FIGURES ${kind}: ${store!.label}: ${KEYS} keys, 6 nodes, ${figures.objects} objects (${(figures.bytes / 1024).toFixed(0)} KiB): ` +
                    `backup ${(figures.backupMs / 1000).toFixed(1)} s (sum over nodes), restore ${(figures.restoreMs / 1000).toFixed(1)} s, start to cluster_state:ok ${(figures.okMs / 1000).toFixed(1)} s`,
            );
        });
    });

    describe("refusals", () => {
        it("restore refuses a data dir that holds Redis state unless --force, and changes nothing", async () => {
            const n = lab!.nodes[2];
            const before = fs.readFileSync(path.join(n.dataDir, "nodes.conf"));
            const r = await runScript(RESTORE_SH, ["--cluster", CLUSTER, "--node", n.name, "--data-dir", n.dataDir], restoreEnv());
            expect(r.code).not.toBe(0);
            expect(r.stderr).toMatch(/data dir .* is not empty \(holds: nodes\.conf appendonlydir/);
            expect(r.stderr).toMatch(/--force/);
            expect(fs.readFileSync(path.join(n.dataDir, "nodes.conf"))).toEqual(before);
        });

        it("restore refuses a backup with a flipped byte (sha256 mismatch) and leaves the data dir empty", async () => {
            const ts = taken.get(0)!;
            const m = JSON.parse(rcloneCat(`${CLUSTER}/node0/${ts}/manifest.json`).toString()) as Manifest;
            const base = m.files.find((f) => /base/.test(f.path))!;
            const body = rcloneCat(`${CLUSTER}/node0/${ts}/${base.path}`);
            body[Math.floor(body.length / 2)] ^= 0x01;
            expect(rclone(["rcat", remote(`${CLUSTER}/node0/${ts}/${base.path}`)], rcloneEnv, body).code).toBe(0);

            const scratch = fs.mkdtempSync(path.join(root, "scratch-"));
            const r = await runScript(RESTORE_SH, ["--cluster", CLUSTER, "--node", "node0", "--timestamp", ts, "--data-dir", scratch], restoreEnv());
            expect(r.code).not.toBe(0);
            expect(r.stderr).toContain(`${base.path}: sha256 mismatch`);
            expect(fs.readdirSync(scratch)).toEqual([]);
        });

        it("restore refuses a manifest-consistent but corrupt AOF (redis-check-aof)", async () => {
            const ts = taken.get(3)!;
            const dir = `${CLUSTER}/node3/${ts}`;
            const m = JSON.parse(rcloneCat(`${dir}/manifest.json`).toString()) as Manifest;
            const incr = m.files.find((f) => /incr\.aof$/.test(f.path))!;
            const bad = Buffer.concat([rcloneCat(`${dir}/${incr.path}`), Buffer.from("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$99\r\nshort\r\n*1\r\n")]);
            expect(rclone(["rcat", remote(`${dir}/${incr.path}`)], rcloneEnv, bad).code).toBe(0);
            const f = m.files.find((x) => x.path === incr.path)!;
            f.sha256 = sha256(bad);
            f.size = bad.length;
            expect(rclone(["rcat", remote(`${dir}/manifest.json`)], rcloneEnv, Buffer.from(JSON.stringify(m))).code).toBe(0);

            const scratch = fs.mkdtempSync(path.join(root, "scratch-"));
            const r = await runScript(RESTORE_SH, ["--cluster", CLUSTER, "--node", "node3", "--timestamp", ts, "--data-dir", scratch], restoreEnv());
            expect(r.code).not.toBe(0);
            expect(r.stderr).toMatch(/redis-check-aof rejects the AOF/);
            expect(fs.readdirSync(scratch)).toEqual([]);
        });

        it("restore --force moves the current state aside and puts the backup in place", async () => {
            const n = lab!.nodes[4];
            const ts = taken.get(4)!;
            await lab!.killNode(4);
            const r = await runScript(RESTORE_SH, ["--cluster", CLUSTER, "--node", n.name, "--data-dir", n.dataDir, "--timestamp", ts, "--force"], restoreEnv());
            expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" });
            const aside = fs.readdirSync(n.dataDir).filter((f) => f.startsWith(".pre-restore-"));
            expect(aside).toHaveLength(1);
            expect(fs.readdirSync(path.join(n.dataDir, aside[0]))).toEqual(expect.arrayContaining(["appendonlydir", "nodes.conf"]));
            expect(fs.readdirSync(path.join(n.dataDir, "appendonlydir")).sort()).toEqual(
                (JSON.parse(rcloneCat(`${CLUSTER}/${n.name}/${ts}/manifest.json`).toString()) as Manifest).files
                    .filter((f) => f.path.startsWith("appendonlydir/"))
                    .map((f) => f.path.slice("appendonlydir/".length))
                    .sort(),
            );
            await lab!.startNode(4, 30);
            await waitClusterOk(30000);
        });

        it("backup of a node whose redis is down fails loudly and leaves the metric as it was", async () => {
            const i = 5;
            const before = fs.readFileSync(metricFile(i), "utf8");
            const mtime = fs.statSync(metricFile(i)).mtimeMs;
            const listBefore = rclone(["lsf", "--dirs-only", remote(`${CLUSTER}/node5`)], rcloneEnv).out;
            await lab!.killNode(i);
            await new Promise((r) => setTimeout(r, 1100)); // a new run would get a new timestamp
            const r = await runScript(BACKUP_SH, [], backupEnv(i));
            expect(r.code).not.toBe(0);
            expect(r.stderr).toMatch(/ERROR: redis at 127\.0\.0\.1:\d+ did not answer INFO server as user exporter/);
            expect(fs.readFileSync(metricFile(i), "utf8")).toBe(before);
            expect(fs.statSync(metricFile(i)).mtimeMs).toBe(mtime);
            expect(rclone(["lsf", "--dirs-only", remote(`${CLUSTER}/node5`)], rcloneEnv).out).toBe(listBefore);
        });
    });

    describe("a node with a slot being migrated", () => {
        it("is not backed up (the copy would not match one slot map) and the metric stays", async () => {
            const topo = await topology(0);
            // a live master (node5 was killed above); node0 is kept for the next test
            let i = -1;
            for (const n of lab!.nodes.slice(1, 5)) {
                if (/role:master/.test(await lab!.cli(n.index, ["INFO", "replication"]))) {
                    i = n.index;
                    break;
                }
            }
            expect(i).toBeGreaterThan(0);
            const myId = (await lab!.cli(i, ["CLUSTER", "MYID"])).trim();
            const me = topo.get(myId)!;
            expect(me.role).toBe("master");
            const slot = Number(me.slots.split(" ")[0].split("-")[0]);
            const other = [...topo].find(([id, v]) => v.role === "master" && id !== myId)![0];
            const before = fs.readFileSync(metricFile(i), "utf8");
            await lab!.cli(i, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", other]);
            try {
                const r = await runScript(BACKUP_SH, [], backupEnv(i));
                expect(r.code).not.toBe(0);
                expect(r.stderr).toContain(`slot [${slot}->-${other}] is being migrated/imported`);
                expect(fs.readFileSync(metricFile(i), "utf8")).toBe(before);
            } finally {
                await lab!.cli(i, ["CLUSTER", "SETSLOT", String(slot), "STABLE"]);
            }
        });
    });

    describe("a copy that ends inside a command", () => {
        it("is trimmed in the staging copy only; the upload is the last complete command, the live file untouched", async () => {
            const n = lab!.nodes[0];
            const aofDir = path.join(n.dataDir, "appendonlydir");
            const liveManifest = fs.readFileSync(path.join(aofDir, "appendonly.aof.manifest"), "utf8");
            const lastIncr = [...liveManifest.matchAll(/^file (\S+) seq \d+ type i$/gm)].map((m) => m[1]).pop()!;
            expect(lastIncr).toBeDefined();
            const liveFile = path.join(aofDir, lastIncr);
            const original = fs.readFileSync(liveFile);
            // What a copy taken while redis-server appends a command can end with: half a command.
            const half = Buffer.from("*3\r\n$3\r\nSET\r\n$3\r\nabc\r\n$10\r\nhal");
            fs.appendFileSync(liveFile, half);

            const r = await runScript(BACKUP_SH, [], backupEnv(0));
            expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" });
            expect(r.stderr).toContain(`trimmed ${half.length} byte(s) from the staging copy`);
            const ts = /\/([0-9]{8}T[0-9]{6}Z)$/.exec(r.stdout.trim())![1];
            const m = JSON.parse(rcloneCat(`${CLUSTER}/${n.name}/${ts}/manifest.json`).toString()) as Manifest & { trimmed_tail_bytes: number };
            expect(m.trimmed_tail_bytes).toBe(half.length);
            expect(rcloneCat(`${CLUSTER}/${n.name}/${ts}/appendonlydir/${lastIncr}`).equals(original)).toBe(true);
            expect(fs.readFileSync(liveFile).equals(Buffer.concat([original, half]))).toBe(true);
        });
    });
}
