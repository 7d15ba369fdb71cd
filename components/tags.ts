/**
 * The one helper that builds identity tags/labels for humans. Adapters translate keys to the
 * cloud's rules (GCP labels lower-case them); components never build tags by hand.
 */
export interface TagArgs {
    /** Cluster (stack) name. */
    cluster: string;
    /** `redis`, `envoy`, `backup`, `network`, … */
    role?: string;
    /** Failure domain. */
    zone?: string;
    /** Planned Redis role, e.g. `master` / `replica`, and shard ordinal. */
    redisRole?: string;
    shard?: number;
}

export function tagsFor(a: TagArgs): Record<string, string> {
    const tags: Record<string, string> = { "redisforge:cluster": a.cluster, "managed-by": "pulumi-redisforge" };
    if (a.role) tags["redisforge:role"] = a.role;
    if (a.zone) tags["redisforge:zone"] = a.zone;
    if (a.redisRole) tags["redisforge:redis-role"] = a.redisRole;
    if (a.shard !== undefined) tags["redisforge:shard"] = String(a.shard);
    return tags;
}
