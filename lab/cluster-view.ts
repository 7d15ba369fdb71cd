/**
 * An independent observer of a Redis Cluster: what every node says about the cluster, and a
 * bounded wait until they all agree and are healthy. It does not share code with the cluster
 * provider on purpose: the lab CLI, the integration tests and the benchmark use it to judge the
 * provider (and redis-cli) from the outside, with the same polling code for both.
 *
 * "Healthy" means, on every observed node at the same poll:
 *   - `cluster_state:ok`;
 *   - its view of the cluster (node ids, roles, master of each replica, slot ranges of each master,
 *     no fail/handshake/noaddr flags) is identical to every other node's view;
 *   - the 16384 slots are covered exactly once, by the expected number of masters, with the
 *     expected number of replicas;
 *   - every replica reports `master_link_status:up` in INFO replication.
 */
import Redis from "ioredis";

export const CLUSTER_SLOTS = 16384;

/** One node as seen in a CLUSTER NODES line. */
export interface ViewNode {
    id: string;
    /** host:port (client port). */
    address: string;
    role: "master" | "replica";
    /** Master id for replicas, "" for masters. */
    masterId: string;
    /** Slot ranges [start, end] inclusive, sorted (masters only). */
    slots: Array<[number, number]>;
    /** Flags other than myself/master/slave (e.g. fail, fail?, handshake, noaddr). */
    badFlags: string[];
    /** Whether the link to this node is connected, as seen by the reporting node. */
    connected: boolean;
}

/** What one node reports. */
export interface NodeReport {
    address: string;
    /** Error talking to the node, if any (then the other fields are empty). */
    error?: string;
    clusterState: string;
    knownNodes: number;
    myId: string;
    nodes: ViewNode[];
    /** From INFO replication: "master" or "slave". */
    role: string;
    /** master_link_status for replicas ("up"/"down"), "" for masters. */
    masterLinkStatus: string;
    /** Number of keys (DBSIZE). */
    keys: number;
}

export interface ClusterExpectation {
    masters: number;
    /** Total number of replicas in the cluster. */
    replicas: number;
}

export interface HealthVerdict {
    healthy: boolean;
    /** Why not healthy, one line per problem (empty when healthy). */
    problems: string[];
}

export interface Endpoint {
    host: string;
    port: number;
}

/** Connection options shared by all nodes (TLS material, ACL user and password). */
export interface ViewAuth {
    username: string;
    password: string;
    tls: { ca: Buffer | string; cert?: Buffer | string; key?: Buffer | string };
}

export function parseClusterNodes(text: string): { myId: string; nodes: ViewNode[] } {
    let myId = "";
    const nodes: ViewNode[] = [];
    for (const line of text.split("\n")) {
        const f = line.trim().split(" ");
        if (f.length < 8) continue;
        const [id, addr, flagText, master, , , , linkState, ...slotFields] = f;
        const flags = flagText.split(",");
        if (flags.includes("myself")) myId = id;
        const slots: Array<[number, number]> = [];
        for (const s of slotFields) {
            if (s.startsWith("[")) continue; // importing/migrating marker, not ownership
            const [a, b] = s.split("-").map(Number);
            slots.push([a, b ?? a]);
        }
        slots.sort((x, y) => x[0] - y[0]);
        nodes.push({
            id,
            address: addr.split("@")[0],
            role: flags.includes("slave") ? "replica" : "master",
            masterId: master === "-" ? "" : master,
            slots,
            badFlags: flags.filter((x) => !["myself", "master", "slave", "noflags", "nofailover"].includes(x)),
            connected: linkState === "connected",
        });
    }
    nodes.sort((a, b) => a.id.localeCompare(b.id));
    return { myId, nodes };
}

function infoField(text: string, key: string): string {
    const m = new RegExp(`^${key}:(.*)$`, "m").exec(text);
    return m ? m[1].trim() : "";
}

/** Canonical text of one node's view, for comparing views between nodes. */
function viewSignature(nodes: ViewNode[]): string {
    return nodes
        .map((n) => `${n.id} ${n.address} ${n.role} ${n.masterId} ${n.slots.map(([a, b]) => `${a}-${b}`).join(",")}`)
        .join("\n");
}

/** Pure judgement of one poll. */
export function judge(reports: NodeReport[], expect: ClusterExpectation): HealthVerdict {
    const problems: string[] = [];
    for (const r of reports) {
        if (r.error) {
            problems.push(`${r.address}: ${r.error}`);
            continue;
        }
        if (r.clusterState !== "ok") problems.push(`${r.address}: cluster_state:${r.clusterState}`);
        for (const n of r.nodes) {
            if (n.badFlags.length) problems.push(`${r.address} sees ${n.address} as ${n.badFlags.join(",")}`);
            if (n.id !== r.myId && !n.connected) problems.push(`${r.address}: bus link to ${n.address} is disconnected`);
        }
        if (r.role === "slave" && r.masterLinkStatus !== "up") problems.push(`${r.address}: master_link_status:${r.masterLinkStatus || "?"}`);
    }
    if (problems.length) return { healthy: false, problems };
    const signatures = new Map<string, string[]>();
    for (const r of reports) {
        const sig = viewSignature(r.nodes);
        signatures.set(sig, [...(signatures.get(sig) ?? []), r.address]);
    }
    if (signatures.size > 1) {
        const groups = [...signatures.values()].map((g) => `[${g.join(" ")}]`).join(" vs ");
        problems.push(`nodes disagree on the cluster view: ${groups}`);
        return { healthy: false, problems };
    }
    const view = reports[0]?.nodes ?? [];
    if (view.length !== reports.length) problems.push(`the view holds ${view.length} nodes, ${reports.length} were observed`);
    const masters = view.filter((n) => n.role === "master" && n.slots.length > 0);
    const replicas = view.filter((n) => n.role === "replica");
    if (masters.length !== expect.masters) problems.push(`${masters.length} masters own slots, expected ${expect.masters}`);
    if (replicas.length !== expect.replicas) problems.push(`${replicas.length} replicas, expected ${expect.replicas}`);
    const owner = new Array<number>(CLUSTER_SLOTS).fill(0);
    for (const m of masters) for (const [a, b] of m.slots) for (let s = a; s <= b; s++) owner[s]++;
    const uncovered = owner.filter((c) => c === 0).length;
    const doubled = owner.filter((c) => c > 1).length;
    if (uncovered) problems.push(`${uncovered} slots uncovered`);
    if (doubled) problems.push(`${doubled} slots owned twice`);
    return { healthy: problems.length === 0, problems };
}

/**
 * Persistent connections to a set of nodes; `poll()` asks each node once (pipelined) and returns
 * what each said. Connect before starting a stopwatch so that connection setup is not measured.
 */
export class ClusterObserver {
    private readonly clients: Redis[];

    constructor(
        public readonly endpoints: Endpoint[],
        auth: ViewAuth,
    ) {
        this.clients = endpoints.map(
            (e) =>
                new Redis({
                    host: e.host,
                    port: e.port,
                    username: auth.username,
                    password: auth.password,
                    tls: { ...auth.tls, checkServerIdentity: () => undefined },
                    lazyConnect: true,
                    enableOfflineQueue: false,
                    maxRetriesPerRequest: 0,
                    connectTimeout: 2000,
                    commandTimeout: 2000,
                    retryStrategy: (times) => (times > 50 ? null : 100),
                }),
        );
        for (const c of this.clients) c.on("error", () => undefined); // reported through poll()
    }

    async connect(): Promise<void> {
        await Promise.all(this.clients.map((c) => (c.status === "wait" ? c.connect() : undefined)));
    }

    async poll(): Promise<NodeReport[]> {
        return Promise.all(
            this.clients.map(async (c, i) => {
                const address = `${this.endpoints[i].host}:${this.endpoints[i].port}`;
                try {
                    if (c.status === "wait") await c.connect();
                    const res = await c.pipeline().call("CLUSTER", "INFO").call("CLUSTER", "NODES").call("INFO", "replication").dbsize().exec();
                    if (!res) throw new Error("pipeline returned nothing");
                    for (const [err] of res) if (err) throw err;
                    const info = String(res[0][1]);
                    const { myId, nodes } = parseClusterNodes(String(res[1][1]));
                    const repl = String(res[2][1]);
                    return {
                        address,
                        clusterState: infoField(info, "cluster_state"),
                        knownNodes: Number(infoField(info, "cluster_known_nodes")),
                        myId,
                        nodes,
                        role: infoField(repl, "role"),
                        masterLinkStatus: infoField(repl, "master_link_status"),
                        keys: Number(res[3][1]),
                    };
                } catch (e) {
                    return { address, error: (e as Error).message, clusterState: "", knownNodes: 0, myId: "", nodes: [], role: "", masterLinkStatus: "", keys: 0 };
                }
            }),
        );
    }

    /**
     * Polls every `intervalMs` until `judge` says healthy or `timeoutMs` passes. Returns the
     * elapsed time from `startedAt` (default: now) to the first healthy poll, and what the last
     * unhealthy poll was waiting on (where the time went); throws with the last problems on timeout.
     */
    async waitHealthy(
        expect: ClusterExpectation,
        opts: { timeoutMs: number; intervalMs?: number; startedAt?: number },
    ): Promise<{ ms: number; reports: NodeReport[]; lastProblems: string[]; lastProblemsAtMs: number }> {
        const start = opts.startedAt ?? performance.now();
        const deadline = performance.now() + opts.timeoutMs;
        let last: HealthVerdict = { healthy: false, problems: ["not polled yet"] };
        let lastProblems: string[] = [];
        let lastProblemsAtMs = 0;
        for (;;) {
            const reports = await this.poll();
            last = judge(reports, expect);
            if (last.healthy) return { ms: performance.now() - start, reports, lastProblems, lastProblemsAtMs };
            lastProblems = last.problems;
            lastProblemsAtMs = performance.now() - start;
            if (performance.now() >= deadline) break;
            await new Promise((r) => setTimeout(r, opts.intervalMs ?? 25));
        }
        throw new Error(`cluster of ${this.endpoints.length} nodes not healthy within ${opts.timeoutMs} ms: ${last.problems.slice(0, 8).join("; ")}`);
    }

    close(): void {
        for (const c of this.clients) c.disconnect();
    }
}
