/**
 * The network of one VM stack: a network namespace with one Linux bridge, one /24 segment per zone
 * (plus a services segment and a host link), tap devices for VMs and veth-attached extra namespaces
 * ("client", "monitoring", "internet") for firewall tests. Primitives only (no Pulumi): the qemu
 * adapter wraps them in dynamic resources and persists the plain {@link StackNetwork} record.
 *
 * Layout (stack slot S in 0..15, base B = 16*S; every name but the host veth lives inside the
 * stack namespace, so stacks never collide):
 *
 *   host:  veth rfvm<id>h 10.210.(B+15).2/30, route 10.210.B.0/20 via 10.210.(B+15).1
 *           │
 *   netns rfvm-<id> (ip_forward on, no default route: nothing leaves it)
 *     veth hostlink 10.210.(B+15).1/30
 *     bridge br0: 10.210.(B+z).1/24 for zone z (z < 8), 10.210.(B+8).1/24 services
 *                 (+ 10.210.(B+9+k).1/24 for the k-th extra namespace)
 *       ├── tap <name>  (a VM; QEMU runs in this namespace and opens it)  isolated port
 *       └── veth x-<name> ──► netns rfvm-<id>-<name>: eth0 10.210.(B+9+k).2/24, default via .1
 *
 * Every bridge port is `isolated`: ports cannot talk to each other at layer 2, and the bridge
 * answers ARP for the whole segment (proxy_arp_pvlan), so EVERY packet between two endpoints,
 * same zone or not, is routed through the namespace's IP stack. That is what makes one nftables
 * `inet` forward chain (lab/vm/firewall.ts) see and filter all of it, with normal conntrack.
 * ICMP redirects are off so endpoints never learn a direct path.
 *
 * Every command is bounded (lab/vm/exec.ts). deleteStackNetwork() removes what createStackNetwork
 * made and is safe after a partial create or twice.
 */
import { randomBytes } from "crypto";
import { run, runIn } from "./exec";

/** First two octets of every stack network; also the image's insecure-registry range (scripts/build-vm-image.sh). */
export const VM_NET_PREFIX = "10.210";
/** Zones per stack (segments B+0..B+7). */
export const MAX_ZONES = 8;
/** Extra namespaces per stack (segments B+9..B+14). */
export const MAX_EXTRA_NAMESPACES = 6;

export interface Segment {
    /** e.g. 10.210.16.0/24 */
    cidr: string;
    /** The namespace's address on the bridge for this segment (endpoints' default gateway). */
    gateway: string;
    /** Prefix length (24). */
    prefixLen: number;
}

/** Plain record of a stack network (persistable; every function below takes it). */
export interface StackNetwork {
    /** 1-6 lowercase letters/digits. */
    id: string;
    /** Stack slot 0..15: the /20 10.210.(16*slot).0/20. */
    slot: number;
    /** The stack's namespace. */
    netns: string;
    /** The bridge inside the namespace. */
    bridge: string;
    /** Zone label -> segment, in the order given. */
    zones: Record<string, Segment>;
    /** Segment for services on the bridge (registry, S3, load balancer): they bind addresses from it. */
    services: Segment;
    /** The host end of the host link and the namespace end (host traffic to VMs comes from hostIp). */
    hostLink: { hostIfname: string; hostIp: string; nsIp: string };
    /** The whole /20 of the stack (routed from the host). */
    cidr: string;
}

export interface StackNetworkOptions {
    /** Stack id (1-6 lowercase letters/digits) in the namespace name. Default: 4 random hex chars. */
    id?: string;
    /** Zone labels, 1..8, e.g. ["zone-a", "zone-b", "zone-c"]. */
    zones: string[];
    /** Stack slot 0..15. Default: the first one whose /20 no host route uses. */
    slot?: number;
}

const ID_RE = /^[a-z0-9]{1,6}$/;
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,12}$/;

function seg(slot: number, k: number): Segment {
    const third = 16 * slot + k;
    return { cidr: `${VM_NET_PREFIX}.${third}.0/24`, gateway: `${VM_NET_PREFIX}.${third}.1`, prefixLen: 24 };
}

/** The address of host `n` (2..254) in a segment, e.g. addressIn(zoneSeg, 10) = 10.210.16.10. */
export function addressIn(s: Segment, n: number): string {
    if (!Number.isInteger(n) || n < 2 || n > 254) throw new Error(`host number must be 2..254 (1 is the gateway); got ${n}`);
    return s.gateway.replace(/\.1$/, `.${n}`);
}

function netnsExists(name: string): boolean {
    return run("ip", ["netns", "list"]).split("\n").some((l) => l.split(" ")[0] === name);
}

function linkExists(name: string, ns?: string): boolean {
    const out = ns ? runIn(ns, "ip", ["-o", "link", "show"]) : run("ip", ["-o", "link", "show"]);
    return out.split("\n").some((l) => {
        const m = /^\d+:\s+([^:@\s]+)/.exec(l);
        return m?.[1] === name;
    });
}

/** The plain record for id/slot/zones (pure; no system change). */
export function describeStackNetwork(id: string, slot: number, zones: string[]): StackNetwork {
    const problems: string[] = [];
    if (!ID_RE.test(id)) problems.push(`id must be 1-6 lowercase letters/digits; got '${id}'`);
    if (!Number.isInteger(slot) || slot < 0 || slot > 15) problems.push(`slot must be an integer 0..15; got ${slot}`);
    if (!Array.isArray(zones) || zones.length < 1 || zones.length > MAX_ZONES) problems.push(`zones must list 1..${MAX_ZONES} labels; got ${JSON.stringify(zones)}`);
    else if (new Set(zones).size !== zones.length) problems.push(`zone labels must be unique; got ${zones.join(", ")}`);
    if (problems.length) throw new Error(`stack network: ${problems.join("; ")}`);
    const b = 16 * slot;
    return {
        id,
        slot,
        netns: `rfvm-${id}`,
        bridge: "br0",
        zones: Object.fromEntries(zones.map((z, i) => [z, seg(slot, i)])),
        services: seg(slot, 8),
        hostLink: { hostIfname: `rfvm${id}h`, hostIp: `${VM_NET_PREFIX}.${b + 15}.2`, nsIp: `${VM_NET_PREFIX}.${b + 15}.1` },
        cidr: `${VM_NET_PREFIX}.${b}.0/20`,
    };
}

/** Creates the namespace, bridge, segments and host link. On failure removes what it made and throws. */
export function createStackNetwork(opts: StackNetworkOptions): StackNetwork {
    const id = opts.id ?? randomBytes(2).toString("hex");
    let slot = opts.slot;
    if (slot === undefined) {
        const routes = run("ip", ["-4", "route", "show"]);
        for (let s = 0; s < 16 && slot === undefined; s++) {
            const used = routes.split("\n").some((l) => l.startsWith(`${VM_NET_PREFIX}.${16 * s}.0/20`) || l.includes(`${VM_NET_PREFIX}.${16 * s + 15}.`));
            if (!used) slot = s;
        }
        if (slot === undefined) throw new Error(`stack network: all 16 slots of ${VM_NET_PREFIX}.0.0/16 are routed on this host; delete a stack (vm-down) first`);
    }
    const net = describeStackNetwork(id, slot, opts.zones);
    if (netnsExists(net.netns)) throw new Error(`stack network: namespace ${net.netns} already exists; delete it (deleteStackNetwork) or pick another id`);
    try {
        build(net);
    } catch (e) {
        try {
            deleteStackNetwork(net);
        } catch {
            // the build error is the one to report
        }
        throw e;
    }
    return net;
}

function build(net: StackNetwork): void {
    const ns = net.netns;
    run("ip", ["netns", "add", ns]);
    runIn(ns, "ip", ["link", "set", "lo", "up"]);
    for (const [k, v] of [
        ["net.ipv4.ip_forward", "1"],
        ["net.ipv4.conf.all.send_redirects", "0"],
        ["net.ipv4.conf.default.send_redirects", "0"],
    ]) runIn(ns, "sysctl", ["-qw", `${k}=${v}`]);
    runIn(ns, "ip", ["link", "add", net.bridge, "type", "bridge"]);
    for (const [k, v] of [
        [`net.ipv4.conf.${net.bridge}.send_redirects`, "0"],
        [`net.ipv4.conf.${net.bridge}.proxy_arp_pvlan`, "1"],
        [`net.ipv4.conf.${net.bridge}.proxy_arp`, "1"],
    ]) runIn(ns, "sysctl", ["-qw", `${k}=${v}`]);
    for (const s of [...Object.values(net.zones), net.services]) runIn(ns, "ip", ["addr", "add", `${s.gateway}/${s.prefixLen}`, "dev", net.bridge]);
    runIn(ns, "ip", ["link", "set", net.bridge, "up"]);
    // Host link: a /30 between the host and the namespace; the host routes the stack's /20 over it.
    const h = net.hostLink;
    run("ip", ["link", "add", h.hostIfname, "type", "veth", "peer", "name", "hostlink", "netns", ns]);
    run("ip", ["addr", "add", `${h.hostIp}/30`, "dev", h.hostIfname]);
    run("ip", ["link", "set", h.hostIfname, "up"]);
    runIn(ns, "ip", ["addr", "add", `${h.nsIp}/30`, "dev", "hostlink"]);
    runIn(ns, "ip", ["link", "set", "hostlink", "up"]);
    run("ip", ["route", "add", net.cidr, "via", h.nsIp, "dev", h.hostIfname]);
}

/** Removes the extra namespaces, the stack namespace (its taps, bridge and tables go with it) and the host link. Idempotent. */
export function deleteStackNetwork(net: StackNetwork): void {
    const errors: string[] = [];
    const attempt = (f: () => void) => {
        try {
            f();
        } catch (e) {
            errors.push((e as Error).message);
        }
    };
    for (const line of run("ip", ["netns", "list"]).split("\n")) {
        const name = line.split(" ")[0];
        if (name.startsWith(`${net.netns}-`)) attempt(() => run("ip", ["netns", "del", name]));
    }
    if (netnsExists(net.netns)) attempt(() => run("ip", ["netns", "del", net.netns]));
    // Deleting the namespace deletes the veth pair, asynchronously once its last user is gone:
    // wait (bounded, 5 s) for the host end to go, then delete it ourselves.
    for (let i = 0; i < 50 && linkExists(net.hostLink.hostIfname); i++) run("sleep", ["0.1"]);
    if (linkExists(net.hostLink.hostIfname)) {
        attempt(() => {
            try {
                run("ip", ["link", "del", net.hostLink.hostIfname]);
            } catch (e) {
                if (linkExists(net.hostLink.hostIfname)) throw e;
            }
        });
    }
    if (errors.length) throw new Error(`stack network ${net.id}: delete: ${errors.join("; ")}`);
}

/** True when the stack's namespace and bridge exist (for a dynamic provider's read/refresh). */
export function stackNetworkExists(net: StackNetwork): boolean {
    return netnsExists(net.netns) && linkExists(net.bridge, net.netns) && linkExists(net.hostLink.hostIfname);
}

/**
 * Creates tap `name` on the stack's bridge (an isolated port), for a QEMU that runs inside the
 * namespace (`-netdev tap,ifname=<name>,script=no,downscript=no`). Idempotent.
 */
export function addTap(net: StackNetwork, name: string): string {
    if (!NAME_RE.test(name)) throw new Error(`tap name must be 1-13 lowercase letters/digits/dashes; got '${name}'`);
    if (!linkExists(name, net.netns)) runIn(net.netns, "ip", ["tuntap", "add", "dev", name, "mode", "tap"]);
    runIn(net.netns, "ip", ["link", "set", name, "master", net.bridge]);
    runIn(net.netns, "bridge", ["link", "set", "dev", name, "isolated", "on"]);
    runIn(net.netns, "ip", ["link", "set", name, "up"]);
    return name;
}

/** Deletes tap `name`. Idempotent. */
export function deleteTap(net: StackNetwork, name: string): void {
    if (netnsExists(net.netns) && linkExists(name, net.netns)) runIn(net.netns, "ip", ["link", "del", name]);
}

/** An extra namespace attached to the stack's bridge (a client, monitoring or "internet" vantage point). */
export interface ExtraNamespace {
    name: string;
    netns: string;
    /** Its one address (eth0). */
    ip: string;
    segment: Segment;
}

/**
 * Creates namespace `rfvm-<id>-<name>` with eth0 on its own segment (10.210.(B+9+index).0/24, its
 * address .2, default route via the bridge). `index` 0..5 picks the segment. Idempotent.
 */
export function addExtraNamespace(net: StackNetwork, name: string, index: number): ExtraNamespace {
    if (!NAME_RE.test(name) || name.length > 10) throw new Error(`extra namespace name must be 1-10 lowercase letters/digits/dashes; got '${name}'`);
    if (!Number.isInteger(index) || index < 0 || index >= MAX_EXTRA_NAMESPACES) throw new Error(`extra namespace index must be 0..${MAX_EXTRA_NAMESPACES - 1}; got ${index}`);
    const s = seg(net.slot, 9 + index);
    const x: ExtraNamespace = { name, netns: `${net.netns}-${name}`, ip: addressIn(s, 2), segment: s };
    const port = `x-${name}`;
    if (!netnsExists(x.netns)) run("ip", ["netns", "add", x.netns]);
    if (!linkExists(port, net.netns)) {
        runIn(net.netns, "ip", ["link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", x.netns]);
        runIn(net.netns, "ip", ["addr", "add", `${s.gateway}/${s.prefixLen}`, "dev", net.bridge]);
        runIn(net.netns, "ip", ["link", "set", port, "master", net.bridge]);
        runIn(net.netns, "bridge", ["link", "set", "dev", port, "isolated", "on"]);
        runIn(net.netns, "ip", ["link", "set", port, "up"]);
        runIn(x.netns, "ip", ["link", "set", "lo", "up"]);
        runIn(x.netns, "ip", ["addr", "add", `${x.ip}/${s.prefixLen}`, "dev", "eth0"]);
        runIn(x.netns, "ip", ["link", "set", "eth0", "up"]);
        runIn(x.netns, "ip", ["route", "add", "default", "via", s.gateway]);
    }
    return x;
}

/** Adds `ip` (from the services segment) to the bridge so a service in the namespace can bind it. Idempotent. */
export function addServiceAddress(net: StackNetwork, n: number): string {
    const ip = addressIn(net.services, n);
    const have = runIn(net.netns, "ip", ["-4", "-o", "addr", "show", "dev", net.bridge]);
    if (!have.includes(` ${ip}/`)) runIn(net.netns, "ip", ["addr", "add", `${ip}/32`, "dev", net.bridge]);
    return ip;
}
