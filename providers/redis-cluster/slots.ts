/** Slot ranges, the planner's error type and spec validation: pure helpers shared by placement and reshape. */
import { CLUSTER_SLOTS, ClusterNodeSpec, ClusterSpec, nodeAddress, SlotRange } from "./types";

/**
 * A configuration or topology problem; the message names the input, the rule, the value and the
 * fix. A plain Error with `name = "ClusterPlanError"` (not a subclass: serializeFunction rebuilds
 * Error subclasses without their message).
 */
export function ClusterPlanError(message: string): Error {
    const e = new Error(message);
    e.name = "ClusterPlanError";
    return e;
}

/** Slot ranges for n shards: 16384 slots covered once, sizes within 1 of each other. */
export function slotRanges(n: number): SlotRange[] {
    if (!Number.isInteger(n) || n < 1 || n > CLUSTER_SLOTS) {
        throw ClusterPlanError(`slotRanges: shards must be an integer in 1..${CLUSTER_SLOTS}; got ${n}`);
    }
    const out: SlotRange[] = [];
    for (let i = 0; i < n; i++) {
        out.push({ start: Math.floor((i * CLUSTER_SLOTS) / n), end: Math.floor(((i + 1) * CLUSTER_SLOTS) / n) - 1 });
    }
    return out;
}

export function countSlots(ranges: SlotRange[]): number {
    return ranges.reduce((a, r) => a + (r.end - r.start + 1), 0);
}

/** Sorted, merged ranges from a list of slots. */
export function toRanges(slots: number[]): SlotRange[] {
    const s = [...slots].sort((a, b) => a - b);
    const out: SlotRange[] = [];
    for (const x of s) {
        const last = out[out.length - 1];
        if (last && x === last.end + 1) last.end = x;
        else if (!last || x > last.end) out.push({ start: x, end: x });
    }
    return out;
}

export function expandRanges(ranges: SlotRange[]): number[] {
    const out: number[] = [];
    for (const r of ranges) for (let s = r.start; s <= r.end; s++) out.push(s);
    return out;
}

/** Checks a spec; throws one error listing every problem. */
export function validateSpec(spec: ClusterSpec): void {
    const problems: string[] = [];
    if (!Number.isInteger(spec.shards) || spec.shards < 1 || spec.shards > CLUSTER_SLOTS) {
        problems.push(`shards must be an integer in 1..${CLUSTER_SLOTS} (every master owns at least one slot); got ${spec.shards}`);
    }
    if (!Number.isInteger(spec.replicasPerShard) || spec.replicasPerShard < 0) {
        problems.push(`replicasPerShard must be an integer >= 0; got ${spec.replicasPerShard}`);
    }
    const ids = new Set<string>();
    const addrs = new Set<string>();
    for (const n of spec.nodes ?? []) {
        if (!n.id) problems.push(`every node needs an id; got ${JSON.stringify(n)}`);
        if (ids.has(n.id)) problems.push(`node id "${n.id}" appears twice; ids must be unique`);
        ids.add(n.id);
        const a = nodeAddress(n);
        if (addrs.has(a)) problems.push(`node address ${a} appears twice; each node needs its own host:port`);
        addrs.add(a);
        if (!n.host) problems.push(`node "${n.id}" has no host`);
        if (!Number.isInteger(n.port) || n.port < 1 || n.port > 65535) problems.push(`node "${n.id}" port must be 1..65535; got ${n.port}`);
        if (!n.zone) problems.push(`node "${n.id}" has no zone; every node needs a failure-domain label`);
    }
    if (problems.length === 0) {
        const need = spec.shards * (1 + spec.replicasPerShard);
        if (spec.nodes.length < need) {
            problems.push(
                `${spec.shards} shards x (1 master + ${spec.replicasPerShard} replicas) needs at least ${need} nodes; got ${spec.nodes.length}. ` +
                    `Add ${need - spec.nodes.length} node(s) or lower shards/replicasPerShard`,
            );
        }
    }
    if (problems.length) throw ClusterPlanError(`RedisCluster spec is invalid:\n  - ${problems.join("\n  - ")}`);
}

export function zonesInOrder(nodes: ClusterNodeSpec[]): string[] {
    const zs: string[] = [];
    for (const n of nodes) if (!zs.includes(n.zone)) zs.push(n.zone);
    return zs;
}
