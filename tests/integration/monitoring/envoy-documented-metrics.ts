/**
 * Envoy statistics as Envoy's documentation names them, converted to the names Envoy's
 * `/stats/prometheus` endpoint emits. No Envoy binary exists on the build machines, so the alert
 * rules and dashboard are checked against this list (the integration test serves it to a real
 * Prometheus, so the scrape config's relabelling runs on it too).
 *
 * Sources (Envoy repository, docs and source):
 * - docs/root/configuration/upstream/cluster_manager/cluster_stats.rst — per-cluster statistics
 *   rooted at `cluster.<name>.`: upstream_cx_total, upstream_cx_active, upstream_cx_connect_fail,
 *   upstream_cx_connect_timeout, upstream_rq_total, upstream_rq_active, upstream_rq_<*xx>,
 *   membership_healthy, membership_total.
 * - docs/root/configuration/listeners/network_filters/redis_proxy_filter.rst — Redis proxy
 *   statistics rooted at `redis.<stat_prefix>.`: downstream_cx_active, downstream_cx_total,
 *   downstream_cx_protocol_error, downstream_rq_active, downstream_rq_total; per command
 *   `redis.<stat_prefix>.command.<command>.`: total, success, error, latency (histogram),
 *   error_fault, delay_fault.
 * - source/common/config/well_known_names.cc — default tag extractors: `cluster.(<name>.)` →
 *   `envoy.cluster_name`; `_rq_(<d>)xx$` → `envoy.response_code_class`; `redis.(<prefix>.)` →
 *   `envoy.redis_prefix`.
 * - docs/root/operations/admin.rst (`/stats/prometheus`) and source/server/admin/prometheus_stats.cc —
 *   names get the `envoy_` prefix, the extracted tag values are removed from the name, characters
 *   outside [a-zA-Z0-9_] become `_`; tag names are sanitised the same way (`envoy.cluster_name` →
 *   `envoy_cluster_name`); histograms become `_bucket`/`_sum`/`_count`.
 */

export interface DocumentedEnvoyStat {
    /** Stat name as documented (with placeholders). */
    documented: string;
    /** Prometheus metric name. */
    name: string;
    type: "counter" | "gauge" | "histogram";
    /** Labels from the default tag extractors, with example values. */
    labels: Record<string, string>;
}

const CLUSTER = "redisforge_redis";
const PREFIX = "redisforge";

function cluster(stat: string, type: DocumentedEnvoyStat["type"]): DocumentedEnvoyStat {
    return { documented: `cluster.<name>.${stat}`, name: `envoy_cluster_${stat}`, type, labels: { envoy_cluster_name: CLUSTER } };
}
function redis(stat: string, type: DocumentedEnvoyStat["type"]): DocumentedEnvoyStat {
    return { documented: `redis.<stat_prefix>.${stat}`, name: `envoy_redis_${stat}`, type, labels: { envoy_redis_prefix: PREFIX } };
}

/** Commands used to instantiate the per-command statistics. */
export const EXAMPLE_COMMANDS = ["get", "set"];

export const DOCUMENTED_ENVOY_STATS: DocumentedEnvoyStat[] = [
    cluster("upstream_cx_total", "counter"),
    cluster("upstream_cx_active", "gauge"),
    cluster("upstream_cx_connect_fail", "counter"),
    cluster("upstream_cx_connect_timeout", "counter"),
    cluster("upstream_rq_total", "counter"),
    cluster("upstream_rq_active", "gauge"),
    cluster("membership_healthy", "gauge"),
    cluster("membership_total", "gauge"),
    // upstream_rq_<*xx>: the class is lifted into envoy_response_code_class.
    ...["2", "3", "4", "5"].map((c) => ({
        documented: `cluster.<name>.upstream_rq_${c}xx`,
        name: "envoy_cluster_upstream_rq_xx",
        type: "counter" as const,
        labels: { envoy_cluster_name: CLUSTER, envoy_response_code_class: c },
    })),
    redis("downstream_cx_active", "gauge"),
    redis("downstream_cx_total", "counter"),
    redis("downstream_cx_protocol_error", "counter"),
    redis("downstream_rq_active", "gauge"),
    redis("downstream_rq_total", "counter"),
    ...EXAMPLE_COMMANDS.flatMap((cmd) =>
        (["total", "success", "error", "error_fault", "delay_fault"] as const).map((stat) => ({
            documented: `redis.<stat_prefix>.command.<command>.${stat}`,
            name: `envoy_redis_command_${cmd}_${stat}`,
            type: "counter" as const,
            labels: { envoy_redis_prefix: PREFIX },
        })),
    ),
    ...EXAMPLE_COMMANDS.map((cmd) => ({
        documented: "redis.<stat_prefix>.command.<command>.latency",
        name: `envoy_redis_command_${cmd}_latency`,
        type: "histogram" as const,
        labels: { envoy_redis_prefix: PREFIX },
    })),
];

/** Prometheus text exposition of the documented statistics (values 0), as Envoy would serve it. */
export function documentedEnvoyExposition(): string {
    const lines: string[] = [];
    const typed = new Set<string>();
    const fmt = (labels: Record<string, string>) =>
        Object.entries(labels)
            .map(([k, v]) => `${k}="${v}"`)
            .join(",");
    for (const s of DOCUMENTED_ENVOY_STATS) {
        if (!typed.has(s.name)) {
            lines.push(`# TYPE ${s.name} ${s.type}`);
            typed.add(s.name);
        }
        if (s.type === "histogram") {
            for (const le of ["0.5", "1", "5", "+Inf"]) lines.push(`${s.name}_bucket{${fmt({ ...s.labels, le })}} 0`);
            lines.push(`${s.name}_sum{${fmt(s.labels)}} 0`);
            lines.push(`${s.name}_count{${fmt(s.labels)}} 0`);
        } else {
            lines.push(`${s.name}{${fmt(s.labels)}} 0`);
        }
    }
    return lines.join("\n") + "\n";
}
