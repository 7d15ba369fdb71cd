/**
 * `check`: the health of a running stack, seen from an operator's machine, as named checks.
 *
 *   tls        TLS handshake with every node, verified against the stack's CA; days left on every
 *              node certificate (fails below `minCertDays`, default 30 = tlsRenewBeforeDays)
 *   auth-app   AUTH as `app` on every node
 *   data       SET / GET / DEL of a key in every shard (a key whose slot the master owns), as `app`
 *   acl-app    `app` is refused FLUSHALL (asked with ACL DRYRUN, so a wrong ACL cannot wipe data),
 *              CONFIG and KEYS (sent as `app`) on every node
 *   nodes      every node reachable and not flagged failed
 *   slots      16384 slots covered, no slot MIGRATING/IMPORTING, every node's CLUSTER NODES
 *              gives the same slot -> master map, cluster_state ok on every node
 *   replicas   every shard has replicasPerShard replicas, each linked, with its lag (bytes behind
 *              the master's offset and seconds since the last contact)
 *   zones      masters spread over the zones, no replica in its master's zone
 *   backup     age of the newest backup in the bucket; skipped where there is no bucket (local stack)
 *              or it cannot be read from here (cloud object stores need the cloud's credentials)
 *
 * The cluster logic is the cluster provider's (checkCluster, parseClusterNodes); this file only
 * sorts its findings into checks and adds what an operator checks from outside.
 */
import * as tls from "tls";
import type Redis from "ioredis";
import { checkCluster, parseClusterNodes } from "../../providers/redis-cluster/executor";
import { countSlots } from "../../providers/redis-cluster/slots";
import type { ClusterStatus } from "../../providers/redis-cluster/types";
import { NodeCreds, withNode } from "./connect";
import { keyInSlots } from "./key-slot";
import type { CheckNode, StackView } from "./stack-view";

export type CheckStatus = "pass" | "fail" | "skip";

export interface CheckResult {
    name: string;
    status: CheckStatus;
    /** One line for the table. */
    summary: string;
    /** Every finding (failures first). */
    details: string[];
    /** Machine-readable figures (cert days, lag, zones...). */
    data?: unknown;
}

export interface CheckOptions {
    /** A node certificate with fewer days left fails `tls` (default 30). */
    minCertDays?: number;
    /** Per-node connect timeout (default 3000 ms). */
    timeoutMs?: number;
}

const addr = (n: { host: string; port: number }) => `${n.host}:${n.port}`;

function result(name: string, problems: string[], okSummary: string, details: string[] = [], data?: unknown): CheckResult {
    return problems.length
        ? { name, status: "fail", summary: problems.length === 1 ? problems[0] : `${problems.length} problems: ${problems[0]}; ...`, details: [...problems, ...details], data }
        : { name, status: "pass", summary: okSummary, details, data };
}

/** One TLS handshake (client certificate presented), verified against the CA; the peer's expiry. */
function handshake(n: CheckNode, v: StackView, timeoutMs: number): Promise<{ daysLeft: number; subject: string; validTo: string }> {
    return new Promise((resolve, reject) => {
        const sock = tls.connect({ host: n.host, port: n.port, ca: v.ca, cert: v.clientCert, key: v.clientKey, rejectUnauthorized: false, servername: undefined });
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error(`no TLS handshake within ${timeoutMs} ms`));
        }, timeoutMs);
        sock.once("secureConnect", () => {
            clearTimeout(timer);
            const cert = sock.getPeerCertificate();
            const authorized = sock.authorized;
            const why = sock.authorizationError;
            sock.end();
            // Redis names nodes by IP SAN; Node checks the host name only when servername is set,
            // so the chain is verified here and the SAN below.
            if (!authorized) return reject(new Error(`certificate not signed by the stack's CA (${String(why)})`));
            const sans = String(cert.subjectaltname ?? "");
            if (!sans.split(", ").some((s) => s === `IP Address:${n.host}` || s === `DNS:${n.host}`)) return reject(new Error(`certificate SANs (${sans || "none"}) do not name ${n.host}`));
            const validTo = new Date(cert.valid_to);
            resolve({ daysLeft: Math.floor((validTo.getTime() - Date.now()) / 86_400_000), subject: String(cert.subject?.CN ?? ""), validTo: validTo.toISOString() });
        });
        sock.once("error", (e) => {
            clearTimeout(timer);
            reject(e);
        });
    });
}

async function checkTls(v: StackView, minDays: number, timeoutMs: number): Promise<CheckResult> {
    const problems: string[] = [];
    const details: string[] = [];
    const data: Record<string, unknown>[] = [];
    await Promise.all(
        v.nodes.map(async (n) => {
            try {
                const h = await handshake(n, v, timeoutMs);
                data.push({ node: n.name, address: addr(n), daysLeft: h.daysLeft, validTo: h.validTo });
                if (h.daysLeft < minDays) problems.push(`${n.name} ${addr(n)}: certificate expires in ${h.daysLeft} days (< ${minDays}); run \`pulumi up\` to re-issue it`);
                else details.push(`${n.name} ${addr(n)}: ${h.daysLeft} days left (until ${h.validTo})`);
            } catch (e) {
                data.push({ node: n.name, address: addr(n), error: (e as Error).message });
                problems.push(`${n.name} ${addr(n)}: TLS handshake failed: ${(e as Error).message}`);
            }
        }),
    );
    const days = data.map((d) => d.daysLeft as number).filter((d) => typeof d === "number");
    return result("tls", problems.sort(), `${v.nodes.length} nodes, CA verified, fewest days left ${days.length ? Math.min(...days) : "?"}`, details.sort(), data);
}

/** Runs fn on every node as `creds`; collects per-node failures. */
async function onEvery<T>(nodes: CheckNode[], creds: NodeCreds, timeoutMs: number, fn: (c: Redis, n: CheckNode) => Promise<T>): Promise<{ ok: Map<string, T>; errors: string[] }> {
    const ok = new Map<string, T>();
    const errors: string[] = [];
    await Promise.all(
        nodes.map(async (n) => {
            try {
                ok.set(n.name, await withNode(n.host, n.port, creds, (c) => fn(c, n), timeoutMs));
            } catch (e) {
                errors.push(`${n.name}: ${(e as Error).message}`);
            }
        }),
    );
    return { ok, errors: errors.sort() };
}

/** The reply error of a command, or undefined when it succeeded. */
async function refusal(p: Promise<unknown>): Promise<string | undefined> {
    try {
        await p;
        return undefined;
    } catch (e) {
        return (e as Error).message;
    }
}

export async function runChecks(v: StackView, o: CheckOptions = {}): Promise<CheckResult[]> {
    const timeoutMs = o.timeoutMs ?? 3000;
    const admin: NodeCreds = { username: "admin", password: v.adminPassword, ca: v.ca, cert: v.clientCert, key: v.clientKey };
    const app: NodeCreds = { ...admin, username: "app", password: v.appPassword };
    const results: CheckResult[] = [];

    results.push(await checkTls(v, o.minCertDays ?? 30, timeoutMs));

    // ---- auth-app
    const auth = await onEvery(v.nodes, app, timeoutMs, async (c) => String(await c.call("ACL", "WHOAMI").catch(() => "app")));
    results.push(result("auth-app", auth.errors, `AUTH as app accepted by ${auth.ok.size}/${v.nodes.length} nodes`));

    // ---- the cluster provider's view (coverage, open slots, replicas, zones, reachability)
    const spec = { nodes: v.nodes.map((n) => ({ id: n.name, host: n.host, port: n.port, zone: n.zone })), shards: v.shards, replicasPerShard: v.replicasPerShard };
    let status: ClusterStatus | undefined;
    let statusError: string | undefined;
    try {
        status = await checkCluster(spec, { username: "admin", password: v.adminPassword, tls: { ca: v.ca, cert: v.clientCert, key: v.clientKey } }, { connectTimeoutMs: timeoutMs });
    } catch (e) {
        statusError = (e as Error).message;
    }
    const problems = status?.problems ?? [`cluster status unreadable: ${statusError}`];
    const pick = (re: RegExp) => problems.filter((p) => re.test(p));

    // ---- data: a key on every shard, as app, on the master that owns its slot
    const dataProblems: string[] = [];
    const dataDone: string[] = [];
    for (const m of status?.masters ?? []) {
        const node = v.nodes.find((n) => addr(n) === m.address);
        if (!node) continue;
        try {
            await withNode(node.host, node.port, app, async (c) => {
                const ranges = parseClusterNodes(String(await c.call("CLUSTER", "NODES"))).find((x) => x.myself)?.slots ?? [];
                const key = keyInSlots("redisforge:check", (s) => ranges.some((r) => s >= r.start && s <= r.end));
                const value = `check-${Date.now()}-${Math.random().toString(36).slice(2)}`;
                await c.set(key, value, "PX", 60_000);
                const got = await c.get(key);
                const deleted = await c.del(key);
                if (got !== value) throw new Error(`GET ${key} returned ${JSON.stringify(got)}, expected the value just SET`);
                if (deleted !== 1) throw new Error(`DEL ${key} removed ${deleted} keys, expected 1`);
                dataDone.push(`${node.name}: SET/GET/DEL ${key}`);
            }, timeoutMs);
        } catch (e) {
            dataProblems.push(`shard of ${node.name} ${m.address}: ${(e as Error).message}`);
        }
    }
    if (!status?.masters.length) dataProblems.push("no master owns slots: nothing to write to");
    results.push(result("data", dataProblems, `SET/GET/DEL as app on ${dataDone.length} shards`, dataDone));

    // ---- acl-app: refused FLUSHALL (dry run by admin), CONFIG, KEYS (as app)
    const aclProblems: string[] = [];
    const dry = await onEvery(v.nodes, admin, timeoutMs, async (c) => String(await c.call("ACL", "DRYRUN", "app", "FLUSHALL")));
    for (const [name, reply] of dry.ok) if (reply === "OK") aclProblems.push(`${name}: app may run FLUSHALL (ACL DRYRUN app FLUSHALL = OK)`);
    aclProblems.push(...dry.errors.map((e) => `ACL DRYRUN: ${e}`));
    const asApp = await onEvery(v.nodes, app, timeoutMs, async (c) => ({
        config: await refusal(c.call("CONFIG", "GET", "maxmemory")),
        keys: await refusal(c.call("KEYS", "redisforge:check:*")),
    }));
    for (const [name, r] of asApp.ok) {
        if (!r.config || !/NOPERM/.test(r.config)) aclProblems.push(`${name}: app may run CONFIG (${r.config ?? "it succeeded"})`);
        if (!r.keys || !/NOPERM/.test(r.keys)) aclProblems.push(`${name}: app may run KEYS (${r.keys ?? "it succeeded"})`);
    }
    aclProblems.push(...asApp.errors);
    results.push(result("acl-app", aclProblems.sort(), `app refused FLUSHALL, CONFIG, KEYS on ${asApp.ok.size} nodes`));

    // ---- nodes
    results.push(result("nodes", pick(/unreachable|is failed/), `${v.nodes.length} nodes reachable, none flagged failed`));

    // ---- slots: coverage and open slots (provider), agreement and state (every node's own view)
    const slotProblems = pick(/slots are not covered|left (MIGRATING|IMPORTING)/);
    const views = await onEvery(v.nodes, admin, timeoutMs, async (c) => {
        const [nodesText, info] = [String(await c.call("CLUSTER", "NODES")), String(await c.call("CLUSTER", "INFO"))];
        const parsed = parseClusterNodes(nodesText);
        const owners = parsed
            .filter((x) => x.slots.length)
            .map((x) => `${addr(x)}=${x.slots.map((r) => `${r.start}-${r.end}`).join(",")}`)
            .sort()
            .join(" ");
        const covered = parsed.reduce((a, x) => a + countSlots(x.slots), 0);
        return { owners, covered, state: /cluster_state:(\w+)/.exec(info)?.[1] ?? "?" };
    });
    const signatures = new Map<string, string[]>();
    for (const [name, w] of views.ok) signatures.set(w.owners, [...(signatures.get(w.owners) ?? []), name]);
    if (signatures.size > 1) {
        const groups = [...signatures.values()].sort((a, b) => b.length - a.length);
        slotProblems.push(`nodes disagree on the slot map: ${groups.map((g) => g.join("+")).join(" vs ")} (${groups.length} different views)`);
    }
    for (const [name, w] of views.ok) {
        if (w.state !== "ok") slotProblems.push(`${name}: cluster_state:${w.state}`);
        if (w.covered !== 16384) slotProblems.push(`${name} sees ${w.covered}/16384 slots assigned`);
    }
    results.push(result("slots", slotProblems, `16384 slots covered by ${status?.masters.length ?? 0} masters, none open, ${views.ok.size} nodes agree`, [], { covered: status?.slotsCovered }));

    // ---- replicas: linked, with lag
    const replicaProblems = pick(/replica|master_link_status|masters own slots/).filter((p) => !/shares zone/.test(p));
    const repl = await onEvery(v.nodes, admin, timeoutMs, async (c) => String(await c.call("INFO", "replication")));
    const info = (name: string) => Object.fromEntries((repl.ok.get(name) ?? "").split(/\r?\n/).filter((l) => l.includes(":")).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1)]));
    const lags: Record<string, unknown>[] = [];
    for (const r of status?.replicas ?? []) {
        const rn = v.nodes.find((n) => addr(n) === r.address);
        const mn = v.nodes.find((n) => addr(n) === r.master);
        if (!rn) continue;
        const ri = info(rn.name);
        const mi = mn ? info(mn.name) : {};
        const lagBytes = mi.master_repl_offset !== undefined && ri.slave_repl_offset !== undefined ? Number(mi.master_repl_offset) - Number(ri.slave_repl_offset) : undefined;
        lags.push({ replica: rn.name, master: mn?.name ?? r.master, link: ri.master_link_status ?? "?", lagBytes, lastIoSecondsAgo: ri.master_last_io_seconds_ago !== undefined ? Number(ri.master_last_io_seconds_ago) : undefined });
    }
    const lagLines = lags.map((l) => `${l.replica} -> ${l.master}: link ${l.link}, ${l.lagBytes ?? "?"} bytes behind, last contact ${l.lastIoSecondsAgo ?? "?"} s ago`);
    const maxLag = Math.max(0, ...lags.map((l) => Number(l.lagBytes ?? 0)));
    results.push(result("replicas", replicaProblems, `${lags.length} replicas linked, max lag ${maxLag} bytes`, lagLines, lags));

    // ---- zones
    const zoneOf = new Map(v.nodes.map((n) => [addr(n), n.zone]));
    const zoneData = {
        masters: (status?.masters ?? []).map((m) => ({ node: m.id, zone: m.zone ?? zoneOf.get(m.address) })),
        replicas: (status?.replicas ?? []).map((r) => ({ node: r.id, zone: r.zone ?? zoneOf.get(r.address), masterZone: zoneOf.get(r.master) })),
    };
    const zoneLines = [
        `masters: ${zoneData.masters.map((m) => `${m.node}@${m.zone}`).join(", ")}`,
        `replicas: ${zoneData.replicas.map((r) => `${r.node}@${r.zone} (master in ${r.masterZone})`).join(", ")}`,
    ];
    const perZone = new Map<string, number>();
    for (const m of zoneData.masters) perZone.set(String(m.zone), (perZone.get(String(m.zone)) ?? 0) + 1);
    results.push(result("zones", pick(/shares zone|crowded/), `masters per zone ${[...perZone].map(([z, c]) => `${z}=${c}`).join(" ")}; no replica in its master's zone`, zoneLines, zoneData));

    // ---- backup
    results.push(
        v.bucket
            ? { name: "backup", status: "skip", summary: `bucket ${v.bucket} not read: the cloud's object store needs its credentials, which this check does not use; see the RedisForgeBackupStale alert (redisforge_backup_last_success_timestamp_seconds)`, details: [] }
            : { name: "backup", status: "skip", summary: `stack ${v.cloud} has no bucket output (the local stack keeps no backups)`, details: [] },
    );
    return results;
}

/** The failed checks' names. */
export const failedChecks = (rs: CheckResult[]) => rs.filter((r) => r.status === "fail").map((r) => r.name);

/** The summary table (one row per check; details of failed checks below it). */
export function formatChecks(rs: CheckResult[], verbose = false): string {
    const w = Math.max(...rs.map((r) => r.name.length), 5);
    const lines = [`${"check".padEnd(w)}  status  summary`, `${"-".repeat(w)}  ------  -------`];
    for (const r of rs) lines.push(`${r.name.padEnd(w)}  ${r.status.toUpperCase().padEnd(6)}  ${r.summary}`);
    for (const r of rs) {
        const show = r.status === "fail" ? r.details : verbose ? r.details : [];
        if (show.length) lines.push("", `${r.name}:`, ...show.map((d) => `  - ${d}`));
    }
    const failed = failedChecks(rs);
    lines.push("", failed.length ? `FAILED: ${failed.join(", ")}` : `all ${rs.filter((r) => r.status === "pass").length} checks passed${rs.some((r) => r.status === "skip") ? ` (${rs.filter((r) => r.status === "skip").map((r) => r.name).join(", ")} skipped)` : ""}`);
    return lines.join("\n");
}
