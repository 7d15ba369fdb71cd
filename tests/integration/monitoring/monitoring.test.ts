/**
 * Monitoring proven against real software (issue 5):
 *
 * 1. A lab of 6 real TLS redis-server nodes (Debian), formed into a 3-master cluster by the
 *    project's cluster executor (providers/redis-cluster via lab/form.ts). One replica is then
 *    re-pointed by hand (CLUSTER REPLICATE) to a master in its own zone, so the topology has a
 *    known same-zone pair and a master without replicas.
 * 2. Debian's prometheus-redis-exporter runs per node as the `exporter` ACL user over TLS with a
 *    client certificate, with the flags from components/exporter-targets.ts (password via env);
 *    prometheus-node-exporter per node with a textfile dir holding the backup metric.
 *    - every metric name read by a rule or a dashboard panel exists in their real output
 *      (Envoy names: in Envoy's documentation, served to Prometheus as documented);
 *    - no scrape error, nothing logged at error level, ACL LOG and errorstats stay empty;
 *    - each command granted to `exporter` is necessary: without it the exporter logs an error or
 *      the server records a NOPERM.
 * 3. A real Prometheus (Debian) with the generated file_sd targets, scrape config and rules
 *    (`for:` shortened for the test), and a real Alertmanager 0.25 (Debian) whose Discord
 *    receivers point at a loopback capture server:
 *    - the same-zone and missing-replica alerts fire for exactly the pair/shard built in step 1;
 *    - killing the master without replicas makes RedisClusterDown pending, then firing;
 *    - Alertmanager suppresses the node-level RedisDown by inhibition and posts the cluster alert
 *      to the critical Discord webhook.
 * Every process is started here, listens on 127.0.0.1 and is stopped by PID in afterAll.
 */
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import type { DrillReport } from "../../../infra/restore-drill/drill";
import { writeDrillMetrics } from "../../../infra/restore-drill/report";
import { writeConvergeMetrics } from "../../../providers/redis-cluster/agent/metrics";
import { stringify } from "yaml";
import { Lab } from "../../../lab/lab";
import { convergeLab } from "../../../lab/form";
import type { ClusterStatus } from "../../../providers/redis-cluster/types";
import { aclHash } from "../../../templates/redis";
import {
    BACKUP_LAST_SUCCESS_METRIC,
    EXPORTER_ACL,
    exporterAclRules,
    ExporterNodeTarget,
    fileSdFileNames,
    fileSdTargets,
    nodeExporterFlags,
    redisExporterFlags,
    REDIS_EXPORTER_PASSWORD_ENV,
    scrapeConfigs,
} from "../../../components/exporter-targets";
import { ruleFile, RECORDING_RULES, ALERTS } from "../../../monitoring/prometheus/rules";
import { dashboardQueries } from "../../../monitoring/grafana/dashboard";
import { alertmanagerConfig, RECEIVERS } from "../../../monitoring/alertmanager/config";
import { DOCUMENTED_ENVOY_STATS, documentedEnvoyExposition } from "./envoy-documented-metrics";
import { exposedNames, freePort, getFrom, httpGet, httpJson, Proc, Procs, sleep, waitFor } from "./harness";
import { metricRefs } from "./promql";
import { run } from "../../unit/monitoring/tools";

jest.setTimeout(240000);

const CLUSTER = "itest";
const ZONES = ["zone-a", "zone-b", "zone-c", "zone-a", "zone-b", "zone-c"];
const FOR_OVERRIDE = "3s";

interface PromAlert {
    labels: Record<string, string>;
    state: "pending" | "firing";
}
interface AmAlert {
    labels: Record<string, string>;
    status: { state: string; inhibitedBy: string[] };
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), "redisforge-monitoring-"));
const procs = new Procs();
let lab: Lab | undefined;
let capture: http.Server | undefined;
const posts: { path: string; body: string }[] = [];

// Filled in beforeAll.
let status: ClusterStatus;
const redisExporterPort: number[] = [];
const nodeExporterPort: number[] = [];
let envoyPort = 0;
let promPort = 0;
let amPort = 0;
let sameZone: { master: string; replica: string };
const redisExporterProc: Proc[] = [];
const nodeExporterProc: Proc[] = [];
const exporters = () => [...redisExporterProc, ...nodeExporterProc];
let orphan: { node: string; index: number; shard: number };

const idx = (id: string) => Number(/^node(\d+)$/.exec(id)![1]);

function exporterEnv(): Record<string, string> {
    return { [REDIS_EXPORTER_PASSWORD_ENV]: lab!.password("exporter") };
}

function startRedisExporter(i: number, port: number, name = `redis_exporter node${i}`) {
    const n = lab!.nodes[i];
    const flags = redisExporterFlags({
        redisHost: n.host,
        redisPort: n.port,
        listenAddress: `127.0.0.1:${port}`,
        caFile: lab!.tls.caFile,
        clientCertFile: lab!.tls.clientCertFile,
        clientKeyFile: lab!.tls.clientKeyFile,
    });
    expect(flags.join(" ")).not.toContain(lab!.password("exporter"));
    return procs.start(name, "prometheus-redis-exporter", flags, exporterEnv());
}

async function errorstats(i: number): Promise<string> {
    return (await lab!.cli(i, ["INFO", "errorstats"])).replace(/# Errorstats/, "").trim();
}

async function aclLog(i: number): Promise<string> {
    return (await lab!.cli(i, ["ACL", "LOG"])).trim();
}

async function promQuery(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const r = await httpJson<{ status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } }>(
        `http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`,
    );
    return r.data.result;
}

async function promAlerts(): Promise<PromAlert[]> {
    return (await httpJson<{ data: { alerts: PromAlert[] } }>(`http://127.0.0.1:${promPort}/api/v1/alerts`)).data.alerts;
}

beforeAll(async () => {
    lab = await Lab.start({ dir: path.join(root, "lab"), count: 6, zones: ZONES });
    status = (await convergeLab(lab, [0, 1, 2, 3, 4, 5], 3, 1)) as ClusterStatus;
    expect(status.state).toBe("ok");
    expect(status.masters).toHaveLength(3);
    expect(status.replicas).toHaveLength(3);

    // Test setup: replica migration off, so the hand-made topology below stays as built.
    for (const n of lab.nodes) await lab.cli(n.index, ["CONFIG", "SET", "cluster-allow-replica-migration", "no"]);
    // Re-point one replica R (of master A) to the master B that shares R's zone:
    // B gets a same-zone replica, A is left without replicas.
    const masters = [...status.masters].sort((a, b) => a.id.localeCompare(b.id));
    const a = masters[0];
    const r = status.replicas.find((x) => x.master === a.address)!;
    const b = masters.find((m) => m.zone === r.zone)!;
    expect(b).toBeDefined();
    await lab.cli(idx(r.id), ["CLUSTER", "REPLICATE", b.nodeId]);
    const bPort = lab.nodes[idx(b.id)].port;
    await waitFor(
        `${r.id} to replicate ${b.id}`,
        async () => {
            const info = await lab!.cli(idx(r.id), ["INFO", "replication"]);
            return info.includes(`master_port:${bPort}`) && info.includes("master_link_status:up") ? true : undefined;
        },
        30000,
        250,
    );
    sameZone = { master: b.id, replica: r.id };
    orphan = { node: a.id, index: idx(a.id), shard: masters.indexOf(a) };

    // Exporter ports, backup textfiles.
    for (let i = 0; i < 6; i++) {
        redisExporterPort.push(await freePort());
        nodeExporterPort.push(await freePort());
    }
    envoyPort = await freePort();
    promPort = await freePort();
    amPort = await freePort();
}, 120000);

afterAll(async () => {
    await procs.stopAll();
    if (capture) await new Promise<void>((r) => capture!.close(() => r()));
    if (lab) await lab.stop({ removeData: true });
    fs.rmSync(root, { recursive: true, force: true });
});

test("the exporter ACL user: each granted command is necessary (without it: error logged or NOPERM recorded)", async () => {
    const node = 0;
    const hash = aclHash(lab!.password("exporter"));
    const measured: string[] = [];
    for (const cmd of EXPORTER_ACL) {
        const rules = exporterAclRules()
            .split(" ")
            .filter((r) => r !== `+${cmd.command}`);
        await lab!.cli(node, ["ACL", "SETUSER", "exporter", "reset", "on", `#${hash}`, ...rules]);
        await lab!.cli(node, ["ACL", "LOG", "RESET"]);
        await lab!.cli(node, ["CONFIG", "RESETSTAT"]);
        const port = await freePort();
        const p = startRedisExporter(node, port, `redis_exporter without ${cmd.command}`);
        try {
            await getFrom(p, `http://127.0.0.1:${port}/metrics`, 10000);
            await httpGet(`http://127.0.0.1:${port}/metrics`);
        } finally {
            await procs.stop(p);
        }
        const loggedError = /level=error/.test(p.output());
        const noperm = /NOPERM/.test(await errorstats(node));
        const aclDenied = (await aclLog(node)).length > 0;
        measured.push(`${cmd.command}: error logged=${loggedError} NOPERM=${noperm} ACL LOG=${aclDenied}`);
        expect(`without ${cmd.command}: ${loggedError || noperm || aclDenied}`).toBe(`without ${cmd.command}: true`);
    }
    // Back to the rendered users.acl.
    await lab!.cli(node, ["ACL", "LOAD"]);
    await lab!.cli(node, ["ACL", "LOG", "RESET"]);
    await lab!.cli(node, ["CONFIG", "RESETSTAT"]);
    expect(measured).toHaveLength(EXPORTER_ACL.length);
    // eslint-disable-next-line no-console
    console.log(`exporter ACL necessity:\n  ${measured.join("\n  ")}`);
});

test("real redis_exporter and node_exporter output holds every metric the rules and dashboard read; scrapes are clean", async () => {
    // Count errors and denials from here on: everything after this point is the exporters' doing.
    for (let i = 0; i < 6; i++) {
        await lab!.cli(i, ["CONFIG", "RESETSTAT"]);
        await lab!.cli(i, ["ACL", "LOG", "RESET"]);
    }
    const now = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 6; i++) {
        const textfiles = path.join(root, `textfile-node${i}`);
        fs.mkdirSync(textfiles, { recursive: true });
        fs.writeFileSync(
            path.join(textfiles, "redisforge_backup.prom"),
            `# HELP ${BACKUP_LAST_SUCCESS_METRIC} Unix time of the last successful backup.\n# TYPE ${BACKUP_LAST_SUCCESS_METRIC} gauge\n${BACKUP_LAST_SUCCESS_METRIC} ${now}\n`,
        );
        // The restore drill's textfile, as the drill writes it (on the machine that runs the drill).
        if (i === 0) writeDrillMetrics(textfiles, { cluster: "monitoring-test", ok: true, mismatches: [] } as unknown as DrillReport, now);
        // The converge agent's textfile, as the lease holder writes it (providers/redis-cluster/agent/metrics.ts).
        if (i === 1) writeConvergeMetrics(path.join(textfiles, "redisforge_converge.prom"), { needsDecision: ["1 of 6 nodes do not answer"], phase: "needs-decision", appliedGeneration: 3 });
        redisExporterProc.push(startRedisExporter(i, redisExporterPort[i]));
        nodeExporterProc.push(procs.start(`node_exporter node${i}`, "prometheus-node-exporter", [
            ...nodeExporterFlags({ listenAddress: `127.0.0.1:${nodeExporterPort[i]}`, textfileDir: textfiles }),
            // Test-only: only the collectors the rules read (all three are on by default in production).
            "--collector.disable-defaults",
            "--collector.filesystem",
            "--collector.filefd",
            "--collector.textfile",
        ]));
    }
    const exposed = new Set<string>();
    for (let i = 0; i < 6; i++) {
        const redisText = await getFrom(redisExporterProc[i], `http://127.0.0.1:${redisExporterPort[i]}/metrics`, 15000);
        const nodeText = await getFrom(nodeExporterProc[i], `http://127.0.0.1:${nodeExporterPort[i]}/metrics`, 15000);
        expect(redisText).toMatch(/^redis_up 1$/m);
        expect(redisText).toMatch(/^redis_exporter_last_scrape_error\{err=""\} 0$/m);
        const backup = new RegExp(`^${BACKUP_LAST_SUCCESS_METRIC} (\\S+)$`, "m").exec(nodeText);
        expect(Number(backup?.[1])).toBe(now);
        for (const n of exposedNames(redisText)) exposed.add(n);
        for (const n of exposedNames(nodeText)) exposed.add(n);
    }

    // Every metric read by a rule or a panel.
    const exprs = [...RECORDING_RULES.map((r) => r.expr), ...ALERTS.map((a) => a.expr), ...dashboardQueries().map((q) => q.expr)];
    const used = new Set<string>();
    for (const e of exprs) {
        const refs = metricRefs(e);
        expect(refs.nameRegexes).toEqual([]); // name regexes would escape this check
        refs.names.forEach((n) => used.add(n));
    }
    const recorded = new Set(RECORDING_RULES.map((r) => r.record));
    const prometheusSynthetic = new Set(["up"]);
    const envoyNames = [...used].filter((n) => n.startsWith("envoy_"));
    const exporterNames = [...used].filter((n) => !n.startsWith("envoy_") && !recorded.has(n) && !prometheusSynthetic.has(n));
    expect(exporterNames.length).toBeGreaterThanOrEqual(25);
    expect(exporterNames.filter((n) => !exposed.has(n))).toEqual([]);
    expect(envoyNames.length).toBeGreaterThan(3);
    // eslint-disable-next-line no-console
    console.log(`metric names checked against real exporter output: ${exporterNames.length}; Envoy names (documentation): ${envoyNames.sort().join(", ")}`);

    // Clean scrapes: nothing at error level, no denied command on any node.
    await sleep(1500);
    for (let i = 0; i < 6; i++) {
        expect(await aclLog(i)).toBe("");
        expect(await errorstats(i)).not.toMatch(/NOPERM/);
    }
    for (const p of exporters()) expect(`${p.name}: ${p.output().split("\n").filter((l) => /level=(error|fatal)/.test(l)).join("\n")}`).toBe(`${p.name}: `);
});

test("real Prometheus with the generated targets, scrape config and rules; real Alertmanager with the Discord config", async () => {
    // --- the Envoy stand-in: Envoy's documented stats, served as /stats/prometheus on loopback.
    capture = http.createServer((req, res) => {
        if (req.url === "/stats/prometheus") {
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
            res.end(documentedEnvoyExposition());
            return;
        }
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
            posts.push({ path: req.url ?? "", body });
            res.writeHead(204);
            res.end();
        });
    });
    await new Promise<void>((r) => capture!.listen(envoyPort, "127.0.0.1", () => r()));

    // --- file_sd from components/exporter-targets.ts
    const shardOf = new Map<string, number>();
    const masters = [...status.masters].sort((a, b) => a.id.localeCompare(b.id));
    masters.forEach((m, k) => shardOf.set(m.id, k));
    for (const r of status.replicas) shardOf.set(r.id, shardOf.get(masters.find((m) => m.address === r.master)!.id)!);
    const nodes: ExporterNodeTarget[] = lab!.nodes.map((n) => ({
        name: n.name,
        address: n.host,
        zone: n.zone,
        role: status.masters.some((m) => m.id === n.name) ? "master" : "replica",
        shard: shardOf.get(n.name)!,
        ports: { redisExporter: redisExporterPort[n.index], nodeExporter: nodeExporterPort[n.index] },
    }));
    const targets = fileSdTargets({ clusterName: CLUSTER, nodes, envoys: [{ name: "envoy0", address: "127.0.0.1", zone: "zone-a", adminPort: envoyPort }] });
    const sdDir = path.join(root, "file_sd");
    fs.mkdirSync(sdDir, { recursive: true });
    const files = fileSdFileNames(CLUSTER);
    for (const k of ["redis", "node", "envoy"] as const) fs.writeFileSync(path.join(sdDir, files[k]), JSON.stringify(targets[k], null, 2));

    // --- Prometheus config: generated scrape jobs and rules, short intervals and `for:`.
    const rulesFile = path.join(root, "rules.yml");
    fs.writeFileSync(rulesFile, stringify(ruleFile({ forOverride: FOR_OVERRIDE }), { lineWidth: 0 }));
    const promConfig = {
        global: { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" },
        rule_files: [rulesFile],
        alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
        scrape_configs: scrapeConfigs({ fileSdDir: sdDir, scrapeInterval: "1s", scrapeTimeout: "1s", refreshInterval: "1s" }),
    };
    const promFile = path.join(root, "prometheus.yml");
    fs.writeFileSync(promFile, stringify(promConfig));
    const check = run("promtool", ["check", "config", promFile]);
    expect(check.output).toContain("SUCCESS");
    expect(check.code).toBe(0);

    // --- Alertmanager 0.25 config: the real routing/inhibition, Discord webhooks on loopback.
    const amFile = path.join(root, "alertmanager.yml");
    fs.writeFileSync(
        amFile,
        stringify(
            alertmanagerConfig({
                discordWebhookUrls: { critical: `http://127.0.0.1:${envoyPort}/discord/critical`, warning: `http://127.0.0.1:${envoyPort}/discord/warning` },
                timing: { groupWait: "1s", groupInterval: "2s", repeatInterval: "1h" },
            }),
        ),
        { mode: 0o600 },
    );
    expect(run("amtool", ["check-config", amFile]).code).toBe(0);
    const am = procs.start("alertmanager", "prometheus-alertmanager", [
        `--config.file=${amFile}`,
        `--storage.path=${path.join(root, "am-data")}`,
        `--web.listen-address=127.0.0.1:${amPort}`,
        "--cluster.listen-address=",
    ]);
    const prom = procs.start("prometheus", "prometheus", [
        `--config.file=${promFile}`,
        `--storage.tsdb.path=${path.join(root, "prom-data")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        "--storage.tsdb.retention.time=1h",
    ]);
    await getFrom(am, `http://127.0.0.1:${amPort}/-/ready`, 20000);
    await getFrom(prom, `http://127.0.0.1:${promPort}/-/ready`, 30000);

    // Every target of the generated config is scraped successfully.
    const expectedTargets = 6 + 6 + 1;
    await waitFor(
        `${expectedTargets} targets up`,
        async () => {
            const t = await httpJson<{ data: { activeTargets: { health: string; labels: Record<string, string> }[] } }>(`http://127.0.0.1:${promPort}/api/v1/targets`);
            const up = t.data.activeTargets.filter((x) => x.health === "up");
            return up.length === expectedTargets ? up : undefined;
        },
        30000,
        500,
    );

    // Envoy names the rules and panels use exist after the scrape's relabelling of the documented stats.
    const namesInProm = (await httpJson<{ data: string[] }>(`http://127.0.0.1:${promPort}/api/v1/label/__name__/values`)).data;
    const envoyUsed = new Set<string>();
    for (const e of [...ALERTS.map((a) => a.expr), ...dashboardQueries().map((q) => q.expr)]) metricRefs(e).names.forEach((n) => n.startsWith("envoy_") && envoyUsed.add(n));
    expect([...envoyUsed].filter((n) => !namesInProm.includes(n))).toEqual([]);
    expect(namesInProm).toContain("envoy_redis_command_error");
    expect(namesInProm).not.toContain("envoy_redis_command_get_error");
    expect(DOCUMENTED_ENVOY_STATS.length).toBeGreaterThan(10);
    const cmdLabel = await waitFor("envoy_redis_command label", async () => {
        const r = await promQuery('envoy_redis_command_error{envoy_redis_command="get"}');
        return r.length ? r : undefined;
    }, 10000);
    expect(cmdLabel[0].metric).toMatchObject({ cluster: CLUSTER, node: "envoy0", envoy_redis_prefix: "redisforge" });

    // The label contract: live role on redis_instance_info is exported_role; every node has an endpoint record.
    const replicasLive = await promQuery(`count(redis_instance_info{cluster="${CLUSTER}", exported_role="slave"})`);
    expect(replicasLive[0]?.value[1]).toBe("3");
    const endpoints = await waitFor("redisforge:redis_endpoint:info", async () => {
        const r = await promQuery("redisforge:redis_endpoint:info");
        return r.length === 6 ? r : undefined;
    }, 15000);
    expect(endpoints.every((e) => e.metric.redis_ip === "127.0.0.1")).toBe(true);

    // Same-zone pair and the master left without replicas: exactly the ones built in beforeAll.
    const before = await waitFor(
        "RedisMasterReplicaSameZone and RedisMasterMissingReplicas firing",
        async () => {
            const alerts = await promAlerts();
            const firing = (name: string) => alerts.filter((a) => a.labels.alertname === name && a.state === "firing");
            return firing("RedisMasterReplicaSameZone").length && firing("RedisMasterMissingReplicas").length ? alerts : undefined;
        },
        30000,
        500,
    );
    const same = before.filter((a) => a.labels.alertname === "RedisMasterReplicaSameZone");
    expect(same.map((a) => [a.labels.node, a.labels.replica_node, a.labels.zone])).toEqual([[sameZone.master, sameZone.replica, lab!.nodes[idx(sameZone.master)].zone]]);
    const missing = before.filter((a) => a.labels.alertname === "RedisMasterMissingReplicas");
    expect(missing.map((a) => a.labels.shard)).toEqual([String(orphan.shard)]);
    expect(before.filter((a) => a.labels.alertname === "RedisClusterDown")).toEqual([]);
    expect(before.filter((a) => a.labels.alertname === "RedisDown")).toEqual([]);

    // After ~10 s of 1 s scrapes by Prometheus: still no error from any exporter, no denied command.
    for (const p of exporters()) expect(`${p.name}: ${p.output().split("\n").filter((l) => /level=(error|fatal)/.test(l)).join("\n")}`).toBe(`${p.name}: `);
    for (let i = 0; i < 6; i++) expect(`node${i}: ${await aclLog(i)}${await errorstats(i)}`).toBe(`node${i}: `);
    const scrapeErrors = await promQuery(`sum(redis_exporter_last_scrape_error{cluster="${CLUSTER}"})`);
    expect(scrapeErrors[0].value[1]).toBe("0");

    // --- kill the master that has no replica: the cluster cannot fail over and goes down.
    const killedAt = Date.now();
    await lab!.killNode(orphan.index);
    const down = await waitFor(
        "RedisClusterDown pending or firing",
        async () => {
            const a = (await promAlerts()).find((x) => x.labels.alertname === "RedisClusterDown" && x.labels.cluster === CLUSTER);
            return a && (a.state === "pending" || a.state === "firing") ? a : undefined;
        },
        60000,
        250,
    );
    const pendingAfterMs = Date.now() - killedAt;
    expect(down.labels).toMatchObject({ severity: "critical", scope: "cluster", cluster: CLUSTER });
    const firingAlerts = await waitFor(
        "RedisClusterDown, RedisDown and RedisClusterSlotsNotOk firing",
        async () => {
            const alerts = await promAlerts();
            const f = (name: string) => alerts.some((a) => a.labels.alertname === name && a.state === "firing");
            return f("RedisClusterDown") && f("RedisDown") && f("RedisClusterSlotsNotOk") ? alerts : undefined;
        },
        30000,
        250,
    );
    const firingAfterMs = Date.now() - killedAt;
    expect(firingAlerts.find((a) => a.labels.alertname === "RedisDown")!.labels.node).toBe(orphan.node);

    // --- Alertmanager: RedisDown (scope=node) is inhibited by RedisClusterDown; the cluster alert reaches the critical webhook.
    const inhibited = await waitFor(
        "RedisDown suppressed by inhibition in Alertmanager",
        async () => {
            const alerts = await httpJson<AmAlert[]>(`http://127.0.0.1:${amPort}/api/v2/alerts?filter=${encodeURIComponent('alertname="RedisDown"')}`);
            const a = alerts.find((x) => x.labels.node === orphan.node);
            return a && a.status.state === "suppressed" && a.status.inhibitedBy.length > 0 ? a : undefined;
        },
        30000,
        500,
    );
    expect(inhibited.labels.scope).toBe("node");
    // Inhibition is scoped: cluster-level alerts stay active next to RedisClusterDown.
    const sameZoneInAm = await httpJson<AmAlert[]>(`http://127.0.0.1:${amPort}/api/v2/alerts?filter=${encodeURIComponent('alertname="RedisMasterReplicaSameZone"')}`);
    expect(sameZoneInAm.map((a) => a.status.state)).toEqual(["active"]);
    const clusterDownPost = await waitFor(
        "RedisClusterDown posted to the critical Discord webhook",
        async () => posts.find((p) => p.path === "/discord/critical" && p.body.includes("RedisClusterDown")),
        30000,
        250,
    );
    const payload = JSON.parse(clusterDownPost.body) as { embeds: { title: string; description: string }[] };
    expect(payload.embeds[0].title).toContain(CLUSTER);
    expect(payload.embeds[0].description).toContain("README.md#runbook-redisclusterdown");
    expect(posts.some((p) => p.path === "/discord/warning" && p.body.includes("RedisMasterReplicaSameZone"))).toBe(true);
    expect(posts.every((p) => p.path === "/discord/critical" || p.path === "/discord/warning")).toBe(true);
    expect(Object.values(RECEIVERS)).toEqual(["discord-critical", "discord-warning"]);

    // eslint-disable-next-line no-console
    console.log(`master killed -> RedisClusterDown pending after ${pendingAfterMs} ms, firing (for: ${FOR_OVERRIDE}) after ${firingAfterMs} ms; Discord posts: ${posts.length}`);
    expect(prom.output()).not.toMatch(/level=error/);
    expect(am.child.exitCode).toBeNull();
});
