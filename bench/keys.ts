/**
 * Fast, bounded key loading for the benchmark: keys are grouped by the master that owns their slot
 * (CRC16/XMODEM of the key, mod 16384, as Redis Cluster computes it) and written with pipelined
 * per-slot MSETs over one connection per master, a bounded number of commands in flight.
 */
import Redis from "ioredis";
import { CLUSTER_SLOTS, Endpoint, ViewAuth } from "../lab/cluster-view";

const CRC16_TABLE = (() => {
    const t = new Uint16Array(256);
    for (let i = 0; i < 256; i++) {
        let crc = i << 8;
        for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
        t[i] = crc;
    }
    return t;
})();

/** CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as in the Redis Cluster spec. */
export function crc16(data: Buffer): number {
    let crc = 0;
    for (const byte of data) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff];
    return crc;
}

/** Hash slot of a key, honouring `{hash tags}` like the server does. */
export function keySlot(key: string): number {
    let k = key;
    const open = key.indexOf("{");
    if (open >= 0) {
        const close = key.indexOf("}", open + 1);
        if (close > open + 1) k = key.slice(open + 1, close);
    }
    return crc16(Buffer.from(k, "utf8")) % CLUSTER_SLOTS;
}

export function benchKey(i: number): string {
    return `bench:key:${i}`;
}

/** Slot → "host:port" of the owning master, from CLUSTER SLOTS of any node. */
export async function slotOwners(client: Redis): Promise<string[]> {
    const owners = new Array<string>(CLUSTER_SLOTS).fill("");
    const slots = (await client.call("CLUSTER", "SLOTS")) as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>;
    for (const [start, end, master] of slots) for (let s = start; s <= end; s++) owners[s] = `${master[0]}:${master[1]}`;
    const missing = owners.filter((o) => !o).length;
    if (missing) throw new Error(`cannot load keys: ${missing} slots have no master in CLUSTER SLOTS; form the cluster first`);
    return owners;
}

export interface LoadOptions {
    /** Number of keys bench:key:0 .. bench:key:(n-1). */
    keys: number;
    /** Bytes per value. Default 64. */
    valueBytes?: number;
    /** MSET commands per pipeline flush. Default 200. */
    batch?: number;
    /** Most keys per MSET (all of one slot). Default 100. */
    keysPerCommand?: number;
    /** Pipelines in flight per master. Default 2. */
    inFlight?: number;
}

/** Writes the keys; returns keys/s of the load itself. */
export async function loadKeys(seed: Endpoint, auth: ViewAuth, opts: LoadOptions): Promise<{ keys: number; ms: number }> {
    const mk = (e: Endpoint) =>
        new Redis({ host: e.host, port: e.port, username: auth.username, password: auth.password, tls: { ...auth.tls, checkServerIdentity: () => undefined }, maxRetriesPerRequest: 1, connectTimeout: 5000, commandTimeout: 60000 });
    const seedClient = mk(seed);
    const clients = new Map<string, Redis>();
    const start = performance.now();
    try {
        const owners = await slotOwners(seedClient);
        // Keys of one slot go in one MSET (same slot, so the server accepts it): ~30 keys per
        // command at 500 000 keys instead of one SET each.
        const bySlot: number[][] = Array.from({ length: CLUSTER_SLOTS }, () => []);
        for (let i = 0; i < opts.keys; i++) bySlot[keySlot(benchKey(i))].push(i);
        const byMaster = new Map<string, number[][]>();
        const perCommand = opts.keysPerCommand ?? 100;
        for (let slot = 0; slot < CLUSTER_SLOTS; slot++) {
            const ids = bySlot[slot];
            if (!ids.length) continue;
            let list = byMaster.get(owners[slot]);
            if (!list) byMaster.set(owners[slot], (list = []));
            for (let k = 0; k < ids.length; k += perCommand) list.push(ids.slice(k, k + perCommand));
        }
        const value = "v".repeat(opts.valueBytes ?? 64);
        const batch = opts.batch ?? 200;
        const inFlight = opts.inFlight ?? 2;
        await Promise.all(
            [...byMaster.entries()].map(async ([owner, groups]) => {
                const [host, port] = owner.split(":");
                const c = mk({ host, port: Number(port) });
                clients.set(owner, c);
                let next = 0;
                const worker = async () => {
                    while (next < groups.length) {
                        const chunk = groups.slice(next, next + batch);
                        next += batch;
                        const p = c.pipeline();
                        for (const g of chunk) p.mset(...g.flatMap((i) => [benchKey(i), value]));
                        const res = await p.exec();
                        const bad = res?.find(([err]) => err);
                        if (bad) throw new Error(`loading keys into ${owner} failed: ${bad[0]?.message}`);
                    }
                };
                await Promise.all(Array.from({ length: inFlight }, worker));
            }),
        );
        return { keys: opts.keys, ms: performance.now() - start };
    } finally {
        seedClient.disconnect();
        for (const c of clients.values()) c.disconnect();
    }
}
