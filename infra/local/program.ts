/**
 * The program path of a stack whose `redisforge:cloud` is `local` (called by infra/index.ts with the
 * validated config): the LocalRedisStack (processes, PKI, passwords, operator client files) plus the
 * RedisCluster dynamic resource (providers/redis-cluster, the same as on the clouds) that forms and
 * reshapes the cluster — it depends on every node process, and on scale-in it drains the leaving
 * nodes before the engine deletes their processes (removed resources are deleted last) — and the
 * stack outputs that
 * `scripts/local-up.sh`, `infra/scale.ts` and the end-to-end test read.
 *
 * Everything lives under `<project>/.local-stack/<stack>/` (git-ignored).
 *
 * Server version: `redisforge:redisVersion` picks the installed binary (lab/redis-runtime.ts
 * runtimeForVersion: "7.0" = Debian's 7.0.15, "8.4"/"8.6" = 8.6.3 from scripts/install-redis8.sh);
 * REDISFORGE_REDIS_SERVER (a redis-server path) overrides it. Changing it on a live stack is a
 * rolling upgrade carried out by the RedisCluster resource (targetVersion + a `local-process`
 * rollingRestart hook), one node at a time; the RedisProcess resources record the new binary but
 * never restart for it (see providers/local/redis-process.ts and restart-node.ts for why).
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../config";
import { redisServerVersion } from "../../lab/lab";
import { runtimeForVersion } from "../../lab/redis-runtime";
import { maxmemoryFor } from "../../templates/redis";
import { LocalRedisStack } from "./stack";
import { PROCESS_FILES } from "../../providers/local/redis-process";
import { LOCAL_HOST } from "../../providers/local/index";
import { RedisCluster } from "../../providers/redis-cluster/provider";


/** The directory of a local stack's data. */
export function localStateDir(projectDir: string, stack: string): string {
    return path.join(projectDir, ".local-stack", stack);
}

export interface LocalNodeOutput {
    name: string;
    host: string;
    port: number;
    busPort: number;
    zone: string;
    dataDir: string;
}

/** Absolute path of an executable on PATH, or undefined. */
function findOnPath(name: string): string | undefined {
    for (const dir of (process.env.PATH ?? "").split(":")) {
        if (!dir) continue;
        const p = path.join(dir, name);
        try {
            fs.accessSync(p, fs.constants.X_OK);
            return p;
        } catch {
            // not here
        }
    }
    return undefined;
}

/** The project root (where Pulumi.yaml is): two levels above this file. */
export const PROJECT_DIR = path.resolve(__dirname, "..", "..");

export function deployLocalStack(cfg: StackConfig, projectDir: string = PROJECT_DIR) {
    const stack = pulumi.getStack();
    const stateDir = localStateDir(projectDir, stack);
    const explicit = process.env.REDISFORGE_REDIS_SERVER;
    // Throws naming the key, what is installed and how to install 8.6 when nothing fits.
    const runtime = explicit ? { server: explicit, version: redisServerVersion(explicit) } : runtimeForVersion(cfg.redisVersion);
    const redisServer = runtime.server;
    const redisExporter = findOnPath("prometheus-redis-exporter") ?? findOnPath("redis_exporter");
    if (!redisExporter) void pulumi.log.info("local stack: no redis_exporter installed (Debian: prometheus-redis-exporter); nodes run without exporters");
    const name = cfg.clusterName || stack;
    const local = new LocalRedisStack(name, {
        clusterName: name,
        zones: cfg.zones,
        shards: cfg.shards,
        replicasPerShard: cfg.replicasPerShard,
        host: LOCAL_HOST,
        basePort: cfg.ports.redis,
        baseBusPort: cfg.ports.bus,
        stateDir,
        serverVersion: runtime.version,
        maxmemoryBytes: maxmemoryFor(cfg.nodeMemoryGb * 1024 ** 3),
        clusterNodeTimeoutMs: cfg.clusterNodeTimeoutMs,
        tlsValidityDays: cfg.tlsValidityDays,
        tlsRenewBeforeDays: cfg.tlsRenewBeforeDays,
        tlsCaGeneration: cfg.tlsCaGeneration,
        tlsCaOverlap: cfg.tlsCaOverlap,
        passwords: cfg.passwords,
        redisServer,
        redisExporter,
        exporterBasePort: cfg.ports.redisExporter,
    });

    const operator = local.operatorCert;
    const cluster = new RedisCluster(`${name}-cluster`, {
        nodes: local.plan.map((n) => ({ id: n.name, host: n.host, port: n.port, zone: n.zone })),
        shards: cfg.shards,
        replicasPerShard: cfg.replicasPerShard,
        adminPassword: local.passwords.admin,
        caCert: local.caCertPem,
        clientCert: operator.certPem,
        clientKey: operator.keyPem,
        // The version every node must run; a change rolls the nodes through this hook.
        targetVersion: runtime.version,
        allowDowngrade: cfg.allowDowngrade,
        rollingRestart: {
            kind: "local-process",
            nodes: local.plan.map((n) => ({ id: n.name, dataDir: n.dataDir, confFile: path.join(n.dataDir, PROCESS_FILES.conf), server: redisServer })),
        },
    }, { parent: local, dependsOn: local.nodes });

    const nodes: LocalNodeOutput[] = local.plan.map((n) => ({ name: n.name, host: n.host, port: n.port, busPort: n.busPort, zone: n.zone, dataDir: n.dataDir }));
    const scrapeTargets = redisExporter ? local.plan.map((n) => `${n.host}:${n.exporterPort}`) : [];
    const seed = nodes[0];
    const clientDir = local.clientDir;
    return {
        cloud: "local",
        /** A seed node; cluster clients discover the rest. */
        endpoint: `${seed.host}:${seed.port}`,
        nodes,
        stateDir,
        clientDir,
        caCertPem: local.caCertPem,
        shards: cfg.shards,
        replicasPerShard: cfg.replicasPerShard,
        /** Secret outputs: read them with `pulumi stack output --show-secrets`. */
        adminPassword: pulumi.secret(local.passwords.admin),
        appPassword: pulumi.secret(local.passwords.app),
        /** The `exporter` user (INFO only): what the backup script reads Redis as (`npm run backup`). */
        exporterPassword: pulumi.secret(local.passwords.exporter),
        /** Cluster name: the first level of every backup's object path. */
        clusterName: name,
        clusterState: cluster.state,
        /** Lowest redis_version among the nodes after this `up`. */
        serverVersion: cluster.serverVersion,
        /** redis_exporter endpoints (Prometheus `static_configs` targets); empty when not installed. */
        scrapeTargets,
        connect: pulumi.interpolate`REDISCLI_AUTH="$(pulumi stack output --stack ${stack} --show-secrets appPassword)" redis-cli --tls --cacert ${clientDir}/ca.crt --cert ${clientDir}/client.crt --key ${clientDir}/client.key -h ${seed.host} -p ${seed.port} --user app -c`,
        teardown: `bash scripts/local-down.sh ${stack}`,
    };
}
