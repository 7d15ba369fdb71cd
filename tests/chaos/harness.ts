/**
 * The chaos harness: a 3-zone cluster whose zones are network namespaces (lab/netns.ts), formed by
 * the provider's converge, an acknowledged writer (tests/helpers/acked-writer.ts) per scenario,
 * and the measurements every scenario reports: acknowledged writes, lost, write gap of the
 * affected shards, time back to healthy.
 *
 * Write gap: from the fault to the first write acknowledged (WAIT 1) on a slot of an affected
 * shard that was *issued* after the fault (the writer stamps the issue time into the value).
 * Healthy: the provider's converge ran and checkCluster reports state ok, 16384 slots, no replica
 * in its master's zone.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Lab } from "../../lab/lab";
import { ZoneNet } from "../../lab/netns";
import { checkCluster, converge, parseClusterNodes, ParsedNode } from "../../providers/redis-cluster/executor";
import { ClusterSpec, ClusterStatus } from "../../providers/redis-cluster/types";
import { AckedWriter } from "../helpers/acked-writer";
import { keySlot, labCreds } from "../integration/redis-cluster/helpers";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `ms` pass; throws with `what` on timeout. */
export async function waitFor<T>(what: string | (() => string), ms: number, fn: () => Promise<T | undefined | false>, everyMs = 100): Promise<T> {
    const deadline = Date.now() + ms;
    let last = "";
    while (Date.now() < deadline) {
        try {
            const v = await fn();
            if (v) return v;
        } catch (e) {
            last = (e as Error).message;
        }
        await sleep(everyMs);
    }
    throw new Error(`timed out after ${ms} ms waiting for ${typeof what === "string" ? what : what()}${last ? `: ${last}` : ""}`);
}

export interface ScenarioResult {
    name: string;
    acked: number;
    lost: number;
    /** ms from the fault to the first acknowledged write (issued after it) on an affected shard; -1: none. */
    gapMs: number;
    /** ms from the end of the fault (restart, heal, SIGCONT) to healthy after converge. */
    healMs: number;
    note: string;
}

export class ChaosCluster {
    readonly results: ScenarioResult[] = [];
    readonly spec: ClusterSpec;
    private constructor(readonly net: ZoneNet, readonly lab: Lab, readonly zoneNames: string[]) {
        this.spec = { nodes: lab.nodes.map((n) => ({ id: n.name, host: n.host, port: n.port, zone: n.zone })), shards: 3, replicasPerShard: 2 };
    }

    /**
     * 3 zones x 3 nodes (3 shards x 2 replicas: every zone holds one copy of every shard). On
     * failure, stops what it started and removes the namespaces before rethrowing.
     */
    static async start(): Promise<ChaosCluster> {
        const zones = 3;
        const perZone = 3;
        const net = ZoneNet.create({ zones });
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-chaos-"));
        const zoneNames = Array.from({ length: zones }, (_, z) => `zone-${String.fromCharCode(97 + z)}`);
        let lab: Lab | undefined;
        try {
            // Ports are fixed (each zone has its own address, so they cannot collide with anything).
            const common = { basePort: 7100, tlsHosts: Array.from({ length: zones }, (_, z) => net.zoneIp(z)) };
            lab = await Lab.start({ dir, count: 0, host: net.zoneIp(0), ...common });
            for (let z = 0; z < zones; z++) await lab.addNodes(perZone, { ...common, host: net.zoneIp(z), zones: [zoneNames[z]], netns: net.ns(z) });
            const c = new ChaosCluster(net, lab, zoneNames);
            const st = await converge(c.spec, labCreds(lab), { log: () => undefined });
            if (st.state !== "ok") throw new Error(`initial converge: ${st.state}: ${st.problems.join("; ")}`);
            return c;
        } catch (e) {
            await lab?.stop({ removeData: true }).catch(() => undefined);
            net.teardown();
            throw e;
        }
    }

    /** Stops every node (by PID) and removes the namespaces, even if one of them fails. */
    async stop(): Promise<void> {
        try {
            await this.lab.stop({ removeData: true });
        } finally {
            this.net.teardown();
        }
    }

    /** Lab node indexes of zone z. */
    zoneNodes(z: number): number[] {
        return this.lab.nodes.filter((n) => n.zone === this.zoneNames[z]).map((n) => n.index);
    }
    zoneOf(i: number): number {
        return this.zoneNames.indexOf(this.lab.nodes[i].zone);
    }
    indexOf(n: ParsedNode): number {
        return this.lab.nodes.findIndex((l) => l.host === n.host && l.port === n.port);
    }

    /** CLUSTER NODES as seen by node `via`. */
    async nodesSeenBy(via: number): Promise<ParsedNode[]> {
        return parseClusterNodes(await this.lab.cli(via, ["CLUSTER", "NODES"]));
    }

    /** Lab indexes of the masters that own slots, as seen by `via`. */
    async masters(via = 0): Promise<number[]> {
        return (await this.nodesSeenBy(via)).filter((n) => n.master && n.slots.length && !n.failed).map((n) => this.indexOf(n));
    }

    /** The slots owned by the given lab nodes, as seen by `via`. */
    async slotsOf(nodes: number[], via: number): Promise<Set<number>> {
        const out = new Set<number>();
        for (const n of await this.nodesSeenBy(via)) {
            if (!nodes.includes(this.indexOf(n))) continue;
            for (const r of n.slots) for (let s = r.start; s <= r.end; s++) out.add(s);
        }
        return out;
    }

    /** Waits until `via` sees the slots of `formerMaster` owned by another (not failed) master. */
    async waitFailover(formerMaster: number, via: number, ms = 30000): Promise<number> {
        return waitFor(`failover of node${formerMaster} seen by node${via}`, ms, async () => {
            const nodes = await this.nodesSeenBy(via);
            const old = nodes.find((n) => this.indexOf(n) === formerMaster);
            if (old && old.master && old.slots.length) return false;
            const owners = nodes.filter((n) => n.master && n.slots.length && !n.failed);
            return owners.reduce((a, n) => a + n.slots.reduce((b, r) => b + r.end - r.start + 1, 0), 0) === 16384 ? Date.now() : false;
        });
    }

    /** Converges with the provider and checks: returns the status (asserted by the caller). */
    /** The executor's last log lines (attached to a failed converge: a CI failure must say what the executor did). */
    private readonly convergeLog: string[] = [];

    async convergeAndCheck(): Promise<ClusterStatus> {
        const creds = labCreds(this.lab);
        const log = (m: string) => {
            this.convergeLog.push(`${new Date().toISOString().slice(11, 23)} ${m}`);
            if (this.convergeLog.length > 60) this.convergeLog.shift();
            if (process.env.CHAOS_LOG) process.stdout.write(`converge: ${m}\n`);
        };
        try {
            await converge(this.spec, creds, { log, convergeTimeoutMs: 60000 });
        } catch (e) {
            (e as Error).message += `\nconverge log (last ${this.convergeLog.length} lines):\n  ${this.convergeLog.join("\n  ")}`;
            throw e;
        }
        return checkCluster(this.spec, creds);
    }

    /** A writer through the cluster client as ACL user `app`, with the ack time of every key. */
    newWriter(): TimedWriter {
        const seeds = this.lab.nodes.map((n) => ({ host: n.host, port: n.port }));
        const o = this.lab.clientOptions(0, "app");
        return new TimedWriter(seeds, { username: "app", password: o.password, tls: o.tls });
    }
}

/** AckedWriter plus the time each key was acknowledged (hooked on its `acked` map). */
export class TimedWriter extends AckedWriter {
    readonly ackedAt = new Map<string, number>();
    constructor(seeds: { host: string; port: number }[], auth: ConstructorParameters<typeof AckedWriter>[1]) {
        super(seeds, auth, 4);
        // A periodic topology refresh, as a production client should have: ioredis 5.9.2 sets no
        // default for slotsRefreshInterval, and a pipeline answered CLUSTERDOWN by a master that
        // is partitioned away (but still reachable by the client) never refreshes the slot map,
        // so without it the writer stays on the old master until the partition heals. The option
        // is read when the client becomes ready (resetNodesRefreshInterval), i.e. after start().
        (this as unknown as { cluster: { options: { slotsRefreshInterval?: number } } }).cluster.options.slotsRefreshInterval = 1000;
        const set = this.acked.set.bind(this.acked);
        this.acked.set = (k: string, v: string) => {
            this.ackedAt.set(k, Date.now());
            return set(k, v);
        };
    }

    /** Issue time (ms) the writer stamped into a value `w:seq:ms`. */
    static issuedAt(value: string): number {
        return Number(value.split(":")[2]);
    }

    /** First ack (ms after `faultAt`) of a write issued at or after `faultAt` on one of `slots`; -1 if none yet. */
    gapAfter(faultAt: number, slots: Set<number> | null): number {
        let best = -1;
        for (const [k, v] of this.acked) {
            if (TimedWriter.issuedAt(v) < faultAt) continue;
            if (slots && !slots.has(keySlot(k))) continue;
            const d = this.ackedAt.get(k)! - faultAt;
            if (best < 0 || d < best) best = d;
        }
        return best;
    }

    /** Waits (bounded) until a write issued after `faultAt` on `slots` is acknowledged; returns the gap. */
    async waitResumed(faultAt: number, slots: Set<number> | null, ms = 45000): Promise<number> {
        return waitFor(() => `an acknowledged write on the affected shard after the fault (writer so far: issued ${this.issued}, acked ${this.acked.size}, unacked (WAIT 1 answered 0) ${this.unacked}, redirects ${this.redirects}, errors ${JSON.stringify(this.errors)}, clusterdown ${this.clusterDownSeen}; slots watched ${slots ? slots.size : "all"})`, ms, async () => {
            const g = this.gapAfter(faultAt, slots);
            return g >= 0 ? g + 1 : false; // +1 keeps a 0 ms gap truthy
        }).then((g) => g - 1);
    }

    /** Acknowledged keys issued within [from, to) (ms). */
    ackedIssuedBetween(from: number, to: number): string[] {
        return [...this.acked].filter(([, v]) => TimedWriter.issuedAt(v) >= from && TimedWriter.issuedAt(v) < to).map(([k]) => k);
    }
}

/** One result line per scenario (stdout), and the table at the end. */
export function formatResult(r: ScenarioResult): string {
    const gap = r.gapMs < 0 ? "-" : `${(r.gapMs / 1000).toFixed(2)} s`;
    return `chaos ${r.name}: acked ${r.acked}, lost ${r.lost}, write gap ${gap}, healthy ${(r.healMs / 1000).toFixed(2)} s after the fault ended${r.note ? ` (${r.note})` : ""}\n`;
}

export function formatTable(rs: ScenarioResult[], wallMs: number, version: string): string {
    const rows = [["scenario", "acked", "lost", "write gap", "heal", "note"]];
    for (const r of rs) rows.push([r.name, String(r.acked), String(r.lost), r.gapMs < 0 ? "-" : `${(r.gapMs / 1000).toFixed(2)} s`, `${(r.healMs / 1000).toFixed(2)} s`, r.note]);
    const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    const line = (r: string[]) => `| ${r.map((x, c) => x.padEnd(w[c])).join(" | ")} |`;
    return [`chaos suite on redis ${version}, ${(wallMs / 1000).toFixed(0)} s`, line(rows[0]), line(w.map((n) => "-".repeat(n))), ...rows.slice(1).map(line), ""].join("\n");
}
