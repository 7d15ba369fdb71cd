/**
 * The benchmark runs end to end in a tiny mode (5 000 keys, one repetition) and prints its ratio
 * and memory lines (the client-impact scenario has its own test: tests/integration/bench/). This asserts the output format and the clean-up, never the figures: the bench
 * is not a timed test (`npm run bench` prints the real figures).
 */
import { spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Lab } from "../../../lab/lab";
import { processesUsing } from "../../helpers/processes";

const ROOT = path.resolve(__dirname, "../../..");
const TSX = path.join(ROOT, "node_modules/.bin/tsx");

test("npm run bench (tiny mode) prints both ratios and the provider's peak memory, and leaves nothing behind", async () => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "redisforge-bench-smoke-")), "lab");
    let r: SpawnSyncReturns<string>;
    try {
        r = spawnSync(TSX, ["bench/run.ts", "--keys", "5000", "--repeat", "1", "--settle-ms", "0", "--skip-impact", "--dir", dir], { cwd: ROOT, encoding: "utf8", timeout: 280000, killSignal: "SIGTERM" });
    } finally {
        // If the bench was killed before its own clean-up, stop what it recorded (by PID).
        if (fs.existsSync(path.join(dir, "lab.json"))) await Lab.load(dir).stop({ removeData: true });
    }
    const all = `${r.stdout}\n${r.stderr}`;
    expect({ code: r.status, all }).toEqual({ code: 0, all: expect.stringContaining("RESULTS") });
    expect(r.stdout).toMatch(/^ {2}formation provider #1: \d+\.\d{3} s /m);
    expect(r.stdout).toMatch(/^ {2}formation redis-cli #1: \d+\.\d{3} s /m);
    expect(r.stdout).toMatch(/^ {2}resharding provider #1: \d+ keys moved in \d+\.\d{3} s = \d+ keys\/s; slots per master \d+\/\d+\/\d+\/\d+/m);
    expect(r.stdout).toMatch(/^ {2}resharding redis-cli #1: \d+ keys moved in \d+\.\d{3} s = \d+ keys\/s; slots per master \d+\/\d+\/\d+\/\d+/m);
    expect(r.stdout).toMatch(/^RATIO formation time provider\/redis-cli = \d+\.\d{2} \(target <= 0\.50: (MET|MISSED)\)$/m);
    expect(r.stdout).toMatch(/^RATIO resharding keys\/s provider\/redis-cli = \d+\.\d{2} \(target >= 3\.00: (MET|MISSED)\)$/m);
    expect(r.stdout).toMatch(/^MEMORY provider process: peak RSS \d+\.\d MiB/m);
    expect(fs.existsSync(dir)).toBe(false);
    expect(processesUsing(dir)).toEqual([]);
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
}, 300000);
