/**
 * Pure IPv4 address planning shared by the config validator and every adapter, so that they
 * agree on the layout: the network CIDR is cut into equal subnets, zone i gets private subnet i
 * and public subnet (zones + i) (public subnets hold only NAT gateways / external LBs).
 */

/** Parses an IPv4 CIDR with a clean network address; returns [network as uint32, prefix] or null. */
export function parseCidr(cidr: string): [number, number] | null {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
    if (!m) return null;
    const octets = m.slice(1, 5).map(Number);
    const prefix = Number(m[5]);
    if (octets.some((o) => o > 255) || prefix > 32) return null;
    const ip = (((octets[0] << 24) >>> 0) + (octets[1] << 16) + (octets[2] << 8) + octets[3]) >>> 0;
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    // Host bits set ("10.0.0.1/16") is ambiguous: reject rather than guess.
    if ((ip & ~mask) >>> 0 !== 0) return null;
    return [ip, prefix];
}

export function formatIp(n: number): string {
    return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");
}

/** Largest subnet prefix used per zone; smaller networks get smaller subnets. */
export const MAX_SUBNET_PREFIX = 20;

/** Smallest network prefix that fits a private and a public subnet per zone. */
export function requiredNetworkPrefix(zoneCount: number): number {
    return 28 - Math.ceil(Math.log2(Math.max(2 * zoneCount, 2)));
}

export interface SubnetPlan {
    private: Record<string, string>;
    public: Record<string, string>;
}

export function subnetPlan(networkCidr: string, zones: string[]): SubnetPlan {
    const parsed = parseCidr(networkCidr);
    if (!parsed) throw new Error(`network CIDR ${JSON.stringify(networkCidr)} is not an IPv4 CIDR with a clean network address`);
    const [base, prefix] = parsed;
    const bits = Math.ceil(Math.log2(Math.max(2 * zones.length, 2)));
    const sub = Math.max(MAX_SUBNET_PREFIX, prefix + bits);
    if (sub > 28) throw new Error(`network CIDR ${networkCidr} is too small for ${zones.length} zones (needs /${requiredNetworkPrefix(zones.length)} or larger)`);
    const size = 2 ** (32 - sub);
    const plan: SubnetPlan = { private: {}, public: {} };
    zones.forEach((z, i) => {
        plan.private[z] = `${formatIp((base + i * size) >>> 0)}/${sub}`;
        plan.public[z] = `${formatIp((base + (zones.length + i) * size) >>> 0)}/${sub}`;
    });
    return plan;
}

/** True when `ip` (dotted) lies in `cidr`. */
export function cidrContains(cidr: string, ip: string): boolean {
    const c = parseCidr(cidr);
    const i = parseCidr(`${ip}/32`);
    if (!c || !i) return false;
    return c[1] === 0 || ((c[0] ^ i[0]) >>> (32 - c[1])) === 0;
}
