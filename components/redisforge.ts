/**
 * RedisForgeCluster: the top component. Composes, in dependency order:
 *
 *   network → firewall (pure allow list) → secret store → PKI (CA) → ACL secrets → backup bucket
 *   → registry + images → RedisNode × N (zones from the planner) → ExporterStack
 *   → EnvoyProxy (LB + Envoys) → RedisCluster (the dynamic resource that forms the cluster,
 *   plugged in through `formCluster`).
 *
 * Rolling upgrade order (when the cluster is formed by this program): a new image digest or
 * redisVersion changes every Redis VM's user-data, and the engine would update all VMs at once.
 * So the VMs are chained through RollingGate resources (providers/redis-cluster/rolling-gate.ts)
 * in `rollingOrder` (planned replicas first, then planned masters; each gate pair: fail over away
 * from a master -> the VM's update -> wait until the node is back and synced). The planned roles
 * stay true because the upgrade fails masters back (RedisCluster's converge re-spreads them).
 * Cost: the first creation of the VMs follows the same chain (one at a time).
 *
 * Invariants (tests/unit/components prove them for every registered cloud):
 * - masters are spread over the zones and no replica shares its master's zone (planTopology);
 * - no firewall rule opens a Redis/bus/exporter/admin port to 0.0.0.0/0; only the client port
 *   faces the client CIDRs (firewallRules);
 * - no VM has a public IP; passwords and private keys are secrets; user-data holds references only.
 *
 * Nothing is validated here that infra/config.ts already validated, except what protects the
 * invariants themselves; topology values are plain so they are known before anything exists.
 */
import * as pulumi from "@pulumi/pulumi";
import type { AclUser } from "../templates/redis";
import { maxmemoryFor } from "../templates/redis";
import type { CloudAdapter, ConvergeStoreGrant, ConvergeStoreSettings } from "../providers/types";
import { AgentGate } from "../providers/redis-cluster/agent-gate";
import { AGENT_DOC_ACCESS } from "../providers/redis-cluster/agent/store";
import { BackupBucket } from "./backup-bucket";
import { EnvoyProxy } from "./envoy-proxy";
import { ExporterStack } from "./exporter-stack";
import type { ExporterNodeTarget } from "./exporter-targets";
import { firewallRules } from "./firewall-rules";
import { Images } from "./images";
import { Pki } from "./pki";
import { RedisNode } from "./redis-node";
import { ClusterSecrets } from "./secrets";
import { tagsFor } from "./tags";
import { planTopology, Topology } from "./topology";
import { RollingGate } from "../providers/redis-cluster/rolling-gate";

/** Pure: the order Redis VMs are updated in: planned replicas first, then planned masters (each in ordinal order). */
export function rollingOrder(t: Topology): string[] {
    return [...t.nodes.filter((n) => n.role === "replica"), ...t.nodes.filter((n) => n.role === "master")].map((n) => n.key);
}

/** What the cluster-forming dynamic resource receives (see providers/redis-cluster). */
export interface FormClusterArgs {
    /** Nodes in stable order: key, private IP, TLS port, zone. */
    nodes: pulumi.Output<{ id: string; host: string; port: number; zone: string }[]>;
    shards: number;
    replicasPerShard: number;
    /** `admin` ACL password (secret). */
    adminPassword: pulumi.Output<string>;
    /** CA certificate to verify the nodes. */
    caCertPem: pulumi.Output<string>;
    /** Client certificate + key (secret) for mTLS at the nodes (`tls-auth-clients yes`). */
    clientCertPem: pulumi.Output<string>;
    clientKeyPem: pulumi.Output<string>;
    /** Depends on every node VM. */
    dependsOn: pulumi.Resource[];
    /** Formation `agent`: where the spec is published and the agent's status read (names only), and whether it heals. */
    agent?: { store: pulumi.Output<ConvergeStoreSettings>; heal: boolean };
}

export interface RedisForgeClusterArgs {
    /** The cloud, from providers/registry.ts. */
    adapter: CloudAdapter;
    /** Cluster name: a DNS label (the stack name), prefixes host names and secret keys. */
    clusterName: string;
    region: string;
    /** ≥ 3 distinct zones. */
    zones: string[];
    /** Masters (≥ 3). */
    shards: number;
    /** Replicas per master (< number of zones). */
    replicasPerShard: number;
    /** Redis VM size (cloud format). */
    nodeSize: string;
    /** RAM of `nodeSize` in GiB; maxmemory is 75 % of it. */
    nodeMemoryGb: number;
    /** cluster-node-timeout of every node, ms. Default 5000. */
    clusterNodeTimeoutMs?: number;
    /** Data disk per Redis VM, GiB. */
    dataDiskGb: number;
    envoySize: string;
    /** Envoy VMs, spread over the zones. */
    envoyCount: number;
    /** Private network CIDR. */
    networkCidr: string;
    clientCidrs: string[];
    monitoringCidrs: string[];
    /** SSH sources; empty = SSH closed. */
    adminCidrs: string[];
    /** Internal load balancer (private address only). */
    internalLoadBalancer: boolean;
    ports: { client: number; redis: number; bus: number; redisExporter: number; nodeExporter: number; envoyAdmin: number };
    backupRetentionDays: number;
    images: { build: boolean; redis: string; envoy: string; redisExporter: string; nodeExporter: string; convergeAgent?: string };
    /**
     * `direct` (default): the cluster resource and the rolling gates connect to the nodes from the
     * deploying machine. `agent`: a converge store bucket, the converge agent on every Redis VM
     * (its identity may read the spec and write the status and lease, nothing else), gates that
     * follow the agent's status, and the cluster resource publishing to the store.
     */
    formation?: "direct" | "agent";
    /** Formation `agent`: heal between deploys (the spec's `heal`). */
    convergeHeal?: boolean;
    redisVersion: string;
    tlsValidityDays: number;
    tlsRenewBeforeDays: number;
    /** CA generation (redisforge:tlsCaGeneration). Default 1. */
    tlsCaGeneration?: number;
    /** Trust the previous CA generation too (redisforge:tlsCaOverlap). Default true. */
    tlsCaOverlap?: boolean;
    /** Supplied passwords (secret Outputs); missing ones are generated. */
    passwords: Partial<Record<AclUser, pulumi.Output<string>>>;
    /**
     * Creates the RedisCluster dynamic resource (providers/redis-cluster). Optional so that the
     * infrastructure can be previewed/tested without the executor; infra/index.ts passes it.
     */
    formCluster?: (name: string, args: FormClusterArgs, parent: pulumi.Resource) => pulumi.Resource;
}

export interface NodeOutput {
    name: string;
    zone: string;
    role: "master" | "replica";
    shard: number;
    privateIp: string;
    dnsName: string;
}

export class RedisForgeCluster extends pulumi.ComponentResource {
    public readonly topology: Topology;
    public readonly endpoint: pulumi.Output<string>;
    public readonly caCertPem: pulumi.Output<string>;
    public readonly nodes: pulumi.Output<NodeOutput[]>;
    public readonly scrapeTargets: ExporterStack["targets"];
    public readonly scrapeConfig: string;
    public readonly bucketUrl: pulumi.Output<string>;
    public readonly redisNodes: RedisNode[];
    public readonly envoy: EnvoyProxy;
    public readonly secrets: ClusterSecrets;

    constructor(name: string, args: RedisForgeClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redisforge:cluster:RedisForgeCluster", name, {}, opts);
        const a = args.adapter;
        // Plan first (pure): a topology the planner rejects must fail before any child exists.
        this.topology = planTopology({ zones: args.zones, shards: args.shards, replicasPerShard: args.replicasPerShard, envoyCount: args.envoyCount, redisPort: args.ports.redis });
        const tags = (role: string) => tagsFor({ cluster: args.clusterName, role });
        const p = { parent: this as pulumi.Resource };

        const network = a.createNetwork(`${name}-net`, { ...p, tags: tags("network"), region: args.region, zones: args.zones, cidr: args.networkCidr });
        const firewall = a.createFirewall(`${name}-fw`, {
            ...p,
            tags: tags("firewall"),
            network,
            rules: firewallRules({ ports: args.ports, clientCidrs: args.clientCidrs, monitoringCidrs: args.monitoringCidrs, adminCidrs: args.adminCidrs }),
            deployerReachesNodes: args.formation !== "agent",
        });
        const store = a.createSecretStore(`${name}-secrets`, { ...p, tags: tags("secrets"), region: args.region, network });
        const pki = new Pki(`${name}-pki`, { clusterName: args.clusterName, validityDays: args.tlsValidityDays, renewBeforeDays: args.tlsRenewBeforeDays, caGeneration: args.tlsCaGeneration, caOverlap: args.tlsCaOverlap }, p);
        const agentMode = args.formation === "agent";
        if (agentMode && (!a.convergeStoreSettings || !(args.images.convergeAgent || args.images.build))) {
            throw new pulumi.ResourceError(`RedisForgeCluster ${name}: formation "agent" needs a cloud with a converge store (${a.kind} has ${a.convergeStoreSettings ? "one" : "none"}) and the converge agent image (${args.images.convergeAgent ? "set" : args.images.build ? "built" : "not set, not built"})`, this);
        }
        this.secrets = new ClusterSecrets(`${name}-acl`, { adapter: a, store, supplied: args.passwords, caCertPem: pki.caCertPem, tags: tags("secrets"), converge: agentMode }, p);
        // The converge store (agent mode): its own bucket, whose current objects never expire (the spec
        // changes only at pulumi up), one prefix per cluster, the nodes' grant on exactly its documents.
        const convergeBucket = agentMode ? a.createBucket(`${name}-converge`, { ...p, tags: tags("converge"), region: args.region, retentionDays: 1, keepCurrent: true }) : undefined;
        const convergeGrant: ConvergeStoreGrant | undefined = convergeBucket ? { bucket: convergeBucket, prefix: `converge/${args.clusterName}`, ...AGENT_DOC_ACCESS } : undefined;
        const convergeSettings = convergeGrant ? a.convergeStoreSettings!(convergeGrant.bucket, convergeGrant.prefix) : undefined;
        const backup = new BackupBucket(`${name}-backup`, { adapter: a, region: args.region, retentionDays: args.backupRetentionDays, tags: tags("backup") }, p);
        const registry = a.capabilities.containerRegistry ? a.createRegistry(`${name}-registry`, { ...p, tags: tags("registry"), region: args.region }) : undefined;
        const images = new Images(`${name}-images`, {
            build: args.images.build,
            registry,
            redisVersion: args.redisVersion,
            pinned: { redis: args.images.redis, envoy: args.images.envoy, convergeAgent: args.images.convergeAgent },
            convergeAgent: agentMode,
            architectures: { redis: a.architectureOf?.(args.nodeSize) ?? "amd64", envoy: a.architectureOf?.(args.envoySize) ?? "amd64" },
        }, p);

        const maxmemoryBytes = maxmemoryFor(args.nodeMemoryGb * 1024 ** 3);
        // The formation client certificate is issued before the nodes: the rolling gates use it too.
        const admin = args.formCluster && !agentMode ? pki.issue(`${name}-admin-client-tls`, { commonName: `${args.clusterName}-admin`, server: false, client: true }, this) : undefined;
        const order = rollingOrder(this.topology);
        // Each node's gates, filled in while the nodes are declared in rolling order.
        const gates = new Map<string, { before: pulumi.Resource & { id: pulumi.Output<string> }; after?: pulumi.Resource & { id: pulumi.Output<string> } }>();
        const agentGates = args.formCluster && convergeSettings;
        const gateFor = (key: string) =>
            agentGates
                ? (ip: pulumi.Output<string>) => {
                      const prev = order[order.indexOf(key) - 1];
                      const before = new AgentGate(`${name}-${key}-roll-before`, { phase: "before", nodeKey: key, host: ip, port: args.ports.redis, redisVersion: args.redisVersion, image: images.redis, store: convergeSettings, after: prev ? gates.get(prev)!.after!.id : undefined }, p);
                      gates.set(key, { before });
                      return before.id;
                  }
                : admin
                ? (ip: pulumi.Output<string>) => {
                      const prev = order[order.indexOf(key) - 1];
                      const before = new RollingGate(`${name}-${key}-roll-before`, {
                          phase: "before",
                          nodeKey: key,
                          host: ip,
                          port: args.ports.redis,
                          redisVersion: args.redisVersion,
                          image: images.redis,
                          after: prev ? gates.get(prev)!.after!.id : undefined,
                          adminPassword: this.secrets.passwords.admin,
                          caCert: pki.caCertPem,
                          clientCert: admin.certPem,
                          clientKey: admin.keyPem,
                      }, p);
                      gates.set(key, { before });
                      return before.id;
                  }
                : undefined;
        const byKey = new Map<string, RedisNode>();
        for (const key of order) {
            const n = this.topology.nodes.find((x) => x.key === key)!;
            const node = new RedisNode(`${name}-${n.key}`, {
            adapter: a,
            clusterName: args.clusterName,
            hostName: `${args.clusterName}-${n.key}`,
            zone: n.zone,
            plannedRole: n.role,
            shard: n.shard,
            size: args.nodeSize,
            dataDiskGb: args.dataDiskGb,
            maxmemoryBytes,
            clusterNodeTimeoutMs: args.clusterNodeTimeoutMs,
            network,
            firewall,
            store,
            shared: { usersAcl: this.secrets.usersAcl, secretsInclude: this.secrets.secretsInclude, exporterPassword: this.secrets.exporterPassword, reloadPassword: this.secrets.reloadPassword, tlsCa: this.secrets.tlsCa },
            bucket: backup.record,
            registry,
            pki,
            images: { redis: images.redis, redisExporter: args.images.redisExporter, nodeExporter: args.images.nodeExporter },
            ports: args.ports,
            redisVersion: args.redisVersion,
            sshCidrs: args.adminCidrs,
            rollingGate: gateFor(n.key),
            ...(convergeGrant ? { converge: { grant: convergeGrant, settings: convergeSettings!, image: images.convergeAgent!, password: this.secrets.convergePassword! } } : {}),
        }, p);
            byKey.set(key, node);
            const g = gates.get(key);
            if (g && agentGates) {
                g.after = new AgentGate(`${name}-${key}-roll-after`, { phase: "after", nodeKey: key, host: node.privateIp, port: args.ports.redis, redisVersion: args.redisVersion, image: images.redis, store: convergeSettings, vmId: node.vmId }, p);
            } else if (g && admin) {
                g.after = new RollingGate(`${name}-${key}-roll-after`, {
                    phase: "after",
                    nodeKey: key,
                    host: node.privateIp,
                    port: args.ports.redis,
                    redisVersion: args.redisVersion,
                    image: images.redis,
                    vmId: node.vmId,
                    adminPassword: this.secrets.passwords.admin,
                    caCert: pki.caCertPem,
                    clientCert: admin.certPem,
                    clientKey: admin.keyPem,
                }, p);
            }
        }
        // Outputs and the cluster keep the topology (ordinal) order.
        this.redisNodes = this.topology.nodes.map((n) => byKey.get(n.key)!);

        this.nodes = pulumi.all(this.redisNodes.map((r) => pulumi.all([r.privateIp, r.dnsName]).apply(([ip, dns]): NodeOutput => ({
            name: r.hostName, zone: r.zone, role: r.plannedRole, shard: r.shard, privateIp: ip, dnsName: dns,
        }))));

        this.envoy = new EnvoyProxy(`${name}-envoy`, {
            adapter: a,
            clusterName: args.clusterName,
            region: args.region,
            instances: this.topology.envoys.map((e) => ({ key: e.key, zone: e.zone })),
            size: args.envoySize,
            network,
            firewall,
            store,
            shared: { tlsCa: this.secrets.tlsCa, appPassword: this.secrets.appPassword },
            pki,
            seeds: this.nodes.apply((ns) => ns.map((n) => ({ host: n.privateIp, port: args.ports.redis }))),
            images: { envoy: images.envoy, nodeExporter: args.images.nodeExporter },
            ports: args.ports,
            clientCidrs: args.clientCidrs,
            internal: args.internalLoadBalancer,
            registry,
            sshCidrs: args.adminCidrs,
        }, p);

        const exporters = new ExporterStack(`${name}-exporters`, {
            clusterName: args.clusterName,
            nodes: this.nodes.apply((ns) => ns.map((n): ExporterNodeTarget => ({ name: n.name, address: n.privateIp, zone: n.zone, role: n.role, shard: n.shard }))),
            envoys: pulumi.all(this.envoy.instances.map((v) => v.privateIp.apply((ip) => ({ name: v.hostName, address: ip, zone: v.zone })))),
            ports: { redisExporter: args.ports.redisExporter, nodeExporter: args.ports.nodeExporter, envoyAdmin: args.ports.envoyAdmin },
        }, p);

        if (args.formCluster && (admin || convergeSettings)) {
            // Direct: formed from the deploying machine with its own client certificate. Agent: the
            // spec is published to the converge store (no certificate or password leaves the nodes).
            args.formCluster(`${name}-cluster`, {
                clientCertPem: admin ? admin.certPem : pulumi.output(""),
                clientKeyPem: admin ? admin.keyPem : pulumi.output(""),
                ...(convergeSettings ? { agent: { store: convergeSettings, heal: !!args.convergeHeal } } : {}),
                nodes: pulumi.all(this.redisNodes.map((r, i) => r.privateIp.apply((ip) => ({ id: this.topology.nodes[i].key, host: ip, port: args.ports.redis, zone: r.zone })))),
                shards: args.shards,
                replicasPerShard: args.replicasPerShard,
                adminPassword: this.secrets.passwords.admin,
                caCertPem: pki.caCertPem,
                // After every node and the last gate: the run ends with the whole chain done.
                dependsOn: [...this.redisNodes, ...[...gates.values()].flatMap((g) => (g.after ? [g.after] : []))],
            }, this);
        }

        this.endpoint = this.envoy.endpoint;
        this.caCertPem = pki.caCertPem;
        this.scrapeTargets = exporters.targets;
        this.scrapeConfig = exporters.scrapeConfig;
        this.bucketUrl = backup.url;
        this.registerOutputs({ endpoint: this.endpoint, caCertPem: this.caCertPem, nodes: this.nodes, scrapeTargets: this.scrapeTargets, bucket: this.bucketUrl });
    }
}
