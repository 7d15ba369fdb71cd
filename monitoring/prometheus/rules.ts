/**
 * RedisForge's Prometheus recording and alert rules, as typed objects. `npx tsx monitoring/generate.ts`
 * (monitoring/generate.ts) serialises them to monitoring/prometheus/rules/redisforge.yml, which is
 * what operators load; a unit test fails when the committed file differs from this generator.
 *
 * Every alert carries `severity` (critical | warning), `scope` (cluster | node | proxy; the
 * Alertmanager inhibition keys on it), a summary, a description and a `runbook_url` into the
 * runbook section of monitoring/README.md, linked from README.md's Operations (one base URL: RUNBOOK_BASE_URL). Every alert has a firing and a
 * non-firing case in monitoring/prometheus/tests/*.test.yml (`promtool test rules`).
 *
 * Labels the rules rely on come from the scrape targets (components/exporter-targets.ts):
 * `cluster`, `zone`, `node`, `shard`, `role` (planned role), `instance` = `<node IPv4>:<port>`.
 */
import { BACKUP_LAST_SUCCESS_METRIC, SCRAPE_JOBS } from "../../components/exporter-targets";

/** One base URL for every runbook link; anchors are `#runbook-<alertname lowercased>`. */
export const RUNBOOK_BASE_URL = "https://github.com/redisforge/redisforge/blob/main/monitoring/README.md";

export function runbookUrl(alert: string): string {
    return `${RUNBOOK_BASE_URL}#${runbookAnchor(alert)}`;
}

export function runbookAnchor(alert: string): string {
    return `runbook-${alert.toLowerCase()}`;
}

/** Thresholds, named so README and tests can quote them. */
export const THRESHOLDS = {
    /** Fraction of maxmemory. */
    memoryUsedRatio: 0.85,
    /** Bytes a replica may trail its master's replication offset. */
    replicationLagBytes: 64 * 1024 * 1024,
    /** Seconds since a replica's last ACK (INFO `lag=`). */
    replicationAckSeconds: 30,
    /** Fraction of a filesystem in use. */
    diskUsedRatio: 0.8,
    /** Fraction of the kernel's file handle limit in use. */
    fileDescriptorRatio: 0.8,
    /**
     * Redis' maxclients. RedisForge keeps the Redis default (10000; redis.conf.tmpl sets no
     * `maxclients`, a unit test checks that) and raises nofile to 100000 so Redis never lowers it.
     * The exporter is not allowed CONFIG GET, so the value cannot be scraped.
     */
    redisMaxclients: 10000,
    /** Fraction of maxclients in use. */
    clientsRatio: 0.8,
    /** Upstream 5xx / all upstream requests at an Envoy. */
    envoy5xxRatio: 0.05,
    /** Upstream connect failures per 5 minutes at an Envoy cluster. */
    envoyConnectFailures5m: 5,
    /** Redis commands answered with an error / all commands at an Envoy. */
    envoyRedisErrorRatio: 0.05,
    /** Backup age in seconds. */
    backupMaxAgeSeconds: 2 * 3600,
    /** Seconds since the last restore drill that passed: a weekly drill plus a day of grace. */
    restoreDrillMaxAgeSeconds: 8 * 86400,
} as const;

export type Severity = "critical" | "warning";
export type Scope = "cluster" | "node" | "proxy";

export interface AlertDef {
    alert: string;
    expr: string;
    /** Prometheus duration; "0s" fires on the first evaluation. */
    for: string;
    severity: Severity;
    scope: Scope;
    summary: string;
    description: string;
}

export interface RecordingDef {
    record: string;
    expr: string;
}

const T = THRESHOLDS;
const JOBS = `job=~"${SCRAPE_JOBS.redis}|${SCRAPE_JOBS.node}|${SCRAPE_JOBS.envoy}"`;

/**
 * Recording rules for the same-zone check.
 *
 * A master's exporter reports one `redis_connected_slave_offset_bytes{slave_ip, slave_port}` per
 * connected replica; a replica's exporter reports `redis_instance_info{tcp_port}` and its
 * `instance` is `<its IPv4>:9121`. Renaming slave_ip/slave_port to redis_ip/tcp_port on the
 * master side and extracting redis_ip from `instance` on the replica side gives both sides the
 * same key (cluster, redis_ip, tcp_port); joining additionally ON `zone` keeps exactly the
 * links whose two ends carry the same zone label.
 */
export const RECORDING_RULES: RecordingDef[] = [
    {
        record: "redisforge:redis_endpoint:info",
        expr: `label_replace(count by (cluster, zone, node, shard, instance, tcp_port) (redis_instance_info), "redis_ip", "$1", "instance", "(.+):[0-9]+")`,
    },
    {
        record: "redisforge:replication_link:info",
        expr: `label_replace(label_replace(count by (cluster, zone, node, shard, instance, slave_ip, slave_port) (redis_connected_slave_offset_bytes), "redis_ip", "$1", "slave_ip", "(.+)"), "tcp_port", "$1", "slave_port", "(.+)")`,
    },
];

export const ALERTS: AlertDef[] = [
    // ------------------------------------------------------------------ cluster
    {
        alert: "RedisClusterDown",
        expr: `count by (cluster) (redis_cluster_state == 0) > 0`,
        for: "1m",
        severity: "critical",
        scope: "cluster",
        summary: "Redis Cluster {{ $labels.cluster }} reports cluster_state:fail",
        description: "{{ $value }} node(s) of cluster {{ $labels.cluster }} report cluster_state:fail: with cluster-require-full-coverage yes the cluster refuses commands for all keys. Usually a master is down without a replica to promote, or a network partition.",
    },
    {
        alert: "RedisClusterSlotsNotOk",
        expr: `(min by (cluster) (redis_cluster_slots_ok) < 16384) or (max by (cluster) (redis_cluster_slots_fail + redis_cluster_slots_pfail) > 0)`,
        for: "1m",
        severity: "critical",
        scope: "cluster",
        summary: "Cluster {{ $labels.cluster }}: not all 16384 slots are ok",
        description: "In cluster {{ $labels.cluster }} some node sees fewer than 16384 slots ok, or slots in pfail/fail state (value {{ $value }}). Keys in those slots are unavailable.",
    },
    {
        alert: "RedisMasterMissingReplicas",
        expr: `max by (cluster, shard) (redis_connected_slaves unless on (instance) redis_slave_info) < on (cluster, shard) count by (cluster, shard) (redis_up{role="replica"})`,
        for: "5m",
        severity: "warning",
        scope: "cluster",
        summary: "Cluster {{ $labels.cluster }} shard {{ $labels.shard }}: master has {{ $value }} replica(s), fewer than planned",
        description: "The live master of shard {{ $labels.shard }} has {{ $value }} connected replica(s); the stack plans as many replicas as there are replica scrape targets with shard={{ $labels.shard }}. Another failure in this shard loses its slots.",
    },
    {
        alert: "RedisMasterReplicaSameZone",
        expr: `redisforge:replication_link:info * on (cluster, zone, redis_ip, tcp_port) group_left (replica_node) label_replace(redisforge:redis_endpoint:info, "replica_node", "$1", "node", "(.+)")`,
        for: "5m",
        severity: "warning",
        scope: "cluster",
        summary: "Master {{ $labels.node }} and its replica {{ $labels.replica_node }} share zone {{ $labels.zone }}",
        description: "Master {{ $labels.node }} and its replica {{ $labels.replica_node }} ({{ $labels.slave_ip }}:{{ $labels.slave_port }}) are both in zone {{ $labels.zone }} of cluster {{ $labels.cluster }}: losing that zone loses the shard (DESIGN invariant 4).",
    },
    // ------------------------------------------------------------------ node: availability
    {
        alert: "RedisDown",
        expr: `redis_up == 0`,
        for: "1m",
        severity: "critical",
        scope: "node",
        summary: "redis-server on {{ $labels.node }} does not answer",
        description: "redis_exporter on {{ $labels.node }} (zone {{ $labels.zone }}, cluster {{ $labels.cluster }}) cannot connect to or authenticate with redis-server.",
    },
    {
        alert: "RedisForgeExporterDown",
        expr: `up{${JOBS}} == 0`,
        for: "2m",
        severity: "warning",
        scope: "node",
        summary: "Prometheus cannot scrape {{ $labels.job }} on {{ $labels.node }}",
        description: "Scrape target {{ $labels.instance }} (job {{ $labels.job }}, node {{ $labels.node }}, cluster {{ $labels.cluster }}) is down: the exporter or the VM is not reachable.",
    },
    {
        alert: "RedisForgeNodeDown",
        expr: `max by (cluster, zone, node) (up{job=~"${SCRAPE_JOBS.redis}|${SCRAPE_JOBS.node}"}) == 0`,
        for: "2m",
        severity: "critical",
        scope: "node",
        summary: "Node {{ $labels.node }} is unreachable",
        description: "Neither redis_exporter nor node_exporter on {{ $labels.node }} (zone {{ $labels.zone }}, cluster {{ $labels.cluster }}) can be scraped: the VM is down or cut off.",
    },
    // ------------------------------------------------------------------ node: replication
    {
        alert: "RedisReplicationLinkDown",
        expr: `redis_master_link_up == 0`,
        for: "1m",
        severity: "warning",
        scope: "node",
        summary: "Replica {{ $labels.node }} lost its link to master {{ $labels.master_host }}:{{ $labels.master_port }}",
        description: "Replica {{ $labels.node }} (cluster {{ $labels.cluster }}) reports master_link_status:down; it serves stale data and cannot take over without loss.",
    },
    {
        alert: "RedisReplicationLag",
        expr: `((redis_master_repl_offset - on (instance) group_right () redis_connected_slave_offset_bytes) > ${T.replicationLagBytes}) or (redis_connected_slave_lag_seconds > ${T.replicationAckSeconds})`,
        for: "5m",
        severity: "warning",
        scope: "node",
        summary: "Replica {{ $labels.slave_ip }}:{{ $labels.slave_port }} of {{ $labels.node }} lags",
        description: "A replica of {{ $labels.node }} (cluster {{ $labels.cluster }}) trails the master by more than ${T.replicationLagBytes} bytes or has not acknowledged for more than ${T.replicationAckSeconds} s (value {{ $value }}). A failover now loses the difference.",
    },
    // ------------------------------------------------------------------ node: persistence and memory
    {
        alert: "RedisAofWriteFailing",
        expr: `redis_aof_last_write_status == 0`,
        for: "0s",
        severity: "critical",
        scope: "node",
        summary: "AOF writes fail on {{ $labels.node }}",
        description: "redis-server on {{ $labels.node }} (cluster {{ $labels.cluster }}) reports aof_last_write_status:err: writes are not persisted and Redis refuses write commands until the AOF can be written (disk full or I/O error).",
    },
    {
        alert: "RedisAofRewriteFailing",
        expr: `redis_aof_last_bgrewrite_status == 0`,
        for: "0s",
        severity: "warning",
        scope: "node",
        summary: "AOF rewrite failed on {{ $labels.node }}",
        description: "The last BGREWRITEAOF on {{ $labels.node }} (cluster {{ $labels.cluster }}) failed: the AOF keeps growing and restarts get slower. Usually no disk space for the rewrite or fork failed (memory overcommit).",
    },
    {
        alert: "RedisMemoryHigh",
        expr: `redis_memory_used_bytes / (redis_memory_max_bytes > 0) > ${T.memoryUsedRatio}`,
        for: "5m",
        severity: "warning",
        scope: "node",
        summary: "{{ $labels.node }} uses {{ $value | humanizePercentage }} of maxmemory",
        description: "redis-server on {{ $labels.node }} (cluster {{ $labels.cluster }}) uses more than ${T.memoryUsedRatio * 100} % of maxmemory. With maxmemory-policy noeviction, writes fail with OOM when it reaches 100 %.",
    },
    {
        alert: "RedisEvictingKeys",
        expr: `increase(redis_evicted_keys_total[5m]) > 0`,
        for: "0s",
        severity: "critical",
        scope: "node",
        summary: "{{ $labels.node }} evicted keys",
        description: "redis-server on {{ $labels.node }} (cluster {{ $labels.cluster }}) evicted {{ $value }} keys in 5 minutes. RedisForge runs maxmemory-policy noeviction, so the policy was changed by hand and data is being dropped.",
    },
    {
        alert: "RedisRejectedConnections",
        expr: `increase(redis_rejected_connections_total[5m]) > 0`,
        for: "0s",
        severity: "warning",
        scope: "node",
        summary: "{{ $labels.node }} rejected client connections",
        description: "redis-server on {{ $labels.node }} (cluster {{ $labels.cluster }}) rejected {{ $value }} connections in 5 minutes because maxclients was reached.",
    },
    {
        alert: "RedisClientsNearLimit",
        expr: `redis_connected_clients > ${T.clientsRatio} * ${T.redisMaxclients}`,
        for: "5m",
        severity: "warning",
        scope: "node",
        summary: "{{ $labels.node }} has {{ $value }} client connections (maxclients ${T.redisMaxclients})",
        description: "redis-server on {{ $labels.node }} (cluster {{ $labels.cluster }}) holds more than ${T.clientsRatio * 100} % of maxclients (${T.redisMaxclients}); each client is a file descriptor and new connections are rejected at the limit.",
    },
    {
        alert: "NodeDiskAlmostFull",
        expr: `(1 - node_filesystem_avail_bytes{job="${SCRAPE_JOBS.node}", fstype!~"tmpfs|ramfs|overlay|squashfs"} / node_filesystem_size_bytes{job="${SCRAPE_JOBS.node}", fstype!~"tmpfs|ramfs|overlay|squashfs"}) > ${T.diskUsedRatio}`,
        for: "5m",
        severity: "warning",
        scope: "node",
        summary: "{{ $labels.mountpoint }} on {{ $labels.node }} is {{ $value | humanizePercentage }} full",
        description: "Filesystem {{ $labels.mountpoint }} ({{ $labels.device }}) on {{ $labels.node }} (cluster {{ $labels.cluster }}) is more than ${T.diskUsedRatio * 100} % used. An AOF rewrite needs room for a second copy of the data; when the disk fills, AOF writes fail and Redis refuses writes.",
    },
    {
        alert: "NodeFileDescriptorsNearLimit",
        expr: `node_filefd_allocated{job="${SCRAPE_JOBS.node}"} / node_filefd_maximum{job="${SCRAPE_JOBS.node}"} > ${T.fileDescriptorRatio}`,
        for: "5m",
        severity: "warning",
        scope: "node",
        summary: "{{ $labels.node }} uses {{ $value | humanizePercentage }} of the kernel file handle limit",
        description: "Node {{ $labels.node }} (cluster {{ $labels.cluster }}) has allocated more than ${T.fileDescriptorRatio * 100} % of fs.file-max; new connections and files will fail.",
    },
    // ------------------------------------------------------------------ backups
    {
        alert: "RedisForgeBackupStale",
        expr: `time() - max by (cluster, shard) (${BACKUP_LAST_SUCCESS_METRIC}) > ${T.backupMaxAgeSeconds}`,
        for: "5m",
        severity: "warning",
        scope: "cluster",
        summary: "Cluster {{ $labels.cluster }} shard {{ $labels.shard }}: last backup is {{ $value | humanizeDuration }} old",
        description: "The newest successful backup of shard {{ $labels.shard }} in cluster {{ $labels.cluster }} is older than ${T.backupMaxAgeSeconds / 3600} hours (${BACKUP_LAST_SUCCESS_METRIC}).",
    },
    {
        alert: "RedisForgeBackupMissing",
        expr: `count by (cluster) (up{job="${SCRAPE_JOBS.node}"} == 1) unless on (cluster) count by (cluster) (${BACKUP_LAST_SUCCESS_METRIC})`,
        for: "2h",
        severity: "warning",
        scope: "cluster",
        summary: "Cluster {{ $labels.cluster }} has published no backup for 2 hours",
        description: "node_exporter runs on {{ $value }} node(s) of cluster {{ $labels.cluster }}, but none exposes ${BACKUP_LAST_SUCCESS_METRIC}: the backup job never succeeded or does not write its textfile.",
    },
    // ------------------------------------------------------------------ restore drill
    // Written by `npm run restore-drill -- --textfile-dir <dir>` (infra/restore-drill/report.ts) on the
    // machine that runs the drill (a CI runner with node_exporter); the file carries the `cluster` label.
    {
        alert: "RedisForgeRestoreDrillStale",
        expr: `time() - max by (cluster) (redisforge_restore_drill_last_success_timestamp_seconds) > ${T.restoreDrillMaxAgeSeconds}`,
        for: "1h",
        severity: "warning",
        scope: "cluster",
        summary: "Cluster {{ $labels.cluster }}: the last restore drill that passed was {{ $value | humanizeDuration }} ago",
        description: `No restore drill of cluster {{ $labels.cluster }} has passed for more than ${T.restoreDrillMaxAgeSeconds / 86400} days (redisforge_restore_drill_last_success_timestamp_seconds): its backups are not proven restorable. Check the scheduled drill job.`,
    },
    {
        alert: "RedisForgeRestoreDrillFailing",
        expr: "max by (cluster) (redisforge_restore_drill_mismatches) > 0",
        for: "0s",
        severity: "warning",
        scope: "cluster",
        summary: "Cluster {{ $labels.cluster }}: the last restore drill found {{ $value }} mismatch(es)",
        description: "The last restore drill of cluster {{ $labels.cluster }} restored its backups into a throw-away lab and found differences from the manifests (redisforge_restore_drill_mismatches): a corrupt or missing file, a node that did not come back, or missing keys. The drill's report names them.",
    },
    // ------------------------------------------------------------------ converge agent
    // Written by the converge agent that holds the lease (providers/redis-cluster/agent) into the
    // node_exporter textfile directory of its node.
    {
        alert: "RedisForgeConvergeNeedsDecision",
        expr: "max by (cluster) (redisforge_converge_needs_decision) > 0",
        for: "10m",
        severity: "warning",
        scope: "cluster",
        summary: "Cluster {{ $labels.cluster }}: the converge agent reports {{ $value }} repair(s) it will not do on its own",
        description: "The converge agent of cluster {{ $labels.cluster }} found drift that needs slot moves, forgetting a node, or a node that does not answer (lost capacity, a zone down): it never does those without a new spec. Its status.json (needsDecision) names each one.",
    },
    {
        alert: "RedisForgeConvergeFailing",
        expr: "max by (cluster) (redisforge_converge_failed) > 0",
        for: "15m",
        severity: "warning",
        scope: "cluster",
        summary: "Cluster {{ $labels.cluster }}: the converge agent's runs fail",
        description: "The converge agent of cluster {{ $labels.cluster }} has failed to converge or heal for 15 minutes (it retries with backoff). Its status.json (lastError) and its journal name the node and step.",
    },
    // ------------------------------------------------------------------ Envoy
    {
        alert: "EnvoyUpstream5xxRatioHigh",
        expr: `sum by (cluster, node, envoy_cluster_name) (rate(envoy_cluster_upstream_rq_xx{envoy_response_code_class="5"}[5m])) / (sum by (cluster, node, envoy_cluster_name) (rate(envoy_cluster_upstream_rq_total[5m])) > 0) > ${T.envoy5xxRatio}`,
        for: "5m",
        severity: "warning",
        scope: "proxy",
        summary: "Envoy {{ $labels.node }}: {{ $value | humanizePercentage }} upstream 5xx on {{ $labels.envoy_cluster_name }}",
        description: "More than ${T.envoy5xxRatio * 100} % of upstream requests from Envoy {{ $labels.node }} (cluster {{ $labels.cluster }}) to {{ $labels.envoy_cluster_name }} end in 5xx.",
    },
    {
        alert: "EnvoyUpstreamConnectFailures",
        expr: `sum by (cluster, node, envoy_cluster_name) (increase(envoy_cluster_upstream_cx_connect_fail[5m])) > ${T.envoyConnectFailures5m}`,
        for: "5m",
        severity: "warning",
        scope: "proxy",
        summary: "Envoy {{ $labels.node }} cannot connect to {{ $labels.envoy_cluster_name }}",
        description: "Envoy {{ $labels.node }} (cluster {{ $labels.cluster }}) failed {{ $value }} upstream connection attempts to {{ $labels.envoy_cluster_name }} in 5 minutes (TLS, ACL or network problem towards the Redis nodes).",
    },
    {
        alert: "EnvoyRedisCommandErrors",
        expr: `sum by (cluster, node, envoy_redis_prefix) (rate(envoy_redis_command_error{job="${SCRAPE_JOBS.envoy}"}[5m])) / (sum by (cluster, node, envoy_redis_prefix) (rate(envoy_redis_command_total{job="${SCRAPE_JOBS.envoy}"}[5m])) > 0) > ${T.envoyRedisErrorRatio}`,
        for: "10m",
        severity: "warning",
        scope: "proxy",
        summary: "Envoy {{ $labels.node }}: {{ $value | humanizePercentage }} of Redis commands fail",
        description: "More than ${T.envoyRedisErrorRatio * 100} % of Redis commands through Envoy {{ $labels.node }} (cluster {{ $labels.cluster }}, prefix {{ $labels.envoy_redis_prefix }}) return an error reply (redirect storms, CLUSTERDOWN, OOM, NOPERM).",
    },
];

/** Prometheus rule file shape (the subset used here). */
export interface RuleFile {
    groups: {
        name: string;
        interval?: string;
        rules: (
            | { record: string; expr: string }
            | { alert: string; expr: string; for: string; labels: Record<string, string>; annotations: Record<string, string> }
        )[];
    }[];
}

export interface RuleFileOptions {
    /** Replace every `for:` (integration tests use a few seconds). */
    forOverride?: string;
}

/** The rule file operators load (monitoring/prometheus/rules/redisforge.yml). */
export function ruleFile(opts: RuleFileOptions = {}): RuleFile {
    return {
        groups: [
            { name: "redisforge-recording", rules: RECORDING_RULES.map((r) => ({ record: r.record, expr: r.expr })) },
            {
                name: "redisforge-alerts",
                rules: ALERTS.map((a) => ({
                    alert: a.alert,
                    expr: a.expr,
                    for: opts.forOverride ?? a.for,
                    labels: { severity: a.severity, scope: a.scope },
                    annotations: { summary: a.summary, description: a.description, runbook_url: runbookUrl(a.alert) },
                })),
            },
        ],
    };
}
