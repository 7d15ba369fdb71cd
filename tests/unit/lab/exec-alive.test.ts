import { execFileSync, spawn } from "child_process";
import { alive as labAlive } from "../../../lab/vm/exec";
import { alive as localAlive } from "../../../providers/local/alive";

// A CI run saw a daemon "alive" that no longer listened: it had exited, and its parent (this process,
// busy in synchronous probes) had not reaped it yet. alive() must call such a zombie dead.
test.each([["lab/vm/exec", labAlive], ["providers/local/alive", localAlive]])("%s alive(): a live process is alive; an exited child not yet reaped (a zombie) is not; a missing PID is not", (_name, alive) => {
    const p = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
        expect(alive(p.pid!)).toBe(true);
        const q = spawn("true", [], { stdio: "ignore" });
        // Synchronous sleep: the event loop cannot reap q while it runs, so q stays a zombie.
        execFileSync("sleep", ["0.5"]);
        expect(execFileSync("ps", ["-o", "stat=", "-p", String(q.pid)], { encoding: "utf8" }).trim()).toMatch(/^Z/);
        expect(alive(q.pid!)).toBe(false);
    } finally {
        p.kill("SIGKILL");
    }
    expect(alive(2 ** 22 + 12345)).toBe(false);
});
