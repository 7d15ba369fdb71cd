/** `check`: the health of the running stack as named checks (infra/check/checks.ts); exit 1 names the failed ones. */
import type { Outputs } from "../../check/stack-view";
import { CliError, EXIT, Register, withCommonOptions } from "../context";

export const register: Register = (program, run) => {
    withCommonOptions(program.command("check").description("TLS + cert expiry, AUTH as app, SET/GET/DEL per shard, app ACL refusals, slots, replicas + lag, zones, backup age"))
        .option("--min-cert-days <days>", "fail tls when a node certificate has fewer days left (default: the stack's redisforge:tlsRenewBeforeDays, else 30)")
        .option("-v, --verbose", "print every finding, not only the failures")
        .action(
            run(async (ctx) => {
                const o = ctx.opts as typeof ctx.opts & { minCertDays?: string; verbose?: boolean };
                const given = o.minCertDays === undefined ? undefined : Number(o.minCertDays);
                if (given !== undefined && (!Number.isInteger(given) || given < 0)) throw new CliError(`--min-cert-days ${JSON.stringify(o.minCertDays)} must be a whole number of days (e.g. 30)`, EXIT.usage);
                const { failedChecks, formatChecks, runChecks } = await import("../../check/checks");
                const { stackView } = await import("../../check/stack-view");
                const stack = await ctx.openStack();
                let view;
                try {
                    view = stackView((await stack.outputs()) as Outputs);
                } catch (e) {
                    throw new CliError(`stack ${stack.name}: ${(e as Error).message}`, EXIT.failed);
                }
                // A certificate inside the stack's renewal window means `pulumi up` has not re-issued it.
                const renewBefore = await stack.getConfig("redisforge:tlsRenewBeforeDays").then((c) => Number(c.value), () => 30);
                const minCertDays = given ?? (Number.isInteger(renewBefore) && renewBefore >= 0 ? renewBefore : 30);
                const results = await runChecks(view, { minCertDays });
                const failed = failedChecks(results);
                ctx.out.line(formatChecks(results, !!o.verbose));
                ctx.out.result({ stack: stack.name, ok: failed.length === 0, failed, checks: results });
                if (failed.length) process.stderr.write(`check: failed: ${failed.join(", ")}\n`);
                return failed.length ? EXIT.checkFailed : EXIT.ok;
            }),
        );
};
