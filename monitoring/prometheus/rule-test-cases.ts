/**
 * The hand-written `promtool test rules` cases (input series, evaluation times, expected labels and
 * `$value` texts) over a small topology; rule-tests.ts turns them into the promtool test file.
 */
export type Labels = Record<string, string>;

/** A small hand-written topology: 2 shards, zones a/b/c, plus one Envoy. */
const TARGETS: Record<string, { ip: string; zone: string; shard?: string; role: string }> = {
    n1: { ip: "10.0.1.1", zone: "a", shard: "0", role: "master" },
    n2: { ip: "10.0.2.1", zone: "b", shard: "0", role: "replica" },
    n3: { ip: "10.0.3.1", zone: "c", shard: "1", role: "master" },
    n4: { ip: "10.0.1.2", zone: "a", shard: "1", role: "replica" },
    e1: { ip: "10.0.9.1", zone: "a", role: "proxy" },
};
const PORT = { "redisforge-redis": 9121, "redisforge-node": 9100, "redisforge-envoy": 9901 } as const;
type Job = keyof typeof PORT;

/** Target labels Prometheus attaches to every series of `node` scraped by `job`. */
export function targetLabels(node: string, job: Job): Labels {
    const t = TARGETS[node];
    return {
        cluster: "prod",
        zone: t.zone,
        role: t.role,
        ...(t.shard !== undefined ? { shard: t.shard } : {}),
        node,
        instance: `${t.ip}:${PORT[job]}`,
        job,
    };
}

function series(metric: string, labels: Labels): string {
    const body = Object.entries(labels)
        .map(([k, v]) => `${k}="${v}"`)
        .join(", ");
    return `${metric}{${body}}`;
}

/** A series of `metric` from `node` via `job`, with extra labels. */
function s(metric: string, node: string, job: Job, extra: Labels = {}): string {
    return series(metric, { ...targetLabels(node, job), ...extra });
}
const redis = (metric: string, node: string, extra: Labels = {}) => s(metric, node, "redisforge-redis", extra);
const nodeX = (metric: string, node: string, extra: Labels = {}) => s(metric, node, "redisforge-node", extra);
const envoy = (metric: string, extra: Labels = {}) => s(metric, "e1", "redisforge-envoy", extra);

export interface Expect {
    /** Labels of the firing alert (without alertname/severity/scope, which come from the rule). */
    labels: Labels;
    /** How `{{ $value }}` renders, per filter: raw, humanizePercentage, humanizeDuration. */
    value?: Partial<Record<"raw" | "humanizePercentage" | "humanizeDuration", string>>;
}

export interface Check {
    at: string;
    alert: string;
    /** Empty: the alert must not fire at `at`. */
    fires: Expect[];
}

export interface Case {
    name: string;
    /**
     * promtool's evaluation interval for this case (default 1m). Cases spanning days use a coarser
     * clock (30m): at 1m, 9 days are ~13 000 evaluations of every rule (minutes of CPU). Each
     * interval gets its own generated test file.
     */
    evaluationInterval?: string;
    interval?: string;
    series: [string, string][];
    checks: Check[];
}

export const CASES: Case[] = [
    {
        name: "cluster_state fail on one node fires RedisClusterDown after 1m, not before",
        series: [
            [redis("redis_cluster_state", "n1"), "1 1 0 0 0 0 0"],
            [redis("redis_cluster_state", "n3"), "1x6"],
        ],
        checks: [
            { at: "1m", alert: "RedisClusterDown", fires: [] },
            { at: "2m", alert: "RedisClusterDown", fires: [] }, // pending only
            { at: "5m", alert: "RedisClusterDown", fires: [{ labels: { cluster: "prod" }, value: { raw: "1" } }] },
        ],
    },
    {
        name: "healthy cluster: no cluster or slot alerts",
        series: [
            [redis("redis_cluster_state", "n1"), "1x10"],
            [redis("redis_cluster_slots_ok", "n1"), "16384x10"],
            [redis("redis_cluster_slots_fail", "n1"), "0x10"],
            [redis("redis_cluster_slots_pfail", "n1"), "0x10"],
        ],
        checks: [
            { at: "8m", alert: "RedisClusterDown", fires: [] },
            { at: "8m", alert: "RedisClusterSlotsNotOk", fires: [] },
        ],
    },
    {
        name: "slots_ok below 16384 fires RedisClusterSlotsNotOk",
        series: [
            [redis("redis_cluster_slots_ok", "n1"), "16384 16384 10923x8"],
            [redis("redis_cluster_slots_fail", "n1"), "0x10"],
            [redis("redis_cluster_slots_pfail", "n1"), "0x10"],
            [redis("redis_cluster_slots_ok", "n3"), "16384x10"],
            [redis("redis_cluster_slots_fail", "n3"), "0x10"],
            [redis("redis_cluster_slots_pfail", "n3"), "0x10"],
        ],
        checks: [{ at: "6m", alert: "RedisClusterSlotsNotOk", fires: [{ labels: { cluster: "prod" }, value: { raw: "10923" } }] }],
    },
    {
        name: "slots in pfail (slots_ok still 16384) fires RedisClusterSlotsNotOk",
        series: [
            [redis("redis_cluster_slots_ok", "n1"), "16384x10"],
            [redis("redis_cluster_slots_fail", "n1"), "0x10"],
            [redis("redis_cluster_slots_pfail", "n1"), "0 5461x9"],
        ],
        checks: [{ at: "6m", alert: "RedisClusterSlotsNotOk", fires: [{ labels: { cluster: "prod" }, value: { raw: "5461" } }] }],
    },
    {
        name: "master of shard 0 loses its only planned replica",
        series: [
            [redis("redis_up", "n1"), "1x12"],
            [redis("redis_connected_slaves", "n1"), "1 1 0x10"],
            [redis("redis_up", "n2"), "1 1 0x10"],
            [redis("redis_up", "n3"), "1x12"],
            [redis("redis_connected_slaves", "n3"), "1x12"],
            [redis("redis_up", "n4"), "1x12"],
            [redis("redis_connected_slaves", "n4"), "0x12"],
            [redis("redis_slave_info", "n4", { master_host: "10.0.3.1", master_port: "6379", read_only: "1" }), "1x12"],
        ],
        checks: [
            { at: "4m", alert: "RedisMasterMissingReplicas", fires: [] }, // pending (for 5m)
            { at: "9m", alert: "RedisMasterMissingReplicas", fires: [{ labels: { cluster: "prod", shard: "0" }, value: { raw: "0" } }] },
        ],
    },
    {
        name: "after a failover the promoted replica counts as the master; replicas present: no alert",
        series: [
            // n3 died, n4 (planned replica of shard 1) was promoted and n3 came back as its replica.
            [redis("redis_up", "n3"), "1x12"],
            [redis("redis_connected_slaves", "n3"), "0x12"],
            [redis("redis_slave_info", "n3", { master_host: "10.0.1.2", master_port: "6379", read_only: "1" }), "1x12"],
            [redis("redis_up", "n4"), "1x12"],
            [redis("redis_connected_slaves", "n4"), "1x12"],
        ],
        checks: [{ at: "9m", alert: "RedisMasterMissingReplicas", fires: [] }],
    },
    {
        name: "a master with one replica in its own zone and one elsewhere: only the same-zone link alerts",
        series: [
            // n1 (zone a) has replicas at 10.0.1.2:6379 (n4, zone a) and 10.0.2.1:6379 (n2, zone b).
            [redis("redis_connected_slave_offset_bytes", "n1", { slave_ip: "10.0.1.2", slave_port: "6379", slave_state: "online" }), "100x10"],
            [redis("redis_connected_slave_offset_bytes", "n1", { slave_ip: "10.0.2.1", slave_port: "6379", slave_state: "online" }), "100x10"],
            [redis("redis_instance_info", "n1", { exported_role: "master", tcp_port: "6379", redis_version: "8.4.0" }), "1x10"],
            [redis("redis_instance_info", "n4", { exported_role: "slave", tcp_port: "6379", redis_version: "8.4.0" }), "1x10"],
            [redis("redis_instance_info", "n2", { exported_role: "slave", tcp_port: "6379", redis_version: "8.4.0" }), "1x10"],
        ],
        checks: [
            { at: "3m", alert: "RedisMasterReplicaSameZone", fires: [] }, // pending (for 5m)
            {
                at: "7m",
                alert: "RedisMasterReplicaSameZone",
                fires: [
                    {
                        labels: {
                            cluster: "prod",
                            zone: "a",
                            node: "n1",
                            shard: "0",
                            instance: "10.0.1.1:9121",
                            slave_ip: "10.0.1.2",
                            slave_port: "6379",
                            redis_ip: "10.0.1.2",
                            tcp_port: "6379",
                            replica_node: "n4",
                        },
                    },
                ],
            },
        ],
    },
    {
        name: "replicas in other zones, and a same-zone node on another port that is not a replica: no alert",
        series: [
            [redis("redis_connected_slave_offset_bytes", "n1", { slave_ip: "10.0.2.1", slave_port: "6379", slave_state: "online" }), "100x10"],
            [redis("redis_instance_info", "n2", { exported_role: "slave", tcp_port: "6379" }), "1x10"],
            // n4 is in zone a like n1 but is not n1's replica; same IP as a link target would need port 6379.
            [redis("redis_instance_info", "n4", { exported_role: "slave", tcp_port: "6380" }), "1x10"],
        ],
        checks: [{ at: "8m", alert: "RedisMasterReplicaSameZone", fires: [] }],
    },
    {
        name: "redis_up 0 fires RedisDown after 1m",
        series: [
            [redis("redis_up", "n2"), "1 0x10"],
            [redis("redis_up", "n1"), "1x10"],
        ],
        checks: [
            { at: "1m", alert: "RedisDown", fires: [] },
            { at: "5m", alert: "RedisDown", fires: [{ labels: targetLabels("n2", "redisforge-redis") }] },
        ],
    },
    {
        name: "redis up everywhere: no RedisDown",
        series: [[redis("redis_up", "n2"), "1x10"]],
        checks: [{ at: "5m", alert: "RedisDown", fires: [] }],
    },
    {
        name: "node_exporter target down fires RedisForgeExporterDown; other jobs are ignored",
        series: [
            [nodeX("up", "n3"), "0x10"],
            [redis("up", "n3"), "1x10"],
            [series("up", { job: "someone-elses-job", instance: "10.9.9.9:80" }), "0x10"],
        ],
        checks: [
            { at: "1m", alert: "RedisForgeExporterDown", fires: [] },
            { at: "5m", alert: "RedisForgeExporterDown", fires: [{ labels: targetLabels("n3", "redisforge-node") }] },
            { at: "5m", alert: "RedisForgeNodeDown", fires: [] },
        ],
    },
    {
        name: "both exporters of a node down fires RedisForgeNodeDown",
        series: [
            [nodeX("up", "n3"), "0x10"],
            [redis("up", "n3"), "0x10"],
            [nodeX("up", "n1"), "1x10"],
            [redis("up", "n1"), "1x10"],
        ],
        checks: [{ at: "5m", alert: "RedisForgeNodeDown", fires: [{ labels: { cluster: "prod", zone: "c", node: "n3" } }] }],
    },
    {
        name: "all targets up: no exporter or node alerts",
        series: [
            [nodeX("up", "n3"), "1x10"],
            [redis("up", "n3"), "1x10"],
        ],
        checks: [
            { at: "5m", alert: "RedisForgeExporterDown", fires: [] },
            { at: "5m", alert: "RedisForgeNodeDown", fires: [] },
        ],
    },
    {
        name: "replica link down fires RedisReplicationLinkDown",
        series: [[redis("redis_master_link_up", "n2", { master_host: "10.0.1.1", master_port: "6379" }), "1 0x5"]],
        checks: [
            { at: "1m", alert: "RedisReplicationLinkDown", fires: [] },
            { at: "4m", alert: "RedisReplicationLinkDown", fires: [{ labels: { ...targetLabels("n2", "redisforge-redis"), master_host: "10.0.1.1", master_port: "6379" } }] },
        ],
    },
    {
        name: "replica link up: no RedisReplicationLinkDown",
        series: [[redis("redis_master_link_up", "n2", { master_host: "10.0.1.1", master_port: "6379" }), "1x5"]],
        checks: [{ at: "4m", alert: "RedisReplicationLinkDown", fires: [] }],
    },
    {
        name: "replica 100 MB behind fires RedisReplicationLag",
        series: [
            [redis("redis_master_repl_offset", "n1"), "200000000x10"],
            [redis("redis_connected_slave_offset_bytes", "n1", { slave_ip: "10.0.2.1", slave_port: "6379", slave_state: "online" }), "100000000x10"],
            [redis("redis_connected_slave_lag_seconds", "n1", { slave_ip: "10.0.2.1", slave_port: "6379", slave_state: "online" }), "0x10"],
        ],
        checks: [
            {
                at: "6m",
                alert: "RedisReplicationLag",
                fires: [{ labels: { ...targetLabels("n1", "redisforge-redis"), slave_ip: "10.0.2.1", slave_port: "6379", slave_state: "online" }, value: { raw: "1e+08" } }],
            },
        ],
    },
    {
        name: "replica not acknowledging for 45 s fires RedisReplicationLag",
        series: [
            [redis("redis_master_repl_offset", "n1"), "5000x10"],
            [redis("redis_connected_slave_offset_bytes", "n1", { slave_ip: "10.0.2.1", slave_port: "6379", slave_state: "online" }), "5000x10"],
            [redis("redis_connected_slave_lag_seconds", "n1", { slave_ip: "10.0.2.1", slave_port: "6379", slave_state: "online" }), "45x10"],
        ],
        checks: [
            {
                at: "6m",
                alert: "RedisReplicationLag",
                fires: [{ labels: { ...targetLabels("n1", "redisforge-redis"), slave_ip: "10.0.2.1", slave_port: "6379", slave_state: "online" }, value: { raw: "45" } }],
            },
        ],
    },
    {
        name: "replica 1 MB behind and acking: no RedisReplicationLag",
        series: [
            [redis("redis_master_repl_offset", "n1"), "2000000x10"],
            [redis("redis_connected_slave_offset_bytes", "n1", { slave_ip: "10.0.2.1", slave_port: "6379", slave_state: "online" }), "1000000x10"],
            [redis("redis_connected_slave_lag_seconds", "n1", { slave_ip: "10.0.2.1", slave_port: "6379", slave_state: "online" }), "1x10"],
        ],
        checks: [{ at: "6m", alert: "RedisReplicationLag", fires: [] }],
    },
    {
        name: "AOF write and rewrite errors fire at once",
        series: [
            [redis("redis_aof_last_write_status", "n1"), "1 0 0"],
            [redis("redis_aof_last_bgrewrite_status", "n3"), "1 1 0"],
        ],
        checks: [
            { at: "1m", alert: "RedisAofWriteFailing", fires: [{ labels: targetLabels("n1", "redisforge-redis") }] },
            { at: "1m", alert: "RedisAofRewriteFailing", fires: [] },
            { at: "2m", alert: "RedisAofRewriteFailing", fires: [{ labels: targetLabels("n3", "redisforge-redis") }] },
        ],
    },
    {
        name: "AOF ok: no AOF alerts",
        series: [
            [redis("redis_aof_last_write_status", "n1"), "1x5"],
            [redis("redis_aof_last_bgrewrite_status", "n1"), "1x5"],
        ],
        checks: [
            { at: "3m", alert: "RedisAofWriteFailing", fires: [] },
            { at: "3m", alert: "RedisAofRewriteFailing", fires: [] },
        ],
    },
    {
        name: "memory at 90 % of maxmemory fires RedisMemoryHigh; a node without maxmemory does not",
        series: [
            [redis("redis_memory_used_bytes", "n1"), "900x10"],
            [redis("redis_memory_max_bytes", "n1"), "1000x10"],
            [redis("redis_memory_used_bytes", "n3"), "900x10"],
            [redis("redis_memory_max_bytes", "n3"), "0x10"],
        ],
        checks: [{ at: "6m", alert: "RedisMemoryHigh", fires: [{ labels: targetLabels("n1", "redisforge-redis"), value: { humanizePercentage: "90%" } }] }],
    },
    {
        name: "memory at 80 %: no RedisMemoryHigh",
        series: [
            [redis("redis_memory_used_bytes", "n1"), "800x10"],
            [redis("redis_memory_max_bytes", "n1"), "1000x10"],
        ],
        checks: [{ at: "6m", alert: "RedisMemoryHigh", fires: [] }],
    },
    {
        name: "evictions and rejected connections fire",
        series: [
            [redis("redis_evicted_keys_total", "n1"), "0 0 0 6 6 6"],
            [redis("redis_rejected_connections_total", "n3"), "0 0 0 3 3 3"],
        ],
        checks: [
            { at: "2m", alert: "RedisEvictingKeys", fires: [] },
            { at: "3m", alert: "RedisEvictingKeys", fires: [{ labels: targetLabels("n1", "redisforge-redis"), value: { raw: "6" } }] },
            { at: "3m", alert: "RedisRejectedConnections", fires: [{ labels: targetLabels("n3", "redisforge-redis"), value: { raw: "3" } }] },
        ],
    },
    {
        name: "counters flat: no eviction or rejection alerts",
        series: [
            [redis("redis_evicted_keys_total", "n1"), "7x10"],
            [redis("redis_rejected_connections_total", "n1"), "2x10"],
        ],
        checks: [
            { at: "8m", alert: "RedisEvictingKeys", fires: [] },
            { at: "8m", alert: "RedisRejectedConnections", fires: [] },
        ],
    },
    {
        name: "8500 clients fires RedisClientsNearLimit; 100 does not",
        series: [
            [redis("redis_connected_clients", "n1"), "8500x10"],
            [redis("redis_connected_clients", "n3"), "100x10"],
        ],
        checks: [
            { at: "3m", alert: "RedisClientsNearLimit", fires: [] },
            { at: "6m", alert: "RedisClientsNearLimit", fires: [{ labels: targetLabels("n1", "redisforge-redis"), value: { raw: "8500" } }] },
        ],
    },
    {
        name: "data disk 90 % full fires NodeDiskAlmostFull; a full tmpfs and a half-full disk do not",
        series: [
            [nodeX("node_filesystem_avail_bytes", "n1", { mountpoint: "/var/lib/redis", device: "/dev/nvme1n1", fstype: "ext4" }), "10x10"],
            [nodeX("node_filesystem_size_bytes", "n1", { mountpoint: "/var/lib/redis", device: "/dev/nvme1n1", fstype: "ext4" }), "100x10"],
            [nodeX("node_filesystem_avail_bytes", "n1", { mountpoint: "/run", device: "tmpfs", fstype: "tmpfs" }), "0x10"],
            [nodeX("node_filesystem_size_bytes", "n1", { mountpoint: "/run", device: "tmpfs", fstype: "tmpfs" }), "100x10"],
            [nodeX("node_filesystem_avail_bytes", "n1", { mountpoint: "/", device: "/dev/nvme0n1p1", fstype: "ext4" }), "50x10"],
            [nodeX("node_filesystem_size_bytes", "n1", { mountpoint: "/", device: "/dev/nvme0n1p1", fstype: "ext4" }), "100x10"],
        ],
        checks: [
            {
                at: "6m",
                alert: "NodeDiskAlmostFull",
                fires: [{ labels: { ...targetLabels("n1", "redisforge-node"), mountpoint: "/var/lib/redis", device: "/dev/nvme1n1", fstype: "ext4" }, value: { humanizePercentage: "90%" } }],
            },
        ],
    },
    {
        name: "disks at 50 %: no NodeDiskAlmostFull",
        series: [
            [nodeX("node_filesystem_avail_bytes", "n1", { mountpoint: "/", device: "/dev/nvme0n1p1", fstype: "ext4" }), "50x10"],
            [nodeX("node_filesystem_size_bytes", "n1", { mountpoint: "/", device: "/dev/nvme0n1p1", fstype: "ext4" }), "100x10"],
        ],
        checks: [{ at: "6m", alert: "NodeDiskAlmostFull", fires: [] }],
    },
    {
        name: "file handles at 90 % fires NodeFileDescriptorsNearLimit; 10 % does not",
        series: [
            [nodeX("node_filefd_allocated", "n1"), "900x10"],
            [nodeX("node_filefd_maximum", "n1"), "1000x10"],
            [nodeX("node_filefd_allocated", "n3"), "100x10"],
            [nodeX("node_filefd_maximum", "n3"), "1000x10"],
        ],
        checks: [
            { at: "6m", alert: "NodeFileDescriptorsNearLimit", fires: [{ labels: targetLabels("n1", "redisforge-node"), value: { humanizePercentage: "90%" } }] },
        ],
    },
    {
        name: "file handles low everywhere: no NodeFileDescriptorsNearLimit",
        series: [
            [nodeX("node_filefd_allocated", "n1"), "100x10"],
            [nodeX("node_filefd_maximum", "n1"), "1000x10"],
        ],
        checks: [{ at: "6m", alert: "NodeFileDescriptorsNearLimit", fires: [] }],
    },
    {
        name: "last backup of shard 0 taken at t=0 is stale at 3h; shard 1 backs up every minute",
        interval: "1m",
        series: [
            [nodeX("redisforge_backup_last_success_timestamp_seconds", "n1"), "0x200"],
            [nodeX("redisforge_backup_last_success_timestamp_seconds", "n3"), "0+60x200"],
            [nodeX("up", "n1"), "1x200"],
        ],
        checks: [
            { at: "1h", alert: "RedisForgeBackupStale", fires: [] },
            { at: "3h", alert: "RedisForgeBackupStale", fires: [{ labels: { cluster: "prod", shard: "0" }, value: { humanizeDuration: "3h 0m 0s" } }] },
            { at: "3h", alert: "RedisForgeBackupMissing", fires: [] },
        ],
    },
    {
        name: "node_exporter up for 3h but no backup metric at all fires RedisForgeBackupMissing after 2h",
        series: [
            [nodeX("up", "n1"), "1x200"],
            [nodeX("up", "n3"), "1x200"],
        ],
        checks: [
            { at: "1h", alert: "RedisForgeBackupMissing", fires: [] },
            { at: "3h", alert: "RedisForgeBackupMissing", fires: [{ labels: { cluster: "prod" }, value: { raw: "2" } }] },
            { at: "3h", alert: "RedisForgeBackupStale", fires: [] },
        ],
    },
    {
        name: "restore drill passed at t=0: not stale after 7 days, RedisForgeRestoreDrillStale after 9 days; another cluster drilled every day stays quiet",
        evaluationInterval: "30m",
        interval: "30m",
        series: [
            // one sample per evaluation (the textfile is scraped continuously), 10 days and a bit
            [series("redisforge_restore_drill_last_success_timestamp_seconds", { cluster: "prod", instance: "10.0.9.9:9100", job: "redisforge-node" }), "0x500"],
            [series("redisforge_restore_drill_last_success_timestamp_seconds", { cluster: "staging", instance: "10.0.9.9:9100", job: "redisforge-node" }), "0+1800x500"],
        ],
        checks: [
            { at: "7d", alert: "RedisForgeRestoreDrillStale", fires: [] },
            { at: "9d", alert: "RedisForgeRestoreDrillStale", fires: [{ labels: { cluster: "prod" }, value: { humanizeDuration: "9d 0h 0m 0s" } }] },
        ],
    },
    {
        name: "a drill with 2 mismatches fires RedisForgeRestoreDrillFailing; a passing drill does not",
        series: [
            [series("redisforge_restore_drill_mismatches", { cluster: "prod", instance: "10.0.9.9:9100", job: "redisforge-node" }), "0 0 2x8"],
            [series("redisforge_restore_drill_mismatches", { cluster: "staging", instance: "10.0.9.9:9100", job: "redisforge-node" }), "0x10"],
        ],
        checks: [
            { at: "1m", alert: "RedisForgeRestoreDrillFailing", fires: [] },
            { at: "5m", alert: "RedisForgeRestoreDrillFailing", fires: [{ labels: { cluster: "prod" }, value: { raw: "2" } }] },
        ],
    },
    {
        name: "a converge agent reporting 2 repairs that need a decision fires RedisForgeConvergeNeedsDecision after 10m; 0 stays quiet",
        series: [
            [nodeX("redisforge_converge_needs_decision", "n1"), "0 0 2x30"],
            [nodeX("redisforge_converge_failed", "n1"), "0x32"],
        ],
        checks: [
            { at: "5m", alert: "RedisForgeConvergeNeedsDecision", fires: [] },
            { at: "20m", alert: "RedisForgeConvergeNeedsDecision", fires: [{ labels: { cluster: "prod" }, value: { raw: "2" } }] },
            { at: "20m", alert: "RedisForgeConvergeFailing", fires: [] },
        ],
    },
    {
        name: "a converge agent failing for 20m fires RedisForgeConvergeFailing; a failure that clears after 5m does not",
        series: [
            [nodeX("redisforge_converge_failed", "n1"), "1x30"],
            [nodeX("redisforge_converge_failed", "n3", { cluster: "staging" }), "1x5 0x25"],
        ],
        checks: [
            { at: "10m", alert: "RedisForgeConvergeFailing", fires: [] },
            { at: "20m", alert: "RedisForgeConvergeFailing", fires: [{ labels: { cluster: "prod" }, value: { raw: "1" } }] },
        ],
    },
    {
        name: "10 % upstream 5xx at an Envoy fires EnvoyUpstream5xxRatioHigh",
        series: [
            [envoy("envoy_cluster_upstream_rq_xx", { envoy_cluster_name: "redis_cluster", envoy_response_code_class: "5" }), "0+10x20"],
            [envoy("envoy_cluster_upstream_rq_xx", { envoy_cluster_name: "redis_cluster", envoy_response_code_class: "2" }), "0+90x20"],
            [envoy("envoy_cluster_upstream_rq_total", { envoy_cluster_name: "redis_cluster" }), "0+100x20"],
        ],
        checks: [
            {
                at: "12m",
                alert: "EnvoyUpstream5xxRatioHigh",
                fires: [{ labels: { cluster: "prod", node: "e1", envoy_cluster_name: "redis_cluster" }, value: { humanizePercentage: "10%" } }],
            },
        ],
    },
    {
        name: "1 % upstream 5xx, and an idle Envoy: no EnvoyUpstream5xxRatioHigh",
        series: [
            [envoy("envoy_cluster_upstream_rq_xx", { envoy_cluster_name: "redis_cluster", envoy_response_code_class: "5" }), "0+1x20"],
            [envoy("envoy_cluster_upstream_rq_total", { envoy_cluster_name: "redis_cluster" }), "0+100x20"],
            [envoy("envoy_cluster_upstream_rq_xx", { envoy_cluster_name: "idle", envoy_response_code_class: "5" }), "0x20"],
            [envoy("envoy_cluster_upstream_rq_total", { envoy_cluster_name: "idle" }), "0x20"],
        ],
        checks: [{ at: "12m", alert: "EnvoyUpstream5xxRatioHigh", fires: [] }],
    },
    {
        name: "10 upstream connect failures per minute fires EnvoyUpstreamConnectFailures",
        series: [[envoy("envoy_cluster_upstream_cx_connect_fail", { envoy_cluster_name: "redis_cluster" }), "0+10x20"]],
        checks: [
            { at: "12m", alert: "EnvoyUpstreamConnectFailures", fires: [{ labels: { cluster: "prod", node: "e1", envoy_cluster_name: "redis_cluster" }, value: { raw: "50" } }] },
        ],
    },
    {
        name: "no connect failures: no EnvoyUpstreamConnectFailures",
        series: [[envoy("envoy_cluster_upstream_cx_connect_fail", { envoy_cluster_name: "redis_cluster" }), "3x20"]],
        checks: [{ at: "12m", alert: "EnvoyUpstreamConnectFailures", fires: [] }],
    },
    {
        name: "15 % of Redis commands fail through an Envoy: EnvoyRedisCommandErrors after 10m",
        series: [
            // Names as the scrape's metric_relabel_configs leave them (command moved into a label).
            [envoy("envoy_redis_command_total", { envoy_redis_prefix: "redisforge", envoy_redis_command: "get" }), "0+100x30"],
            [envoy("envoy_redis_command_error", { envoy_redis_prefix: "redisforge", envoy_redis_command: "get" }), "0+30x30"],
            [envoy("envoy_redis_command_total", { envoy_redis_prefix: "redisforge", envoy_redis_command: "set" }), "0+100x30"],
            [envoy("envoy_redis_command_error", { envoy_redis_prefix: "redisforge", envoy_redis_command: "set" }), "0x30"],
            // A fault-injection counter must not count as an error reply.
            [envoy("envoy_redis_command_error_fault", { envoy_redis_prefix: "redisforge", envoy_redis_command: "set" }), "0+500x30"],
        ],
        checks: [
            { at: "8m", alert: "EnvoyRedisCommandErrors", fires: [] },
            {
                at: "20m",
                alert: "EnvoyRedisCommandErrors",
                fires: [{ labels: { cluster: "prod", node: "e1", envoy_redis_prefix: "redisforge" }, value: { humanizePercentage: "15%" } }],
            },
        ],
    },
    {
        name: "0.5 % Redis command errors: no EnvoyRedisCommandErrors",
        series: [
            [envoy("envoy_redis_command_total", { envoy_redis_prefix: "redisforge", envoy_redis_command: "get" }), "0+200x30"],
            [envoy("envoy_redis_command_error", { envoy_redis_prefix: "redisforge", envoy_redis_command: "get" }), "0+1x30"],
        ],
        checks: [{ at: "20m", alert: "EnvoyRedisCommandErrors", fires: [] }],
    },
];
