/**
 * `npm run restore-drill -- --stack <stack> [--at <timestamp>] [--remote <remote>:<bucket> --rclone-config <file>]
 *                          [--textfile-dir <dir>] [--keep-lab]`
 * Restores the stack's newest complete backups (or those at/before --at) into a throw-away lab on
 * this machine and compares them with their manifests (infra/restore-drill/drill.ts); prints the
 * report; with --textfile-dir writes the drill metrics for node_exporter. Exit 0 = passed,
 * 1 = a mismatch or the drill could not run. Never touches the live cluster.
 */
import { parseFlags, readStackOutputs, resolveStore, stackCluster } from "../backup/stack-target";
import { runRestoreDrill } from "./drill";
import { formatReport, writeDrillMetrics } from "./report";
import { normalizeTimestamp } from "./select";

const USAGE = "usage: npm run restore-drill -- --stack <stack> [--at 20261127T051500Z] [--remote <remote>:<bucket> --rclone-config <file>] [--textfile-dir <dir>] [--keep-lab]";

async function main(): Promise<void> {
    const f = parseFlags(process.argv.slice(2), ["stack", "at", "remote", "rclone-config", "textfile-dir"], ["keep-lab"], USAGE);
    if (typeof f.stack !== "string") throw new Error(`--stack <stack> is required\n${USAGE}`);
    const at = typeof f.at === "string" ? normalizeTimestamp(f.at) : undefined;
    const o = await readStackOutputs(f.stack);
    const store = resolveStore(f.stack, o, { remote: f.remote as string | undefined, rcloneConfig: f["rclone-config"] as string | undefined });
    const report = await runRestoreDrill({ cluster: stackCluster(f.stack, o), store, at, keepLab: f["keep-lab"] === true, log: (l) => process.stderr.write(`restore-drill: ${l}\n`) });
    process.stdout.write(`${formatReport(report)}\n`);
    if (typeof f["textfile-dir"] === "string") process.stdout.write(`metrics: ${writeDrillMetrics(f["textfile-dir"], report, Math.floor(Date.now() / 1000))}\n`);
    if (!report.ok) process.exitCode = 1;
}

main().catch((e) => {
    process.stderr.write(`restore-drill: ${(e as Error).message}\n`);
    process.exit(1);
});
