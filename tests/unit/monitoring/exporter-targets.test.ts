/**
 * components/exporter-targets.ts: file_sd groups, the scrape snippet (validated by
 * `promtool check config` together with the target files), and the exporter invocations.
 */
import * as fc from "fast-check";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import {
    DEFAULT_EXPORTER_PORTS,
    ENVOY_METRICS_PATH,
    EXPORTER_ACL,
    ExporterNodeTarget,
    ExporterTargetsArgs,
    fileSdFileNames,
    fileSdTargets,
    nodeExporterFlags,
    redisExporterFlags,
    redisExporterInvocation,
    SCRAPE_JOBS,
    scrapeConfigs,
    scrapeConfigsYaml,
} from "../../../components/exporter-targets";
import { run, tempDir } from "./tools";

const nodes: ExporterNodeTarget[] = [
    { name: "prod-shard0-master", address: "10.40.0.10", zone: "eu-west-1a", role: "master", shard: 0 },
    { name: "prod-shard0-replica1", address: "10.40.16.10", zone: "eu-west-1b", role: "replica", shard: 0 },
    { name: "prod-shard1-master", address: "10.40.32.10", zone: "eu-west-1c", role: "master", shard: 1 },
    { name: "prod-shard1-replica1", address: "10.40.0.11", zone: "eu-west-1a", role: "replica", shard: 1 },
];
const envoys = [
    { name: "prod-envoy0", address: "10.40.0.50", zone: "eu-west-1a" },
    { name: "prod-envoy1", address: "10.40.16.50", zone: "eu-west-1b" },
];
const args: ExporterTargetsArgs = { clusterName: "prod", nodes, envoys };

describe("fileSdTargets", () => {
    const t = fileSdTargets(args);

    test("one redis_exporter (:9121) and one node_exporter (:9100) target per node, one Envoy admin (:9901) per Envoy", () => {
        expect(t.redis.map((g) => g.targets)).toEqual(nodes.map((n) => [`${n.address}:9121`]));
        expect(t.node.map((g) => g.targets)).toEqual(nodes.map((n) => [`${n.address}:9100`]));
        expect(t.envoy.map((g) => g.targets)).toEqual(envoys.map((e) => [`${e.address}:9901`]));
    });

    test("labels cluster, zone, role, shard, node", () => {
        expect(t.redis[1].labels).toEqual({ cluster: "prod", zone: "eu-west-1b", role: "replica", shard: "0", node: "prod-shard0-replica1" });
        expect(t.node[2].labels).toEqual({ cluster: "prod", zone: "eu-west-1c", role: "master", shard: "1", node: "prod-shard1-master" });
        expect(t.envoy[0].labels).toEqual({ cluster: "prod", zone: "eu-west-1a", role: "proxy", node: "prod-envoy0" });
    });

    test("property: every node gets exactly one target per exporter, carrying its own labels", () => {
        const node = fc.record({
            zone: fc.constantFrom("z1", "z2", "z3"),
            role: fc.constantFrom("master" as const, "replica" as const),
            shard: fc.nat(20),
        });
        fc.assert(
            fc.property(fc.array(node, { minLength: 1, maxLength: 40 }), (specs) => {
                const ns = specs.map((s, i) => ({ ...s, name: `n${i}`, address: `10.0.${i >> 8}.${i & 255}` }));
                const out = fileSdTargets({ clusterName: "c", nodes: ns, envoys: [] });
                expect(out.redis).toHaveLength(ns.length);
                expect(out.node).toHaveLength(ns.length);
                ns.forEach((n, i) => {
                    for (const g of [out.redis[i], out.node[i]]) {
                        expect(g.targets).toHaveLength(1);
                        expect(g.labels).toEqual({ cluster: "c", zone: n.zone, role: n.role, shard: String(n.shard), node: n.name });
                    }
                });
            }),
        );
    });

    test("per-node ports for loopback labs; duplicate endpoints are refused", () => {
        const lab = [0, 1].map((i) => ({ name: `node${i}`, address: "127.0.0.1", zone: "a", role: "master" as const, shard: i, ports: { redisExporter: 20000 + i, nodeExporter: 21000 + i } }));
        const out = fileSdTargets({ clusterName: "lab", nodes: lab, envoys: [] });
        expect(out.redis.map((g) => g.targets[0])).toEqual(["127.0.0.1:20000", "127.0.0.1:20001"]);
        expect(() => fileSdTargets({ clusterName: "lab", nodes: lab.map((n) => ({ ...n, ports: undefined })), envoys: [] })).toThrow(/target 127\.0\.0\.1:9121 is used twice/);
    });

    test("bad input: every problem named at once, with the fix", () => {
        let message = "";
        try {
            fileSdTargets({
                clusterName: "prod cluster",
                nodes: [
                    { name: "a", address: "redis-a.internal", zone: "z1", role: "master", shard: 0 },
                    { name: "a", address: "10.0.0.2", zone: "z 2", role: "master", shard: -1 },
                ],
                envoys: [],
            });
        } catch (e) {
            message = (e as Error).message;
        }
        expect(message).toMatch(/clusterName="prod cluster" must match/);
        expect(message).toMatch(/address "redis-a.internal" must be an IPv4 address/);
        expect(message).toMatch(/name "a" is used twice/);
        expect(message).toMatch(/zone "z 2" must match/);
        expect(message).toMatch(/shard=-1 must be an integer >= 0/);
    });
});

describe("scrape configuration", () => {
    test("three jobs reading the file_sd globs; Envoy on /stats/prometheus", () => {
        const jobs = scrapeConfigs({ fileSdDir: "/etc/prometheus/file_sd/" });
        expect(jobs.map((j) => j.job_name)).toEqual([SCRAPE_JOBS.redis, SCRAPE_JOBS.node, SCRAPE_JOBS.envoy]);
        expect(jobs[2].metrics_path).toBe(ENVOY_METRICS_PATH);
        expect(jobs[0].file_sd_configs[0].files).toEqual(["/etc/prometheus/file_sd/redisforge-*-redis.json"]);
        const names = Object.values(fileSdFileNames("prod"));
        expect(names).toEqual(["redisforge-prod-redis.json", "redisforge-prod-node.json", "redisforge-prod-envoy.json"]);
    });

    test("promtool check config accepts the pasted snippet with the target files", () => {
        const tmp = tempDir("scrape");
        try {
            const sdDir = path.join(tmp.dir, "file_sd");
            fs.mkdirSync(sdDir);
            const t = fileSdTargets(args);
            const files = fileSdFileNames("prod");
            for (const k of ["redis", "node", "envoy"] as const) fs.writeFileSync(path.join(sdDir, files[k]), JSON.stringify(t[k], null, 2));
            const snippet = parse(scrapeConfigsYaml({ fileSdDir: sdDir }));
            const prom = `global:\n  scrape_interval: 15s\n${scrapeConfigsYaml({ fileSdDir: sdDir })}`;
            expect(snippet.scrape_configs).toHaveLength(3);
            fs.writeFileSync(path.join(tmp.dir, "prometheus.yml"), prom);
            const r = run("promtool", ["check", "config", path.join(tmp.dir, "prometheus.yml")]);
            expect(r.output).toContain("SUCCESS");
            expect(r.code).toBe(0);

            // A broken target file is caught by the same check.
            fs.writeFileSync(path.join(sdDir, files.redis), JSON.stringify([{ targets: ["10.0.0.1:9121"], labels: { "bad label": "x" } }]));
            const bad = run("promtool", ["check", "config", path.join(tmp.dir, "prometheus.yml")]);
            expect(bad.code).not.toBe(0);
        } finally {
            tmp.cleanup();
        }
    });
});

describe("exporter invocations", () => {
    const a = { redisHost: "10.40.0.10", redisPort: 6379, listenAddress: "10.40.0.10:9121", caFile: "/etc/redis/tls/ca.crt", clientCertFile: "/etc/redis/tls/exporter.crt", clientKeyFile: "/etc/redis/tls/exporter.key" };

    test("redis_exporter: TLS with client certificate, exporter user, no CONFIG, password never on argv", () => {
        const flags = redisExporterFlags(a);
        expect(flags).toEqual(
            expect.arrayContaining([
                "--redis.addr=rediss://10.40.0.10:6379",
                "--redis.user=exporter",
                "--tls-ca-cert-file=/etc/redis/tls/ca.crt",
                "--tls-client-cert-file=/etc/redis/tls/exporter.crt",
                "--tls-client-key-file=/etc/redis/tls/exporter.key",
                "--web.listen-address=10.40.0.10:9121",
                "--config-command=INFO",
            ]),
        );
        expect(flags.join(" ")).not.toMatch(/password/i);
        expect(redisExporterInvocation(a).secretEnv).toEqual(["REDIS_PASSWORD"]);
    });

    test("the flags are accepted by the real prometheus-redis-exporter binary", () => {
        // --version parses every flag and exits; an unknown flag makes it fail.
        const ok = run("prometheus-redis-exporter", [...redisExporterFlags(a), "--version"]);
        expect(ok.code).toBe(0);
        const bad = run("prometheus-redis-exporter", ["--no-such-flag", "--version"]);
        expect(bad.code).not.toBe(0);
    });

    test("node_exporter flags are accepted by the real binary", () => {
        const flags = nodeExporterFlags({ listenAddress: "10.40.0.10:9100" });
        expect(flags).toContain("--collector.textfile.directory=/var/lib/prometheus/node-exporter");
        const r = run("prometheus-node-exporter", [...flags, "--version"]);
        expect(r.code).toBe(0);
    });

    test("exporters never listen on every interface", () => {
        expect(() => redisExporterFlags({ ...a, listenAddress: "0.0.0.0:9121" })).toThrow(/binds every interface/);
        expect(() => redisExporterFlags({ ...a, listenAddress: ":9121" })).toThrow(/binds every interface/);
        expect(() => nodeExporterFlags({ listenAddress: "[::]:9100" })).toThrow(/binds every interface/);
    });

    test("every ACL command has a reason; no key access or dangerous categories", () => {
        for (const c of EXPORTER_ACL) {
            expect(c.command).toMatch(/^[a-z]+(\|[a-z]+)?$/);
            expect(c.why.length).toBeGreaterThan(20);
        }
        expect(DEFAULT_EXPORTER_PORTS).toEqual({ redisExporter: 9121, nodeExporter: 9100, envoyAdmin: 9901 });
    });
});
