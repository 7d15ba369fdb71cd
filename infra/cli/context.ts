/**
 * What every subcommand shares: the common options (`--stack`, `--yes`, `--json`), the exit codes,
 * opening the stack through the Automation API, and output that is either human lines or one JSON
 * document on stdout (`--json`, for machines; human progress then goes to stderr).
 */
import type { Command } from "commander";
import type { Stack } from "@pulumi/pulumi/automation";

/** Exit codes of `npm run forge -- <command>` (README "Operator CLI"). */
export const EXIT = {
    /** Done; every check passed. */
    ok: 0,
    /** A check or the verification after a change failed (the failed checks are named). */
    checkFailed: 1,
    /** Bad usage: unknown command or option, missing --stack (commander prints the help line). */
    usage: 2,
    /** The operation could not run: stack not found, engine error, preview/up failed, nothing reachable. */
    failed: 3,
    /** A change was not applied: the confirmation was declined, or no terminal and no --yes. */
    notApplied: 4,
} as const;

/** An error that carries its exit code; the entry prints the message and exits with the code. */
export class CliError extends Error {
    constructor(message: string, readonly exitCode: number = EXIT.failed) {
        super(message);
        this.name = "CliError";
    }
}

/** Runs `f`; an error it throws (a bad flag value, named in the message) becomes a usage error (exit 2). */
export function usage<T>(f: () => T): T {
    try {
        return f();
    } catch (e) {
        throw e instanceof CliError ? e : new CliError((e as Error).message, EXIT.usage);
    }
}

/** The options every command takes (declared by `withCommonOptions`). */
export interface CommonOptions {
    stack: string;
    yes?: boolean;
    json?: boolean;
}

/** Adds `--stack` (required), `--yes` and `--json` to a command. */
export function withCommonOptions(cmd: Command): Command {
    return cmd
        .requiredOption("-s, --stack <name>", "stack to act on (e.g. local, prod)")
        .option("-y, --yes", "do not ask before changing anything")
        .option("--json", "print one JSON document on stdout (human lines go to stderr)");
}

/** Where a command writes. With --json, `line` goes to stderr so stdout stays one JSON document. */
export interface Output {
    json: boolean;
    /** A human line (stdout, or stderr under --json). */
    line(s: string): void;
    /** Raw engine output (streamed as it comes). */
    raw(s: string): void;
    /** The machine result (stdout, only under --json). */
    result(value: unknown): void;
    /** True when the human stream is a terminal (progress lines may be rewritten in place). */
    tty: boolean;
}

export function makeOutput(json: boolean): Output {
    const human = json ? process.stderr : process.stdout;
    return {
        json,
        line: (s) => void human.write(`${s}\n`),
        raw: (s) => void human.write(s),
        result: (v) => {
            if (json) process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
        },
        tty: !!human.isTTY,
    };
}

/** What a command's action receives. */
export interface CommandContext {
    opts: CommonOptions;
    out: Output;
    /** Opens the stack (Automation API over the project's environment); throws CliError when it does not exist. */
    openStack(): Promise<Stack>;
}

/** Signature of every command module: `register(program, run)` adds the command to the program. */
export type Register = (program: Command, run: (action: (ctx: CommandContext, ...args: unknown[]) => Promise<number>) => (...args: unknown[]) => Promise<void>) => void;
