/**
 * The `local` stack: a RedisForge cluster on this machine, deployed by the real Pulumi engine.
 *
 * Each "VM" is a redis-server process (RedisProcess) on a loopback address with its own data dir
 * under `<stateDir>/nodes/<name>` and a zone label; TLS comes from the same PKI component as the
 * clouds (components/pki.ts, @pulumi/tls); redis.conf / users.acl / the masterauth include are
 * rendered by the same templates (templates/redis); the cluster is formed and reshaped by the same
 * RedisCluster dynamic resource (providers/redis-cluster).
 *
 * Invariants:
 * - Node names and ports derive from the node's ordinal only: node i is `${name}-node${i}`, port
 *   `basePort + i`, bus port `baseBusPort + i`, zone `zones[i % zones.length]`. Scaling appends or
 *   drops the highest ordinals, so existing nodes never move.
 * - Passwords and private keys are secret Outputs end to end and reach processes as 0600 files.
 * - Everything lives under `stateDir` (git-ignored); `pulumi destroy` removes it.
 */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { IssuedCert, Pki } from "../../components/pki";
import { ACL_USERS, AclPasswords, AclUser, renderRedisConf, renderSecretsInclude, renderUsersAcl } from "../../templates/redis";
import { REDIS_EXPORTER_PASSWORD_ENV, redisExporterFlags } from "../../components/exporter-targets";
import { ExporterProcess } from "../../providers/local/exporter-process";
import { LocalFiles } from "../../providers/local/files";
import { PROCESS_FILES, RedisProcess } from "../../providers/local/redis-process";

export interface LocalStackArgs {
    /** Cluster name (CA subject, node names). */
    clusterName: string;
    /** Zone labels (failure domains); at least 3 for zone anti-affinity. */
    zones: string[];
    /** Number of masters. */
    shards: number;
    /** Replicas per master. */
    replicasPerShard: number;
    /** Loopback address every node binds. Default 127.0.0.1. */
    host?: string;
    /** TLS port of node 0; node i uses basePort + i. */
    basePort: number;
    /** Bus port of node 0; node i uses baseBusPort + i. */
    baseBusPort: number;
    /** Absolute directory that holds every node's data dir and the client files. */
    stateDir: string;
    /** redis-server version the configs are rendered for (`@since` gating), e.g. "7.0.15". */
    serverVersion: string;
    /** maxmemory per node in bytes. */
    maxmemoryBytes: number;
    /** cluster-node-timeout of every node, ms. Default 5000. */
    clusterNodeTimeoutMs?: number;
    tlsValidityDays: number;
    tlsRenewBeforeDays: number;
    /** CA generation (redisforge:tlsCaGeneration). Default 1. */
    tlsCaGeneration?: number;
    /** Trust the previous CA generation too (redisforge:tlsCaOverlap). Default true. */
    tlsCaOverlap?: boolean;
    /** Passwords supplied as config secrets; the others are generated. */
    passwords?: Partial<Record<AclUser, pulumi.Output<string>>>;
    /** redis-server binary. Default `redis-server`. */
    redisServer?: string;
    /** redis_exporter binary; undefined = no exporters (not installed). */
    redisExporter?: string;
    /** HTTP port of node 0's exporter; node i uses exporterBasePort + i. Required with `redisExporter`. */
    exporterBasePort?: number;
}

/** What one node of the local stack is (plain; from the ordinal). */
export interface LocalNodePlan {
    index: number;
    name: string;
    host: string;
    port: number;
    busPort: number;
    zone: string;
    dataDir: string;
    /** HTTP port of this node's redis_exporter (when exporters run). */
    exporterPort?: number;
}

/** Pure: the nodes a local stack of this shape has. */
export function planLocalNodes(a: Pick<LocalStackArgs, "clusterName" | "zones" | "shards" | "replicasPerShard" | "host" | "basePort" | "baseBusPort" | "stateDir" | "exporterBasePort">): LocalNodePlan[] {
    const count = a.shards * (1 + a.replicasPerShard);
    const host = a.host ?? "127.0.0.1";
    const nodes: LocalNodePlan[] = [];
    for (let i = 0; i < count; i++) {
        const name = `${a.clusterName}-node${i}`;
        const exporterPort = a.exporterBasePort === undefined ? {} : { exporterPort: a.exporterBasePort + i };
        nodes.push({ index: i, name, host, port: a.basePort + i, busPort: a.baseBusPort + i, zone: a.zones[i % a.zones.length], dataDir: path.join(a.stateDir, "nodes", name), ...exporterPort });
    }
    return nodes;
}

/** Checks a local stack's shape; returns every problem (key, rule, value, fix). */
export function checkLocalStackArgs(a: LocalStackArgs): string[] {
    const problems: string[] = [];
    const count = a.shards * (1 + a.replicasPerShard);
    if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a.host ?? "127.0.0.1")) problems.push(`local host must be a loopback address (127.0.0.0/8); got ${JSON.stringify(a.host)}`);
    if (!path.isAbsolute(a.stateDir)) problems.push(`local stateDir must be absolute; got ${JSON.stringify(a.stateDir)}`);
    const bases: [string, number][] = [["redisforge:redisPort", a.basePort], ["redisforge:busPort", a.baseBusPort]];
    if (a.redisExporter !== undefined) bases.push(["redisforge:redisExporterPort", a.exporterBasePort ?? NaN]);
    for (const [key, base] of bases) {
        if (!Number.isInteger(base) || base < 1024 || base + count - 1 > 65535) problems.push(`${key}=${base}: the local stack uses ports ${base}..${base + count - 1}, which must lie in 1024..65535; pick a base such as 17000 / 27000`);
    }
    for (let x = 0; x < bases.length; x++) {
        for (let y = x + 1; y < bases.length; y++) {
            const [ka, a0] = bases[x];
            const [kb, b0] = bases[y];
            if (Math.max(a0, b0) <= Math.min(a0, b0) + count - 1) problems.push(`${ka}=${a0} and ${kb}=${b0}: the ranges of ${count} ports overlap; put them at least ${count} apart (e.g. 17000, 27000, 19000)`);
        }
    }
    if (a.zones.length < 1) problems.push("redisforge:zones must list at least one zone label");
    return problems;
}

export class LocalRedisStack extends pulumi.ComponentResource {
    public readonly nodes: RedisProcess[];
    /** One redis_exporter per node (empty when the exporter is not installed). */
    public readonly exporters: ExporterProcess[] = [];
    public readonly plan: LocalNodePlan[];
    public readonly pki: Pki;
    public readonly passwords: Record<AclUser, pulumi.Output<string>>;
    /** Directory with the operator's client certificate, key and CA (0600 files). */
    public readonly clientDir: pulumi.Output<string>;
    public readonly caCertPem: pulumi.Output<string>;
    /** The operator's client certificate (mTLS for admin tools and the cluster resource). */
    public readonly operatorCert!: IssuedCert;

    constructor(name: string, args: LocalStackArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redisforge:local:LocalRedisStack", name, {}, opts);
        const problems = checkLocalStackArgs(args);
        if (problems.length) throw new Error(`invalid local stack:\n  - ${problems.join("\n  - ")}`);

        this.pki = new Pki(`${name}-pki`, { clusterName: args.clusterName, validityDays: args.tlsValidityDays, renewBeforeDays: args.tlsRenewBeforeDays, caGeneration: args.tlsCaGeneration, caOverlap: args.tlsCaOverlap }, { parent: this });
        this.caCertPem = this.pki.caCertPem;

        const passwords = {} as Record<AclUser, pulumi.Output<string>>;
        for (const user of ACL_USERS) {
            const supplied = args.passwords?.[user];
            passwords[user] = supplied
                ? pulumi.secret(supplied)
                : pulumi.secret(new random.RandomPassword(`${name}-password-${user}`, { length: 48, special: false }, { parent: this }).result);
        }
        this.passwords = passwords;
        const all = pulumi.all(passwords as Record<string, pulumi.Output<string>>).apply((p) => p as unknown as AclPasswords);
        // users.acl holds SHA-256 hashes only, so it is not a secret; the masterauth include is.
        const usersAcl = pulumi.unsecret(all.apply((p) => renderUsersAcl(p)));
        const secretsInclude = pulumi.secret(passwords.replication.apply((replication) => renderSecretsInclude({ replication })));

        this.plan = planLocalNodes(args);
        this.nodes = this.plan.map((n) => {
            const cert = this.pki.issue(n.name, { commonName: n.name, ipAddresses: [n.host], dnsNames: ["localhost", n.name], server: true, client: true }, this);
            const file = (rel: string) => path.join(n.dataDir, rel);
            const redisConf = renderRedisConf({
                nodeName: n.name,
                zone: n.zone,
                bindAddress: n.host,
                announceIp: n.host,
                port: n.port,
                busPort: n.busPort,
                dataDir: n.dataDir,
                tlsCertFile: file(PROCESS_FILES.cert),
                tlsKeyFile: file(PROCESS_FILES.key),
                tlsCaFile: file(PROCESS_FILES.ca),
                aclFile: file(PROCESS_FILES.acl),
                secretsFile: file(PROCESS_FILES.secrets),
                maxmemoryBytes: args.maxmemoryBytes,
                clusterNodeTimeoutMs: args.clusterNodeTimeoutMs,
                logFile: file(PROCESS_FILES.log),
                serverVersion: args.serverVersion,
            });
            const proc = new RedisProcess(
                n.name,
                {
                    nodeName: n.name,
                    zone: n.zone,
                    host: n.host,
                    port: n.port,
                    busPort: n.busPort,
                    dataDir: n.dataDir,
                    redisConf,
                    usersAcl,
                    secretsInclude,
                    tlsCert: cert.certPem,
                    tlsKey: cert.keyPem,
                    tlsCa: this.pki.caCertPem,
                    redisServer: args.redisServer,
                    reloadPassword: passwords.tlsreload,
                },
                { parent: this },
            );
            if (args.redisExporter && n.exporterPort !== undefined) {
                this.exporters.push(
                    new ExporterProcess(
                        `${n.name}-exporter`,
                        {
                            nodeName: n.name,
                            host: n.host,
                            port: n.exporterPort,
                            workDir: path.join(n.dataDir, "exporter"),
                            binary: args.redisExporter,
                            args: redisExporterFlags({
                                redisHost: n.host,
                                redisPort: n.port,
                                listenAddress: `${n.host}:${n.exporterPort}`,
                                caFile: file(PROCESS_FILES.ca),
                                clientCertFile: file(PROCESS_FILES.cert),
                                clientKeyFile: file(PROCESS_FILES.key),
                            }),
                            passwordEnv: REDIS_EXPORTER_PASSWORD_ENV,
                            password: passwords.exporter,
                        },
                        { parent: this, dependsOn: [proc] },
                    ),
                );
            }
            return proc;
        });

        const client = (this.operatorCert = this.pki.issue(`${name}-operator`, { commonName: `${args.clusterName}-operator`, server: false, client: true }, this));
        const clientFiles = new LocalFiles(
            `${name}-client-files`,
            {
                dir: path.join(args.stateDir, "client"),
                files: { "client.crt": client.certPem, "client.key": client.keyPem, "ca.crt": this.pki.caCertPem },
            },
            { parent: this },
        );
        this.clientDir = clientFiles.dir;
        this.registerOutputs({ clientDir: this.clientDir, caCertPem: this.caCertPem });
    }
}
