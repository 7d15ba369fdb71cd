/**
 * The operator CLI (infra/cli): every registered command has --help with the common options,
 * parse errors and a missing stack exit with the documented codes (the real CLI, run as a
 * process), and the progress display's figures and its TTY / plain-line behaviour.
 */
import { execFile } from "child_process";
import * as path from "path";
import { buildProgram } from "../../../infra/cli/index";
import { EXIT } from "../../../infra/cli/context";
import { formatProgress, ProgressLine, rates } from "../../../infra/cli/progress";

const ROOT = path.join(__dirname, "..", "..", "..");
const TSX = path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs");

function cli(args: string[], entry = "infra/cli/index.ts"): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        execFile(process.execPath, [TSX, entry, ...args], { cwd: ROOT, timeout: 120_000 }, (err, stdout, stderr) => {
            const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
            resolve({ code, stdout: String(stdout), stderr: String(stderr) });
        });
    });
}

describe("commands", () => {
    const program = buildProgram();
    const names = program.commands.map((c) => c.name());

    test("the scale commands and check are registered", () => {
        expect(names).toEqual(expect.arrayContaining(["status", "add-shard", "remove-shard", "add-replica", "remove-replica", "check", "backup", "restore-drill"]));
    });

    test.each(names)("%s --help lists --stack, --yes and --json", (name) => {
        const help = program.commands.find((c) => c.name() === name)!.helpInformation();
        expect(help).toContain(`Usage: forge ${name}`);
        for (const o of ["--stack <name>", "--yes", "--json"]) expect(help).toContain(o);
    });

    test("the top-level help documents the exit codes", async () => {
        const r = await cli(["--help"]);
        expect(r.code).toBe(EXIT.ok);
        expect(r.stdout).toMatch(/Exit codes: 0 ok, 1 a check or verification failed, 2 bad usage, 3 could not run/);
    }, 130_000);
});

describe("exit codes of the real process", () => {
    test("an unknown command is a usage error (2)", async () => {
        const r = await cli(["grow", "--stack", "x"]);
        expect(r.code).toBe(EXIT.usage);
        expect(r.stderr).toMatch(/unknown command 'grow'/);
    }, 130_000);

    test("a missing --stack is a usage error (2), also through the old entry infra/scale.ts", async () => {
        const r = await cli(["status"], "infra/scale.ts");
        expect(r.code).toBe(EXIT.usage);
        expect(r.stderr).toMatch(/required option '-s, --stack <name>' not specified/);
    }, 130_000);

    test("a bad --min-cert-days is a usage error naming the option", async () => {
        const r = await cli(["check", "--stack", "x", "--min-cert-days", "soon"]);
        expect(r.code).toBe(EXIT.usage);
        expect(r.stderr).toMatch(/--min-cert-days "soon" must be a whole number of days/);
    }, 130_000);

    test("restore-drill: a bad --at is a usage error naming the accepted forms", async () => {
        const r = await cli(["restore-drill", "--stack", "x", "--at", "last tuesday"]);
        expect(r.code).toBe(EXIT.usage);
        expect(r.stderr).toMatch(/--at "last tuesday" is not a backup timestamp; use the form 20261127T051500Z/);
    }, 130_000);

    test("backup and restore-drill open the stack like every command: a missing stack cannot run (3)", async () => {
        for (const cmd of ["backup", "restore-drill"]) {
            const r = await cli([cmd, "--stack", `no-such-stack-${process.pid}`]);
            expect({ cmd, code: r.code }).toEqual({ cmd, code: EXIT.failed });
            expect(r.stderr).toMatch(/no-such-stack-\d+/);
        }
    }, 260_000);

    test("a stack that does not exist cannot run (3) and says how to list stacks", async () => {
        const r = await cli(["check", "--stack", `no-such-stack-${process.pid}`]);
        expect(r.code).toBe(EXIT.failed);
        expect(r.stderr).toMatch(/stack "no-such-stack-\d+" cannot be opened .*pulumi stack ls/);
    }, 130_000);
});

describe("progress display", () => {
    test.each([
        [{ slotsMoved: 0, slotsTotal: 4096, keysMoved: 0, elapsedS: 1 }, "migration: slots 0/4096 (0 %), 0 keys, 0 keys/s, ETA ?"],
        [{ slotsMoved: 1024, slotsTotal: 4096, keysMoved: 5000, elapsedS: 2 }, "migration: slots 1024/4096 (25 %), 5000 keys, 2500 keys/s, ETA 6 s"],
        [{ slotsMoved: 4096, slotsTotal: 4096, keysMoved: 20000, elapsedS: 8 }, "migration: slots 4096/4096 (100 %), 20000 keys, 2500 keys/s, ETA 0 s"],
    ])("%j -> %s", (snap, line) => {
        expect(formatProgress(snap)).toBe(line);
    });

    test("ETA follows the slot rate", () => {
        expect(rates({ slotsMoved: 100, slotsTotal: 400, keysMoved: 0, elapsedS: 10 }).etaS).toBeCloseTo(30);
    });

    function sink(isTTY: boolean) {
        const writes: string[] = [];
        return { writes, stream: { isTTY, write: (s: string) => writes.push(s) > 0 } };
    }

    test("on a terminal one line is rewritten in place, the final state ends with a newline", () => {
        const { writes, stream } = sink(true);
        const p = new ProgressLine(stream);
        p.update("a");
        p.update("b");
        p.done("c");
        expect(writes).toEqual(["\r\x1b[2Ka", "\r\x1b[2Kb", "\r\x1b[2Kc\n"]);
    });

    test("without a terminal: plain lines, at most one per interval, and always the final one", () => {
        const { writes, stream } = sink(false);
        const p = new ProgressLine(stream, 60_000);
        p.update("a");
        p.update("b"); // within the interval: dropped
        p.done("c");
        expect(writes).toEqual(["a\n", "c\n"]);
        expect(writes.join("")).not.toContain("\x1b");
    });
});
