/**
 * RedisNode: one Redis VM in a given zone: a private address reserved first (so the TLS
 * certificate can name it and survives VM replacement), the node's certificate and key in the
 * secret store, an identity that reads only this node's secrets plus the shared ones and may
 * write (not delete) backups, cloud-init user-data that holds references only, and the VM with
 * a separate data disk and no public IP.
 */
import * as pulumi from "@pulumi/pulumi";
import { buildRedisNodeUserData, CloudKind as TemplateCloud, RedisNodeBackupParams, renderCloudInit } from "../templates/cloud-init";
import type { BucketRecord, CloudAdapter, ConvergeStoreGrant, ConvergeStoreSettings, FirewallRecord, NetworkRecord, RegistryRecord, SecretRecord, SecretStoreRecord } from "../providers/types";
import type { ConvergeStoreParams } from "../templates/cloud-init/converge";
import type { Pki } from "./pki";
import { tagsFor } from "./tags";

/** Shared secrets every Redis node reads at boot. */
export interface RedisSharedSecrets {
    usersAcl: SecretRecord;
    secretsInclude: SecretRecord;
    exporterPassword: SecretRecord;
    /** Password of the `tlsreload` ACL user: the secret refresh loads new TLS material with it. */
    reloadPassword: SecretRecord;
    tlsCa: SecretRecord;
}

export interface RedisNodeArgs {
    /** The cloud. */
    adapter: CloudAdapter;
    /** Cluster (stack) name; a DNS label. */
    clusterName: string;
    /** VM host name, a DNS label unique in the cluster, e.g. `prod-node3`. */
    hostName: string;
    /** Failure domain the VM is placed in. */
    zone: string;
    /** Role planned at formation (tags and monitoring labels; the live role may change on failover). */
    plannedRole: "master" | "replica";
    /** Shard ordinal planned at formation. */
    shard: number;
    /** Cloud VM size, e.g. `r7g.large`. */
    size: string;
    /** Data disk size in GiB. */
    dataDiskGb: number;
    /** maxmemory in bytes (75 % of the VM's RAM). */
    maxmemoryBytes: number;
    /** cluster-node-timeout, ms (redisforge:clusterNodeTimeoutMs). Default 5000. */
    clusterNodeTimeoutMs?: number;
    network: NetworkRecord;
    firewall: FirewallRecord;
    store: SecretStoreRecord;
    shared: RedisSharedSecrets;
    /** Bucket the node writes backups to (BackupBucket.record); its name (+ region / storage account) reaches the backup job. */
    bucket: BucketRecord;
    /** Registry images are pulled from (when images are built). */
    registry?: RegistryRecord;
    pki: Pki;
    /** Digest-pinned image refs. */
    images: { redis: pulumi.Input<string>; redisExporter: pulumi.Input<string>; nodeExporter: pulumi.Input<string> };
    ports: { redis: number; bus: number; redisExporter: number; nodeExporter: number };
    /** Redis version the image runs, e.g. `8.4`. */
    redisVersion: string;
    /** SSH sources (empty: closed). */
    sshCidrs: string[];
    /**
     * Rolling upgrade order: called with this node's reserved private IP before the VM is
     * declared; returns the id of the gate the VM must wait for (the VM's user-data depends on it,
     * so the engine cannot update this VM before that gate; components/redisforge.ts builds the
     * chain). Optional: without it the VM is not ordered.
     */
    rollingGate?: (privateIp: pulumi.Output<string>) => pulumi.Output<string>;
    /**
     * The converge agent on this node (formation `agent`): the store's settings and the identity's
     * grant on it, the agent image, the `converge` user's password in the secret store.
     */
    converge?: { grant: ConvergeStoreGrant; settings: pulumi.Output<ConvergeStoreSettings>; image: pulumi.Input<string>; password: SecretRecord };
}

const none0 = () => pulumi.output<string | undefined>(undefined);

export class RedisNode extends pulumi.ComponentResource {
    public readonly hostName: string;
    public readonly zone: string;
    public readonly plannedRole: "master" | "replica";
    public readonly shard: number;
    public readonly privateIp: pulumi.Output<string>;
    public readonly dnsName: pulumi.Output<string>;
    public readonly vmId: pulumi.Output<string>;
    /** The rendered user-data (references only; tests scan it for secrets). */
    public readonly userData: pulumi.Output<string>;
    /** Node certificate (public) and its SANs. */
    public readonly certPem: pulumi.Output<string>;
    public readonly certSans: pulumi.Output<{ ips: string[]; dns: string[] }>;

    constructor(name: string, args: RedisNodeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redisforge:node:RedisNode", name, {}, opts);
        const a = args.adapter;
        const tags = tagsFor({ cluster: args.clusterName, role: "redis", zone: args.zone, redisRole: args.plannedRole, shard: args.shard });
        const base = { parent: this as pulumi.Resource, tags };
        this.hostName = args.hostName;
        this.zone = args.zone;
        this.plannedRole = args.plannedRole;
        this.shard = args.shard;

        const address = a.reserveAddress(`${name}-addr`, { ...base, network: args.network, firewall: args.firewall, zone: args.zone, role: "redis", hostName: args.hostName });
        const cert = args.pki.issue(`${name}-tls`, {
            commonName: args.hostName,
            ipAddresses: [address.privateIp],
            dnsNames: [address.dnsName, args.hostName],
            server: true,
            client: true, // cluster bus and replication are mTLS between nodes
        }, this);
        const secret = (key: string, value: pulumi.Output<string>) =>
            a.createSecret(`${name}-${key}`, { ...base, store: args.store, key: `${args.hostName}-${key}`, value: pulumi.secret(value) });
        const tlsCert = secret("tls-cert", cert.certPem);
        const tlsKey = secret("tls-key", cert.keyPem);

        const identity = a.createIdentity(`${name}-identity`, {
            ...base,
            role: "redis",
            store: args.store,
            readSecrets: [tlsCert, tlsKey, args.shared.tlsCa, args.shared.usersAcl, args.shared.secretsInclude, args.shared.exporterPassword, args.shared.reloadPassword, ...(args.converge ? [args.converge.password] : [])],
            writeBucket: args.bucket,
            pullRegistry: args.registry,
            ...(args.converge ? { convergeStore: args.converge.grant } : {}),
        });
        // The agent's part of the user-data: names, the image and a secret reference (never a value).
        const c = args.converge;
        const converge = c
            ? pulumi.all([c.settings, pulumi.output(c.image), c.password.ref, a.kind === "azure" ? identity.clientId ?? none0() : none0()]).apply(([store, image, passwordRef, msiClientId]) => ({
                  image,
                  store: store as ConvergeStoreParams,
                  passwordRef,
                  ...(msiClientId !== undefined ? { msiClientId } : {}),
              }))
            : pulumi.output(undefined);

        // The backup target: bucket name, plus what the cloud's object store needs to be reached with
        // this VM's identity (AWS: the bucket's region; Azure: the storage account and the
        // user-assigned identity's client id; qemu: the S3 server's endpoint). Names and ids only, never a credential.
        const none = pulumi.output<string | undefined>(undefined);
        const backup: pulumi.Output<RedisNodeBackupParams> = pulumi
            .all([args.bucket.name, a.kind === "aws" ? args.bucket.region ?? none : none, a.kind === "azure" ? args.bucket.storageAccount ?? none : none, a.kind === "azure" ? identity.clientId ?? none : none, a.kind === "qemu" ? args.bucket.endpoint ?? none : none])
            .apply(([bucket, region, storageAccount, msiClientId, endpoint]) => ({
                bucket,
                ...(region !== undefined ? { region } : {}),
                ...(storageAccount !== undefined ? { storageAccount } : {}),
                ...(msiClientId !== undefined ? { msiClientId } : {}),
                ...(endpoint !== undefined ? { endpoint } : {}),
            }));

        this.userData = a.capabilities.cloudInit
            ? pulumi
                  .all([
                      pulumi.all([address.privateIp, tlsCert.ref, tlsKey.ref, args.shared.tlsCa.ref, args.shared.usersAcl.ref, args.shared.secretsInclude.ref, args.shared.exporterPassword.ref, args.images.redis, args.images.redisExporter, args.images.nodeExporter]),
                      backup,
                      args.shared.reloadPassword.ref,
                      converge,
                  ])
                  .apply(([[ip, certRef, keyRef, caRef, aclRef, incRef, expRef, redisImage, redisExporterImage, nodeExporterImage], backupTarget, reloadRef, convergeParams]) =>
                      renderCloudInit(buildRedisNodeUserData({
                          cloud: a.kind as TemplateCloud,
                          ...(a.timeScale !== undefined ? { timeScale: a.timeScale } : {}),
                          clusterName: args.clusterName,
                          nodeName: args.hostName,
                          zone: args.zone,
                          privateIp: ip,
                          nodeExporterImage,
                          nodeExporterPort: args.ports.nodeExporter,
                          redisPort: args.ports.redis,
                          busPort: args.ports.bus,
                          redisExporterPort: args.ports.redisExporter,
                          dataDiskDevice: a.dataDiskDevice,
                          redisImage,
                          redisExporterImage,
                          maxmemoryBytes: args.maxmemoryBytes,
                          clusterNodeTimeoutMs: args.clusterNodeTimeoutMs,
                          redisVersion: args.redisVersion,
                          secrets: { tlsCert: certRef, tlsKey: keyRef, tlsCa: caRef, usersAcl: aclRef, secretsInclude: incRef, exporterPassword: expRef, reloadPassword: reloadRef },
                          backup: backupTarget,
                          ...(convergeParams ? { converge: convergeParams } : {}),
                      })),
                  )
            : pulumi.output("");

        // The VM waits for its gate: same user-data value, plus a data dependency on the gate.
        const gateId = args.rollingGate?.(address.privateIp);
        const userData = gateId ? pulumi.all([this.userData, gateId]).apply(([u]) => u) : this.userData;
        const vm = a.createVm(`${name}-vm`, {
            ...base,
            network: args.network,
            firewall: args.firewall,
            identity,
            address,
            zone: args.zone,
            role: "redis",
            hostName: args.hostName,
            size: args.size,
            dataDiskGb: args.dataDiskGb,
            userData,
            sshCidrs: args.sshCidrs,
        });
        this.privateIp = vm.privateIp;
        this.dnsName = vm.dnsName;
        this.vmId = vm.id;
        this.certPem = cert.certPem;
        this.certSans = pulumi.all([cert.ipAddresses, cert.dnsNames]).apply(([ips, dns]) => ({ ips, dns }));
        this.registerOutputs({ privateIp: this.privateIp, dnsName: this.dnsName, vmId: this.vmId, zone: this.zone, plannedRole: this.plannedRole, shard: this.shard });
    }
}
