import { readFileSync } from "fs";

/**
 * True when `pid` is alive (signal 0) and not a zombie: a process that exited but whose parent has not
 * reaped it yet still answers signal 0, and must not count as a running server.
 */
export function alive(pid: number): boolean {
    if (!pid) return false;
    try {
        process.kill(pid, 0);
    } catch {
        return false;
    }
    try {
        // /proc/<pid>/stat is "pid (comm) S ..."; comm may hold spaces or ')', the state follows the last ')'.
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.charAt(stat.lastIndexOf(")") + 2) !== "Z";
    } catch {
        return false;
    }
}
