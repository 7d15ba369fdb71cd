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

/** Key ids grouped by slot, `perCommand` at most per group, per owning master ("host:port"). */
function groupByMaster(owners: string[], keys: number, perCommand: number): Map<string, number[][]> {
    const bySlot: number[][] = Array.from({ length: CLUSTER_SLOTS }, () => []);
    for (let i = 0; i < keys; i++) bySlot[keySlot(benchKey(i))].push(i);
    const byMaster = new Map<string, number[][]>();
    for (let slot = 0; slot < CLUSTER_SLOTS; slot++) {
        const ids = bySlot[slot];
        if (!ids.length) continue;
        let list = byMaster.get(owners[slot]);
        if (!list) byMaster.set(owners[slot], (list = []));
        for (let k = 0; k < ids.length; k += perCommand) list.push(ids.slice(k, k + perCommand));
    }
    return byMaster;
}

const connect = (e: Endpoint, auth: ViewAuth) =>
    new Redis({ host: e.host, port: e.port, username: auth.username, password: auth.password, tls: { ...auth.tls, checkServerIdentity: () => undefined }, maxRetriesPerRequest: 1, connectTimeout: 5000, commandTimeout: 60000 });

/**
 * Runs `fn(client, groups)` for every master with `inFlight` pipelines of `batch` commands each,
 * one connection per master (closed at the end).
 */
async function perMaster(
    seed: Endpoint,
    auth: ViewAuth,
    keys: number,
    perCommand: number,
    opts: { batch: number; inFlight: number },
    fill: (p: ReturnType<Redis["pipeline"]>, group: number[]) => void,
    check: (owner: string, res: Array<[Error | null, unknown]>, groups: number[][]) => void,
): Promise<void> {
    const seedClient = connect(seed, auth);
    const clients = new Map<string, Redis>();
    try {
        const byMaster = groupByMaster(await slotOwners(seedClient), keys, perCommand);
        await Promise.all(
            [...byMaster.entries()].map(async ([owner, groups]) => {
                const [host, port] = [owner.slice(0, owner.lastIndexOf(":")), Number(owner.slice(owner.lastIndexOf(":") + 1))];
                const c = connect({ host, port }, auth);
                clients.set(owner, c);
                let next = 0;
                const worker = async () => {
                    while (next < groups.length) {
                        const chunk = groups.slice(next, next + opts.batch);
                        next += opts.batch;
                        const p = c.pipeline();
                        for (const g of chunk) fill(p, g);
                        check(owner, (await p.exec()) ?? [], chunk);
                    }
                };
                await Promise.all(Array.from({ length: opts.inFlight }, worker));
            }),
        );
    } finally {
        seedClient.disconnect();
        for (const c of clients.values()) c.disconnect();
    }
}

export const DEFAULT_VALUE_BYTES = 64;

/** Writes the keys; returns keys/s of the load itself. */
export async function loadKeys(seed: Endpoint, auth: ViewAuth, opts: LoadOptions): Promise<{ keys: number; ms: number }> {
    const start = performance.now();
    const value = "v".repeat(opts.valueBytes ?? DEFAULT_VALUE_BYTES);
    // Keys of one slot go in one MSET (same slot, so the server accepts it): ~30 keys per
    // command at 500 000 keys instead of one SET each.
    await perMaster(
        seed,
        auth,
        opts.keys,
        opts.keysPerCommand ?? 100,
        { batch: opts.batch ?? 200, inFlight: opts.inFlight ?? 2 },
        (p, g) => p.mset(...g.flatMap((i) => [benchKey(i), value])),
        (owner, res) => {
            const bad = res.find(([err]) => err);
            if (bad) throw new Error(`loading keys into ${owner} failed: ${bad[0]?.message}`);
        },
    );
    return { keys: opts.keys, ms: performance.now() - start };
}

/**
 * Reads back keys bench:key:0..n-1 (written by loadKeys with the same value size) from the
 * masters that own their slots now, with per-slot MGETs. Returns how many are missing or wrong.
 */
export async function verifyKeys(seed: Endpoint, auth: ViewAuth, keys: number, valueBytes = DEFAULT_VALUE_BYTES): Promise<{ checked: number; missing: number; samples: string[] }> {
    const value = "v".repeat(valueBytes);
    let checked = 0;
    let missing = 0;
    const samples: string[] = [];
    await perMaster(
        seed,
        auth,
        keys,
        100,
        { batch: 200, inFlight: 2 },
        (p, g) => p.mget(...g.map(benchKey)),
        (owner, res, groups) => {
            res.forEach(([err, vals], k) => {
                if (err) throw new Error(`reading keys back from ${owner} failed: ${err.message}`);
                (vals as Array<string | null>).forEach((v, j) => {
                    checked++;
                    if (v !== value) {
                        missing++;
                        if (samples.length < 5) samples.push(`${benchKey(groups[k][j])} on ${owner}: ${v === null ? "missing" : "wrong value"}`);
                    }
                });
            });
        },
    );
    return { checked, missing, samples };
}
