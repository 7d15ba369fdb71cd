/**
 * The program body: config → adapter → top component → stack outputs. infra/index.ts exports
 * `main` as the module itself (CommonJS `export =`), which Pulumi calls.
 *
 * Order matters for invariant 7: the config is read and validated (every problem at once)
 * BEFORE the first resource is constructed, so a bad stack file registers nothing.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig, StackConfig } from "./config";
import { adapters, getAdapter } from "../providers/registry";
import { RedisForgeCluster } from "../components/redisforge";
import { RedisCluster } from "../providers/redis-cluster/provider";
import type { AgentStoreSettings } from "../providers/redis-cluster/agent/stores";
import { deployLocalStack } from "./local/program";
import { limitPromiseStacks } from "./promise-stacks";

/** Stack outputs (also what the tests inspect). */
export interface StackOutputs {
    endpoint: pulumi.Output<string>;
    caCertificate: pulumi.Output<string>;
    nodes: RedisForgeCluster["nodes"];
    scrapeTargets: RedisForgeCluster["scrapeTargets"];
    scrapeConfig: string;
    bucket: pulumi.Output<string>;
}

/** Builds the stack from a validated config. Exported for tests and Automation API scripts. */
export function deploy(config: StackConfig): { cluster: RedisForgeCluster; outputs: StackOutputs } {
    limitPromiseStacks();
    const adapter = getAdapter(config.cloud);
    const cluster = new RedisForgeCluster(config.clusterName, {
        adapter,
        clusterName: config.clusterName,
        region: config.region,
        zones: config.zones,
        shards: config.shards,
        replicasPerShard: config.replicasPerShard,
        nodeSize: config.nodeSize,
        nodeMemoryGb: config.nodeMemoryGb,
        clusterNodeTimeoutMs: config.clusterNodeTimeoutMs,
        dataDiskGb: config.dataDiskGb,
        envoySize: config.envoySize,
        envoyCount: config.envoyCount,
        networkCidr: config.networkCidr,
        clientCidrs: config.clientCidrs,
        monitoringCidrs: config.monitoringCidrs,
        adminCidrs: config.adminCidrs,
        internalLoadBalancer: config.internalLoadBalancer,
        ports: config.ports,
        backupRetentionDays: config.backupRetentionDays,
        images: config.images,
        redisVersion: config.redisVersion,
        tlsValidityDays: config.tlsValidityDays,
        tlsRenewBeforeDays: config.tlsRenewBeforeDays,
        tlsCaGeneration: config.tlsCaGeneration,
        tlsCaOverlap: config.tlsCaOverlap,
        passwords: config.passwords,
        formation: config.formation,
        convergeHeal: config.convergeHeal,
        // The RedisCluster dynamic resource forms/reshapes the cluster: from the deploying machine, which
        // must reach the nodes' private IPs (formation direct), or through the converge agent (agent).
        formCluster: config.formCluster
            ? (name, a, parent) =>
                  new RedisCluster(name, {
                      nodes: a.nodes,
                      shards: a.shards,
                      replicasPerShard: a.replicasPerShard,
                      adminPassword: a.adminPassword,
                      caCert: a.caCertPem,
                      ...(a.agent
                          ? {
                                // The deployer talks only to the converge store, with its own credentials from
                                // its environment (provider-agent.ts credentialsOf): nothing of it in the state.
                                formation: "agent" as const,
                                agentStore: a.agent.store as pulumi.Output<AgentStoreSettings>,
                                heal: a.agent.heal,
                            }
                          : { clientCert: a.clientCertPem, clientKey: a.clientKeyPem }),
                      // The VMs are replaced one at a time by their rolling gates (components/redisforge.ts);
                      // the cluster resource then verifies that every node runs at least this version.
                      targetVersion: config.redisVersion,
                      allowDowngrade: config.allowDowngrade,
                      ...substrateTimings(adapter.timeScale),
                  }, { parent, dependsOn: a.dependsOn })
            : undefined,
    });
    return {
        cluster,
        outputs: {
            endpoint: cluster.endpoint,
            caCertificate: cluster.caCertPem,
            nodes: cluster.nodes,
            scrapeTargets: cluster.scrapeTargets,
            scrapeConfig: cluster.scrapeConfig,
            bucket: cluster.bucketUrl,
        },
    };
}

/**
 * The cluster resource's bounds on a substrate slower than a cloud VM (CloudAdapter.timeScale > 1):
 * converge waits and each connection's bound scaled, and formation keeps the nodes' own
 * cluster-node-timeout (a MEET over TLS takes longer than the 1 s formation value there). The ninth
 * VM run found the 5 s connection bound too short: the nodes' exporters now start while the cluster
 * forms, and two of six TLS handshakes under emulation timed out in the preflight. Nothing on the clouds.
 */
export function substrateTimings(timeScale: number | undefined): { convergeTimeoutSec?: number; formationNodeTimeoutMs?: number; connectTimeoutSec?: number } {
    return timeScale !== undefined && timeScale > 1 ? { convergeTimeoutSec: 60 * timeScale, formationNodeTimeoutMs: 0, connectTimeoutSec: 5 * timeScale } : {};
}

export function main(): StackOutputs | ReturnType<typeof deployLocalStack> {
    limitPromiseStacks();
    const config = loadConfig(adapters); // throws ConfigError before any resource exists
    // The local stack has no VMs, load balancer or Envoy: its nodes are redis-server processes
    // composed by providers/local (same templates, PKI and cluster executor).
    if (config.cloud === "local") return deployLocalStack(config);
    return deploy(config).outputs;
}
