/**
 * The operator CLI: `npm run forge -- <command> --stack <name> [--yes] [--json]`
 * (`npm run scale -- ...` is the same program). Each command is one file in ./commands that
 * exports `register`; ./commands/index.ts lists them (one line each). See README "Operator CLI".
 *
 * Heavy modules (the Automation API, the cluster executor) are required inside the actions, so
 * `--help` and usage errors answer without loading them.
 */
import { Command, CommanderError } from "commander";
import { COMMANDS } from "./commands";
import { CliError, CommandContext, CommonOptions, EXIT, makeOutput } from "./context";

/** Builds the program with every registered command (exported for the tests: `--help` text, parsing). */
export function buildProgram(): Command {
    const program = new Command("forge")
        .description("Operate a RedisForge stack: status, scaling, health checks")
        .showHelpAfterError()
        .exitOverride();
    program.addHelpText(
        "after",
        `\nExit codes: ${EXIT.ok} ok, ${EXIT.checkFailed} a check or verification failed, ${EXIT.usage} bad usage, ${EXIT.failed} could not run (stack, engine, unreachable), ${EXIT.notApplied} change not applied (declined / no terminal without --yes)`,
    );
    const run =
        (action: (ctx: CommandContext, ...args: unknown[]) => Promise<number>) =>
        async (...args: unknown[]): Promise<void> => {
            // commander passes (...positional, options, command)
            const cmd = args[args.length - 1] as Command;
            const opts = cmd.opts() as CommonOptions;
            const out = makeOutput(!!opts.json);
            const ctx: CommandContext = {
                opts,
                out,
                openStack: async () => {
                    const { PROJECT_DIR, projectEnv } = await import("../scale");
                    const { LocalWorkspace } = await import("@pulumi/pulumi/automation");
                    const env = projectEnv();
                    for (const [k, v] of Object.entries(env)) process.env[k] = v;
                    try {
                        return await LocalWorkspace.selectStack({ stackName: opts.stack, workDir: PROJECT_DIR }, { envVars: env });
                    } catch (e) {
                        throw new CliError(`stack ${JSON.stringify(opts.stack)} cannot be opened (${String((e as Error).message).split("\n")[0]}); list stacks with \`pulumi stack ls\` (source scripts/env.sh first)`, EXIT.failed);
                    }
                },
            };
            process.exitCode = await action(ctx, ...args.slice(0, -1));
        };
    for (const register of COMMANDS) register(program, run);
    return program;
}

/** Parses argv and runs; always ends the process with a documented exit code. */
export async function runCli(argv: string[]): Promise<void> {
    const program = buildProgram();
    try {
        await program.parseAsync(argv);
        process.exit(process.exitCode ?? EXIT.ok);
    } catch (e) {
        if (e instanceof CommanderError) {
            // --help / --version print and exit 0; every other parse error is a usage error.
            process.exit(e.exitCode === 0 ? EXIT.ok : EXIT.usage);
        }
        const code = e instanceof CliError ? e.exitCode : EXIT.failed;
        process.stderr.write(`forge: ${(e as Error).message}\n`);
        process.exit(code);
    }
}

if (require.main === module) void runCli(process.argv);
