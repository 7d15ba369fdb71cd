/**
 * What Prometheus needs to scrape a RedisForge cluster, as pure data: `file_sd` target groups,
 * a ready-to-paste `scrape_configs` snippet, and the exact redis_exporter / node_exporter
 * invocations the VMs run (cloud-init and the lab use the same functions).
 *
 * No Pulumi resources and no I/O here: ExporterStack (components/) calls these functions with
 * plain values (or inside `pulumi.all(...).apply`) and exports the results as stack outputs.
 *
 * Invariants (tests/unit/monitoring/exporter-targets.test.ts checks them):
 * - every node yields exactly one redis_exporter target (:9121) and one node_exporter target (:9100),
 *   every Envoy one admin target (:9901, path /stats/prometheus);
 * - every target carries `cluster`, `zone`, `role`, `node` (and `shard` for Redis nodes): the alert
 *   rules in monitoring/prometheus join on these labels;
 * - the redis_exporter never gets a password on its command line; it reads REDIS_PASSWORD from
 *   its environment (a 0600 EnvironmentFile written at boot from the secret store).
 *
 * Label contract (monitoring/README.md repeats it):
 * - `role` is the role planned at deploy time (`master` / `replica` / `proxy`). After a failover
 *   the live role differs; rules that need the live role use `redis_slave_info` (present only on
 *   live replicas), never this label. Because the target label `role` collides with the `role`
 *   label of `redis_instance_info`, Prometheus renames the latter to `exported_role`.
 * - `instance` is `<node address>:<exporter port>`; the same-zone rule derives the node address
 *   from it to match `redis_connected_slave_*{slave_ip}`. Targets are therefore addresses, not
 *   host names.
 */
import { stringify } from "yaml";

/** Default ports (DESIGN.md: never reachable from 0.0.0.0/0). */
export const DEFAULT_EXPORTER_PORTS: Readonly<ExporterPorts> = {
    redisExporter: 9121,
    nodeExporter: 9100,
    envoyAdmin: 9901,
};

/** Job names used by the scrape snippet and by the alert rules (`up{job=~"redisforge-.*"}`). */
export const SCRAPE_JOBS = {
    redis: "redisforge-redis",
    node: "redisforge-node",
    envoy: "redisforge-envoy",
} as const;

/** Where Envoy's admin listener serves Prometheus text. */
export const ENVOY_METRICS_PATH = "/stats/prometheus";

/**
 * The node_exporter textfile collector directory on every VM. The backup job writes
 * `redisforge_backup.prom` there (atomically: write a temp file, then rename).
 */
export const NODE_EXPORTER_TEXTFILE_DIR = "/var/lib/prometheus/node-exporter";

/** Name of the backup freshness metric (gauge, Unix seconds of the last successful backup). */
export const BACKUP_LAST_SUCCESS_METRIC = "redisforge_backup_last_success_timestamp_seconds";

export interface ExporterPorts {
    /** redis_exporter listen port. Default 9121. */
    redisExporter: number;
    /** node_exporter listen port. Default 9100. */
    nodeExporter: number;
    /** Envoy admin port serving /stats/prometheus. Default 9901. */
    envoyAdmin: number;
}

/** One Redis VM, as the components engineer's planner describes it. */
export interface ExporterNodeTarget {
    /** Node name, e.g. `prod-shard0-replica1`; becomes the `node` label. */
    name: string;
    /** Private IPv4 address the exporters listen on (not a host name: see the label contract). */
    address: string;
    /** Failure domain, e.g. `eu-west-1a`. */
    zone: string;
    /** Role planned at deploy time. */
    role: "master" | "replica";
    /** Shard ordinal (0-based); a master and its replicas share it. */
    shard: number;
    /**
     * Per-node port overrides, for the local stack and the lab where every node shares one
     * loopback address. Clouds leave it unset.
     */
    ports?: Partial<Pick<ExporterPorts, "redisExporter" | "nodeExporter">>;
}

/** One Envoy VM. */
export interface ExporterEnvoyTarget {
    name: string;
    /** Private IPv4 address of the admin listener. */
    address: string;
    zone: string;
    /** Admin port override (local stack / lab only). */
    adminPort?: number;
}

export interface ExporterTargetsArgs {
    /** Cluster name (the stack's cluster name); becomes the `cluster` label on every series. */
    clusterName: string;
    nodes: ExporterNodeTarget[];
    envoys: ExporterEnvoyTarget[];
    /** Ports; defaults DEFAULT_EXPORTER_PORTS. */
    ports?: Partial<ExporterPorts>;
}

/** One Prometheus `file_sd` target group. */
export interface FileSdGroup {
    targets: string[];
    labels: Record<string, string>;
}

/** The three `file_sd` files ExporterStack exports (one JSON array each). */
export interface FileSdTargets {
    redis: FileSdGroup[];
    node: FileSdGroup[];
    envoy: FileSdGroup[];
}

const LABEL_VALUE_OK = /^[A-Za-z0-9._:-]+$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function checkArgs(args: ExporterTargetsArgs): void {
    const problems: string[] = [];
    if (!LABEL_VALUE_OK.test(args.clusterName)) {
        problems.push(`clusterName=${JSON.stringify(args.clusterName)} must match ${LABEL_VALUE_OK} (it becomes the cluster label)`);
    }
    const seen = new Set<string>();
    const all = [...args.nodes.map((n) => ({ ...n, kind: "node" })), ...args.envoys.map((e) => ({ ...e, kind: "envoy" }))];
    for (const t of all) {
        if (seen.has(t.name)) problems.push(`${t.kind} name ${JSON.stringify(t.name)} is used twice; names become the node label and must be unique`);
        seen.add(t.name);
        if (!LABEL_VALUE_OK.test(t.name)) problems.push(`${t.kind} name ${JSON.stringify(t.name)} must match ${LABEL_VALUE_OK}`);
        if (!LABEL_VALUE_OK.test(t.zone)) problems.push(`${t.kind} ${t.name}: zone ${JSON.stringify(t.zone)} must match ${LABEL_VALUE_OK}`);
        const m = IPV4.exec(t.address);
        if (!m || m.slice(1).some((o) => Number(o) > 255)) {
            problems.push(`${t.kind} ${t.name}: address ${JSON.stringify(t.address)} must be an IPv4 address (the same-zone rule matches it against redis_connected_slave_*{slave_ip})`);
        }
    }
    const endpoints = new Set<string>();
    const ports = { ...DEFAULT_EXPORTER_PORTS, ...args.ports };
    const endpoint = (what: string, address: string, port: number) => {
        const key = `${address}:${port}`;
        if (endpoints.has(key)) problems.push(`${what}: target ${key} is used twice; give nodes that share an address distinct ports`);
        endpoints.add(key);
    };
    for (const n of args.nodes) {
        endpoint(`node ${n.name} redis_exporter`, n.address, n.ports?.redisExporter ?? ports.redisExporter);
        endpoint(`node ${n.name} node_exporter`, n.address, n.ports?.nodeExporter ?? ports.nodeExporter);
    }
    for (const e of args.envoys) endpoint(`envoy ${e.name}`, e.address, e.adminPort ?? ports.envoyAdmin);
    for (const n of args.nodes) {
        if (!Number.isInteger(n.shard) || n.shard < 0) problems.push(`node ${n.name}: shard=${n.shard} must be an integer >= 0`);
        if (n.role !== "master" && n.role !== "replica") problems.push(`node ${n.name}: role=${JSON.stringify(n.role)} must be "master" or "replica"`);
    }
    for (const [k, v] of Object.entries(args.ports ?? {})) {
        if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > 65535)) problems.push(`ports.${k}=${v} must be an integer port 1..65535`);
    }
    if (problems.length) throw new Error(`exporter targets: ${problems.length} problem(s):\n- ${problems.join("\n- ")}`);
}

/**
 * The `file_sd` target groups: one group per target, because every target has its own labels.
 * Order follows the input order, so the output is stable across runs (no spurious diffs).
 */
export function fileSdTargets(args: ExporterTargetsArgs): FileSdTargets {
    checkArgs(args);
    const ports = { ...DEFAULT_EXPORTER_PORTS, ...args.ports };
    const nodeLabels = (n: ExporterNodeTarget) => ({
        cluster: args.clusterName,
        zone: n.zone,
        role: n.role,
        shard: String(n.shard),
        node: n.name,
    });
    return {
        redis: args.nodes.map((n) => ({ targets: [`${n.address}:${n.ports?.redisExporter ?? ports.redisExporter}`], labels: nodeLabels(n) })),
        node: args.nodes.map((n) => ({ targets: [`${n.address}:${n.ports?.nodeExporter ?? ports.nodeExporter}`], labels: nodeLabels(n) })),
        envoy: args.envoys.map((e) => ({
            targets: [`${e.address}:${e.adminPort ?? ports.envoyAdmin}`],
            labels: { cluster: args.clusterName, zone: e.zone, role: "proxy", node: e.name },
        })),
    };
}

/** File names ExporterStack writes the three target lists to, relative to the operator's file_sd dir. */
export function fileSdFileNames(clusterName: string): Record<keyof FileSdTargets, string> {
    return {
        redis: `redisforge-${clusterName}-redis.json`,
        node: `redisforge-${clusterName}-node.json`,
        envoy: `redisforge-${clusterName}-envoy.json`,
    };
}

/** The subset of Prometheus' scrape_config this module emits. */
export interface ScrapeConfig {
    job_name: string;
    scrape_interval?: string;
    scrape_timeout?: string;
    metrics_path?: string;
    scheme?: "http" | "https";
    file_sd_configs: { files: string[]; refresh_interval?: string }[];
    metric_relabel_configs?: { source_labels?: string[]; regex?: string; target_label?: string; replacement?: string; action?: string }[];
}

/**
 * Envoy names per-command Redis stats `redis.<prefix>.command.<cmd>.<stat>`; its default tag
 * extractors only lift `<prefix>` into `envoy_redis_prefix`, so Prometheus sees one metric name
 * per command (`envoy_redis_command_get_error`). Prometheus 2.x cannot `rate()` a `__name__=~`
 * selector over several names that share labels, so the scrape moves `<cmd>` into the
 * `envoy_redis_command` label: `envoy_redis_command_error{envoy_redis_command="get"}`.
 * If the Envoy bootstrap already extracts the command as a tag, the names do not match the
 * regex and pass unchanged.
 */
export const ENVOY_REDIS_COMMAND_RELABEL = {
    regex: "envoy_redis_command_([a-z0-9]+)_(total|success|error|error_fault|delay_fault|latency_bucket|latency_sum|latency_count)",
} as const;

export interface ScrapeConfigArgs {
    /** Directory on the Prometheus server holding the file_sd JSON files. */
    fileSdDir: string;
    /** Scrape interval; default 15s. */
    scrapeInterval?: string;
    /** Scrape timeout; default 10s (must not exceed the interval). */
    scrapeTimeout?: string;
    /** How often Prometheus re-reads the files; default 1m (file_sd also watches with inotify). */
    refreshInterval?: string;
}

/**
 * The three scrape jobs. The file globs (`redisforge-*-redis.json`) pick up every RedisForge
 * cluster in the directory, so one snippet serves several stacks.
 */
export function scrapeConfigs(args: ScrapeConfigArgs): ScrapeConfig[] {
    const dir = args.fileSdDir.replace(/\/+$/, "");
    const common = {
        scrape_interval: args.scrapeInterval ?? "15s",
        scrape_timeout: args.scrapeTimeout ?? "10s",
    };
    const sd = (kind: keyof FileSdTargets) => [{ files: [`${dir}/redisforge-*-${kind}.json`], refresh_interval: args.refreshInterval ?? "1m" }];
    return [
        { job_name: SCRAPE_JOBS.redis, ...common, metrics_path: "/metrics", file_sd_configs: sd("redis") },
        { job_name: SCRAPE_JOBS.node, ...common, metrics_path: "/metrics", file_sd_configs: sd("node") },
        {
            job_name: SCRAPE_JOBS.envoy,
            ...common,
            metrics_path: ENVOY_METRICS_PATH,
            file_sd_configs: sd("envoy"),
            metric_relabel_configs: [
                { source_labels: ["__name__"], regex: ENVOY_REDIS_COMMAND_RELABEL.regex, target_label: "envoy_redis_command", replacement: "$1" },
                { source_labels: ["__name__"], regex: ENVOY_REDIS_COMMAND_RELABEL.regex, target_label: "__name__", replacement: "envoy_redis_command_$2" },
            ],
        },
    ];
}

/** The snippet an operator pastes under `scrape_configs:` (a YAML list, serialised by the yaml package). */
export function scrapeConfigsYaml(args: ScrapeConfigArgs): string {
    return stringify({ scrape_configs: scrapeConfigs(args) });
}

/**
 * The `exporter` ACL user's commands, each with the reason redis_exporter 1.45 needs it.
 * templates/redis/users.acl.tmpl cannot hold comments, so the justification lives here and a
 * unit test checks that the template grants exactly these (after `-@all`, no keys, no channels).
 *
 * Not granted, on purpose:
 * - CONFIG GET: it returns `masterauth`, i.e. the replication password. The exporter is started
 *   with `--config-command=INFO`, so it sends `INFO GET *` instead (a harmless INFO call that
 *   Redis answers; redis_exporter logs the unexpected reply type at debug level only). We lose
 *   `redis_config_maxmemory`/`redis_config_maxclients`; INFO's `maxmemory`
 *   (`redis_memory_max_bytes`) covers the memory rule.
 * - PING (only with --ping-on-connect), CLIENT LIST (only with --export-client-list), DBSIZE,
 *   MEMORY STATS, LATENCY HISTOGRAM: 1.45 never sends them with our flags.
 * - `+@connection`: it includes CLIENT KILL and CLIENT PAUSE. AUTH needs no grant.
 */
export const EXPORTER_ACL: ReadonlyArray<{ command: string; why: string }> = [
    { command: "info", why: "INFO ALL is the source of almost every metric; also receives the INFO GET * sent instead of CONFIG GET" },
    { command: "cluster|info", why: "CLUSTER INFO gives redis_cluster_state / slots_* / known_nodes; denied => 'Redis CLUSTER INFO err' logged at error level every scrape" },
    { command: "latency|latest", why: "LATENCY LATEST gives redis_latency_spike_*; denied => an error is logged (once)" },
    { command: "slowlog|len", why: "SLOWLOG LEN gives redis_slowlog_length; denied => one NOPERM + ACL LOG entry per scrape" },
    { command: "slowlog|get", why: "SLOWLOG GET 1 gives redis_slowlog_last_id / last_slow_execution_duration; denied => one NOPERM + ACL LOG entry per scrape" },
    { command: "client|setname", why: "CLIENT SETNAME redis_exporter (so operators see it in CLIENT LIST); denied => 'Couldn't set client name' logged at error level every scrape" },
];

/** The ACL rule text after the password, exactly as users.acl.tmpl holds it for `exporter`. */
export function exporterAclRules(): string {
    return ["resetkeys", "resetchannels", "-@all", ...EXPORTER_ACL.map((c) => `+${c.command}`)].join(" ");
}

/** Environment variable the exporter reads its password from (never argv, never a flag). */
export const REDIS_EXPORTER_PASSWORD_ENV = "REDIS_PASSWORD";

export interface RedisExporterArgs {
    /** Address redis-server's TLS port listens on (the node's private IP). */
    redisHost: string;
    /** redis-server TLS port. */
    redisPort: number;
    /** Address:port the exporter's HTTP listener binds; never 0.0.0.0 (DESIGN invariant 1). */
    listenAddress: string;
    caFile: string;
    /** Client certificate presented to redis-server (tls-auth-clients yes). */
    clientCertFile: string;
    clientKeyFile: string;
    /** ACL user; default `exporter`. */
    user?: string;
}

/**
 * Flags for prometheus-redis-exporter 1.45 (Debian) / oliver006/redis_exporter:
 * TLS with a client certificate, the `exporter` ACL user, no CONFIG command, no Go runtime
 * metrics. The password is NOT among them: put `REDIS_PASSWORD=<secret>` in a 0600 environment
 * file (systemd `EnvironmentFile=`, or the container's env file). `--redis.password-file` is not
 * used because 1.45 logs "Loaded N entries" at error level when it reads one.
 */
export function redisExporterFlags(a: RedisExporterArgs): string[] {
    if (/^0\.0\.0\.0:|^\[?::\]?:|^:/.test(a.listenAddress)) {
        throw new Error(`redis_exporter listenAddress=${a.listenAddress} binds every interface; use the node's private address (DESIGN invariant 1)`);
    }
    return [
        `--redis.addr=rediss://${a.redisHost}:${a.redisPort}`,
        `--redis.user=${a.user ?? "exporter"}`,
        `--tls-ca-cert-file=${a.caFile}`,
        `--tls-client-cert-file=${a.clientCertFile}`,
        `--tls-client-key-file=${a.clientKeyFile}`,
        `--web.listen-address=${a.listenAddress}`,
        "--config-command=INFO",
        "--redis-only-metrics",
        "--connection-timeout=5s",
    ];
}

/** The whole redis_exporter process: binary, flags, and the names (not values) of its secret env. */
export function redisExporterInvocation(a: RedisExporterArgs & { binary?: string }): { command: string; args: string[]; secretEnv: string[] } {
    return { command: a.binary ?? "prometheus-redis-exporter", args: redisExporterFlags(a), secretEnv: [REDIS_EXPORTER_PASSWORD_ENV] };
}

export interface NodeExporterArgs {
    /** Address:port to bind (the node's private address). */
    listenAddress: string;
    /** Textfile collector dir; default NODE_EXPORTER_TEXTFILE_DIR. */
    textfileDir?: string;
}

/** Flags for prometheus-node-exporter 1.5: private listener and the textfile dir the backup job writes to. */
export function nodeExporterFlags(a: NodeExporterArgs): string[] {
    if (/^0\.0\.0\.0:|^\[?::\]?:|^:/.test(a.listenAddress)) {
        throw new Error(`node_exporter listenAddress=${a.listenAddress} binds every interface; use the node's private address (DESIGN invariant 1)`);
    }
    return [
        `--web.listen-address=${a.listenAddress}`,
        `--collector.textfile.directory=${a.textfileDir ?? NODE_EXPORTER_TEXTFILE_DIR}`,
        // Container and pseudo filesystems are noise for the disk rule.
        "--collector.filesystem.fs-types-exclude=^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs|tmpfs)$",
    ];
}
