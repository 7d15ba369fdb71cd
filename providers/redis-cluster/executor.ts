/**
 * The RedisCluster executor: talks to real nodes with ioredis over TLS as the admin ACL user.
 *
 * Shape (after redis-cli's cluster manager, minus its weaknesses): probe every node -> check
 * preconditions -> plan (pure planner) -> execute -> wait for convergence (bounded, with a
 * diagnosis) -> check again. Every step reads the live state first and does only what is
 * missing, so an interrupted run is finished by the next one (`converge` is the one entry).
 *
 * ioredis is required inside functions (not at module top) so the dynamic provider can be
 * serialised by pulumi.runtime.serializeFunction and still load it at run time.
 *
 * Server versions: slot migration uses atomic `CLUSTER MIGRATION IMPORT/STATUS/CANCEL` when
 * EVERY node reports redis_version >= 8.4, the classic SETSLOT IMPORTING/MIGRATING + pipelined
 * `MIGRATE ... KEYS` path otherwise. The machines the tests run on have 7.0.15, so only the
 * classic path is exercised there.
 */
import type { Redis as RedisClient, RedisOptions } from "ioredis";
import * as net from "net";
import * as tls from "tls";
import { ClusterPlanError, countSlots, expandRanges, planPlacement, planReshape, toRanges, validateSpec } from "./planner";
import {
    CLUSTER_SLOTS,
    ClusterCredentials,
    ClusterNodeSpec,
    ClusterSpec,
    ClusterStatus,
    LiveNode,
    LiveTopology,
    Logger,
    nodeAddress,
    OpenSlot,
    ProgressEvent,
    ReshapeStep,
    SlotRange,
} from "./types";

/** Tunables of the executor. Every wait is bounded by one of these. */
export interface ExecutorOptions {
    /** Per-connection connect timeout, ms. Default 5000. */
    connectTimeoutMs?: number;
    /** Deadline for the cluster to converge (all nodes agree, cluster_state:ok, replicas linked), ms. Default 60000. */
    convergeTimeoutMs?: number;
    /** Poll interval of every wait, ms. Default 50. */
    pollIntervalMs?: number;
    /** Keys per MIGRATE command (classic path). Default 1000. */
    migrateBatchKeys?: number;
    /** Slots handled together in one pipelined round (classic path). Default 128. */
    migrateSlotsPerRound?: number;
    /** MIGRATE timeout, ms. Default 10000. */
    migrateTimeoutMs?: number;
    /** Use CLUSTER MIGRATION when every node is >= 8.4. Default true. */
    atomicMigration?: boolean;
    /**
     * During create only, on masters that hold no keys: set repl-diskless-sync-delay to 0 until
     * their replicas are linked, then restore the node's value. Default true.
     */
    fastInitialSync?: boolean;
    /**
     * While forming (create) and while a new node joins (reshape MEET): cluster-node-timeout on
     * those nodes, ms, so the server's rejoin delay (min(cluster-node-timeout, 5 s) before a master
     * that was alone reports cluster_state:ok) is short. Each node's own value is restored when the
     * step is done (a crash in between leaves it until the node restarts). 0 disables. Default 1000.
     */
    formationNodeTimeoutMs?: number;
    /** Addresses (host:port) that belonged to this cluster in an earlier run (from the provider's state). */
    formerNodes?: string[];
    log?: Logger;
    onProgress?: (e: ProgressEvent) => void;
    /**
     * Called before every step with a short name (e.g. `addslots node0`, `migrate-round 3`);
     * throwing aborts the run there, as a crash would. Used by tests to prove resumability.
     */
    beforeStep?: (step: string) => void | Promise<void>;
}

export const EXECUTOR_DEFAULTS: Required<Omit<ExecutorOptions, "formerNodes" | "log" | "onProgress" | "beforeStep">> = {
    connectTimeoutMs: 5000,
    convergeTimeoutMs: 60000,
    pollIntervalMs: 50,
    migrateBatchKeys: 1000,
    migrateSlotsPerRound: 128,
    migrateTimeoutMs: 10000,
    atomicMigration: true,
    fastInitialSync: true,
    formationNodeTimeoutMs: 1000,
};

/** An executor failure that names the node and the step. */
// Classes here declare no field initializers or parameter properties: serializeFunction rebuilds a
// class from its constructor text, and ES2022 class fields would be lost on the engine side.

/** An executor failure naming the node and the step: a plain Error (see ClusterPlanError) with `node` and `step`. */
export interface ClusterExecError extends Error {
    node?: string;
    step?: string;
}
export function ClusterExecError(message: string, node?: string, step?: string): ClusterExecError {
    const e = new Error(message) as ClusterExecError;
    e.name = "ClusterExecError";
    e.node = node;
    e.step = step;
    return e;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// CLUSTER NODES parsing (pure)

export interface ParsedNode {
    id: string;
    host: string;
    port: number;
    busPort: number;
    flags: string[];
    myself: boolean;
    master: boolean;
    masterId?: string;
    failed: boolean;
    handshake: boolean;
    connected: boolean;
    configEpoch: number;
    slots: SlotRange[];
    migrating: { slot: number; to: string }[];
    importing: { slot: number; from: string }[];
}

/** Parses the text of CLUSTER NODES. */
export function parseClusterNodes(text: string): ParsedNode[] {
    const out: ParsedNode[] = [];
    for (const line of text.split("\n")) {
        const f = line.trim().split(" ");
        if (f.length < 8) continue;
        const [id, addr, flagStr, master, , , epoch, link, ...slotArgs] = f;
        const m = /^(.*):(\d+)@(\d+)/.exec(addr);
        const flags = flagStr.split(",");
        const n: ParsedNode = {
            id,
            host: m ? m[1] : "",
            port: m ? Number(m[2]) : 0,
            busPort: m ? Number(m[3]) : 0,
            flags,
            myself: flags.includes("myself"),
            master: flags.includes("master"),
            masterId: master !== "-" ? master : undefined,
            failed: flags.includes("fail") || flags.includes("fail?") || flags.includes("noaddr"),
            handshake: flags.includes("handshake"),
            connected: link === "connected",
            configEpoch: Number(epoch),
            slots: [],
            migrating: [],
            importing: [],
        };
        for (const s of slotArgs) {
            let mm: RegExpExecArray | null;
            if ((mm = /^\[(\d+)->-([0-9a-f]+)\]$/.exec(s))) n.migrating.push({ slot: Number(mm[1]), to: mm[2] });
            else if ((mm = /^\[(\d+)-<-([0-9a-f]+)\]$/.exec(s))) n.importing.push({ slot: Number(mm[1]), from: mm[2] });
            else if ((mm = /^(\d+)-(\d+)$/.exec(s))) n.slots.push({ start: Number(mm[1]), end: Number(mm[2]) });
            else if ((mm = /^(\d+)$/.exec(s))) n.slots.push({ start: Number(mm[1]), end: Number(mm[1]) });
        }
        out.push(n);
    }
    return out;
}

function parseInfo(text: string): Record<string, string> {
    const o: Record<string, string> = {};
    for (const line of text.split("\n")) {
        const i = line.indexOf(":");
        if (i > 0 && !line.startsWith("#")) o[line.slice(0, i)] = line.slice(i + 1).trim();
    }
    return o;
}

export function versionAtLeast(v: string, major: number, minor: number): boolean {
    const [a, b] = v.split(".").map(Number);
    return a > major || (a === major && b >= minor);
}

// ---------------------------------------------------------------------------------------------
// Connections

interface Target {
    host: string;
    port: number;
    /** Name used in messages: spec id + address. */
    label: string;
}

/** Opens and remembers one client per address; closeAll() in `finally`. */
class Pool {
    declare private clients: Map<string, RedisClient>;
    declare private creds: ClusterCredentials;
    declare private opts: ExecutorOptions;
    constructor(creds: ClusterCredentials, opts: ExecutorOptions) {
        this.clients = new Map();
        this.creds = creds;
        this.opts = opts;
    }

    async get(t: Target): Promise<RedisClient> {
        const addr = nodeAddress(t);
        const existing = this.clients.get(addr);
        if (existing && existing.status === "ready") return existing;
        if (existing) existing.disconnect();
        // Required here, not at module top: serializeFunction captures this module's functions.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const Redis = require("ioredis");
        const options: RedisOptions = {
            host: t.host,
            port: t.port,
            username: this.creds.username,
            password: this.creds.password,
            tls: {
                ca: this.creds.tls.ca,
                cert: this.creds.tls.cert,
                key: this.creds.tls.key,
                servername: this.creds.tls.servername,
                rejectUnauthorized: true,
            },
            lazyConnect: true,
            connectTimeout: this.opts.connectTimeoutMs ?? EXECUTOR_DEFAULTS.connectTimeoutMs,
            maxRetriesPerRequest: 0,
            retryStrategy: () => null,
            enableOfflineQueue: false,
            enableReadyCheck: true, // connect() resolves only after AUTH and INFO succeeded
            commandTimeout: Math.max(30000, (this.opts.migrateTimeoutMs ?? EXECUTOR_DEFAULTS.migrateTimeoutMs) * 3),
        };
        const client: RedisClient = new Redis(options);
        // ioredis rejects connect() with a bare "Connection is closed." on TLS/auth failures; the
        // cause arrives as an 'error' event, so keep the last one for the message.
        let lastError: Error | undefined;
        client.on("error", (e: Error) => (lastError = e));
        this.clients.set(addr, client);
        try {
            await client.connect();
        } catch (e) {
            this.clients.delete(addr);
            client.disconnect();
            const cause = lastError && /Connection is closed/.test((e as Error)?.message ?? "") ? lastError : e;
            throw ClusterExecError(`${t.label}: cannot connect as ACL user "${this.creds.username}": ${explainConnectError(cause)}`, addr, "connect");
        }
        return client;
    }

    username(): string {
        return this.creds.username;
    }

    connectTimeoutMs(): number {
        return this.opts.connectTimeoutMs ?? EXECUTOR_DEFAULTS.connectTimeoutMs;
    }

    /** Forgets (and disconnects) the client of one address, e.g. after it stopped answering. */
    drop(t: Target): void {
        const addr = nodeAddress(t);
        const c = this.clients.get(addr);
        this.clients.delete(addr);
        c?.disconnect();
    }

    async closeAll(): Promise<void> {
        const all = [...this.clients.values()];
        this.clients.clear();
        await Promise.all(
            all.map(async (c) => {
                let timer: NodeJS.Timeout | undefined;
                try {
                    await Promise.race([c.quit(), new Promise((r) => (timer = setTimeout(r, 1000)))]);
                } catch {
                    /* already gone */
                } finally {
                    clearTimeout(timer);
                }
                c.disconnect();
            }),
        );
    }
}

function explainConnectError(e: unknown): string {
    const msg = (e as Error)?.message ?? String(e);
    if (/WRONGPASS|NOAUTH|invalid username-password/i.test(msg)) return `${msg} (wrong admin password or user; check the admin credentials)`;
    if (/certificate|self.signed|unable to verify|SSL|TLS|alert/i.test(msg)) return `TLS handshake failed: ${msg} (check the CA certificate and the client certificate/key)`;
    if (/ECONNREFUSED/.test(msg)) return `${msg} (nothing listens on that port: is redis-server running there?)`;
    if (/ETIMEDOUT|timeout/i.test(msg)) return `${msg} (no answer: firewall or wrong address?)`;
    return msg;
}

// ---------------------------------------------------------------------------------------------
// Probing

export interface NodeProbe {
    target: Target;
    addr: string;
    spec?: ClusterNodeSpec;
    ok: boolean;
    error?: string;
    version?: string;
    clusterEnabled?: boolean;
    myId?: string;
    view?: ParsedNode[];
    me?: ParsedNode;
    dbsize?: number;
    clusterInfo?: Record<string, string>;
    replication?: Record<string, string>;
}

/** One probe, bounded: a node that accepts TCP but never answers (stopped, overloaded) counts as unreachable. */
async function probeOne(pool: Pool, t: Target, spec?: ClusterNodeSpec): Promise<NodeProbe> {
    const limit = 2 * pool.connectTimeoutMs();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<NodeProbe>((resolve) => {
        timer = setTimeout(() => {
            pool.drop(t);
            resolve({ target: t, addr: nodeAddress(t), spec, ok: false, error: `${t.label}: no answer within ${limit} ms (process stopped or overloaded?)` });
        }, limit);
    });
    try {
        return await Promise.race([probeOnce(pool, t, spec), timeout]);
    } finally {
        clearTimeout(timer);
    }
}

async function probeOnce(pool: Pool, t: Target, spec?: ClusterNodeSpec): Promise<NodeProbe> {
    const addr = nodeAddress(t);
    try {
        const c = await pool.get(t);
        const p = c.pipeline();
        p.info("server");
        p.info("cluster");
        const res = await p.exec();
        for (const [err] of res!) if (err) throw err; // e.g. WRONGPASS surfacing on the first command
        const server = parseInfo(String(res![0][1]));
        const clusterEnabled = parseInfo(String(res![1][1])).cluster_enabled === "1";
        const probe: NodeProbe = { target: t, addr, spec, ok: true, version: server.redis_version, clusterEnabled };
        if (!clusterEnabled) return probe;
        const q = c.pipeline();
        q.cluster("NODES");
        q.dbsize();
        q.cluster("INFO");
        q.info("replication");
        const r2 = await q.exec();
        for (const [err] of r2!) if (err) throw err;
        probe.view = parseClusterNodes(String(r2![0][1]));
        probe.me = probe.view.find((n) => n.myself);
        probe.myId = probe.me?.id;
        probe.dbsize = Number(r2![1][1]);
        probe.clusterInfo = parseInfo(String(r2![2][1]));
        probe.replication = parseInfo(String(r2![3][1]));
        return probe;
    } catch (e) {
        const msg = (e as Error)?.name === "ClusterExecError" ? (e as Error).message : `${t.label}: cannot connect as ACL user "${pool.username()}": ${explainConnectError(e)}`;
        return { target: t, addr, spec, ok: false, error: msg };
    }
}

const specTarget = (n: ClusterNodeSpec): Target => ({ host: n.host, port: n.port, label: `${n.id} ${nodeAddress(n)}` });

async function probeAll(pool: Pool, nodes: ClusterNodeSpec[]): Promise<NodeProbe[]> {
    return Promise.all(nodes.map((n) => probeOne(pool, specTarget(n), n)));
}

/** Members a node knows (not in handshake, with an address). */
function knownMembers(p: NodeProbe): ParsedNode[] {
    return (p.view ?? []).filter((n) => !n.handshake && n.host && !n.flags.includes("noaddr"));
}

// ---------------------------------------------------------------------------------------------
// Topology

/**
 * Reads the live topology seen from `nodes` (spec nodes; members found in their views are probed
 * too). A member is healthy only if the executor reaches its address AND finds the same node id
 * there; a fresh process at a dead node's address does not revive the old member.
 */
export async function readTopology(nodes: ClusterNodeSpec[], creds: ClusterCredentials, opts: ExecutorOptions = {}): Promise<LiveTopology> {
    const pool = new Pool(creds, opts);
    try {
        const probes = await probeAll(pool, nodes);
        return (await topologyFromProbes(pool, probes, nodes)).topology;
    } finally {
        await pool.closeAll();
    }
}

interface TopologyView {
    topology: LiveTopology;
    /** Probes of every member reached (spec and non-spec), by address. */
    probes: Map<string, NodeProbe>;
}

async function topologyFromProbes(pool: Pool, specProbes: NodeProbe[], nodes: ClusterNodeSpec[]): Promise<TopologyView> {
    const specByAddr = new Map(nodes.map((n) => [nodeAddress(n), n]));
    const probes = new Map(specProbes.map((p) => [p.addr, p]));
    // The main view: the reachable spec node that knows the most members (ties: spec order).
    const members = specProbes.filter((p) => p.ok && p.view && (knownMembers(p).length > 1 || countSlots(p.me?.slots ?? []) > 0));
    members.sort((a, b) => knownMembers(b).length - knownMembers(a).length);
    const main = members[0];
    if (!main) return { topology: { nodes: [], openSlots: [] }, probes };
    // Keep `noaddr` members: Redis flags a member so when a different node answers at its address
    // (a replaced machine); they must be forgotten, not ignored.
    const view = (main.view ?? []).filter((n) => !n.handshake);
    // Probe members outside the spec (leaving nodes) so their health and open slots are known.
    const extra = view.filter((n) => n.host && n.port && !probes.has(nodeAddress(n)));
    const extraProbes = await Promise.all(extra.map((n) => probeOne(pool, { host: n.host, port: n.port, label: `(not in spec) ${nodeAddress(n)}` })));
    for (const p of extraProbes) probes.set(p.addr, p);
    const liveNodes: LiveNode[] = [];
    const openSlots = new Map<number, OpenSlot>();
    for (const n of view) {
        const addr = nodeAddress(n);
        const p = probes.get(addr);
        const healthy = !!p?.ok && p.myId === n.id && !n.flags.includes("fail") && !n.flags.includes("noaddr");
        // Ownership as the node itself claims it when reachable (its own view is the freshest).
        const self = healthy ? p!.me! : n;
        const s = specByAddr.get(addr);
        liveNodes.push({
            nodeId: n.id,
            host: n.host,
            port: n.port,
            busPort: n.busPort,
            role: self.master ? "master" : "replica",
            masterId: self.masterId,
            slots: self.master ? self.slots : [],
            failed: !healthy,
            specId: s?.id,
            zone: s?.zone,
        });
        if (healthy) {
            for (const m of p!.me!.migrating) {
                const o = openSlots.get(m.slot) ?? { slot: m.slot };
                o.migratingOn = n.id;
                o.peer = o.peer ?? m.to;
                openSlots.set(m.slot, o);
            }
            for (const m of p!.me!.importing) {
                const o = openSlots.get(m.slot) ?? { slot: m.slot };
                o.importingOn = n.id;
                o.peer = o.peer ?? m.from;
                openSlots.set(m.slot, o);
            }
        }
    }
    // Two masters claiming one slot (interrupted migration finalised on one side only): the
    // higher config epoch wins in Redis; the planner only needs each slot once.
    const seen = new Set<number>();
    for (const n of liveNodes.filter((x) => !x.failed).concat(liveNodes.filter((x) => x.failed))) {
        const keep: number[] = [];
        for (const s of expandRanges(n.slots)) if (!seen.has(s)) { seen.add(s); keep.push(s); }
        n.slots = toRanges(keep);
    }
    return { topology: { nodes: liveNodes, openSlots: [...openSlots.values()].sort((a, b) => a.slot - b.slot) }, probes };
}

// ---------------------------------------------------------------------------------------------
// Convergence

interface ConvergeTarget {
    /** Addresses that must all be members and agree. */
    members: ClusterNodeSpec[];
    /** Replica address -> master address. */
    replicaOf: Map<string, string>;
    /** Require every slot covered. */
    fullCoverage: boolean;
}

function slotSignature(view: ParsedNode[]): string {
    const owners = view
        .filter((n) => n.master && n.slots.length && !n.handshake)
        .map((n) => `${n.id}:${n.slots.map((r) => `${r.start}-${r.end}`).join(",")}`)
        .sort();
    return owners.join(";");
}

/** Why the cluster has not converged: which node cannot see which, and whether the bus port answers TLS. */
async function diagnose(pool: Pool, want: ConvergeTarget, creds: ClusterCredentials, connectTimeoutMs: number): Promise<string> {
    const probes = await probeAll(pool, want.members);
    const lines: string[] = [];
    const ids = new Map<string, string>();
    for (const p of probes) if (p.myId) ids.set(p.myId, p.addr);
    for (const p of probes) {
        if (!p.ok) { lines.push(`${p.target.label}: unreachable: ${p.error}`); continue; }
        const known = new Map(knownMembers(p).map((n) => [nodeAddress(n), n]));
        for (const q of probes) {
            if (q === p || !q.ok) continue;
            const n = known.get(q.addr);
            if (!n) {
                const hs = (p.view ?? []).find((x) => x.handshake && nodeAddress(x) === q.addr);
                lines.push(`${p.target.label} cannot see ${q.target.label}${hs ? " (stuck in handshake: the cluster bus connection is not completing)" : " (unknown node: MEET not received)"}`);
            } else if (n.failed) lines.push(`${p.target.label} marks ${q.target.label} as ${n.flags.filter((f) => f.startsWith("fail")).join(",")}`);
            else if (!n.connected) lines.push(`${p.target.label} has no bus link to ${q.target.label}`);
            else if (n.id !== q.myId) lines.push(`${p.target.label} knows ${q.addr} as ${n.id} but the node there is ${q.myId} (stale member: forget it)`);
        }
        const ref = probes.find((x) => x.ok && x.view);
        if (ref && ref !== p && p.view && slotSignature(p.view) !== slotSignature(ref.view!)) {
            lines.push(`${p.target.label} disagrees with ${ref.target.label} on the slot map: ${slotSignature(p.view)} vs ${slotSignature(ref.view!)}`);
        }
        if (p.clusterInfo?.cluster_state !== "ok") lines.push(`${p.target.label}: cluster_state:${p.clusterInfo?.cluster_state} (slots assigned ${p.clusterInfo?.cluster_slots_assigned}, ok ${p.clusterInfo?.cluster_slots_ok})`);
        const master = want.replicaOf.get(p.addr);
        if (master && p.replication?.master_link_status !== "up") lines.push(`${p.target.label}: replica of ${master}, master_link_status:${p.replication?.master_link_status ?? "?"}`);
        // Bus port: TCP then TLS handshake from here with the same CA.
        if (p.me?.busPort) lines.push(`${p.target.label}: bus port ${p.me.busPort}: ${await checkBusPort(p.target.host, p.me.busPort, creds, connectTimeoutMs)}`);
    }
    return lines.join("\n  ");
}

function checkBusPort(host: string, port: number, creds: ClusterCredentials, timeoutMs: number): Promise<string> {
    return new Promise((resolve) => {
        const sock = net.connect({ host, port });
        const timer = setTimeout(() => { sock.destroy(); resolve("TCP connect timed out (firewall?)"); }, timeoutMs);
        sock.on("error", (e) => { clearTimeout(timer); resolve(`TCP connect failed: ${e.message}`); });
        sock.on("connect", () => {
            const t = tls.connect({ socket: sock, ca: creds.tls.ca, cert: creds.tls.cert, key: creds.tls.key, servername: creds.tls.servername, rejectUnauthorized: true });
            t.on("secureConnect", () => { clearTimeout(timer); t.destroy(); resolve("reachable, TLS handshake ok"); });
            t.on("error", (e) => { clearTimeout(timer); t.destroy(); resolve(`TLS handshake failed: ${e.message}`); });
        });
    });
}

async function waitConverged(pool: Pool, want: ConvergeTarget, creds: ClusterCredentials, o: Resolved, what: string): Promise<void> {
    const deadline = Date.now() + o.convergeTimeoutMs;
    let last = "";
    for (let i = 0; Date.now() < deadline && i < 1e6; i++) {
        const probes = await probeAll(pool, want.members);
        last = convergeProblem(probes, want) ?? "";
        if (!last) return;
        await sleep(o.pollIntervalMs);
    }
    const diag = await diagnose(pool, want, creds, o.connectTimeoutMs);
    throw ClusterExecError(
        `${what}: the cluster did not converge within ${Math.round(o.convergeTimeoutMs / 1000)} s (last problem: ${last}). Diagnosis:\n  ${diag || "(no node-level problem found)"}`,
        undefined,
        "converge",
    );
}

function convergeProblem(probes: NodeProbe[], want: ConvergeTarget): string | null {
    const ids = new Set<string>();
    for (const p of probes) {
        if (!p.ok) return `${p.target.label} unreachable`;
        ids.add(p.myId!);
    }
    let sig: string | null = null;
    for (const p of probes) {
        const known = knownMembers(p);
        for (const id of ids) {
            const n = known.find((k) => k.id === id);
            if (!n) return `${p.target.label} does not know ${id}`;
            if (n.failed) return `${p.target.label} marks ${nodeAddress(n)} failed`;
        }
        if ((p.view ?? []).some((n) => n.handshake)) return `${p.target.label} has nodes in handshake`;
        const s = slotSignature(p.view!);
        if (sig === null) sig = s;
        else if (s !== sig) return `${p.target.label} disagrees on the slot map`;
        if (want.fullCoverage && p.clusterInfo?.cluster_state !== "ok") return `${p.target.label} cluster_state:${p.clusterInfo?.cluster_state}`;
        const m = want.replicaOf.get(p.addr);
        if (m) {
            const mp = probes.find((x) => x.addr === m);
            if (p.me?.masterId !== mp?.myId) return `${p.target.label} is not yet a replica of ${m}`;
            if (p.replication?.master_link_status !== "up") return `${p.target.label} master_link_status:${p.replication?.master_link_status}`;
        }
    }
    return null;
}

// ---------------------------------------------------------------------------------------------
// converge

interface Resolved extends Required<Omit<ExecutorOptions, "formerNodes" | "log" | "onProgress" | "beforeStep">> {
    log: Logger;
    progress: (e: ProgressEvent) => void;
    step: (name: string) => Promise<void>;
    formerNodes: Set<string>;
}

function resolve(opts: ExecutorOptions): Resolved {
    return {
        ...EXECUTOR_DEFAULTS,
        ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
        log: opts.log ?? (() => undefined),
        progress: opts.onProgress ?? (() => undefined),
        step: async (name: string) => {
            if (opts.beforeStep) await opts.beforeStep(name);
        },
        formerNodes: new Set(opts.formerNodes ?? []),
    } as Resolved;
}

/**
 * Makes the live cluster match `spec`: forms it when the nodes are empty, finishes an interrupted
 * run, or reshapes (add/remove shards and replicas, replace dead nodes, move masters between
 * zones). Checks preconditions on every node before changing anything. Returns the checked status.
 */
export async function converge(spec: ClusterSpec, creds: ClusterCredentials, opts: ExecutorOptions = {}): Promise<ClusterStatus> {
    validateSpec(spec);
    const o = resolve(opts);
    const placement = planPlacement(spec); // throws on zone problems before any I/O
    for (const d of placement.degradations) o.log(`zone degradation: ${d}`);
    const pool = new Pool(creds, opts);
    try {
        o.progress({ phase: "probe", message: `probing ${spec.nodes.length} nodes` });
        const probes = await probeAll(pool, spec.nodes);
        preflight(spec, probes, o);
        const mode = chooseMode(spec, probes, placement);
        o.log(`mode: ${mode}`);
        if (mode === "create") await createCluster(pool, spec, probes, placement, creds, o);
        else await reshapeCluster(pool, spec, probes, creds, o);
        return await statusFromPool(pool, spec, o);
    } finally {
        await pool.closeAll();
    }
}

/** Every node answers, is cluster-enabled, and is empty or already one of ours. Throws before any change. */
function preflight(spec: ClusterSpec, probes: NodeProbe[], o: Resolved): void {
    const problems: string[] = [];
    const specAddrs = new Set(spec.nodes.map(nodeAddress));
    for (const p of probes) {
        if (!p.ok) { problems.push(p.error!); continue; }
        if (!p.clusterEnabled) { problems.push(`${p.target.label}: cluster-enabled is not yes; set cluster-enabled yes in redis.conf and restart it`); continue; }
        if (!p.me) { problems.push(`${p.target.label}: CLUSTER NODES has no "myself" line`); continue; }
    }
    if (problems.length) throw ClusterExecError(`RedisCluster preflight failed, nothing was changed:\n  - ${problems.join("\n  - ")}`, undefined, "preflight");
    // Group spec nodes into clusters by who knows whom.
    const idOf = new Map(probes.map((p) => [p.addr, p.myId!]));
    const specIds = new Set(idOf.values());
    const byId = new Map(probes.map((p) => [p.myId!, p]));
    const comp = new Map<string, number>();
    let next = 0;
    for (const p of probes) {
        if (comp.has(p.myId!)) continue;
        const c = next++;
        const stack = [p];
        comp.set(p.myId!, c);
        while (stack.length) {
            const x = stack.pop()!;
            for (const n of knownMembers(x)) {
                const y = byId.get(n.id);
                if (y && !comp.has(n.id)) { comp.set(n.id, c); stack.push(y); }
            }
        }
    }
    const groups = new Map<number, NodeProbe[]>();
    for (const p of probes) groups.set(comp.get(p.myId!)!, [...(groups.get(comp.get(p.myId!)!) ?? []), p]);
    // A group is "formed" if its nodes know others or own slots; ours is the one whose live
    // members are at least half spec nodes (or former members of this cluster).
    let ours: number | null = null;
    for (const [c, ps] of groups) {
        const members = new Map<string, ParsedNode>();
        for (const p of ps) for (const n of knownMembers(p)) if (!n.failed) members.set(n.id, n);
        const outsiders = [...members.values()].filter((n) => !specIds.has(n.id) && !specAddrs.has(nodeAddress(n)) && !o.formerNodes.has(nodeAddress(n)));
        const formed = members.size > 1 || ps.some((p) => countSlots(p.me!.slots) > 0);
        if (!formed) {
            const p = ps[0];
            if (p.dbsize! > 0) problems.push(`${p.target.label}: holds ${p.dbsize} keys but is not a member of this cluster; only empty nodes can join. FLUSHALL it (if the data is not needed) or remove it from the spec`);
            continue;
        }
        if (outsiders.length > 0 && outsiders.length * 2 > members.size) {
            for (const p of ps) {
                problems.push(
                    `${p.target.label}: is already in another cluster (it knows ${outsiders.slice(0, 3).map(nodeAddress).join(", ")}${outsiders.length > 3 ? ", ..." : ""}, not in this spec). ` +
                        `Remove it from the spec, or CLUSTER RESET it if that cluster is gone`,
                );
            }
            continue;
        }
        if (ps.length === 1 && members.size === 1) continue; // a lone node that owns slots: an interrupted create, judged by chooseMode
        if (ours !== null) {
            problems.push(`spec nodes belong to two different clusters (${groups.get(ours)!.map((p) => p.target.label).join(", ")}) and (${ps.map((p) => p.target.label).join(", ")}); join them by hand or fix the spec`);
        } else ours = c;
    }
    if (problems.length) throw ClusterExecError(`RedisCluster preflight failed, nothing was changed:\n  - ${problems.join("\n  - ")}`, undefined, "preflight");
}

/**
 * "create" when every node is on the fresh-create path (owns nothing or only part of its planned
 * slots, knows only nodes of the plan, no open slots); this path is forward-idempotent. "reshape"
 * otherwise.
 */
function chooseMode(spec: ClusterSpec, probes: NodeProbe[], placement: ReturnType<typeof planPlacement>): "create" | "reshape" {
    const specById = new Map(spec.nodes.map((n) => [n.id, n]));
    const plannedSlots = new Map<string, Set<number>>();
    const used = new Set<string>();
    for (const s of placement.shards) {
        plannedSlots.set(nodeAddress(specById.get(s.master)!), new Set(expandRanges(s.slots)));
        used.add(nodeAddress(specById.get(s.master)!));
        for (const r of s.replicas) used.add(nodeAddress(specById.get(r)!));
    }
    const ids = new Map(probes.map((p) => [p.myId!, p.addr]));
    // A formed cluster (some node reports cluster_state:ok) is reshaped, never re-created: the
    // placement of a changed spec may pair replicas differently, and moving them is churn.
    if (probes.some((p) => p.clusterInfo?.cluster_state === "ok")) return "reshape";
    for (const p of probes) {
        const me = p.me!;
        if (me.migrating.length || me.importing.length) return "reshape";
        // A fresh node (knows only itself, owns nothing) fits any plan, spare or not.
        if (knownMembers(p).length <= 1 && me.slots.length === 0 && !me.masterId) continue;
        for (const n of knownMembers(p)) {
            const addr = ids.get(n.id);
            if (!addr || nodeAddress(n) !== addr || !used.has(addr)) return "reshape";
            if (n.failed) return "reshape";
            if (n.master && n.slots.length) {
                const plan = plannedSlots.get(addr);
                if (!plan) return "reshape";
                for (const s of expandRanges(n.slots)) if (!plan.has(s)) return "reshape";
            }
        }
    }
    return "create";
}

/** A runtime CONFIG value changed for speed, with the node's own value to put back. */
interface SavedConfig {
    target: Target;
    param: string;
    value: string;
}

/** CONFIG SET param=value where it differs; returns what to restore. Failures are logged, not fatal. */
async function overrideConfig(pool: Pool, targets: Target[], param: string, value: string, o: Resolved): Promise<SavedConfig[]> {
    const saved: SavedConfig[] = [];
    await Promise.all(
        targets.map(async (t) => {
            try {
                const c = await pool.get(t);
                const cur = (await c.config("GET", param)) as string[];
                if (cur[1] !== undefined && cur[1] !== value) {
                    await c.config("SET", param, value);
                    saved.push({ target: t, param, value: cur[1] });
                    o.log(`CONFIG SET ${param} ${value} on ${t.label} (was ${cur[1]}; restored when done)`);
                }
            } catch (e) {
                o.log(`could not set ${param}=${value} on ${t.label}: ${(e as Error).message}`);
            }
        }),
    );
    return saved;
}

/** Rejects after `ms` (and clears its timer when `p` settles first). */
async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
        return await Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]);
    } finally {
        clearTimeout(timer);
    }
}

async function restoreConfig(pool: Pool, saved: SavedConfig[], o: Resolved): Promise<void> {
    await Promise.all(
        saved.map(async (s) => {
            try {
                // Bounded: a node that stopped answering must not hold up the error that ends this run.
                await bounded(
                    (async () => {
                        const c = await pool.get(s.target);
                        await c.config("SET", s.param, s.value);
                    })(),
                    2 * pool.connectTimeoutMs(),
                    `CONFIG SET ${s.param}`,
                );
            } catch (e) {
                o.log(`could not restore ${s.param}=${s.value} on ${s.target.label}: ${(e as Error).message} (it returns on restart)`);
            }
        }),
    );
}

async function createCluster(pool: Pool, spec: ClusterSpec, probes: NodeProbe[], placement: ReturnType<typeof planPlacement>, creds: ClusterCredentials, o: Resolved): Promise<void> {
    const specById = new Map(spec.nodes.map((n) => [n.id, n]));
    const probeById = new Map(probes.map((p) => [p.spec!.id, p]));
    const usedIds = placement.shards.flatMap((s) => [s.master, ...s.replicas]);
    const used = usedIds.map((id) => probeById.get(id)!);
    const t0 = Date.now();

    // A fresh master that idled alone counts as "minority" until it owns slots, and then reports
    // cluster_state:ok only min(cluster-node-timeout, 5 s) later (rejoin delay). While forming,
    // a short node timeout makes that delay short; every node gets its own value back at the end.
    // Only nodes not yet ok: a re-run on a healthy cluster changes nothing.
    const notOk = used.filter((p) => p.clusterInfo?.cluster_state !== "ok").map((p) => p.target);
    const saved: SavedConfig[] = o.formationNodeTimeoutMs > 0 ? await overrideConfig(pool, notOk, "cluster-node-timeout", String(o.formationNodeTimeoutMs), o) : [];

    const formSteps = async (): Promise<void> => {
        // 1. Distinct config epochs (only possible while a node knows nobody else), in parallel.
        await o.step("set-config-epoch");
        await Promise.all(
            used.map(async (p, i) => {
                if (knownMembers(p).length > 1 || p.me!.configEpoch !== 0) return;
                const c = await pool.get(p.target);
                try {
                    await c.cluster("SET-CONFIG-EPOCH", i + 1);
                    o.log(`SET-CONFIG-EPOCH ${i + 1} on ${p.target.label}`);
                } catch (e) {
                    // Lost a race with a MEET from an earlier run: harmless, epochs get resolved by the bus.
                    o.log(`CLUSTER SET-CONFIG-EPOCH on ${p.target.label} skipped: ${(e as Error).message}`);
                }
            }),
        );

        // 2. Slots: ADDSLOTSRANGE only the planned slots each master does not have yet.
        await o.step("addslots");
        o.progress({ phase: "create", message: `assigning slots to ${placement.shards.length} masters` });
        await Promise.all(
            placement.shards.map(async (s) => {
                const p = probeById.get(s.master)!;
                const have = new Set(expandRanges(p.me!.slots));
                const missing = toRanges(expandRanges(s.slots).filter((x) => !have.has(x)));
                if (!missing.length) return;
                const c = await pool.get(p.target);
                const args = missing.flatMap((r) => [r.start, r.end]);
                o.log(`ADDSLOTSRANGE on ${p.target.label}: ${missing.map((r) => `${r.start}-${r.end}`).join(" ")}`);
                try {
                    await c.call("CLUSTER", "ADDSLOTSRANGE", ...args);
                } catch (e) {
                    throw ClusterExecError(`CLUSTER ADDSLOTSRANGE on ${p.target.label} failed: ${(e as Error).message}`, p.addr, "addslots");
                }
            }),
        );

        // 3. MEET: every node meets every node it does not know (full mesh: no waiting on gossip).
        await o.step("meet");
        o.progress({ phase: "meet", message: `introducing ${used.length} nodes` });
        const busPort = new Map(used.map((p) => [p.addr, p.me!.busPort]));
        await Promise.all(
            used.map(async (p) => {
                const known = new Set(knownMembers(p).map((n) => nodeAddress(n)));
                const c = await pool.get(p.target);
                const pipe = c.pipeline();
                const targets = used.filter((q) => q !== p && !known.has(q.addr));
                for (const q of targets) pipe.call("CLUSTER", "MEET", q.target.host, q.target.port, busPort.get(q.addr)!);
                if (!targets.length) return;
                o.log(`MEET ${p.target.label} -> ${targets.map((q) => q.addr).join(", ")}`);
                const res = await pipe.exec();
                res!.forEach(([err], i) => {
                    if (err) throw ClusterExecError(`CLUSTER MEET ${p.addr} -> ${targets[i].addr} failed after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${err.message}`, p.addr, "meet");
                });
            }),
        );

        // 4. REPLICATE as soon as each replica knows its master (no need to wait for the whole mesh).
        await o.step("replicate");
        const replicaOf = new Map<string, string>();
        for (const s of placement.shards) for (const r of s.replicas) replicaOf.set(nodeAddress(specById.get(r)!), nodeAddress(specById.get(s.master)!));
        // An EMPTY master has nothing to batch: skip repl-diskless-sync-delay (default 5 s) for the
        // first sync, and put the node's own value back once the replicas are linked.
        if (o.fastInitialSync) {
            const empty = placement.shards
                .map((s) => ({ s, p: probeById.get(s.master)! }))
                .filter(({ s, p }) => s.replicas.length && (p.dbsize ?? 0) === 0 && p.clusterInfo?.cluster_state !== "ok")
                .map(({ p }) => p.target);
            saved.push(...(await overrideConfig(pool, empty, "repl-diskless-sync-delay", "0", o)));
        }
        await replicateAll(pool, replicaOf, probes, o);

        // 5. Converged: every node knows every node, one slot map, cluster_state:ok, replicas linked.
        await o.step("wait-converged");
        o.progress({ phase: "converge", message: "waiting for the cluster to agree" });
        await waitConverged(pool, { members: used.map((p) => p.spec!), replicaOf, fullCoverage: true }, creds, o, "create");
    };
    try {
        await formSteps();
    } finally {
        await restoreConfig(pool, saved, o);
    }
    o.log(`cluster formed in ${Date.now() - t0} ms`);
}

/** CLUSTER REPLICATE for every replica -> master pair not yet in place; waits (bounded) until the replica knows the master. */
async function replicateAll(pool: Pool, replicaOf: Map<string, string>, probes: NodeProbe[], o: Resolved): Promise<void> {
    const byAddr = new Map(probes.map((p) => [p.addr, p]));
    await Promise.all(
        [...replicaOf].map(async ([rAddr, mAddr]) => {
            const r = byAddr.get(rAddr)!;
            const m = byAddr.get(mAddr)!;
            const masterId = m.myId!;
            const c = await pool.get(r.target);
            const deadline = Date.now() + o.convergeTimeoutMs;
            let lastErr = "";
            while (Date.now() < deadline) {
                const view = parseClusterNodes(String(await c.cluster("NODES")));
                const me = view.find((n) => n.myself)!;
                if (me.masterId === masterId) return;
                if (view.some((n) => n.id === masterId && !n.handshake)) {
                    try {
                        await c.cluster("REPLICATE", masterId);
                        o.log(`REPLICATE ${r.target.label} -> ${m.target.label}`);
                        return;
                    } catch (e) {
                        lastErr = (e as Error).message;
                    }
                }
                await sleep(o.pollIntervalMs);
            }
            throw ClusterExecError(
                `CLUSTER REPLICATE ${r.target.label} -> ${m.target.label} failed after ${Math.round(o.convergeTimeoutMs / 1000)} s: ${lastErr || "the replica never learned the master's node id (cluster bus problem?)"}`,
                rAddr,
                "replicate",
            );
        }),
    );
}

// ---------------------------------------------------------------------------------------------
// Reshape

async function reshapeCluster(pool: Pool, spec: ClusterSpec, specProbes: NodeProbe[], creds: ClusterCredentials, o: Resolved): Promise<void> {
    const { topology, probes } = await topologyFromProbes(pool, specProbes, spec.nodes);
    if (!topology.nodes.some((n) => !n.failed)) {
        throw ClusterExecError(
            `reshape: no healthy member of a formed cluster among ${spec.nodes.map((n) => `${n.id} ${nodeAddress(n)}`).join(", ")}; ` +
                `nothing to reshape from. Check the nodes (CLUSTER NODES) or CLUSTER RESET them to create anew`,
            undefined,
            "reshape",
        );
    }
    const plan = planReshape(topology, spec);
    for (const d of plan.degradations) o.log(`zone degradation: ${d}`);
    o.log(`reshape plan: ${plan.steps.map(describeStep).join("; ") || "(nothing to do)"}`);
    const targetOf = (addr: string): Target => {
        const s = spec.nodes.find((n) => nodeAddress(n) === addr);
        if (s) return specTarget(s);
        const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
        return { host, port, label: `(leaving) ${addr}` };
    };
    const idOf = async (addr: string): Promise<string> => {
        const p = await probeOne(pool, targetOf(addr));
        if (!p.ok || !p.myId) throw ClusterExecError(`${targetOf(addr).label}: unreachable during reshape: ${p.error}`, addr, "reshape");
        return p.myId;
    };
    const healthyMembers = () => topology.nodes.filter((n) => !n.failed).map((n) => nodeAddress(n));
    const slotsTotal = plan.steps.reduce((a, s) => a + (s.kind === "migrate" ? s.count : s.kind === "fix-open-slot" ? 1 : 0), 0);
    const mig = new MigrationProgress(slotsTotal, o);
    const members = new Set(healthyMembers());
    const currentMembers = () => [...members];
    const atomic = o.atomicMigration && [...probes.values()].filter((p) => p.ok).every((p) => p.version && versionAtLeast(p.version, 8, 4));
    if (plan.steps.some((s) => s.kind === "migrate" || s.kind === "fix-open-slot")) {
        o.log(atomic ? "slot migration: atomic CLUSTER MIGRATION (every node >= 8.4)" : "slot migration: classic SETSLOT + MIGRATE (some node < 8.4)");
    }

    // Runtime config changed for speed on joining nodes; restored when the reshape ends.
    const saved: SavedConfig[] = [];
    try {
        // Group consecutive migrate steps so different source->target pairs run in parallel.
        const steps = plan.steps;
        for (let i = 0; i < steps.length; i++) {
            const step = steps[i];
            await o.step(`${step.kind} ${"node" in step ? step.node : ""}`.trim());
            switch (step.kind) {
                case "fix-open-slot": {
                    o.log(`finishing half-migrated slot ${step.slot} ${step.from} -> ${step.to}`);
                    await migrateClassic(pool, targetOf(step.from), targetOf(step.to), [step.slot], creds, o, mig, true);
                    break;
                }
                case "forget": {
                    o.progress({ phase: "forget", message: `forgetting ${step.node} (${step.reason})` });
                    await forgetEverywhere(pool, currentMembers().map(targetOf), step.nodeId, o);
                    members.delete(step.node);
                    break;
                }
                case "meet": {
                    const t = targetOf(step.node);
                    const p = await probeOne(pool, t);
                    if (!p.ok || !p.me) throw ClusterExecError(`${t.label}: unreachable before MEET: ${p.error}`, step.node, "meet");
                    if (o.formationNodeTimeoutMs > 0) saved.push(...(await overrideConfig(pool, [t], "cluster-node-timeout", String(o.formationNodeTimeoutMs), o)));
                    const seedAddr = currentMembers().find((a) => a !== step.node)!;
                    const seed = await pool.get(targetOf(seedAddr));
                    try {
                        await seed.call("CLUSTER", "MEET", t.host, t.port, p.me.busPort);
                    } catch (e) {
                        throw ClusterExecError(`CLUSTER MEET ${seedAddr} -> ${step.node} failed: ${(e as Error).message}`, step.node, "meet");
                    }
                    members.add(step.node);
                    await waitKnownByAll(pool, currentMembers().map(targetOf), p.myId!, step.node, o);
                    break;
                }
                case "migrate": {
                    // Run this and the following migrate steps concurrently (they have distinct pairs).
                    const batch: Extract<ReshapeStep, { kind: "migrate" }>[] = [];
                    let j = i;
                    while (j < steps.length && steps[j].kind === "migrate") batch.push(steps[j++] as Extract<ReshapeStep, { kind: "migrate" }>);
                    i = j - 1;
                    // A just-met target answers CLUSTERDOWN to MIGRATE until it has the whole slot map.
                    await Promise.all([...new Set(batch.map((m) => m.to))].map((a) => waitStateOk(pool, targetOf(a), o)));
                    await Promise.all(
                        batch.map(async (m) => {
                            if (!m.from) {
                                const c = await pool.get(targetOf(m.to));
                                await c.call("CLUSTER", "ADDSLOTSRANGE", ...m.slots.flatMap((r) => [r.start, r.end]));
                                return;
                            }
                            const slots = expandRanges(m.slots);
                            if (atomic) await migrateAtomic(pool, targetOf(m.from), targetOf(m.to), m.slots, o, mig);
                            else await migrateClassic(pool, targetOf(m.from), targetOf(m.to), slots, creds, o, mig, false);
                        }),
                    );
                    break;
                }
                case "replicate": {
                    const masterId = await idOf(step.master);
                    const nodeProbe = await probeOne(pool, targetOf(step.node));
                    await replicateAll(pool, new Map([[step.node, step.master]]), [nodeProbe, { ...nodeProbe, addr: step.master, myId: masterId, target: targetOf(step.master) }], o);
                    break;
                }
                case "failover": {
                    await plannedFailover(pool, targetOf(step.node), targetOf(step.master), o);
                    break;
                }
                case "remove": {
                    o.progress({ phase: "forget", message: `removing ${step.node} (${step.reason})` });
                    const others = currentMembers().filter((a) => a !== step.node).map(targetOf);
                    // A removed node must be empty: its slots were drained by earlier steps.
                    const p = await probeOne(pool, targetOf(step.node));
                    if (p.ok && p.me && countSlots(p.me.slots) > 0) {
                        throw ClusterExecError(`remove ${step.node}: still owns ${countSlots(p.me.slots)} slots; refusing to forget it (drain first)`, step.node, "remove");
                    }
                    // Nodes removed by later steps may still replicate this one ("Can't forget my
                    // master"): they are soft-reset by their own step, so they are skipped here.
                    const removedLater = new Set(steps.slice(i + 1).filter((s) => s.kind === "remove").map((s) => (s as { node: string }).node));
                    await forgetEverywhere(pool, others, step.nodeId, o, (t) => removedLater.has(`${t.host}:${t.port}`));
                    if (p.ok) {
                        const c = await pool.get(targetOf(step.node));
                        // SOFT reset: the node forgets the cluster; a replica's dataset is a copy, a drained master is empty.
                        if (p.me?.master && (p.dbsize ?? 0) > 0) {
                            throw ClusterExecError(`remove ${step.node}: master still holds ${p.dbsize} keys in no slot it owns; inspect it before removal`, step.node, "remove");
                        }
                        await c.cluster("RESET", "SOFT");
                    }
                    members.delete(step.node);
                    break;
                }
            }
        }

        // Wait for agreement over the final members.
        const finalProbes = await Promise.all(currentMembers().map((a) => probeOne(pool, targetOf(a))));
        const byId = new Map(finalProbes.filter((p) => p.ok).map((p) => [p.myId!, p.addr]));
        const replicaOf = new Map<string, string>();
        for (const p of finalProbes) if (p.ok && p.me && !p.me.master && p.me.masterId && byId.has(p.me.masterId)) replicaOf.set(p.addr, byId.get(p.me.masterId)!);
        const memberSpecs: ClusterNodeSpec[] = currentMembers().map((a) => spec.nodes.find((n) => nodeAddress(n) === a) ?? { id: a, host: targetOf(a).host, port: targetOf(a).port, zone: "?" });
        await waitConverged(pool, { members: memberSpecs, replicaOf, fullCoverage: true }, creds, o, "reshape");
    } finally {
        await restoreConfig(pool, saved, o);
    }
}

function describeStep(s: ReshapeStep): string {
    switch (s.kind) {
        case "migrate": return `migrate ${s.count} slots ${s.from || "(unassigned)"} -> ${s.to}`;
        case "fix-open-slot": return `finish slot ${s.slot} ${s.from} -> ${s.to}`;
        case "replicate": return `replicate ${s.node} -> ${s.master}`;
        case "failover": return `failover ${s.node} takes over ${s.master} (${s.reason})`;
        default: return `${s.kind} ${s.node}`;
    }
}

/** CLUSTER FORGET on every node at once (all within the 60 s ban window, so gossip cannot bring it back). */
async function forgetEverywhere(pool: Pool, targets: Target[], nodeId: string, o: Resolved, leavingLater: (t: Target) => boolean = () => false): Promise<void> {
    const results = await Promise.all(
        targets.map(async (t) => {
            try {
                const c = await pool.get(t);
                const view = parseClusterNodes(String(await c.cluster("NODES")));
                const me = view.find((n) => n.myself);
                if (me?.id === nodeId) return null;
                if (me && me.masterId === nodeId && leavingLater(t)) return null;
                if (!view.some((n) => n.id === nodeId)) return null;
                await c.cluster("FORGET", nodeId);
                return null;
            } catch (e) {
                const msg = (e as Error).message;
                if (/Unknown node/i.test(msg)) return null;
                return `${t.label}: ${msg}`;
            }
        }),
    );
    const errs = results.filter((x): x is string => !!x);
    if (errs.length) throw ClusterExecError(`CLUSTER FORGET ${nodeId} failed on: ${errs.join("; ")}`, undefined, "forget");
    o.log(`forgot ${nodeId} on ${targets.length} nodes`);
}

async function waitKnownByAll(pool: Pool, targets: Target[], nodeId: string, addr: string, o: Resolved): Promise<void> {
    const deadline = Date.now() + o.convergeTimeoutMs;
    let missing: string[] = [];
    while (Date.now() < deadline) {
        missing = [];
        await Promise.all(
            targets.map(async (t) => {
                const c = await pool.get(t);
                const view = parseClusterNodes(String(await c.cluster("NODES")));
                if (!view.some((n) => n.id === nodeId && !n.handshake)) missing.push(t.label);
            }),
        );
        if (!missing.length) return;
        await sleep(o.pollIntervalMs);
    }
    throw ClusterExecError(`CLUSTER MEET -> ${addr} failed after ${Math.round(o.convergeTimeoutMs / 1000)} s: not known by ${missing.join(", ")} (cluster bus port reachable? TLS?)`, addr, "meet");
}

/** Waits (bounded) until a node reports cluster_state:ok. */
async function waitStateOk(pool: Pool, t: Target, o: Resolved): Promise<void> {
    const c = await pool.get(t);
    const deadline = Date.now() + o.convergeTimeoutMs;
    let state = "";
    while (Date.now() < deadline) {
        state = parseInfo(String(await c.cluster("INFO"))).cluster_state;
        if (state === "ok") return;
        await sleep(o.pollIntervalMs);
    }
    throw ClusterExecError(`${t.label}: cluster_state is still ${state} after ${Math.round(o.convergeTimeoutMs / 1000)} s (it does not see every slot covered: cluster bus links?)`, nodeAddress(t), "wait-state");
}

/** Planned CLUSTER FAILOVER: waits for the replica's link, promotes it, waits until roles swapped. */
async function plannedFailover(pool: Pool, replica: Target, master: Target, o: Resolved): Promise<void> {
    o.progress({ phase: "failover", message: `failover: ${replica.label} takes over from ${master.label}` });
    const c = await pool.get(replica);
    const deadline = Date.now() + o.convergeTimeoutMs;
    let sent = false;
    let last = "";
    while (Date.now() < deadline) {
        const info = parseInfo(String(await c.info("replication")));
        if (info.role === "master") {
            o.log(`failover done: ${replica.label} is master`);
            return;
        }
        if (!sent && info.master_link_status === "up") {
            try {
                await c.cluster("FAILOVER");
                sent = true;
            } catch (e) {
                last = (e as Error).message;
            }
        }
        last = last || `role:${info.role} master_link_status:${info.master_link_status}`;
        await sleep(o.pollIntervalMs);
    }
    throw ClusterExecError(`CLUSTER FAILOVER on ${replica.label} (taking over ${master.label}) failed after ${Math.round(o.convergeTimeoutMs / 1000)} s: ${last}`, nodeAddress(replica), "failover");
}

// ---------------------------------------------------------------------------------------------
// Slot migration

class MigrationProgress {
    declare slotsMoved: number;
    declare keysMoved: number;
    declare slotsTotal: number;
    declare private t0: number;
    declare private lastReport: number;
    declare private o: Resolved;
    /** Rates count from the first slot operation, not from the MEET/wait before it. */
    start(): void {
        if (!this.started) {
            this.started = true;
            this.t0 = Date.now();
        }
    }
    declare private started: boolean;
    constructor(slotsTotal: number, o: Resolved) {
        this.started = false;
        this.slotsMoved = 0;
        this.keysMoved = 0;
        this.t0 = Date.now();
        this.lastReport = 0;
        this.slotsTotal = slotsTotal;
        this.o = o;
    }
    add(slots: number, keys: number): void {
        this.slotsMoved += slots;
        this.keysMoved += keys;
        const now = Date.now();
        if (now - this.lastReport > 250 || this.slotsMoved >= this.slotsTotal) {
            this.lastReport = now;
            const secs = Math.max(0.001, (now - this.t0) / 1000);
            this.o.progress({
                phase: "migrate",
                message: `slots ${this.slotsMoved}/${this.slotsTotal}, ${this.keysMoved} keys, ${Math.round(this.keysMoved / secs)} keys/s`,
                slotsMoved: this.slotsMoved,
                slotsTotal: this.slotsTotal,
                keysMoved: this.keysMoved,
                keysPerSec: this.keysMoved / secs,
            });
        }
    }
}

/**
 * Classic migration of `slots` from -> to, in rounds of `migrateSlotsPerRound` slots. Per round,
 * two pipelines open it (SETSLOT IMPORTING on the target, then MIGRATING on the source), then
 * GETKEYSINSLOT + one `MIGRATE ... REPLACE AUTH2 ... KEYS` per slot (pipelined) until drained,
 * and it is closed by SETSLOT NODE on the target first, then on the source. Closing round k rides
 * in the same pipelines as opening round k+1, so a round costs two round trips plus the keys.
 * Other masters learn the new owner by gossip (the target bumps its epoch), as they would after a
 * failover. REPLACE makes a batch repeated after a crash harmless; a crash leaves open slots that
 * the next run finishes (planner: fix-open-slot).
 */
async function migrateClassic(
    pool: Pool,
    from: Target,
    to: Target,
    slots: number[],
    creds: ClusterCredentials,
    o: Resolved,
    mig: MigrationProgress,
    resuming: boolean,
): Promise<void> {
    const src = await pool.get(from);
    const dst = await pool.get(to);
    const srcId = String(await src.cluster("MYID"));
    const dstId = String(await dst.cluster("MYID"));
    const fail = (what: string, e: unknown) =>
        ClusterExecError(`${what} ${nodeAddress(from)} -> ${nodeAddress(to)} failed: ${(e as Error)?.message ?? e}`, nodeAddress(from), "migrate");
    // Who owns what right now (a resumed run may find some slots already moved).
    const srcView = parseClusterNodes(String(await src.cluster("NODES"))).find((n) => n.myself)!;
    const srcOwns = new Set(expandRanges(srcView.slots));
    // Where the time goes, per stream (logged at the end).
    const ms = { setslot: 0, keys: 0, keysMoved: 0 };
    let tMark = Date.now();
    const lap = (k: "setslot" | "keys") => {
        const now = Date.now();
        ms[k] += now - tMark;
        tMark = now;
    };
    mig.start();
    let prev: number[] = [];
    // One pass per round plus a last pass that only closes the final round.
    for (let i = 0; i < slots.length + o.migrateSlotsPerRound; i += o.migrateSlotsPerRound) {
        const round = slots.slice(i, i + o.migrateSlotsPerRound);
        if (!round.length && !prev.length) break;
        if (prev.length) await o.step(`setslot-node ${nodeAddress(to)} ${prev[0]}`);
        if (round.length) await o.step(`migrate-round ${nodeAddress(from)}->${nodeAddress(to)} ${round[0]}`);
        // Target: close the previous round (NODE) and open this one (IMPORTING).
        const p1 = dst.pipeline();
        for (const x of prev) p1.cluster("SETSLOT", x, "NODE", dstId);
        for (const x of round) p1.cluster("SETSLOT", x, "IMPORTING", srcId);
        const r1 = prev.length + round.length ? (await p1.exec())! : [];
        r1.forEach(([e], k) => {
            if (!e) return;
            if (k < prev.length) throw fail("CLUSTER SETSLOT NODE (target)", e);
            if (!resuming && !/already the owner|I'm already/i.test(e.message)) throw fail("CLUSTER SETSLOT IMPORTING", e);
        });
        // Source: close the previous round, open this one (only slots it still owns).
        const owned = round.filter((x) => srcOwns.has(x));
        const p2 = src.pipeline();
        for (const x of prev) p2.cluster("SETSLOT", x, "NODE", dstId);
        for (const x of owned) p2.cluster("SETSLOT", x, "MIGRATING", dstId);
        const r2 = prev.length + owned.length ? (await p2.exec())! : [];
        let becameReplica = false;
        for (let k = 0; k < r2.length; k++) {
            const e = r2[k][0];
            if (!e) continue;
            // Redis >= 7 turns a master that lost its LAST slot into a replica of the new owner
            // (cluster-allow-replica-migration): then the source simply no longer owns anything.
            if (k < prev.length && /only with masters/i.test(e.message)) {
                const me = parseClusterNodes(String(await src.cluster("NODES"))).find((n) => n.myself)!;
                if (!me.master && !expandRanges(me.slots).some((x) => prev.includes(x))) {
                    becameReplica = true;
                    break;
                }
            }
            throw fail(k < prev.length ? "CLUSTER SETSLOT NODE (source)" : "CLUSTER SETSLOT MIGRATING", e);
        }
        if (becameReplica && round.length) throw fail("migration", new Error("the source turned replica before its last round"));
        if (prev.length) mig.add(prev.length, 0);
        lap("setslot");
        // Move this round's keys. A slot whose GETKEYSINSLOT returned fewer than a batch is drained
        // by the MIGRATE that follows: a MIGRATING slot accepts no new keys (they go to the target).
        let active = [...round];
        for (let iter = 0; active.length && iter < 100000; iter++) {
            const g = src.pipeline();
            for (const x of active) g.callBuffer("CLUSTER", "GETKEYSINSLOT", x, o.migrateBatchKeys);
            const keys = (await g.exec())!.map(([e, v], k) => {
                if (e) throw fail(`CLUSTER GETKEYSINSLOT ${active[k]}`, e);
                return v as Buffer[];
            });
            const m = src.pipeline();
            let n = 0;
            for (let k = 0; k < active.length; k++) {
                if (!keys[k].length) continue;
                m.callBuffer("MIGRATE", to.host, to.port, "", 0, o.migrateTimeoutMs, "REPLACE", "AUTH2", creds.username, creds.password, "KEYS", ...keys[k]);
                n += keys[k].length;
            }
            if (n === 0) break;
            for (const [e] of (await m.exec())!) if (e) throw fail("MIGRATE", e);
            ms.keysMoved += n;
            mig.add(0, n);
            active = active.filter((_, k) => keys[k].length >= o.migrateBatchKeys);
        }
        lap("keys");
        prev = round;
    }
    o.log(`stream ${nodeAddress(from)} -> ${nodeAddress(to)}: ${slots.length} slots, ${ms.keysMoved} keys; setslot ${ms.setslot} ms, keys ${ms.keys} ms`);
}

/**
 * Atomic slot migration (Redis >= 8.4): CLUSTER MIGRATION IMPORT on the target, poll STATUS,
 * CANCEL on both ends on failure or timeout. NOT exercised by the tests here (7.0.15 only).
 */
async function migrateAtomic(pool: Pool, from: Target, to: Target, ranges: SlotRange[], o: Resolved, mig: MigrationProgress): Promise<void> {
    const dst = await pool.get(to);
    const src = await pool.get(from);
    const args = ranges.flatMap((r) => [r.start, r.end]);
    let taskId: string;
    try {
        taskId = String(await dst.call("CLUSTER", "MIGRATION", "IMPORT", ...args));
    } catch (e) {
        throw ClusterExecError(`CLUSTER MIGRATION IMPORT on ${to.label} (from ${from.label}) failed: ${(e as Error).message}`, nodeAddress(to), "migrate");
    }
    const deadline = Date.now() + Math.max(o.convergeTimeoutMs, 10 * 60 * 1000);
    let state = "";
    try {
        while (Date.now() < deadline) {
            const reply = (await dst.call("CLUSTER", "MIGRATION", "STATUS", "ID", taskId)) as unknown;
            state = atomicState(reply);
            if (state === "completed") {
                mig.add(countSlots(ranges), 0);
                return;
            }
            if (state === "failed" || state === "canceled") throw new Error(`task ${taskId} ${state}: ${JSON.stringify(reply)}`);
            await sleep(Math.max(o.pollIntervalMs, 100));
        }
        throw new Error(`task ${taskId} still ${state || "running"} at the deadline`);
    } catch (e) {
        await Promise.all([
            dst.call("CLUSTER", "MIGRATION", "CANCEL", "ID", taskId).catch(() => undefined),
            src.call("CLUSTER", "MIGRATION", "CANCEL", "ID", taskId).catch(() => undefined),
        ]);
        throw ClusterExecError(`CLUSTER MIGRATION ${from.label} -> ${to.label} failed, cancelled on both ends: ${(e as Error).message}`, nodeAddress(to), "migrate");
    }
}

/** Finds the `state` field in a CLUSTER MIGRATION STATUS reply (a flat or nested key/value array). */
function atomicState(reply: unknown): string {
    const walk = (x: unknown): string => {
        if (Array.isArray(x)) {
            for (let i = 0; i + 1 < x.length; i++) if (String(x[i]) === "state") return String(x[i + 1]).toLowerCase();
            for (const y of x) { const s = walk(y); if (s) return s; }
        }
        return "";
    };
    return walk(reply);
}

// ---------------------------------------------------------------------------------------------
// Check

/** Reads the cluster and reports its health against `spec` (zones, replicas, coverage). No change. */
export async function checkCluster(spec: ClusterSpec, creds: ClusterCredentials, opts: ExecutorOptions = {}): Promise<ClusterStatus> {
    const o = resolve(opts);
    const pool = new Pool(creds, opts);
    try {
        return await statusFromPool(pool, spec, o);
    } finally {
        await pool.closeAll();
    }
}

async function statusFromPool(pool: Pool, spec: ClusterSpec, o: Resolved): Promise<ClusterStatus> {
    const specProbes = await probeAll(pool, spec.nodes);
    const { topology, probes } = await topologyFromProbes(pool, specProbes, spec.nodes);
    const problems: string[] = [];
    for (const p of specProbes) if (!p.ok) problems.push(`unreachable: ${p.error}`);
    const byId = new Map(topology.nodes.map((n) => [n.nodeId, n]));
    const masters = topology.nodes.filter((n) => n.role === "master" && countSlots(n.slots) > 0 && !n.failed);
    const covered = masters.reduce((a, m) => a + countSlots(m.slots), 0);
    if (topology.nodes.length && covered < CLUSTER_SLOTS) problems.push(`${CLUSTER_SLOTS - covered} slots are not covered by a reachable master`);
    for (const n of topology.nodes) if (n.failed) problems.push(`member ${nodeAddress(n)} (${n.nodeId.slice(0, 8)}) is failed or unreachable`);
    for (const s of topology.openSlots) problems.push(`slot ${s.slot} is left ${s.migratingOn ? "MIGRATING" : "IMPORTING"} (interrupted migration; run converge again)`);
    const replicas = topology.nodes.filter((n) => n.role === "replica" && !n.failed);
    for (const m of masters) {
        const reps = replicas.filter((r) => r.masterId === m.nodeId);
        if (reps.length < spec.replicasPerShard) problems.push(`master ${nodeAddress(m)} has ${reps.length} replica(s), spec wants ${spec.replicasPerShard}`);
        for (const r of reps) if (r.zone && r.zone === m.zone) problems.push(`replica ${nodeAddress(r)} shares zone ${r.zone} with its master ${nodeAddress(m)}`);
    }
    if (topology.nodes.length && masters.length !== spec.shards) problems.push(`${masters.length} masters own slots, spec wants ${spec.shards}`);
    const zc = new Map<string, number>();
    for (const m of masters) zc.set(m.zone ?? "?", (zc.get(m.zone ?? "?") ?? 0) + 1);
    const zones = [...new Set(spec.nodes.map((n) => n.zone))];
    const counts = zones.map((z) => zc.get(z) ?? 0);
    if (masters.length >= zones.length && Math.max(...counts) - Math.min(...counts) > 1) {
        problems.push(`masters are crowded: ${zones.map((z) => `${z}=${zc.get(z) ?? 0}`).join(", ")}`);
    }
    const states = [...probes.values()].filter((p) => p.ok && p.clusterInfo && byId.has(p.myId ?? "")).map((p) => p.clusterInfo!.cluster_state);
    const versions = [...probes.values()].filter((p) => p.ok && p.version).map((p) => p.version!);
    // Lowest first: the cluster can only use what its oldest node supports.
    const num = (v: string) => v.split(".").map(Number);
    versions.sort((a, b) => {
        const [x, y] = [num(a), num(b)];
        for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
        return 0;
    });
    const allOk = states.length > 0 && states.every((s) => s === "ok");
    const specByAddr = new Map(spec.nodes.map((n) => [nodeAddress(n), n]));
    const status: ClusterStatus = {
        state: !allOk ? "fail" : problems.length ? "degraded" : "ok",
        masters: masters.map((m) => ({ id: specByAddr.get(nodeAddress(m))?.id ?? nodeAddress(m), address: nodeAddress(m), zone: m.zone, slots: countSlots(m.slots), nodeId: m.nodeId })),
        replicas: replicas.map((r) => {
            const p = probes.get(nodeAddress(r));
            return {
                id: specByAddr.get(nodeAddress(r))?.id ?? nodeAddress(r),
                address: nodeAddress(r),
                zone: r.zone,
                master: byId.get(r.masterId ?? "") ? nodeAddress(byId.get(r.masterId!)!) : "?",
                linkUp: p?.replication?.master_link_status === "up",
                nodeId: r.nodeId,
            };
        }),
        slotsCovered: covered,
        problems,
        serverVersion: versions[0],
    };
    for (const r of status.replicas) if (!r.linkUp) problems.push(`replica ${r.address} master_link_status is not up`);
    if (status.state === "ok" && problems.length) status.state = "degraded";
    o.progress({ phase: "check", message: `state ${status.state}, ${status.masters.length} masters, ${status.replicas.length} replicas, ${covered} slots covered` });
    return status;
}

/**
 * DESTRUCTIVE: FLUSHALL and CLUSTER RESET HARD on every reachable node (only for
 * `deleteAction: "reset"`). Unreachable nodes are reported, not fatal.
 */
export async function resetCluster(nodes: ClusterNodeSpec[], creds: ClusterCredentials, opts: ExecutorOptions = {}): Promise<string[]> {
    const pool = new Pool(creds, opts);
    const problems: string[] = [];
    try {
        await Promise.all(
            nodes.map(async (n) => {
                try {
                    const c = await pool.get(specTarget(n));
                    // Replicas refuse FLUSHALL (read-only); RESET HARD flushes them anyway.
                    if (/role:master/.test(String(await c.info("replication")))) await c.flushall();
                    await c.cluster("RESET", "HARD");
                } catch (e) {
                    problems.push(`${n.id} ${nodeAddress(n)}: ${(e as Error).message}`);
                }
            }),
        );
        return problems;
    } finally {
        await pool.closeAll();
    }
}

export { ClusterPlanError };
