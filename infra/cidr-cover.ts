/**
 * Does a set of CIDRs, taken together, cover a whole address family? Pure.
 *
 * Refusing the literal "0.0.0.0/0" is not enough: "0.0.0.0/1" + "128.0.0.0/1" (or 256 /8s) open
 * a port to the same whole internet. Ranges are merged as integer intervals (bigint, so IPv6
 * works the same way) and the union is compared with the family's full range.
 */

export type Family = "ipv4" | "ipv6";

/** [first, last] address of a CIDR as bigints, with host bits masked off; null if not a CIDR. */
export function cidrInterval(cidr: string): { family: Family; first: bigint; last: bigint } | null {
    const slash = cidr.lastIndexOf("/");
    if (slash < 0) return null;
    const addr = cidr.slice(0, slash);
    const prefixText = cidr.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText)) return null;
    const prefix = Number(prefixText);
    let value: bigint | null;
    let bits: number;
    if (addr.includes(":")) {
        value = parseIpv6(addr);
        bits = 128;
    } else {
        value = parseIpv4(addr);
        bits = 32;
    }
    if (value === null || prefix > bits) return null;
    const hostBits = BigInt(bits - prefix);
    const first = (value >> hostBits) << hostBits;
    const last = first + (1n << hostBits) - 1n;
    return { family: bits === 32 ? "ipv4" : "ipv6", first, last };
}

function parseIpv4(s: string): bigint | null {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
    if (!m) return null;
    const o = m.slice(1).map(Number);
    if (o.some((x) => x > 255)) return null;
    return o.reduce((a, x) => (a << 8n) + BigInt(x), 0n);
}

function parseIpv6(s: string): bigint | null {
    if (!/^[0-9a-fA-F:]+$/.test(s)) return null;
    const halves = s.split("::");
    if (halves.length > 2) return null;
    const groups = (h: string) => (h === "" ? [] : h.split(":"));
    const head = groups(halves[0]);
    const tail = halves.length === 2 ? groups(halves[1]) : [];
    const missing = 8 - head.length - tail.length;
    if ((halves.length === 1 && missing !== 0) || missing < 0) return null;
    const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
    if (all.length !== 8 || all.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return null;
    return all.reduce((a, g) => (a << 16n) + BigInt(parseInt(g, 16)), 0n);
}

/** The address families whose every address lies in at least one of `cidrs` (entries that do not parse are ignored). */
export function familiesCovered(cidrs: string[]): Family[] {
    const out: Family[] = [];
    for (const [family, bits] of [["ipv4", 32], ["ipv6", 128]] as [Family, number][]) {
        const iv = cidrs
            .map(cidrInterval)
            .filter((x): x is NonNullable<typeof x> => x !== null && x.family === family)
            .sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
        let next = 0n; // first address not yet covered
        for (const x of iv) {
            if (x.first > next) break;
            if (x.last + 1n > next) next = x.last + 1n;
        }
        if (next === 1n << BigInt(bits)) out.push(family);
    }
    return out;
}
