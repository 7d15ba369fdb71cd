/**
 * The converge agent's process: `node main.js <config.json>` (or tsx). One per node, started by a
 * systemd unit; exits 75 when it loses the lease (systemd restarts it as a contender) and 2 on a bad
 * config (named, nothing started).
 *
 * config.json (no secret in it: secrets are files the node's secret fetch wrote, mode 0600):
 *   { "holder": "vm-node0",
 *     "store": { "kind": "s3", "endpoint": "http://10.210.56.3:9000", "bucket": "b", "prefix": "converge/prod",
 *                "region": "us-east-1" },          (gcs / azure settings: agent/stores.ts)
 *     "storeCredentials": { "instance": {} },      (or { "file": "/run/redisforge/agent-store.json" })
 *     "redis": { "username": "converge", "passwordFile": "/run/redisforge/agent-password",
 *                "caFile": "...", "certFile": "...", "keyFile": "...", "tlsServername": "..." },
 *     "intervalMs": 5000, "leaseTtlMs": 30000 }
 * `instance`: the VM's own identity from the cloud's metadata service (no key on the node; its
 * `endpoint` overrides the service's address). `file`: JSON in the shape stores.ts names for the
 * kind, read again at every request (rotated keys are picked up).
 */
import * as fs from "fs";
import * as os from "os";
import { ConvergeAgent } from "./agent";
import { AgentStoreSettings, checkStoreSettings, openStore } from "./stores";

export interface AgentConfig {
    holder?: string;
    store: AgentStoreSettings;
    storeCredentials: { file: string } | { instance: { endpoint?: string; clientId?: string } };
    redis: { username: string; passwordFile: string; caFile: string; certFile?: string; keyFile?: string; tlsServername?: string };
    intervalMs?: number;
    leaseTtlMs?: number;
    convergeTimeoutMs?: number;
    /** Slots per pipelined round on the classic (< 8.4) migration path. */
    migrateSlotsPerRound?: number;
    /** node_exporter textfile the lease holder writes its metrics to. */
    metricsFile?: string;
}

/**
 * Fault injection for tests (a frozen VM at a known point): with REDISFORGE_AGENT_FREEZE_AT=<regex>
 * the agent stops itself (SIGSTOP) before the REDISFORGE_AGENT_FREEZE_NTH-th (default 1) executor
 * step whose name matches, once per REDISFORGE_AGENT_FREEZE_MARKER file (created then, shared by
 * the agents of one test so only the first one freezes). Unset in production.
 */
function freezeHook(log: (l: string) => void): ((step: string) => void) | undefined {
    const at = process.env.REDISFORGE_AGENT_FREEZE_AT;
    const marker = process.env.REDISFORGE_AGENT_FREEZE_MARKER;
    if (!at || !marker) return undefined;
    const re = new RegExp(at);
    const nth = Number(process.env.REDISFORGE_AGENT_FREEZE_NTH ?? 1);
    let seen = 0;
    return (step) => {
        if (!re.test(step) || ++seen < nth) return;
        try {
            fs.writeFileSync(marker, `${process.pid} ${step}\n`, { flag: "wx" });
        } catch {
            return; // another agent froze already
        }
        log(`fault injection: freezing before step '${step}'`);
        process.kill(process.pid, "SIGSTOP");
    };
}

const readSecretFile = (path: string, what: string): string => {
    try {
        return fs.readFileSync(path, "utf8").trim();
    } catch (e) {
        throw new Error(`${what}: cannot read ${path} (${(e as NodeJS.ErrnoException).code}); the node's secret fetch writes it`);
    }
};

export function agentFromConfig(c: AgentConfig, log?: (l: string) => void): ConvergeAgent {
    const problems: string[] = [];
    const sp = checkStoreSettings(c.store);
    if (sp) problems.push(`store: ${sp}`);
    const sc = c.storeCredentials as Record<string, unknown> | undefined;
    if (!sc || Object.keys(sc).length !== 1 || !(typeof sc.file === "string" && sc.file) === !(sc.instance && typeof sc.instance === "object")) problems.push(`storeCredentials must be {"file": "<path>"} or {"instance": {}}; got ${JSON.stringify(sc)}`);
    for (const k of ["username", "passwordFile", "caFile"] as const) if (!c.redis?.[k]) problems.push(`redis.${k} is required`);
    if (problems.length) throw new Error(`converge agent config: ${problems.join("; ")}`);
    // A renewal that hangs must not outlive the holder's ttl/2 fence by much: at most ttl/6 each.
    const store = openStore(c.store, c.storeCredentials, Math.max(1000, Math.min(10000, Math.floor((c.leaseTtlMs ?? 30000) / 6))));
    return new ConvergeAgent({
        store,
        holder: c.holder ?? os.hostname(),
        leaseTtlMs: c.leaseTtlMs,
        intervalMs: c.intervalMs,
        metricsFile: c.metricsFile,
        executor: { convergeTimeoutMs: c.convergeTimeoutMs, migrateSlotsPerRound: c.migrateSlotsPerRound, beforeStep: freezeHook(log ?? ((l) => process.stdout.write(`${new Date().toISOString()} ${l}\n`))) },
        creds: {
            username: c.redis.username,
            password: readSecretFile(c.redis.passwordFile, "redis.passwordFile"),
            tls: {
                ca: readSecretFile(c.redis.caFile, "redis.caFile"),
                cert: c.redis.certFile ? readSecretFile(c.redis.certFile, "redis.certFile") : undefined,
                key: c.redis.keyFile ? readSecretFile(c.redis.keyFile, "redis.keyFile") : undefined,
                servername: c.redis.tlsServername,
            },
        },
        log,
    });
}

if (require.main === module) {
    let agent: ConvergeAgent;
    try {
        const path = process.argv[2];
        if (!path) throw new Error("usage: main <config.json>");
        agent = agentFromConfig(JSON.parse(fs.readFileSync(path, "utf8")) as AgentConfig);
    } catch (e) {
        process.stderr.write(`converge agent: ${(e as Error).message}\n`);
        process.exit(2);
    }
    process.on("SIGTERM", () => agent.stop());
    agent.run().then((r) => process.exit(r === "lease-lost" ? 75 : 0));
}
