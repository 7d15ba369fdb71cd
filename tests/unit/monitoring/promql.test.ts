import { metricRefs } from "../../integration/monitoring/promql";

describe("metricRefs (PromQL metric names, test support)", () => {
    const cases: [string, string[]][] = [
        ["redis_up == 0", ["redis_up"]],
        [`count by (cluster) (redis_cluster_state == 0) > 0`, ["redis_cluster_state"]],
        [`sum by (node) (rate(redis_commands_processed_total{cluster=~"$cluster", zone=~"a|b"}[5m]))`, ["redis_commands_processed_total"]],
        [`redis_master_repl_offset - on (instance) group_right () redis_connected_slave_offset_bytes > 1e6`, ["redis_master_repl_offset", "redis_connected_slave_offset_bytes"]],
        [`label_replace(count by (a, b) (redis_instance_info), "redis_ip", "$1", "instance", "(.+):[0-9]+")`, ["redis_instance_info"]],
        [`time() - max by (shard) (redisforge_backup_last_success_timestamp_seconds) > 7200`, ["redisforge_backup_last_success_timestamp_seconds"]],
        [`redisforge:replication_link:info * on (cluster, zone) group_left (replica_node) x offset 5m`, ["redisforge:replication_link:info", "x"]],
        [`max by (cmd) (redis_latency_percentiles_usec{quantile="99"}) unless on (instance) redis_slave_info`, ["redis_latency_percentiles_usec", "redis_slave_info"]],
        [`rate(foo[5m:1m]) / ignoring (le) bar and baz or qux`, ["foo", "bar", "baz", "qux"]],
    ];
    test.each(cases)("%s", (expr, expected) => {
        expect([...metricRefs(expr).names].sort()).toEqual([...expected].sort());
    });

    test("__name__ selectors are reported as names or regexes", () => {
        const r = metricRefs(`sum(rate({__name__=~"envoy_redis_command_.+_error", job="x"}[5m])) + {__name__="up"}`);
        expect(r.nameRegexes).toEqual(["envoy_redis_command_.+_error"]);
        expect([...r.names]).toEqual(["up"]);
    });
});
