/**
 * The RedisForge Grafana dashboard, built as typed objects. monitoring/generate.ts writes it to
 * monitoring/grafana/dashboards/redisforge.json (provisioned by provisioning/dashboards.yaml).
 *
 * Every query selects by the `$cluster` variable (and `$zone` where per-node), so one Grafana
 * serves several RedisForge clusters; every panel uses the `$datasource` variable.
 * tests/unit/monitoring/dashboard.test.ts parses every panel's PromQL with promtool.
 */
import { BACKUP_LAST_SUCCESS_METRIC, SCRAPE_JOBS } from "../../components/exporter-targets";

export const DASHBOARD_UID = "redisforge-cluster";

export interface DatasourceRef {
    type: "prometheus";
    uid: string;
}

export interface Target {
    refId: string;
    expr: string;
    legendFormat: string;
    datasource: DatasourceRef;
    instant?: boolean;
}

export interface GridPos {
    x: number;
    y: number;
    w: number;
    h: number;
}

export interface Panel {
    id: number;
    type: "timeseries" | "stat" | "row" | "bargauge";
    title: string;
    gridPos: GridPos;
    datasource?: DatasourceRef;
    description?: string;
    targets?: Target[];
    fieldConfig?: { defaults: Record<string, unknown>; overrides: unknown[] };
    options?: Record<string, unknown>;
    collapsed?: boolean;
    panels?: Panel[];
}

export interface TemplateVar {
    name: string;
    label: string;
    type: "datasource" | "query";
    query: string | { query: string; refId: string };
    datasource?: DatasourceRef;
    current?: Record<string, unknown>;
    includeAll?: boolean;
    multi?: boolean;
    allValue?: string;
    refresh?: number;
    hide?: number;
    sort?: number;
    options?: unknown[];
    regex?: string;
}

export interface Dashboard {
    uid: string;
    title: string;
    description: string;
    tags: string[];
    timezone: string;
    schemaVersion: number;
    version: number;
    editable: boolean;
    refresh: string;
    time: { from: string; to: string };
    templating: { list: TemplateVar[] };
    annotations: { list: unknown[] };
    panels: Panel[];
}

const DS: DatasourceRef = { type: "prometheus", uid: "${datasource}" };
/** Label selector shared by every Redis query. */
const R = `cluster=~"$cluster", zone=~"$zone"`;
/** Envoy queries select by cluster only (zone applies too: Envoys have a zone label). */
const E = `job="${SCRAPE_JOBS.envoy}", cluster=~"$cluster", zone=~"$zone"`;
const N = `job="${SCRAPE_JOBS.node}", cluster=~"$cluster", zone=~"$zone"`;

type PanelSpec = {
    title: string;
    type?: Panel["type"];
    description?: string;
    unit?: string;
    w?: number;
    h?: number;
    targets: [expr: string, legend: string][];
    thresholds?: { color: string; value: number | null }[];
    mappings?: unknown[];
    max?: number;
    min?: number;
};

type RowSpec = { row: string; panels: PanelSpec[] };

const ROWS: RowSpec[] = [
    {
        row: "Cluster state",
        panels: [
            {
                title: "Cluster state",
                type: "stat",
                w: 4,
                description: "min(redis_cluster_state): 1 = every node says ok, 0 = some node says fail.",
                targets: [[`min(redis_cluster_state{${R}})`, "state"]],
                mappings: [{ type: "value", options: { "0": { text: "FAIL", color: "red" }, "1": { text: "OK", color: "green" } } }],
                thresholds: [{ color: "red", value: null }, { color: "green", value: 1 }],
            },
            {
                title: "Slots ok (min over nodes)",
                type: "stat",
                w: 4,
                targets: [[`min(redis_cluster_slots_ok{${R}})`, "slots ok"]],
                thresholds: [{ color: "red", value: null }, { color: "green", value: 16384 }],
            },
            {
                title: "Slots pfail + fail (max over nodes)",
                type: "stat",
                w: 4,
                targets: [[`max(redis_cluster_slots_pfail{${R}} + redis_cluster_slots_fail{${R}})`, "pfail+fail"]],
                thresholds: [{ color: "green", value: null }, { color: "red", value: 1 }],
            },
            {
                title: "Nodes up / known",
                type: "stat",
                w: 4,
                targets: [
                    [`sum(redis_up{${R}})`, "up"],
                    [`max(redis_cluster_known_nodes{${R}})`, "known"],
                ],
            },
            {
                title: "Live masters / replicas",
                type: "stat",
                w: 4,
                description: "Live roles: a node is a replica when its exporter reports redis_slave_info.",
                targets: [
                    [`count((redis_up{${R}} == 1) unless on (instance) redis_slave_info)`, "masters"],
                    [`count(redis_slave_info{${R}})`, "replicas"],
                ],
            },
            {
                title: "Newest backup age per shard",
                type: "stat",
                w: 4,
                unit: "s",
                targets: [[`time() - max by (shard) (${BACKUP_LAST_SUCCESS_METRIC}{${N}})`, "shard {{shard}}"]],
                thresholds: [{ color: "green", value: null }, { color: "orange", value: 3600 }, { color: "red", value: 7200 }],
            },
        ],
    },
    {
        row: "Throughput and latency",
        panels: [
            { title: "Commands/s per node", unit: "ops", w: 12, targets: [[`sum by (node) (rate(redis_commands_processed_total{${R}}[$__rate_interval]))`, "{{node}}"]] },
            {
                title: "Mean latency per command",
                unit: "s",
                w: 12,
                targets: [[`sum by (cmd) (rate(redis_commands_duration_seconds_total{${R}}[$__rate_interval])) / (sum by (cmd) (rate(redis_commands_total{${R}}[$__rate_interval])) > 0)`, "{{cmd}}"]],
            },
            {
                title: "p99 latency per command (INFO latencystats)",
                unit: "µs",
                w: 12,
                targets: [[`max by (cmd) (redis_latency_percentiles_usec{${R}, quantile="99"})`, "{{cmd}}"]],
            },
            {
                title: "Clients, rejected connections, evictions",
                w: 12,
                targets: [
                    [`sum by (node) (redis_connected_clients{${R}})`, "clients {{node}}"],
                    [`sum by (node) (increase(redis_rejected_connections_total{${R}}[$__rate_interval]))`, "rejected {{node}}"],
                    [`sum by (node) (increase(redis_evicted_keys_total{${R}}[$__rate_interval]))`, "evicted {{node}}"],
                ],
            },
        ],
    },
    {
        row: "Memory and persistence",
        panels: [
            {
                title: "Memory used / maxmemory",
                unit: "percentunit",
                w: 12,
                max: 1,
                min: 0,
                targets: [[`redis_memory_used_bytes{${R}} / (redis_memory_max_bytes{${R}} > 0)`, "{{node}}"]],
                thresholds: [{ color: "green", value: null }, { color: "orange", value: 0.85 }, { color: "red", value: 0.95 }],
            },
            {
                title: "AOF size vs free disk ($mountpoint)",
                unit: "bytes",
                w: 12,
                description: "An AOF rewrite writes a second copy: keep free disk well above the AOF size.",
                targets: [
                    [`max by (node) (redis_aof_current_size_bytes{${R}})`, "AOF {{node}}"],
                    [`max by (node) (node_filesystem_avail_bytes{${N}, mountpoint="$mountpoint"})`, "free {{node}}"],
                ],
            },
            {
                title: "AOF size / free disk ($mountpoint)",
                unit: "percentunit",
                w: 12,
                targets: [[`max by (node) (redis_aof_current_size_bytes{${R}}) / on (node) max by (node) (node_filesystem_avail_bytes{${N}, mountpoint="$mountpoint"})`, "{{node}}"]],
            },
            {
                title: "AOF status (1 = ok)",
                w: 12,
                targets: [
                    [`min by (node) (redis_aof_last_write_status{${R}})`, "write {{node}}"],
                    [`min by (node) (redis_aof_last_bgrewrite_status{${R}})`, "rewrite {{node}}"],
                ],
            },
        ],
    },
    {
        row: "Replication",
        panels: [
            {
                title: "Replication lag (bytes behind master)",
                unit: "bytes",
                w: 8,
                targets: [[`redis_master_repl_offset{${R}} - on (instance) group_right () redis_connected_slave_offset_bytes{${R}}`, "{{node}} -> {{slave_ip}}:{{slave_port}}"]],
            },
            {
                title: "Seconds since replica ACK",
                unit: "s",
                w: 8,
                targets: [[`redis_connected_slave_lag_seconds{${R}}`, "{{node}} -> {{slave_ip}}:{{slave_port}}"]],
            },
            {
                title: "Replicas per live master / link up",
                w: 8,
                targets: [
                    [`redis_connected_slaves{${R}} unless on (instance) redis_slave_info`, "replicas of {{node}}"],
                    [`redis_master_link_up{${R}}`, "link {{node}}"],
                ],
            },
        ],
    },
    {
        row: "Per zone",
        panels: [
            { title: "Commands/s per zone", unit: "ops", w: 8, targets: [[`sum by (zone) (rate(redis_commands_processed_total{${R}}[$__rate_interval]))`, "{{zone}}"]] },
            { title: "Memory used per zone", unit: "bytes", w: 8, targets: [[`sum by (zone) (redis_memory_used_bytes{${R}})`, "{{zone}}"]] },
            {
                title: "Live masters / replicas / down per zone",
                w: 8,
                targets: [
                    [`count by (zone) ((redis_up{${R}} == 1) unless on (instance) redis_slave_info)`, "masters {{zone}}"],
                    [`count by (zone) (redis_slave_info{${R}})`, "replicas {{zone}}"],
                    [`count by (zone) (redis_up{${R}} == 0)`, "down {{zone}}"],
                ],
            },
        ],
    },
    {
        row: "Envoy",
        panels: [
            {
                title: "Requests/s per Envoy",
                unit: "reqps",
                w: 8,
                targets: [
                    [`sum by (node) (rate(envoy_redis_downstream_rq_total{${E}}[$__rate_interval]))`, "{{node}}"],
                ],
            },
            {
                title: "Redis command errors/s per Envoy",
                w: 8,
                targets: [[`sum by (node) (rate(envoy_redis_command_error{${E}}[$__rate_interval]))`, "{{node}}"]],
            },
            {
                title: "Upstream 5xx and connect failures/s",
                w: 8,
                targets: [
                    [`sum by (node) (rate(envoy_cluster_upstream_rq_xx{${E}, envoy_response_code_class="5"}[$__rate_interval]))`, "5xx {{node}}"],
                    [`sum by (node) (rate(envoy_cluster_upstream_cx_connect_fail{${E}}[$__rate_interval]))`, "connect fail {{node}}"],
                ],
            },
            {
                title: "Downstream connections per Envoy",
                w: 8,
                targets: [[`sum by (node) (envoy_redis_downstream_cx_active{${E}})`, "{{node}}"]],
            },
        ],
    },
];

function buildPanels(): Panel[] {
    const panels: Panel[] = [];
    let id = 1;
    let y = 0;
    for (const row of ROWS) {
        panels.push({ id: id++, type: "row", title: row.row, gridPos: { x: 0, y, w: 24, h: 1 }, collapsed: false, panels: [] });
        y += 1;
        let x = 0;
        let rowHeight = 0;
        for (const p of row.panels) {
            const w = p.w ?? 12;
            const h = p.h ?? (p.type === "stat" ? 4 : 8);
            if (x + w > 24) {
                x = 0;
                y += rowHeight;
                rowHeight = 0;
            }
            const refIds = "ABCDEFGH";
            panels.push({
                id: id++,
                type: p.type ?? "timeseries",
                title: p.title,
                ...(p.description ? { description: p.description } : {}),
                datasource: DS,
                gridPos: { x, y, w, h },
                targets: p.targets.map(([expr, legendFormat], i) => ({ refId: refIds[i], expr, legendFormat, datasource: DS })),
                fieldConfig: {
                    defaults: {
                        ...(p.unit ? { unit: p.unit } : {}),
                        ...(p.max !== undefined ? { max: p.max } : {}),
                        ...(p.min !== undefined ? { min: p.min } : {}),
                        ...(p.mappings ? { mappings: p.mappings } : {}),
                        ...(p.thresholds ? { thresholds: { mode: "absolute", steps: p.thresholds } } : {}),
                    },
                    overrides: [],
                },
                options: p.type === "stat" ? { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, colorMode: "background" } : { legend: { displayMode: "list", placement: "bottom" }, tooltip: { mode: "multi" } },
            });
            x += w;
            rowHeight = Math.max(rowHeight, h);
        }
        y += rowHeight;
    }
    return panels;
}

function queryVar(name: string, label: string, query: string, opts: Partial<TemplateVar> = {}): TemplateVar {
    return {
        name,
        label,
        type: "query",
        datasource: DS,
        query: { query, refId: `${name}-var` },
        refresh: 2,
        sort: 1,
        includeAll: true,
        multi: true,
        allValue: ".*",
        current: { selected: true, text: ["All"], value: ["$__all"] },
        options: [],
        ...opts,
    };
}

/** The dashboard object (serialised to monitoring/grafana/dashboards/redisforge.json). */
export function dashboard(): Dashboard {
    return {
        uid: DASHBOARD_UID,
        title: "RedisForge cluster",
        description: "Redis Cluster state, slots, throughput, latency, memory, persistence, replication, zones and Envoy for RedisForge stacks.",
        tags: ["redisforge", "redis"],
        timezone: "utc",
        schemaVersion: 39,
        version: 1,
        editable: true,
        refresh: "30s",
        time: { from: "now-3h", to: "now" },
        templating: {
            list: [
                { name: "datasource", label: "Data source", type: "datasource", query: "prometheus", current: {}, hide: 0, regex: "", options: [] },
                queryVar("cluster", "Cluster", `label_values(redis_up, cluster)`),
                queryVar("zone", "Zone", `label_values(redis_up{cluster=~"$cluster"}, zone)`),
                queryVar("mountpoint", "Data mountpoint", `label_values(node_filesystem_size_bytes{job="${SCRAPE_JOBS.node}", cluster=~"$cluster"}, mountpoint)`, {
                    includeAll: false,
                    multi: false,
                    current: { selected: true, text: "/", value: "/" },
                }),
            ],
        },
        annotations: { list: [] },
        panels: buildPanels(),
    };
}

/** Every PromQL query of every panel (for tests and for the metric-name check). */
export function dashboardQueries(d: Dashboard = dashboard()): { panel: string; expr: string }[] {
    const out: { panel: string; expr: string }[] = [];
    const walk = (ps: Panel[]) => {
        for (const p of ps) {
            for (const t of p.targets ?? []) out.push({ panel: p.title, expr: t.expr });
            if (p.panels) walk(p.panels);
        }
    };
    walk(d.panels);
    return out;
}

/** Grafana variables substituted with values that keep the PromQL valid (for offline parsing). */
export function substituteVariables(expr: string): string {
    return expr
        .replace(/\$__rate_interval|\$__interval|\$__range/g, "5m")
        .replace(/\$\{?(cluster|zone)\}?/g, ".*")
        .replace(/\$\{?mountpoint\}?/g, "/");
}
