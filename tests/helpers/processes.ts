/**
 * What a test leaves behind: the processes whose command line names a directory the test made
 * (servers started with their data dir on the command line). Tests assert it is empty after
 * their teardown, and may stop what it lists: only their own processes name their temp dir.
 */
import * as fs from "fs";

/** PIDs of processes whose command line mentions `dir`. */
export function processesUsing(dir: string): number[] {
    const found: number[] = [];
    for (const p of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(p)) continue;
        try {
            if (fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes(dir)) found.push(Number(p));
        } catch {
            // process exited while we looked
        }
    }
    return found;
}
