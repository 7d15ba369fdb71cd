/**
 * Pure topology planning: which VMs exist, in which zone, and which of them is planned as the
 * master or a replica of which shard.
 *
 * VMs are keyed by ordinal (`node0`, `node1`, …) and dealt round-robin over the zones, so the
 * logical name of a VM never depends on its role: a failover or a changed plan never renames
 * (and so never replaces) a VM. The role each node starts with is decided by the cluster
 * engineer's `planPlacement` (masters spread over zones, no replica in its master's zone); the
 * same function later forms the cluster, so the tags and the live cluster agree at birth.
 */
import { planPlacement } from "../providers/redis-cluster";

export interface TopologyArgs {
    /** Zones (failure domains), in the order given by config. */
    zones: string[];
    /** Masters. */
    shards: number;
    /** Replicas per master. */
    replicasPerShard: number;
    /** Envoy instances. */
    envoyCount: number;
    /** Redis TLS port (the planner needs an address per node; placement depends only on zones). */
    redisPort: number;
}

export interface PlannedNode {
    /** Stable key, e.g. `node4`. */
    key: string;
    /** Ordinal. */
    ordinal: number;
    zone: string;
    /** Planned role at formation. */
    role: "master" | "replica";
    /** Shard ordinal this node belongs to. */
    shard: number;
    /** For a replica: the key of its master. */
    replicaOf?: string;
}

export interface PlannedEnvoy {
    key: string;
    ordinal: number;
    zone: string;
}

export interface Topology {
    nodes: PlannedNode[];
    envoys: PlannedEnvoy[];
}

export function planTopology(a: TopologyArgs): Topology {
    const count = a.shards * (1 + a.replicasPerShard);
    const specNodes = Array.from({ length: count }, (_, i) => ({
        id: `node${i}`,
        // Placeholder address: placement depends only on ids and zones.
        host: `node${i}.plan.invalid`,
        port: a.redisPort,
        zone: a.zones[i % a.zones.length],
    }));
    const placement = planPlacement({ nodes: specNodes, shards: a.shards, replicasPerShard: a.replicasPerShard });
    const info = new Map<string, { role: "master" | "replica"; shard: number; replicaOf?: string }>();
    for (const s of placement.shards) {
        info.set(s.master, { role: "master", shard: s.index });
        for (const r of s.replicas) info.set(r, { role: "replica", shard: s.index, replicaOf: s.master });
    }
    const nodes = specNodes.map((n, i) => {
        const p = info.get(n.id);
        if (!p) throw new Error(`topology: node ${n.id} was not placed (planner returned it as spare)`);
        return { key: n.id, ordinal: i, zone: n.zone, ...p };
    });
    const envoys = Array.from({ length: a.envoyCount }, (_, i) => ({ key: `envoy${i}`, ordinal: i, zone: a.zones[i % a.zones.length] }));
    return { nodes, envoys };
}
