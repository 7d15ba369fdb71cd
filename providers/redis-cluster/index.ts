/**
 * RedisCluster: the dynamic provider that forms and reshapes a Redis Cluster.
 *
 * - `planner`  (pure): planPlacement, slotRanges, planReshape — components import planPlacement
 *   to decide which VM is master/replica in which zone.
 * - `executor` (ioredis, TLS + ACL): converge, readTopology, checkCluster.
 * - `provider` (Pulumi dynamic provider): RedisCluster resource.
 *
 * This index re-exports the pure planner and the types only, so importing it never loads ioredis
 * or @pulumi/pulumi. Import `./executor` or `./provider` explicitly.
 */
export * from "./types";
export { planPlacement, planReshape, slotRanges, validateSpec, countSlots, toRanges, expandRanges, ClusterPlanError } from "./planner";
