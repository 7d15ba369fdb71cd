/**
 * templates/scripts/wait-healthy.sh (every container unit's ExecStartPost) run for real with bash and
 * curl against a stand-in Docker Engine API on a unix socket (DOCKER_SOCKET). The stand-in replays
 * answers recorded from a real dockerd (Docker 20.10, Debian bookworm, on a VM of the qemu cloud:
 * tests/unit/templates/fixtures/docker-api/, see its README), one per request, the last one sticking,
 * so the script's decisions are what is tested: healthy → success, exited → fail at once, a container
 * without a health check → success once running, never healthy → fail after the (bounded) timeout.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { tmpDir } from "./tools";

const SCRIPT = path.resolve(__dirname, "../../../templates/scripts/wait-healthy.sh");
const FIXTURES = path.resolve(__dirname, "fixtures/docker-api");
const dir = tmpDir("wait-healthy");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A recorded GET /containers/<name>/json answer of the real dockerd. */
const recorded = (state: "starting" | "healthy" | "unhealthy" | "no-health-check" | "exited") => fs.readFileSync(path.join(FIXTURES, `${state}.json`), "utf8").trim();
const NO_SUCH = JSON.stringify({ message: "No such container: redis" });
type Answer = { status: number; body: string };
const ok = (s: Parameters<typeof recorded>[0]): Answer => ({ status: 200, body: recorded(s) });
const missing: Answer = { status: 404, body: NO_SUCH };

interface Run {
    code: number | null;
    out: string;
    ms: number;
    paths: string[];
}

async function run(answers: Answer[], opts: { timeout?: number; bound?: number; name?: string; mainPid?: number; slowMs?: number; noServer?: boolean } = {}): Promise<Run> {
    const d = fs.mkdtempSync(path.join(dir, "case-"));
    const socket = path.join(d, "docker.sock");
    const paths: string[] = [];
    const queue = [...answers];
    const server = http.createServer((req, res) => {
        paths.push(`${req.method} ${req.url}`);
        const a = queue.length > 1 ? queue.shift()! : queue[0];
        setTimeout(() => {
            res.writeHead(a.status, { "content-type": "application/json" });
            res.end(`${a.body}\n`);
        }, opts.slowMs ?? 0);
    });
    if (!opts.noServer) await new Promise<void>((r) => server.listen(socket, r));
    const started = Date.now();
    try {
        return await new Promise<Run>((resolve, reject) => {
            const child = spawn("bash", [SCRIPT, opts.name ?? "redis", String(opts.timeout ?? 20), ...(opts.bound ? [String(opts.bound)] : [])], {
                env: { PATH: "/usr/bin:/bin", DOCKER_SOCKET: socket, POLL_SECONDS: "1", ...(opts.mainPid ? { MAINPID: String(opts.mainPid) } : {}) },
            });
            let out = "";
            child.stdout.on("data", (c) => (out += c));
            child.stderr.on("data", (c) => (out += c));
            const killer = setTimeout(() => child.kill("SIGKILL"), 30000);
            child.on("error", reject);
            child.on("close", (code) => {
                clearTimeout(killer);
                resolve({ code, out, ms: Date.now() - started, paths });
            });
        });
    } finally {
        if (!opts.noServer) await new Promise<void>((r) => server.close(() => r()));
    }
}

describe("wait-healthy.sh (Docker Engine API over its unix socket)", () => {
    it("the recorded answers are what the script relies on: compact JSON, State.Status first, Health only with a health check", () => {
        for (const s of ["starting", "healthy", "unhealthy", "no-health-check", "exited"] as const) {
            const body = recorded(s);
            const state = (JSON.parse(body) as { State: { Status: string; Health?: { Status: string } } }).State;
            expect(body).not.toMatch(/\n/);
            expect(body).toContain(`"State":{"Status":"${state.Status}"`);
            if (state.Health) expect(body).toContain(`"Health":{"Status":"${state.Health.Status}"`);
            else expect(body).not.toContain(`"Health":`);
        }
    });

    it("succeeds once the health check reports healthy, asking GET /containers/<name>/json", async () => {
        const r = await run([ok("starting"), ok("starting"), ok("healthy")]);
        expect(r.code).toBe(0);
        expect(r.paths).toEqual(Array(3).fill("GET /containers/redis/json"));
    });

    it("fails at once when the container exited, whatever its last health check said", async () => {
        const r = await run([ok("starting"), ok("exited")]);
        expect(r.code).toBe(1);
        expect(r.out).toContain("container redis: exited");
        expect(r.ms).toBeLessThan(8000);
    });

    it("accepts a running container whose image has no health check", async () => {
        const r = await run([ok("no-health-check")]);
        expect(r.code).toBe(0);
        expect(r.paths.length).toBe(1);
    });

    it("does not accept a running container while its health check is starting", async () => {
        const r = await run([ok("starting"), ok("starting"), ok("starting"), ok("healthy")]);
        expect(r.code).toBe(0);
        expect(r.paths.length).toBe(4);
    });

    it("gives up after the timeout when the container stays unhealthy", async () => {
        const r = await run([ok("unhealthy")], { timeout: 4 });
        expect(r.code).toBe(1);
        expect(r.out).toContain("container redis: not healthy after 4s (last status: unhealthy)");
        expect(r.ms).toBeGreaterThanOrEqual(3000);
        expect(r.ms).toBeLessThan(15000);
    });

    it("fails at once when the unit's docker run (MAINPID, as systemd passes it) exited and no container is up", async () => {
        // Found on the VM stack: the Envoy image cannot be pulled, `docker run` exits 125, and the
        // script waited out its whole (scaled) timeout on a container that could never appear.
        const gone = await new Promise<number>((resolve) => {
            const c = spawn("true");
            c.on("close", () => resolve(c.pid!));
        });
        const r = await run([missing], { timeout: 20, name: "other", mainPid: gone });
        expect(r.code).toBe(1);
        expect(r.out).toMatch(/container other: docker run \(pid \d+\) exited and no container is up/);
        expect(r.ms).toBeLessThan(8000);
        // While docker run is alive (this test process stands in for it), a missing container is waited
        // for up to the start bound (the unit's TimeoutStartSec), not the health timeout.
        const alive = await run([missing], { timeout: 2, bound: 5, name: "other", mainPid: process.pid });
        expect(alive.code).toBe(1);
        expect(alive.out).toContain("container other: none after 5s (docker run still pulling?)");
        expect(alive.ms).toBeGreaterThanOrEqual(4500);
    });

    it("starts the health timeout when the container exists: a pull longer than the timeout is not a failure", async () => {
        // Found on the VM stack (agent mode): the converge agent's image took >12 min to pull under
        // emulation; the health timeout (720 s there) ran out before the container existed, systemd
        // restarted the unit, the pull began again, forever.
        const r = await run([missing, missing, missing, missing, missing, ok("starting"), ok("healthy")], { timeout: 3, bound: 30, mainPid: process.pid });
        expect(r.code).toBe(0);
        expect(r.ms).toBeGreaterThanOrEqual(5000);
        expect(r.paths.length).toBe(7);
    });

    it("treats a daemon that does not answer (no socket) as a missing container, bounded", async () => {
        const r = await run([ok("healthy")], { timeout: 2, noServer: true });
        expect(r.code).toBe(1);
        expect(r.out).toContain("last status: missing");
    });

    it("bounds wall-clock time, not the sum of its sleeps, when each request is slow", async () => {
        // 1 s per request + 1 s poll: counting sleeps only would stop after 3 rounds, ~6 s.
        const r = await run([ok("unhealthy")], { timeout: 3, slowMs: 1000 });
        expect(r.code).toBe(1);
        expect(r.out).toContain("container redis: not healthy after 3s (last status: unhealthy)");
        expect(r.ms).toBeGreaterThanOrEqual(2900);
        expect(r.ms).toBeLessThan(5500);
    });

    it("refuses a container name that is not one", async () => {
        const bad = await run([ok("healthy")], { name: "../images" });
        expect(bad.code).toBe(2);
        expect(bad.out).toContain("'../images' is not a container name");
        expect(bad.paths).toEqual([]);
    });
});
