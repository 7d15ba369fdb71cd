/**
 * The restore drill: proves that a stack's backups restore into a working cluster, on this
 * machine, without touching the live cluster.
 *
 *   1. list the complete backups (a manifest.json) of every node under <remote>/<cluster>/ and
 *      pick the newest of each (or the newest at or before `at`);
 *   2. read the manifests: they must form one cluster (slots disjoint and complete, replicas of
 *      restored masters);
 *   3. start a throw-away lab of as many redis-server nodes (lab/: same templates, TLS and ACL
 *      users of its own, loopback, free ports), stop it, and restore every node's backup into its
 *      data dir with the operator's own script (templates/backup/redisforge-restore.sh: download,
 *      sha256 of every file against the manifest, redis-check-aof); sha256 is checked again here
 *      on the files in place;
 *   4. re-address every nodes.conf to the lab's ports (nodes not in the drill are dropped: a
 *      restored node never learns a live node's address), start the nodes, wait (bounded) for
 *      cluster_state:ok on every node;
 *   5. compare with the manifests: same node ids, roles, masters and slot ranges; keys per slot
 *      range (CLUSTER COUNTKEYSINSLOT) against the db0 count the backup recorded, and no key
 *      outside the master's slots (DBSIZE = sum over its ranges);
 *   6. stop the lab (by PID) and remove it, unless `keepLab`.
 *
 * Any difference is a mismatch; the caller exits non-zero on any. Every wait is bounded.
 */
import { runScript } from "../backup/run-script";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import Redis from "ioredis";
import { Lab } from "../../lab/lab";
import { compareVersions, runtimeForVersion } from "../../lab/redis-runtime";
import { BackupStore, rcloneOk, runRclone } from "../backup/rclone";
import { BackupManifest, checkManifestSet, completeBackups, LabAddress, parseSlotRanges, pickBackups, rewriteNodesConf, timestampSeconds } from "./select";

const RESTORE_SH = path.resolve(__dirname, "../../templates/backup/redisforge-restore.sh");

export interface DrillOptions {
    /** Cluster name: the first level of the object paths (REDISFORGE_CLUSTER of the nodes). */
    cluster: string;
    /** Where the backups are. */
    store: BackupStore;
    /** Restore the newest backup at or before this timestamp (20261127T051500Z); default the newest. */
    at?: string;
    /** Parent directory of the throw-away lab. Default: the OS temp dir. */
    workDir?: string;
    /** Keep the lab running after the drill (to look around); default false (stopped and removed). */
    keepLab?: boolean;
    /** Bound for cluster_state:ok after the start. Default 60 s. */
    clusterOkTimeoutMs?: number;
    /** Progress lines (default: none). */
    log?: (line: string) => void;
    /** Clock, for tests. */
    now?: () => number;
}

export interface DrillNodeResult {
    node: string;
    timestamp: string;
    role: string;
    nodeId: string;
    files: number;
    bytes: number;
}

export interface SlotRangeCount {
    node: string;
    range: string;
    keys: number;
}

export interface DrillReport {
    cluster: string;
    store: string;
    ok: boolean;
    /** Backups restored, one per node. */
    nodes: DrillNodeResult[];
    /** Seconds between the oldest restored backup and the drill's start. */
    backupAgeSeconds: number;
    /** Keys in the restored cluster (sum over masters). */
    keysRestored: number;
    /** Keys the masters' manifests recorded ([min, max] of before/after), when recorded. */
    keysExpected?: [number, number];
    perSlotRange: SlotRangeCount[];
    /** Download + verify + restore of every node, ms. */
    restoreMs: number;
    /** Start of the restored nodes until cluster_state:ok on every node, ms. */
    clusterOkMs: number;
    totalMs: number;
    mismatches: string[];
    /** Where the lab ran (removed unless keepLab). */
    labDir: string;
}



const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256File = (f: string) => createHash("sha256").update(fs.readFileSync(f)).digest("hex");

/** Runs one drill. Throws only when it cannot run at all (no backups, tools missing); a failed comparison is a report with mismatches. */
export async function runRestoreDrill(o: DrillOptions): Promise<DrillReport> {
    const log = o.log ?? (() => undefined);
    const now = o.now ?? Date.now;
    const t0 = now();
    const mismatches: string[] = [];
    const base = `${o.store.remote.replace(/\/+$/, "")}/${o.cluster}`;

    // 1. the complete backups
    const listing = (await rcloneOk(o.store, ["lsf", "-R", "--files-only", "--include", "/*/*/manifest.json", base])).toString().split("\n").filter(Boolean);
    const complete = completeBackups(listing);
    if (complete.size === 0) throw new Error(`no complete backup (no <node>/<timestamp>/manifest.json) under ${base}; run a backup first (npm run backup -- --stack <stack>)`);
    const { chosen, problems } = pickBackups(complete, o.at);
    if (problems.length) throw new Error(`cannot pick a backup of every node:\n  - ${problems.join("\n  - ")}`);

    // 2. the manifests
    const manifests: BackupManifest[] = [];
    for (const [node, ts] of chosen) {
        const m = JSON.parse((await rcloneOk(o.store, ["cat", `${base}/${node}/${ts}/manifest.json`])).toString()) as BackupManifest;
        if (m.node !== node || m.timestamp !== ts) mismatches.push(`${node}/${ts}/manifest.json names ${m.node}/${m.timestamp}`);
        manifests.push(m);
    }
    const setProblems = checkManifestSet(o.cluster, manifests);
    if (setProblems.length) throw new Error(`the chosen backups do not form one cluster:\n  - ${setProblems.join("\n  - ")}`);
    const oldest = Math.min(...manifests.map((m) => timestampSeconds(m.timestamp)));
    log(`restoring ${manifests.length} node(s) of ${o.cluster} from ${o.store.label ?? o.store.remote}: ${manifests.map((m) => `${m.node}@${m.timestamp}`).join(", ")}`);

    // 3. a throw-away lab, stopped, its state wiped, each node's backup restored into it
    const labDir = fs.mkdtempSync(path.join(o.workDir ?? os.tmpdir(), `redisforge-drill-${o.cluster}-`));
    let lab: Lab | undefined;
    const report: DrillReport = {
        cluster: o.cluster,
        store: o.store.label ?? o.store.remote,
        ok: false,
        nodes: [],
        backupAgeSeconds: Math.max(0, Math.round(t0 / 1000 - oldest)),
        keysRestored: 0,
        perSlotRange: [],
        restoreMs: 0,
        clusterOkMs: 0,
        totalMs: 0,
        mismatches,
        labDir,
    };
    try {
        // A server that reads what the newest node wrote (the AOF base is an RDB of the server's version).
        const newest = manifests.map((m) => m.redis_version).sort(compareVersions).pop()!;
        const rt = runtimeForVersion(newest);
        lab = await Lab.start({ dir: labDir, count: manifests.length, redisServer: rt.server });
        await lab.stop();
        const tRestore = now();
        const env = {
            // that runtime's redis-check-aof (8.6's wrapper dir) first, for the restore script
            PATH: `${rt.binDir ? `${rt.binDir}:` : ""}${process.env.PATH ?? "/usr/bin:/bin"}`,
            HOME: process.env.HOME ?? labDir,
            BACKUP_REMOTE: o.store.remote,
            RCLONE_CONFIG: o.store.rcloneConfig,
            ...o.store.env,
        };
        const addresses = new Map<string, LabAddress>();
        manifests.forEach((m, i) => addresses.set(m.node_id, { host: lab!.nodes[i].host, port: lab!.nodes[i].port, busPort: lab!.nodes[i].busPort }));
        for (const [i, m] of manifests.entries()) {
            const n = lab.nodes[i];
            for (const f of ["nodes.conf", "appendonlydir", "dump.rdb"]) fs.rmSync(path.join(n.dataDir, f), { recursive: true, force: true });
            const r = await runScript(RESTORE_SH, ["--cluster", o.cluster, "--node", m.node, "--timestamp", m.timestamp, "--data-dir", n.dataDir], env, 300_000);
            if (r.code !== 0) {
                const why = r.stderr.split("\n").filter((l) => /ERROR|mismatch|missing|refus/i.test(l)).join(" | ") || r.stderr.trim().slice(-500);
                mismatches.push(`${m.node}@${m.timestamp}: restore refused: ${why}`);
                continue;
            }
            // every file in place again against the manifest (the script checked the downloads)
            let bytes = 0;
            for (const f of m.files) {
                const p = path.join(n.dataDir, f.path);
                if (!fs.existsSync(p)) mismatches.push(`${m.node}@${m.timestamp}: ${f.path} missing after restore`);
                else if (sha256File(p) !== f.sha256) mismatches.push(`${m.node}@${m.timestamp}: ${f.path}: sha256 differs from the manifest`);
                else bytes += f.size;
            }
            const conf = path.join(n.dataDir, "nodes.conf");
            const rw = rewriteNodesConf(fs.readFileSync(conf, "utf8"), addresses);
            if (rw.dropped.length) log(`${m.node}: nodes.conf knew ${rw.dropped.length} node(s) without a backup in this drill (dropped): ${rw.dropped.join(", ")}`);
            fs.writeFileSync(conf, rw.text, { mode: 0o600 });
            report.nodes.push({ node: m.node, timestamp: m.timestamp, role: m.role, nodeId: m.node_id, files: m.files.length, bytes });
        }
        report.restoreMs = now() - tRestore;
        if (mismatches.length) return report;

        // 4. start, wait for cluster_state:ok everywhere
        const tStart = now();
        for (const n of lab.nodes) await lab.startNode(n.index, 60);
        const deadline = now() + (o.clusterOkTimeoutMs ?? 60_000);
        let states: string[] = [];
        for (;;) {
            states = await Promise.all(lab.nodes.map((n) => lab!.cli(n.index, ["CLUSTER", "INFO"]).then((s) => /cluster_state:(\w+)/.exec(s)?.[1] ?? "?").catch((e) => String(e).slice(0, 80))));
            if (states.every((s) => s === "ok")) break;
            if (now() > deadline) {
                mismatches.push(`cluster_state not ok on every node within ${(o.clusterOkTimeoutMs ?? 60_000) / 1000} s: ${states.join(", ")}`);
                return report;
            }
            await sleep(250);
        }
        report.clusterOkMs = now() - tStart;
        log(`cluster_state:ok on ${lab.nodes.length} node(s) after ${report.clusterOkMs} ms`);

        // 5. compare with the manifests
        await compare(lab, manifests, report);
        return report;
    } finally {
        report.totalMs = now() - t0;
        report.ok = report.mismatches.length === 0 && report.nodes.length === manifests.length;
        if (!report.ok && report.mismatches.length === 0) report.mismatches.push("not every node was restored");
        if (lab && !o.keepLab) await lab.stop({ removeData: true });
        else if (!lab) fs.rmSync(labDir, { recursive: true, force: true });
    }
}

async function compare(lab: Lab, manifests: BackupManifest[], report: DrillReport): Promise<void> {
    const mm = report.mismatches;
    const live = new Map<string, { role: string; master: string; slots: string }>();
    for (const line of (await lab.cli(0, ["CLUSTER", "NODES"])).trim().split("\n")) {
        const f = line.trim().split(" ");
        live.set(f[0], { role: /master/.test(f[2]) ? "master" : "replica", master: f[3], slots: f.slice(8).join(" ") });
    }
    let expectedMin = 0;
    let expectedMax = 0;
    let recorded = true;
    for (const [i, m] of manifests.entries()) {
        const myId = (await lab.cli(i, ["CLUSTER", "MYID"])).trim();
        if (myId !== m.node_id) mm.push(`${m.node}: restored node answers as ${myId}, the manifest says ${m.node_id}`);
        const l = live.get(m.node_id);
        if (!l) {
            mm.push(`${m.node}: ${m.node_id} is not in the restored cluster's CLUSTER NODES`);
            continue;
        }
        if (l.role !== m.role) mm.push(`${m.node}: role ${l.role} after restore, ${m.role} in the manifest`);
        if (m.role === "replica" && l.master !== m.master_id) mm.push(`${m.node}: replica of ${l.master} after restore, of ${m.master_id} in the manifest`);
        if (m.role !== "master") continue;
        if (l.slots !== m.slots.join(" ")) mm.push(`${m.node}: slots "${l.slots}" after restore, "${m.slots.join(" ")}" in the manifest`);
        // keys per slot range on the restored master, pipelined over one TLS connection
        const client = new Redis({ ...lab.clientOptions(i), lazyConnect: true, enableOfflineQueue: true, connectTimeout: 5000, commandTimeout: 30000, maxRetriesPerRequest: 1 });
        try {
            await client.connect();
            let sum = 0;
            for (const [a, b] of parseSlotRanges(m.slots)) {
                const pipe = client.pipeline();
                for (let s = a; s <= b; s++) pipe.call("CLUSTER", "COUNTKEYSINSLOT", String(s));
                const res = (await pipe.exec()) ?? [];
                let keys = 0;
                for (const [err, v] of res) {
                    if (err) throw err;
                    keys += Number(v);
                }
                report.perSlotRange.push({ node: m.node, range: a === b ? `${a}` : `${a}-${b}`, keys });
                sum += keys;
            }
            const dbsize = Number(await client.dbsize());
            if (dbsize !== sum) mm.push(`${m.node}: DBSIZE ${dbsize} but ${sum} key(s) in its slot ranges (${dbsize - sum} outside the slots it owns)`);
            report.keysRestored += dbsize;
            if (m.keys) {
                const lo = Math.min(m.keys.before, m.keys.after);
                const hi = Math.max(m.keys.before, m.keys.after);
                expectedMin += lo;
                expectedMax += hi;
                if (sum < lo || sum > hi) mm.push(`${m.node} (slots ${m.slots.join(" ")}): ${sum} key(s) restored, the backup recorded ${lo === hi ? lo : `${lo}-${hi}`}`);
            } else recorded = false;
        } finally {
            client.disconnect();
        }
    }
    if (recorded) report.keysExpected = [expectedMin, expectedMax];
}
