/**
 * `restore-drill`: restores the stack's newest complete backups (or those at/before --at) into a
 * throw-away lab on this machine and compares them with their manifests (infra/restore-drill/);
 * prints the report; with --textfile-dir writes the drill metrics for node_exporter. Exit 0 passed,
 * 1 a mismatch, 3 the drill could not run. Never touches the live cluster.
 * `npm run restore-drill -- --stack <stack>` is the same command.
 */
import { CliError, EXIT, Register, withCommonOptions } from "../context";
import { openStore, StoreOptions, withStoreOptions } from "../store-options";

export const register: Register = (program, run) => {
    withStoreOptions(withCommonOptions(program.command("restore-drill").description("restore the newest complete backups into a throw-away lab and compare them with their manifests (never touches the live cluster)")))
        .option("--at <timestamp>", "the newest backups at or before this moment (20261127T051500Z or ISO 8601)")
        .option("--textfile-dir <dir>", "write the drill metrics for node_exporter's textfile collector here")
        .option("--keep-lab", "leave the throw-away lab running (its directory is printed)")
        .action(
            run(async (ctx) => {
                const { stackCluster } = await import("../../backup/stack-target");
                const { runRestoreDrill } = await import("../../restore-drill/drill");
                const { formatReport, writeDrillMetrics } = await import("../../restore-drill/report");
                const { normalizeTimestamp } = await import("../../restore-drill/select");
                const opts = ctx.opts as StoreOptions & { at?: string; textfileDir?: string; keepLab?: boolean };
                let at: string | undefined;
                try {
                    at = opts.at === undefined ? undefined : normalizeTimestamp(opts.at);
                } catch (e) {
                    throw new CliError((e as Error).message, EXIT.usage);
                }
                const { outputs: o, store } = await openStore(opts);
                const report = await runRestoreDrill({ cluster: stackCluster(opts.stack, o), store, at, keepLab: !!opts.keepLab, log: (l) => process.stderr.write(`restore-drill: ${l}\n`) });
                ctx.out.line(formatReport(report));
                if (opts.textfileDir) ctx.out.line(`metrics: ${writeDrillMetrics(opts.textfileDir, report, Math.floor(Date.now() / 1000))}`);
                ctx.out.result(report);
                return report.ok ? EXIT.ok : EXIT.checkFailed;
            }),
        );
};
