/**
 * templates/scripts/wait-healthy.sh (every container unit's ExecStartPost) run for real with bash; the
 * `docker` it calls is a stand-in that replays a sequence of container states, so the script's
 * decisions are what is tested: healthy → success, exited → fail at once, a container without a
 * health check → success once running, never healthy → fail after the (bounded) timeout.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { tmpDir } from "./tools";

const SCRIPT = path.resolve(__dirname, "../../../templates/scripts/wait-healthy.sh");
const dir = tmpDir("wait-healthy");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const DOCKER = `#!/bin/bash
# docker stand-in: 'inspect -f FORMAT NAME'. Health status comes from $STATE/states (one per call, last one sticks).
[[ $1 == inspect && $2 == -f ]] || exit 2
echo "$3 $4" >>"$STATE/calls"
[[ -n $SLOW_INSPECT ]] && sleep "$SLOW_INSPECT"
# As docker 20.10 (Debian bookworm) does for a missing object with -f: an empty line on stdout, the
# error on stderr, exit 1 (the empty line kept the old script from seeing "missing" on the VMs).
[[ $4 == "$EXPECT_NAME" ]] || { echo; echo "Error: No such object: $4" >&2; exit 1; }
if [[ $3 == *'x{{end}}'* ]]; then [[ $HAS_HEALTH == 1 ]] && echo x; exit 0; fi
n=$(wc -l <"$STATE/states")
if ((n > 1)); then head -1 "$STATE/states"; sed -i 1d "$STATE/states"; else cat "$STATE/states"; fi
`;

function run(states: string[], opts: { hasHealth?: boolean; timeout?: number; name?: string; mainPid?: number; slowInspectSec?: number } = {}) {
    const d = fs.mkdtempSync(path.join(dir, "case-"));
    fs.mkdirSync(path.join(d, "bin"));
    fs.writeFileSync(path.join(d, "bin/docker"), DOCKER, { mode: 0o755 });
    fs.writeFileSync(path.join(d, "states"), `${states.join("\n")}\n`);
    const started = Date.now();
    const r = spawnSync("bash", [SCRIPT, opts.name ?? "redis", String(opts.timeout ?? 20)], {
        env: { PATH: `${path.join(d, "bin")}:/usr/bin:/bin`, STATE: d, EXPECT_NAME: "redis", POLL_SECONDS: "1", HAS_HEALTH: opts.hasHealth === false ? "0" : "1", ...(opts.mainPid ? { MAINPID: String(opts.mainPid) } : {}), SLOW_INSPECT: opts.slowInspectSec ? String(opts.slowInspectSec) : "" },
        encoding: "utf8",
        timeout: 30000,
    });
    const calls = fs.existsSync(path.join(d, "calls")) ? fs.readFileSync(path.join(d, "calls"), "utf8").trim().split("\n") : [];
    return { code: r.status, out: `${r.stdout}${r.stderr}`, ms: Date.now() - started, calls };
}

describe("wait-healthy.sh", () => {
    it("succeeds once the health check reports healthy", () => {
        const r = run(["starting", "starting", "healthy"]);
        expect(r.code).toBe(0);
        expect(r.calls.filter((c) => c.includes(".State.Health.Status")).length).toBe(3);
    });

    it("fails at once when the container exited", () => {
        const r = run(["starting", "exited"]);
        expect(r.code).toBe(1);
        expect(r.out).toContain("container redis is exited");
        expect(r.ms).toBeLessThan(8000);
    });

    it("accepts a running container whose image has no health check", () => {
        const r = run(["running"], { hasHealth: false });
        expect(r.code).toBe(0);
    });

    it("does not accept `running` while a health check exists but has not passed", () => {
        const r = run(["running", "running", "healthy"]);
        expect(r.code).toBe(0);
        expect(r.calls.filter((c) => c.includes(".State.Health.Status")).length).toBe(3);
    });

    it("gives up after the timeout when the container stays unhealthy", () => {
        const r = run(["unhealthy"], { timeout: 4 });
        expect(r.code).toBe(1);
        expect(r.out).toContain("container redis not healthy after 4s (last status: unhealthy)");
        expect(r.ms).toBeGreaterThanOrEqual(3000);
        expect(r.ms).toBeLessThan(15000);
    });

    it("fails at once when the unit's docker run (MAINPID, as systemd passes it) exited and no container is up", () => {
        // Found on the VM stack: the Envoy image cannot be pulled, `docker run` exits 125, and the
        // script waited out its whole (scaled) timeout on a container that could never appear.
        const gone = spawnSync("bash", ["-c", "echo $$"], { encoding: "utf8" });
        const r = run(["healthy"], { timeout: 20, name: "other", mainPid: Number(gone.stdout.trim()) });
        expect(r.code).toBe(1);
        expect(r.out).toMatch(/container other: docker run \(pid \d+\) exited and no container is up/);
        expect(r.ms).toBeLessThan(8000);
        // While docker run is alive (this test process stands in for it), a missing container is waited for.
        const alive = run(["healthy"], { timeout: 2, name: "other", mainPid: process.pid });
        expect(alive.out).toContain("last status: missing");
        expect(alive.ms).toBeGreaterThanOrEqual(1500);
    });

    it("bounds wall-clock time, not the sum of its sleeps, when each docker inspect is slow", () => {
        // 1 s per inspect + 1 s poll: counting sleeps only would stop after 3 rounds, ~6 s.
        const r = run(["unhealthy"], { timeout: 3, slowInspectSec: 1 });
        expect(r.code).toBe(1);
        expect(r.out).toContain("container redis not healthy after 3s (last status: unhealthy)");
        expect(r.ms).toBeGreaterThanOrEqual(2900);
        expect(r.ms).toBeLessThan(5500);
    });

    it("treats a missing container as not (yet) healthy, bounded", () => {
        const r = run(["healthy"], { timeout: 2, name: "other" });
        expect(r.code).toBe(1);
        expect(r.out).toContain("last status: missing");
    });
});
