/**
 * The drill's outputs: the text report an operator reads, and the node_exporter textfile that
 * Prometheus scrapes (monitoring/prometheus/rules.ts: RedisForgeRestoreDrillStale / ...Failing).
 */
import * as fs from "fs";
import * as path from "path";
import type { DrillReport } from "./drill";

/** Unix time of the last drill that passed (no mismatch). Kept from the previous file when a drill fails. */
export const DRILL_LAST_SUCCESS_METRIC = "redisforge_restore_drill_last_success_timestamp_seconds";
/** Unix time of the last drill that ran to a verdict (pass or mismatch). */
export const DRILL_LAST_RUN_METRIC = "redisforge_restore_drill_last_run_timestamp_seconds";
/** Mismatches found by the last drill. */
export const DRILL_MISMATCHES_METRIC = "redisforge_restore_drill_mismatches";
/** File name in the textfile collector directory (one per cluster). */
export const drillMetricFile = (cluster: string) => `redisforge_restore_drill_${cluster.replace(/[^a-z0-9_]/g, "_")}.prom`;

const dur = (s: number) => (s >= 86400 ? `${(s / 86400).toFixed(1)} d` : s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s} s`);

export function formatReport(r: DrillReport): string {
    const lines = [
        `restore drill of cluster ${r.cluster} from ${r.store}: ${r.ok ? "PASSED" : "FAILED"}`,
        `  backups:        ${r.nodes.length} node(s); oldest is ${dur(r.backupAgeSeconds)} old`,
        ...r.nodes.map((n) => `    ${n.node.padEnd(24)} ${n.timestamp}  ${n.role.padEnd(7)} ${n.nodeId.slice(0, 12)}  ${n.files} file(s), ${(n.bytes / 1024).toFixed(0)} KiB, sha256 ok`),
        `  keys restored:  ${r.keysRestored}${r.keysExpected ? ` (backups recorded ${r.keysExpected[0] === r.keysExpected[1] ? r.keysExpected[0] : `${r.keysExpected[0]}-${r.keysExpected[1]}`})` : " (the backups recorded no key counts)"}`,
        ...r.perSlotRange.map((s) => `    ${s.node.padEnd(24)} slots ${s.range.padEnd(12)} ${s.keys} key(s)`),
        `  time:           restore ${(r.restoreMs / 1000).toFixed(1)} s, start to cluster_state:ok ${(r.clusterOkMs / 1000).toFixed(1)} s, total ${(r.totalMs / 1000).toFixed(1)} s`,
        `  per-shard digests: not recorded by manifest format 1 (compared: ids, roles, slots, keys per slot range)`,
        `  mismatches:     ${r.mismatches.length}`,
        ...r.mismatches.map((m) => `    - ${m}`),
    ];
    return lines.join("\n");
}

/** The textfile's content; `previousSuccess` is kept when this drill failed. */
export function renderDrillMetrics(r: DrillReport, nowSeconds: number, previousSuccess?: number): string {
    const l = `{cluster="${r.cluster}"}`;
    const success = r.ok ? nowSeconds : previousSuccess;
    return [
        `# HELP ${DRILL_LAST_SUCCESS_METRIC} Unix time of the last restore drill that passed (every file's sha256, cluster_state ok, ids, roles, slots and key counts as recorded).`,
        `# TYPE ${DRILL_LAST_SUCCESS_METRIC} gauge`,
        ...(success !== undefined ? [`${DRILL_LAST_SUCCESS_METRIC}${l} ${success}`] : []),
        `# HELP ${DRILL_LAST_RUN_METRIC} Unix time of the last restore drill that ran to a verdict.`,
        `# TYPE ${DRILL_LAST_RUN_METRIC} gauge`,
        `${DRILL_LAST_RUN_METRIC}${l} ${nowSeconds}`,
        `# HELP ${DRILL_MISMATCHES_METRIC} Mismatches found by the last restore drill.`,
        `# TYPE ${DRILL_MISMATCHES_METRIC} gauge`,
        `${DRILL_MISMATCHES_METRIC}${l} ${r.mismatches.length}`,
        "",
    ].join("\n");
}

/** Replaces the cluster's textfile atomically (tmp + rename), keeping the last success time across a failed drill. */
export function writeDrillMetrics(dir: string, r: DrillReport, nowSeconds: number): string {
    const file = path.join(dir, drillMetricFile(r.cluster));
    let previous: number | undefined;
    if (fs.existsSync(file)) {
        const m = new RegExp(`^${DRILL_LAST_SUCCESS_METRIC}\\{[^}]*\\} (\\d+)$`, "m").exec(fs.readFileSync(file, "utf8"));
        if (m) previous = Number(m[1]);
    }
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, renderDrillMetrics(r, nowSeconds, previous), { mode: 0o644 });
    fs.renameSync(tmp, file);
    return file;
}
