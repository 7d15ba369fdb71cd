/**
 * The restore drill's pure parts (infra/restore-drill/select.ts) in tables, its report and its
 * metric file (accepted by `promtool check metrics`, the last success kept across a failed drill),
 * and the alert rules that read the metric name the drill writes.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { DrillReport } from "../../../infra/restore-drill/drill";
import { DRILL_LAST_SUCCESS_METRIC, DRILL_MISMATCHES_METRIC, drillMetricFile, formatReport, renderDrillMetrics, writeDrillMetrics } from "../../../infra/restore-drill/report";
import { BackupManifest, checkManifestSet, completeBackups, normalizeTimestamp, pickBackups, rewriteNodesConf, timestampSeconds } from "../../../infra/restore-drill/select";
import { ALERTS } from "../../../monitoring/prometheus/rules";

const id = (c: string) => c.repeat(40);

function manifest(node: string, role: "master" | "replica", nodeId: string, slots: string[], masterId: string | null = null): BackupManifest {
    return { format: 1, cluster: "prod", node, timestamp: "20261127T051500Z", redis_version: "7.0.15", node_id: nodeId, role, master_id: masterId, slots, files: [] };
}

const THREE_BY_ONE = [
    manifest("n0", "master", id("a"), ["0-5460"]),
    manifest("n1", "master", id("b"), ["5461-10922"]),
    manifest("n2", "master", id("c"), ["10923-16383"]),
    manifest("n3", "replica", id("d"), [], id("a")),
    manifest("n4", "replica", id("e"), [], id("b")),
    manifest("n5", "replica", id("f"), [], id("c")),
];

describe("choosing backups", () => {
    const listing = [
        "n0/20261127T050000Z/manifest.json",
        "n0/20261127T050000Z/nodes.conf",
        "n0/20261127T051500Z/manifest.json",
        "n0/20261127T053000Z/nodes.conf", // incomplete: no manifest
        "n1/20261127T050100Z/manifest.json",
        "n1/20261127T051600Z/manifest.json",
        "junk.txt",
    ];

    test("only timestamps with a manifest.json count, oldest first", () => {
        expect(Object.fromEntries(completeBackups(listing))).toEqual({ n0: ["20261127T050000Z", "20261127T051500Z"], n1: ["20261127T050100Z", "20261127T051600Z"] });
    });

    test.each([
        [undefined, { n0: "20261127T051500Z", n1: "20261127T051600Z" }],
        ["20261127T051500Z", { n0: "20261127T051500Z", n1: "20261127T050100Z" }],
        ["20261127T050100Z", { n0: "20261127T050000Z", n1: "20261127T050100Z" }],
    ])("at %s: the newest at or before it per node", (at, expected) => {
        const r = pickBackups(completeBackups(listing), at);
        expect(r.problems).toEqual([]);
        expect(Object.fromEntries(r.chosen)).toEqual(expected);
    });

    test("a node with nothing old enough is a problem naming the node, its oldest backup and the fix", () => {
        const r = pickBackups(completeBackups(listing), "20261127T050030Z");
        expect(r.problems).toEqual(["n1: no complete backup at or before 20261127T050030Z (oldest: 20261127T050100Z); pick a later --at"]);
    });

    test.each([
        ["20261127T051500Z", "20261127T051500Z"],
        ["2026-11-27T05:15:00Z", "20261127T051500Z"],
        ["2026-11-27T05:15Z", "20261127T051500Z"],
    ])("--at %s means %s", (given, want) => expect(normalizeTimestamp(given)).toBe(want));

    test.each(["yesterday", "2026-11-27 05:15", "20261127"])("--at %s is refused with the accepted forms", (bad) => {
        expect(() => normalizeTimestamp(bad)).toThrow(/use the form 20261127T051500Z .* or 2026-11-27T05:15:00Z/);
    });

    test("timestamps are UTC seconds", () => expect(timestampSeconds("20261127T051500Z")).toBe(Date.UTC(2026, 10, 27, 5, 15, 0) / 1000));
});

describe("do the manifests form one cluster", () => {
    test("3 masters covering 16384 slots and their replicas: yes", () => expect(checkManifestSet("prod", THREE_BY_ONE)).toEqual([]));

    test.each<[string, BackupManifest[], RegExp]>([
        ["a master's backup missing", THREE_BY_ONE.filter((m) => m.node !== "n2" && m.node !== "n5"), /5461 slot\(s\) are in no master's backup \(first: 10923\)/],
        ["two masters claim a slot (both sides of a failover)", [...THREE_BY_ONE.slice(0, 3), manifest("n3", "master", id("d"), ["0-10"])], /slot 0 is claimed by both n0 and n3 .*--at/],
        ["a replica of a master not restored", [...THREE_BY_ONE.slice(0, 3), manifest("n3", "replica", id("d"), [], id("9"))], /n3\/20261127T051500Z: replica of 9{40}, which is not a restored master/],
        ["another cluster's manifest", [...THREE_BY_ONE.slice(1), { ...THREE_BY_ONE[0], cluster: "staging" }], /n0\/20261127T051500Z: manifest names cluster staging, not prod/],
        ["a duplicate node id", [...THREE_BY_ONE, manifest("n6", "replica", id("a"), [], id("b"))], /n6 and n0 have the same node id/],
        ["a bad slot range", [manifest("n0", "master", id("a"), ["0-5460", "x"]), ...THREE_BY_ONE.slice(1)], /slot range "x" is not <n> or <n>-<m>/],
    ])("%s: no", (_what, set, re) => {
        expect(checkManifestSet("prod", set).join("\n")).toMatch(re);
    });
});

describe("nodes.conf re-addressed for the lab", () => {
    const addr = new Map([
        [id("a"), { host: "127.0.0.1", port: 41001, busPort: 51001 }],
        [id("b"), { host: "127.0.0.1", port: 41002, busPort: 51002 }],
    ]);

    test("Redis 7.0 lines: address replaced, flags/slots kept, an unknown node dropped, vars kept", () => {
        const conf = [
            `${id("a")} 10.0.1.5:6379@16379 myself,master - 0 0 1 connected 0-8191`,
            `${id("b")} 10.0.2.7:6379@16379,prod-redis-node1 slave ${id("a")} 0 1700000000000 1 connected`,
            `${id("c")} 10.0.3.9:6379@16379 master - 0 1700000000000 2 connected 8192-16383`,
            "vars currentEpoch 2 lastVoteEpoch 0",
            "",
        ].join("\n");
        const r = rewriteNodesConf(conf, addr);
        expect(r.dropped).toEqual([id("c")]);
        expect(r.text.split("\n")).toEqual([
            `${id("a")} 127.0.0.1:41001@51001 myself,master - 0 0 1 connected 0-8191`,
            `${id("b")} 127.0.0.1:41002@51002,prod-redis-node1 slave ${id("a")} 0 1700000000000 1 connected`,
            "vars currentEpoch 2 lastVoteEpoch 0",
            "",
        ]);
        expect(r.text).not.toContain("10.0.");
    });

    test("Redis 7.2+ aux fields: port 0 (plaintext off) stays 0, tls-port is the lab port, shard-id kept", () => {
        const conf = `${id("a")} 10.0.1.5:0@16379,,tls-port=6379,shard-id=${id("9")} myself,master - 0 0 1 connected 0-16383\n`;
        const r = rewriteNodesConf(conf, addr);
        expect(r.text).toBe(`${id("a")} 127.0.0.1:0@51001,,tls-port=41001,shard-id=${id("9")} myself,master - 0 0 1 connected 0-16383\n`);
    });

    test("an address that is not ip:port@bus is refused, naming the node", () => {
        expect(() => rewriteNodesConf(`${id("a")} garbage myself,master - 0 0 1 connected\n`, addr)).toThrow(new RegExp(`nodes.conf line of ${id("a")}: address garbage`));
    });
});

describe("report and metric file", () => {
    const report = (mismatches: string[]): DrillReport => ({
        cluster: "prod",
        store: "redisforge:prod-backups",
        ok: mismatches.length === 0,
        nodes: [{ node: "n0", timestamp: "20261127T051500Z", role: "master", nodeId: id("a"), files: 5, bytes: 250_000 }],
        backupAgeSeconds: 5400,
        keysRestored: 20000,
        keysExpected: [20000, 20000],
        perSlotRange: [{ node: "n0", range: "0-16383", keys: 20000 }],
        restoreMs: 9000,
        clusterOkMs: 2600,
        totalMs: 15000,
        mismatches,
        labDir: "/tmp/x",
    });

    test("the report names the verdict, the age, the keys and every mismatch", () => {
        const ok = formatReport(report([]));
        expect(ok).toMatch(/^restore drill of cluster prod from redisforge:prod-backups: PASSED/);
        expect(ok).toContain("oldest is 1.5 h old");
        expect(ok).toContain("keys restored:  20000 (backups recorded 20000)");
        expect(ok).toContain("mismatches:     0");
        const bad = formatReport(report(["n0@20261127T051500Z: restore refused: appendonlydir/x: sha256 mismatch"]));
        expect(bad).toContain("FAILED");
        expect(bad).toContain("    - n0@20261127T051500Z: restore refused: appendonlydir/x: sha256 mismatch");
    });

    test("promtool check metrics accepts the file; a failed drill keeps the last success and counts mismatches", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redisforge-drill-metric-"));
        try {
            const file = writeDrillMetrics(dir, report([]), 1_800_000_000);
            expect(path.basename(file)).toBe(drillMetricFile("prod"));
            const passed = fs.readFileSync(file, "utf8");
            const check = spawnSync("promtool", ["check", "metrics"], { input: passed });
            expect(`${check.stdout}${check.stderr}`).toBe("");
            expect(check.status).toBe(0);
            expect(passed).toContain(`${DRILL_LAST_SUCCESS_METRIC}{cluster="prod"} 1800000000`);

            writeDrillMetrics(dir, report(["x"]), 1_800_086_400);
            const failed = fs.readFileSync(file, "utf8");
            expect(failed).toContain(`${DRILL_LAST_SUCCESS_METRIC}{cluster="prod"} 1800000000`);
            expect(failed).toContain(`${DRILL_MISMATCHES_METRIC}{cluster="prod"} 1`);
            expect(fs.readdirSync(dir)).toEqual([drillMetricFile("prod")]);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    test("a first drill that fails writes no success timestamp (the stale alert keeps firing)", () => {
        expect(renderDrillMetrics(report(["x"]), 1_800_000_000)).not.toMatch(new RegExp(`^${DRILL_LAST_SUCCESS_METRIC}\\{`, "m"));
    });

    test("the alert rules read the metrics the drill writes", () => {
        const exprs = ALERTS.filter((a) => /RestoreDrill/.test(a.alert)).map((a) => a.expr);
        expect(exprs).toHaveLength(2);
        expect(exprs.join("\n")).toContain(DRILL_LAST_SUCCESS_METRIC);
        expect(exprs.join("\n")).toContain(DRILL_MISMATCHES_METRIC);
    });
});
