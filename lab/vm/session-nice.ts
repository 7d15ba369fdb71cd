/**
 * The caller's nice value for a process that runs in a session of its own.
 *
 * QEMU (`-daemonize`) and the stack's daemons (spawned detached) start new sessions. When the kernel
 * groups the scheduler by session (`kernel.sched_autogroup_enabled = 1`, Debian's default), each session
 * is an autogroup with the weight of a nice-0 process, and a process's own nice value only weighs
 * against the other processes of its session: seven VMs started from a `nice -n 19` shell then took
 * 7/8 of the CPU from the test suites beside them (a first CI run with the VM stack in the background:
 * the restore drill 629 s against 166 s on an idle machine). The session's autogroup nice
 * (`/proc/<pid>/autogroup`) restores what the caller asked for.
 */
import { readFileSync, writeFileSync } from "fs";
import { getPriority } from "os";

/** Gives the autogroup of `pid`'s session the nice value `nice` (default: this process's) when it is above 0. */
export function carryNiceToSession(pid: number, nice = getPriority()): void {
    if (nice <= 0) return;
    const file = `/proc/${pid}/autogroup`;
    let current: string;
    try {
        current = readFileSync(file, "utf8");
    } catch {
        return; // no autogroup in this kernel (CONFIG_SCHED_AUTOGROUP off): the process's own nice holds
    }
    if (new RegExp(`nice ${nice}\\b`).test(current)) return;
    writeFileSync(file, String(nice));
}

/** The nice value of `pid`'s autogroup, or undefined without autogroups. */
export function sessionNice(pid: number): number | undefined {
    try {
        const m = /nice (-?\d+)/.exec(readFileSync(`/proc/${pid}/autogroup`, "utf8"));
        return m ? Number(m[1]) : undefined;
    } catch {
        return undefined;
    }
}
