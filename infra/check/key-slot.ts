/**
 * The hash slot of a key, as Redis Cluster computes it: CRC16 (XMODEM: polynomial 0x1021, initial
 * value 0) of the key, or of its hash tag (the part between the first `{` and the next `}` when
 * non-empty), modulo 16384. Used by `check` to put a test key on every shard.
 */
export function crc16(s: string): number {
    let crc = 0;
    for (const byte of Buffer.from(s, "utf8")) {
        crc ^= byte << 8;
        for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
}

export function keySlot(key: string): number {
    const open = key.indexOf("{");
    if (open >= 0) {
        const close = key.indexOf("}", open + 1);
        if (close > open + 1) return crc16(key.slice(open + 1, close)) % 16384;
    }
    return crc16(key) % 16384;
}

/** A key that lands in one of `slots` (bounded search; throws if none is found). */
export function keyInSlots(prefix: string, owns: (slot: number) => boolean, maxTries = 100_000): string {
    for (let i = 0; i < maxTries; i++) {
        const key = `${prefix}:{${i}}`;
        if (owns(keySlot(key))) return key;
    }
    throw new Error(`no key of the form ${prefix}:{N} lands in the given slots within ${maxTries} tries`);
}
