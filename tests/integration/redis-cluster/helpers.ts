/** Shared helpers for the RedisCluster integration tests: specs and credentials from a Lab. */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Lab } from "../../../lab/lab";
import { ClusterCredentials, ClusterNodeSpec, ClusterSpec } from "../../../providers/redis-cluster/types";

export function labDir(name: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), `rf-${name}-`));
}

export function labCreds(lab: Lab): ClusterCredentials {
    return {
        username: "admin",
        password: lab.password("admin"),
        tls: {
            ca: fs.readFileSync(lab.tls.caFile, "utf8"),
            cert: fs.readFileSync(lab.tls.clientCertFile, "utf8"),
            key: fs.readFileSync(lab.tls.clientKeyFile, "utf8"),
        },
    };
}

export function labNodes(lab: Lab, indexes?: number[]): ClusterNodeSpec[] {
    const idx = indexes ?? lab.nodes.map((n) => n.index);
    return idx.map((i) => ({ id: lab.nodes[i].name, host: lab.nodes[i].host, port: lab.nodes[i].port, zone: lab.nodes[i].zone }));
}

export function labSpec(lab: Lab, indexes: number[], shards: number, replicasPerShard: number): ClusterSpec {
    return { nodes: labNodes(lab, indexes), shards, replicasPerShard };
}

/** CLUSTER INFO of one node as a record. */
export async function clusterInfo(lab: Lab, i: number): Promise<Record<string, string>> {
    const out = await lab.cli(i, ["CLUSTER", "INFO"]);
    const o: Record<string, string> = {};
    for (const line of out.split("\n")) {
        const [k, v] = line.trim().split(":");
        if (k && v !== undefined) o[k] = v;
    }
    return o;
}

/** CRC16/XMODEM as Redis Cluster uses it, with the {hash tag} rule: the slot of a key. */
export function keySlot(key: string): number {
    let k = key;
    const open = k.indexOf("{");
    if (open >= 0) {
        const close = k.indexOf("}", open + 1);
        if (close > open + 1) k = k.slice(open + 1, close);
    }
    let crc = 0;
    for (const b of Buffer.from(k)) {
        crc ^= b << 8;
        for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc % 16384;
}

/** Slot -> lab node index of the master owning it, from CLUSTER SLOTS of node `via`. */
export async function slotOwners(lab: Lab, via: number): Promise<Int32Array> {
    const Redis = (await import("ioredis")).default;
    const c = new Redis({ ...lab.clientOptions(via), lazyConnect: true });
    try {
        await c.connect();
        const slots = (await c.cluster("SLOTS")) as unknown as [number, number, [string, number]][];
        const owners = new Int32Array(16384).fill(-1);
        for (const [start, end, [host, port]] of slots) {
            const idx = lab.nodes.findIndex((n) => n.host === host && n.port === port);
            for (let s = start; s <= end; s++) owners[s] = idx;
        }
        return owners;
    } finally {
        c.disconnect();
    }
}

/** Runs `fn` with one connected ioredis client per lab node index; closes them all. */
async function withClients<T>(lab: Lab, idx: number[], fn: (c: Map<number, import("ioredis").Redis>) => Promise<T>): Promise<T> {
    const Redis = (await import("ioredis")).default;
    const clients = new Map<number, import("ioredis").Redis>();
    try {
        for (const i of idx) {
            const c = new Redis({ ...lab.clientOptions(i), lazyConnect: true });
            await c.connect();
            clients.set(i, c);
        }
        return await fn(clients);
    } finally {
        for (const c of clients.values()) c.disconnect();
    }
}

/** Writes keys k:0..n-1 (value v:i) to their owning masters with pipelines of 5000. Returns ms. */
export async function loadKeys(lab: Lab, via: number, n: number): Promise<number> {
    const t0 = Date.now();
    const owners = await slotOwners(lab, via);
    const byNode = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
        const o = owners[keySlot(`k:${i}`)];
        const list = byNode.get(o);
        if (list) list.push(i);
        else byNode.set(o, [i]);
    }
    await withClients(lab, [...byNode.keys()], async (clients) => {
        await Promise.all(
            [...byNode].map(async ([node, ids]) => {
                const c = clients.get(node)!;
                for (let j = 0; j < ids.length; j += 5000) {
                    const p = c.pipeline();
                    for (const i of ids.slice(j, j + 5000)) p.set(`k:${i}`, `v:${i}`);
                    const res = await p.exec();
                    for (const [e] of res!) if (e) throw e;
                }
            }),
        );
    });
    return Date.now() - t0;
}

/** Reads keys k:0..n-1 from the masters that own them now; returns the ids missing or wrong. */
export async function verifyKeys(lab: Lab, via: number, n: number): Promise<number[]> {
    const owners = await slotOwners(lab, via);
    const byNode = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
        const o = owners[keySlot(`k:${i}`)];
        const list = byNode.get(o);
        if (list) list.push(i);
        else byNode.set(o, [i]);
    }
    const bad: number[] = [];
    if (byNode.has(-1)) bad.push(...byNode.get(-1)!);
    byNode.delete(-1);
    await withClients(lab, [...byNode.keys()], async (clients) => {
        await Promise.all(
            [...byNode].map(async ([node, ids]) => {
                const c = clients.get(node)!;
                for (let j = 0; j < ids.length; j += 5000) {
                    const chunk = ids.slice(j, j + 5000);
                    const p = c.pipeline();
                    for (const i of chunk) p.get(`k:${i}`);
                    const res = await p.exec();
                    res!.forEach(([e, v], k) => {
                        if (e || v !== `v:${chunk[k]}`) bad.push(chunk[k]);
                    });
                }
            }),
        );
    });
    return bad;
}

/** Makes nodes fresh again between tests: FLUSHALL + CLUSTER RESET HARD (new node id, no peers, no slots). */
export async function resetNodes(lab: Lab, idx: number[]): Promise<void> {
    await withClients(lab, idx, async (clients) => {
        await Promise.all(
            [...clients.values()].map(async (c) => {
                const role = String(await c.info("replication"));
                if (/role:master/.test(role)) await c.flushall();
                await c.cluster("RESET", "HARD");
                await c.flushall().catch(() => undefined);
            }),
        );
    });
}

/**
 * Lab.start with up to 3 attempts: the lab picks free ports by asking the OS, and on a busy
 * shared machine a port can be taken between the pick and redis-server's bind ("Address already
 * in use"). A failed attempt's processes are stopped by PID (Lab.load + stop) before retrying.
 */
export async function startLab(name: string, count: number): Promise<Lab> {
    let last: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
        const dir = labDir(name);
        try {
            return await Lab.start({ dir, count });
        } catch (e) {
            last = e;
            try {
                await Lab.load(dir).stop({ removeData: true });
            } catch {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        }
    }
    throw last;
}
