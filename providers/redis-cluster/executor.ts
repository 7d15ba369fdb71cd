/**
 * The RedisCluster executor: talks to real nodes with ioredis over TLS as the admin ACL user.
 *
 * Shape (after redis-cli's cluster manager, minus its weaknesses): probe every node -> check
 * preconditions -> plan (pure planner) -> execute -> wait for convergence (bounded, with a
 * diagnosis) -> check again. Every step reads the live state first and does only what is
 * missing, so an interrupted run is finished by the next one (`converge` is the one entry).
 *
 * Layout: `primitives/` are the building blocks (options + errors, connections, reply parsing,
 * probes + live topology, bounded waits + diagnosis, runtime config overrides); `operations/` are
 * what the executor does with them (converge = preflight + create or reshape, the two slot
 * migration paths, failover, check, reset). This file is the public surface.
 *
 * ioredis is required inside functions (not at module top) so the dynamic provider can be
 * serialised by pulumi.runtime.serializeFunction and still load it at run time.
 *
 * Server versions: slot migration uses atomic `CLUSTER MIGRATION IMPORT/STATUS/CANCEL` when
 * EVERY node reports redis_version >= 8.4, the classic SETSLOT IMPORTING/MIGRATING + pipelined
 * `MIGRATE ... KEYS` path otherwise.
 */
export { ClusterPlanError } from "./planner";
export { checkCluster } from "./operations/check";
export { converge } from "./operations/converge";
export { resetCluster } from "./operations/reset";
export { ClusterExecError, EXECUTOR_DEFAULTS, ExecutorOptions } from "./primitives/options";
export { NodeProbe, readTopology } from "./primitives/probes";
export { ParsedNode, parseClusterNodes, versionAtLeast } from "./primitives/protocol";
