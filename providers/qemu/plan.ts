/**
 * The qemu cloud's address and firewall plan: pure, no I/O, so the adapter can compute every
 * address at program time (certificates name them before any VM exists) and the tests can check
 * the plan without a machine.
 *
 * Layout (on top of lab/vm/network.ts; stack slot S, base B = 16*S, network 10.210.B.0/20):
 *
 *   zone z segment 10.210.(B+z).0/24, gateway .1 (the stack namespace)
 *     Redis VMs   10.210.(B+z).0/26   node ordinal i   -> .(10+i)     (the `redis` "security group")
 *     Envoy VMs   10.210.(B+z).64/27  envoy ordinal i  -> .(70+i)     (the `envoy` "security group")
 *   services 10.210.(B+8).0/24: registry .2, S3 server .3, load balancer .4
 *   metadata service 169.254.169.254 (secrets + instance credentials, like a cloud's IMDS)
 *   host link 10.210.(B+15).2: the deploying machine (the RedisCluster provider runs there)
 *
 * A role is an address range, as a security group is a set of attached interfaces: the adapter
 * hands out every address, so a VM in the redis range IS a Redis VM. Firewall rules between roles
 * are rules between those ranges; the metadata service knows the caller by its source address,
 * which the VM's tap pins (an nftables rule per tap drops any other source).
 */
import { parseCidr } from "../network-plan";
import type { AllowRule as CloudRule, NodeRole } from "../types";

export const VM_NET_PREFIX = "10.210";
export const METADATA_IP = "169.254.169.254";
export const METADATA_PORT = 80;
export const SERVICE_HOSTS = { registry: 2, s3: 3, lb: 4 } as const;
export const REGISTRY_PORT = 5000;
export const S3_PORT = 9000;
/** Highest node / envoy ordinal the address plan holds. */
export const MAX_NODE_ORDINAL = 52;
export const MAX_ENVOY_ORDINAL = 24;

/** What lab/vm/firewall.ts enforces (copied shape: providers keep their own type of the primitive's input). */
export interface LabRule {
    from: string;
    to: string;
    proto?: "tcp" | "udp" | "icmp";
    ports?: number | [number, number];
    comment?: string;
}

/** Slot of a stack network CIDR (10.210.(16*S).0/20), or the rule it breaks. */
export function slotOf(cidr: string): { slot: number } | { error: string } {
    const p = parseCidr(cidr);
    const m = /^10\.210\.(\d{1,3})\.0\/20$/.exec(cidr);
    if (!p || !m || Number(m[1]) % 16 !== 0) {
        return { error: `networkCidr=${JSON.stringify(cidr)} is not a qemu stack network; use 10.210.<16*S>.0/20 for a stack slot S in 0..15, e.g. 10.210.0.0/20 (lab/vm/network.ts)` };
    }
    return { slot: Number(m[1]) / 16 };
}

/** Stack id for lab/vm (1-6 lowercase letters/digits) from the cluster name: `vm` -> `vm`, `e2e-vm` -> `e2evm`. */
export function stackIdOf(clusterName: string): string {
    const id = clusterName.toLowerCase().replace(/[^a-z0-9]/g, "").slice(0, 6);
    if (!id) throw new Error(`qemu: cluster name ${JSON.stringify(clusterName)} has no letters or digits to build a stack id from; use a DNS label like vm`);
    return id;
}

const third = (slot: number, k: number) => 16 * slot + k;

export function zoneSegment(slot: number, zoneIndex: number): { cidr: string; gateway: string; prefixLen: number } {
    const t = third(slot, zoneIndex);
    return { cidr: `${VM_NET_PREFIX}.${t}.0/24`, gateway: `${VM_NET_PREFIX}.${t}.1`, prefixLen: 24 };
}

/** Address range of a role in one zone. */
export function roleRange(slot: number, zoneIndex: number, role: NodeRole): string {
    const t = third(slot, zoneIndex);
    return role === "redis" ? `${VM_NET_PREFIX}.${t}.0/26` : `${VM_NET_PREFIX}.${t}.64/27`;
}

export function serviceAddress(slot: number, which: keyof typeof SERVICE_HOSTS): string {
    return `${VM_NET_PREFIX}.${third(slot, 8)}.${SERVICE_HOSTS[which]}`;
}

/** The backup bucket's S3 endpoint on the services segment (rclone's `endpoint` on the VMs). */
export function s3Endpoint(slot: number): string {
    return `http://${serviceAddress(slot, "s3")}:${S3_PORT}`;
}

export function hostLinkAddress(slot: number): string {
    return `${VM_NET_PREFIX}.${third(slot, 15)}.2`;
}

/**
 * The VM's address from its host name's ordinal (`<cluster>-node<i>`, `<cluster>-envoy<i>`, as
 * components/topology.ts names them) and zone. Stable: the same node keeps its address forever.
 */
export function addressFor(slot: number, zoneIndex: number, role: NodeRole, hostName: string): string {
    const m = (role === "redis" ? /-node(\d+)$/ : /-envoy(\d+)$/).exec(hostName);
    if (!m) throw new Error(`qemu: host name ${JSON.stringify(hostName)} has no ${role === "redis" ? "-node<i>" : "-envoy<i>"} ordinal; the qemu address plan needs one`);
    const i = Number(m[1]);
    const max = role === "redis" ? MAX_NODE_ORDINAL : MAX_ENVOY_ORDINAL;
    if (i > max) throw new Error(`qemu: ${hostName}: ordinal ${i} is above ${max}, the most the ${role} range of a zone holds; use fewer nodes per stack`);
    return `${VM_NET_PREFIX}.${third(slot, zoneIndex)}.${role === "redis" ? 10 + i : 70 + i}`;
}

/** A short tap name (≤ 13 chars) from the host name: stable, unique per VM in a stack. */
export function tapNameOf(hostName: string): string {
    const m = /-(node|envoy)(\d+)$/.exec(hostName);
    if (!m) throw new Error(`qemu: host name ${JSON.stringify(hostName)} has no -node<i>/-envoy<i> suffix`);
    return `${m[1] === "node" ? "tn" : "te"}${m[2]}`;
}

export interface FirewallPlanArgs {
    slot: number;
    zoneCount: number;
    /** The cloud-neutral allow list (components/firewall-rules.ts). */
    rules: CloudRule[];
    /** Redis TLS port (the deploying machine forms the cluster through it). */
    redisPort: number;
    /** false (formation agent): no rule from the deploying machine to the nodes. Default true. */
    deployerReachesNodes?: boolean;
}

/**
 * The cloud-neutral allow list as lab/vm firewall rules, plus what the qemu cloud itself needs:
 * - role sources/targets become the roles' address ranges in every zone;
 * - the load balancer (in the namespace, services .4) takes the client port from the same
 *   sources as the Envoys' client-port rule;
 * - every VM reaches the metadata service and the registry; Redis VMs reach the S3 server;
 * - the deploying machine (host link) reaches the Redis TLS port (formation direct only: the
 *   RedisCluster resource and the rolling gates run there, like a cloud operator over VPN) and the
 *   S3 API (buckets, grants, the converge documents).
 * Everything else is refused (lab/vm/firewall.ts: TCP reset), including from 0.0.0.0/0.
 */
export function firewallPlan(a: FirewallPlanArgs): LabRule[] {
    const zones = Array.from({ length: a.zoneCount }, (_, i) => i);
    const ranges = (role: NodeRole) => zones.map((z) => roleRange(a.slot, z, role));
    const out: LabRule[] = [];
    for (const r of a.rules) {
        const sources = r.from.kind === "role" ? ranges(r.from.role) : r.from.cidrs;
        for (const from of sources) {
            for (const to of ranges(r.to)) for (const p of r.ports) out.push({ from, to, ports: p, comment: r.key });
        }
    }
    const clientRule = a.rules.find((r) => r.to === "envoy" && r.from.kind === "cidrs" && r.key === "envoy-from-clients");
    const lb = serviceAddress(a.slot, "lb");
    if (clientRule && clientRule.from.kind === "cidrs") for (const from of clientRule.from.cidrs) for (const p of clientRule.ports) out.push({ from, to: lb, ports: p, comment: "lb-from-clients" });
    for (const role of ["redis", "envoy"] as const) {
        for (const from of ranges(role)) {
            out.push({ from, to: METADATA_IP, ports: METADATA_PORT, comment: `metadata-from-${role}` });
            out.push({ from, to: serviceAddress(a.slot, "registry"), ports: REGISTRY_PORT, comment: `registry-from-${role}` });
        }
    }
    for (const from of ranges("redis")) out.push({ from, to: serviceAddress(a.slot, "s3"), ports: S3_PORT, comment: "s3-from-redis" });
    if (a.deployerReachesNodes ?? true) for (const to of ranges("redis")) out.push({ from: hostLinkAddress(a.slot), to, ports: a.redisPort, comment: "redis-from-deployer" });
    // The deploying machine talks to the stack's S3 API (buckets, grants, the converge documents), as
    // a cloud deployer talks to the cloud's.
    out.push({ from: hostLinkAddress(a.slot), to: serviceAddress(a.slot, "s3"), ports: S3_PORT, comment: "s3-from-deployer" });
    return out;
}
