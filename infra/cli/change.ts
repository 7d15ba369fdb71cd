/** The shared action of add-shard / remove-shard / add-replica / remove-replica. */
import type { ScaleCommand } from "../scale";
import { ProgressLine } from "./progress";
import { CliError, CommandContext, EXIT, Register, withCommonOptions } from "./context";

export async function runChange(ctx: CommandContext, command: Exclude<ScaleCommand, "status">): Promise<number> {
    const { change } = await import("../scale");
    const { MigrationWatch } = await import("./migration-watch");
    const stack = await ctx.openStack();
    const human = ctx.out.json ? process.stderr : process.stdout;
    let result;
    try {
        result = await change(stack, command, !!ctx.opts.yes, ctx.out.line, {
            raw: ctx.out.raw,
            duringUp: async (plan, creds) => {
                const w = new MigrationWatch(plan, { username: creds.username, password: creds.password, ca: creds.tls.ca, cert: creds.tls.cert, key: creds.tls.key }, new ProgressLine(human));
                await w.start().catch(() => undefined);
                return w;
            },
        });
    } catch (e) {
        const msg = (e as Error).message;
        throw new CliError(msg, /verification failed/.test(msg) ? EXIT.checkFailed : EXIT.failed);
    }
    ctx.out.result(result);
    return result.applied ? EXIT.ok : EXIT.notApplied;
}

/** Registers one scale command (each of the four files is this one line). */
export function scaleCommand(name: Exclude<ScaleCommand, "status">, what: string): Register {
    return (program, run) => {
        withCommonOptions(program.command(name).description(`${what}: preview with the slot-move plan, ask, up, verify`)).action(run(async (ctx) => runChange(ctx, name)));
    };
}
