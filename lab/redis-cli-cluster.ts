/**
 * The reference tool, driven over TLS + ACL exactly as an operator would run it:
 * `redis-cli --cluster create|add-node|rebalance` with --tls --cacert --cert --key --user admin and
 * the password in REDISCLI_AUTH (never on the command line). The benchmark compares the cluster
 * provider with these; `npm run lab -- up --former redis-cli` uses them too.
 */
import { spawn } from "child_process";
import type { Lab } from "./lab";

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
    ms: number;
}

/** Runs redis-cli with the lab's TLS material as `admin`; kills it after `timeoutMs`. */
export function redisCliAdmin(lab: Lab, args: string[], timeoutMs: number): Promise<RunResult> {
    const tlsArgs = ["--tls", "--cacert", lab.tls.caFile, "--cert", lab.tls.clientCertFile, "--key", lab.tls.clientKeyFile, "--user", "admin", "--no-auth-warning"];
    const started = performance.now();
    return new Promise((resolve, reject) => {
        const p = spawn(lab.redisCli, [...tlsArgs, ...args], {
            env: { ...process.env, REDISCLI_AUTH: lab.password("admin") },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            p.kill("SIGKILL");
        }, timeoutMs);
        p.stdout.on("data", (d) => (stdout += d));
        p.stderr.on("data", (d) => (stderr += d));
        p.on("error", (e) => {
            clearTimeout(timer);
            reject(new Error(`cannot run redis-cli (${e.message}); install the redis-tools package`));
        });
        p.on("close", (code) => {
            clearTimeout(timer);
            if (timedOut) reject(new Error(`redis-cli ${args.slice(0, 2).join(" ")} did not finish within ${timeoutMs} ms; last output: ${stdout.slice(-500)}`));
            else resolve({ code: code ?? -1, stdout, stderr, ms: performance.now() - started });
        });
    });
}

function ensureOk(what: string, r: RunResult): RunResult {
    // redis-cli --cluster prints "[ERR]" lines and may still exit 0 for some failures.
    if (r.code !== 0 || /^\[ERR\]/m.test(r.stdout)) {
        throw new Error(`redis-cli ${what} failed (exit ${r.code}): ${(r.stdout + r.stderr).split("\n").filter((l) => /ERR|error|Error/.test(l)).slice(0, 5).join(" | ") || r.stdout.slice(-400)}`);
    }
    return r;
}

const addr = (lab: Lab, i: number) => `${lab.nodes[i].host}:${lab.nodes[i].port}`;

/** `redis-cli --cluster create <nodes> --cluster-replicas R --cluster-yes`. */
export async function redisCliCreate(lab: Lab, indices: number[], replicas: number, timeoutMs = 120000): Promise<RunResult> {
    const r = await redisCliAdmin(lab, ["--cluster", "create", ...indices.map((i) => addr(lab, i)), "--cluster-replicas", String(replicas), "--cluster-yes"], timeoutMs);
    return ensureOk("--cluster create", r);
}

/** `redis-cli --cluster add-node <new> <existing>` (as an empty master). */
export async function redisCliAddNode(lab: Lab, newIndex: number, existingIndex: number, timeoutMs = 120000): Promise<RunResult> {
    const r = await redisCliAdmin(lab, ["--cluster", "add-node", addr(lab, newIndex), addr(lab, existingIndex)], timeoutMs);
    return ensureOk("--cluster add-node", r);
}

/** `redis-cli --cluster rebalance <existing> --cluster-use-empty-masters` (default pipeline 10). */
export async function redisCliRebalance(lab: Lab, existingIndex: number, extra: string[] = [], timeoutMs = 900000): Promise<RunResult> {
    const r = await redisCliAdmin(lab, ["--cluster", "rebalance", addr(lab, existingIndex), "--cluster-use-empty-masters", ...extra], timeoutMs);
    return ensureOk("--cluster rebalance", r);
}
