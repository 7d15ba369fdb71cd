/**
 * The one interface between RedisForge's cloud-agnostic components and a cloud.
 *
 * A cloud is one folder under `providers/` that exports a `CloudAdapter` and one line in
 * `providers/registry.ts`. Components import only this file, never a cloud SDK.
 *
 * Rules every adapter keeps (the unit tests check them for every registered adapter):
 * - Every method creates its resources with `{ parent: args.parent }` (or `opts.parent`) and names
 *   them `${name}-<role>` from stable keys only (zone, ordinal), never from sizes.
 * - Records are cloud-neutral and hold `pulumi.Output`s; secret values stay secret Outputs.
 * - No VM gets a public IP. No rule opens a Redis, bus, exporter or admin port to 0.0.0.0/0.
 * - Never create a resource inside `apply`.
 *
 * Method order used by the top component (each step only needs records from earlier steps):
 * network → firewall → secretStore → secrets → bucket → registry → identity → address → vm →
 * loadBalancer (+ attach).
 */
import * as pulumi from "@pulumi/pulumi";

/** Names of the clouds an adapter may stand for. `local` runs on this machine. */
export type CloudKind = "aws" | "gcp" | "azure" | "qemu" | "local";

/** What a node is for; drives firewall roles, identities, tags. */
export type NodeRole = "redis" | "envoy";

/**
 * What an adapter can do. The tests iterate the registry and skip the checks a cloud
 * declares it does not need (e.g. `local` has no load balancer and no firewall).
 */
export interface AdapterCapabilities {
    /** Creates real firewall rules (security groups, VPC firewall, NSGs). */
    firewall: boolean;
    /** Creates a TCP load balancer in front of the Envoys. */
    loadBalancer: boolean;
    /** Creates a container registry images can be pushed to. */
    containerRegistry: boolean;
    /** VMs boot from cloud-init user-data (so the user-data checks apply). */
    cloudInit: boolean;
}

/** Common arguments every adapter method takes. */
export interface AdapterCallArgs {
    /** Parent of every resource the adapter creates (the calling component). */
    parent: pulumi.Resource;
    /** Tags / labels for humans: `redisforge:cluster`, `redisforge:zone`, `redisforge:role`. Built by one helper. */
    tags: Record<string, string>;
}

// ---------------------------------------------------------------- network

export interface NetworkArgs extends AdapterCallArgs {
    /** Region the stack lives in, e.g. `eu-west-1`, `europe-west1`, `westeurope`. */
    region: string;
    /** Exactly the zones (failure domains) used; at least 3, distinct. */
    zones: string[];
    /** Address space of the private network, e.g. `10.40.0.0/16`; one /20 subnet per zone is carved from it. */
    cidr: string;
}

/** A private network over the zones, with NAT egress and no inbound internet path to nodes. */
export interface NetworkRecord {
    /** Cloud id of the network (VPC id, network self-link, VNet id). */
    networkId: pulumi.Output<string>;
    /** Private subnet id per zone. */
    subnetIds: Record<string, pulumi.Output<string>>;
    /** Private CIDR per zone (plain: derived from config, not from the cloud). */
    subnetCidrs: Record<string, string>;
    /** The zones, in the order given. */
    zones: string[];
    /** Opaque adapter data the same adapter reads back later (e.g. Azure resource group name). */
    native: Record<string, pulumi.Output<string>>;
}

// ---------------------------------------------------------------- firewall

/** Where traffic may come from. */
export type TrafficSource =
    | { kind: "cidrs"; cidrs: string[] }
    | { kind: "role"; role: NodeRole };

/** One cloud-neutral allow rule (everything else is denied). TCP only. */
export interface AllowRule {
    /** Stable short key, used in the child resource name, e.g. `redis-from-redis`. */
    key: string;
    /** Role of the nodes that receive the traffic. */
    to: NodeRole;
    /** TCP ports allowed. */
    ports: number[];
    /** Who may send it. */
    from: TrafficSource;
    /** Human description written onto the rule. */
    description: string;
}

export interface FirewallArgs extends AdapterCallArgs {
    network: NetworkRecord;
    /** The complete allow list; computed by `components/firewall-rules.ts` (pure). */
    rules: AllowRule[];
    /**
     * Whether the deploying machine connects to the nodes (formation `direct`, the default) or only to
     * the converge store (`agent`). A cloud whose adapter models the deployer's path (qemu: the host
     * link) opens the Redis port to it only in `direct`; the clouds leave that path to the operator.
     */
    deployerReachesNodes?: boolean;
}

/** Per-role firewall handle that `createVm` attaches (security group id, network tag, NSG id). */
export interface FirewallRecord {
    groups: Record<NodeRole, pulumi.Output<string>>;
    /** Opaque adapter data (e.g. Azure application security group ids). */
    native: Record<string, pulumi.Output<string>>;
}

// ---------------------------------------------------------------- secrets

export interface SecretStoreArgs extends AdapterCallArgs {
    region: string;
    network: NetworkRecord;
}

/** A place to keep secrets (Secrets Manager namespace, Secret Manager project, Key Vault). */
export interface SecretStoreRecord {
    /** Cloud id of the store (Key Vault id; for AWS/GCP a logical prefix). */
    id: pulumi.Output<string>;
    /** Opaque adapter data. */
    native: Record<string, pulumi.Output<string>>;
}

export interface SecretArgs extends AdapterCallArgs {
    store: SecretStoreRecord;
    /** Short, stable name inside the store, e.g. `acl-app`, `tls-shard0-master-key`. */
    key: string;
    /** The value. Must be a secret Output; adapters keep it secret. */
    value: pulumi.Output<string>;
}

/** A stored secret. Only its reference goes into user-data; the VM reads the value at boot. */
export interface SecretRecord {
    key: string;
    /** What the VM passes to the cloud CLI to read it (ARN, `projects/p/secrets/n`, vault secret URI). */
    ref: pulumi.Output<string>;
    /** Cloud id of the secret resource (for grants). */
    id: pulumi.Output<string>;
}

// ---------------------------------------------------------------- bucket

export interface BucketArgs extends AdapterCallArgs {
    region: string;
    /** Object versions older than this many days are deleted. ≥ 1. */
    retentionDays: number;
    /**
     * Current objects never expire, only their old versions do (the converge store: its spec.json
     * changes only at `pulumi up`). Default false: current objects expire too (backups).
     */
    keepCurrent?: boolean;
}

/** A private, versioned, encrypted bucket with public access blocked. */
export interface BucketRecord {
    /** Bucket / container name. */
    name: pulumi.Output<string>;
    /** URL the backup script uses: `s3://…`, `gs://…`, `https://acct.blob.core.windows.net/c`. */
    url: pulumi.Output<string>;
    id: pulumi.Output<string>;
    native: Record<string, pulumi.Output<string>>;
    /** Region of the bucket, when the object store's endpoint depends on it (AWS S3). Read by the node's backup job. */
    region?: pulumi.Output<string>;
    /** Storage account holding the container, when the object store needs it (Azure Blob). Read by the node's backup job. */
    storageAccount?: pulumi.Output<string>;
    /** S3 endpoint URL, when the object store is not the cloud's own (the qemu cloud's S3-compatible server). Read by the node's backup job. */
    endpoint?: pulumi.Output<string>;
}

// ---------------------------------------------------------------- registry

export interface RegistryArgs extends AdapterCallArgs {
    region: string;
}

export interface RegistryRecord {
    /** Cloud id of the registry (for pull grants scoped to it); optional. */
    id?: pulumi.Output<string>;
    /** Registry server + repository prefix, e.g. `123.dkr.ecr.eu-west-1.amazonaws.com/prod`. */
    url: pulumi.Output<string>;
    /** Server host name for `docker login`. */
    server: pulumi.Output<string>;
    /** Push credentials for @pulumi/docker (password is a secret Output). */
    username: pulumi.Output<string>;
    password: pulumi.Output<string>;
}

// ---------------------------------------------------------------- identity

export interface IdentityArgs extends AdapterCallArgs {
    role: NodeRole;
    /** Secrets this identity may read (and nothing else in the store). */
    readSecrets: SecretRecord[];
    store: SecretStoreRecord;
    /** Bucket this identity may write (put, never delete); omit for no bucket access. */
    writeBucket?: BucketRecord;
    /** Registry this identity may pull from. */
    pullRegistry?: RegistryRecord;
    /**
     * The converge agent's documents (formation `agent`): in this bucket under `prefix`, read
     * `spec.json`, read and write `status.json` and `lease.json`, nothing else of it (no delete, no
     * other key; listing where the object store answers a missing object with 403 without it).
     */
    convergeStore?: ConvergeStoreGrant;
}

/**
 * The converge store's settings (providers/redis-cluster/agent/stores.ts AgentStoreSettings, flat:
 * s3 endpoint + bucket + region, gcs bucket, azure endpoint + account + container; all a prefix).
 */
export interface ConvergeStoreSettings {
    kind: "s3" | "gcs" | "azure";
    prefix: string;
    endpoint?: string;
    bucket?: string;
    region?: string;
    account?: string;
    container?: string;
}

export interface ConvergeStoreGrant {
    bucket: BucketRecord;
    /** The cluster's key prefix, e.g. `converge/prod` (no leading or trailing slash). */
    prefix: string;
    /** Keys under the prefix: read-only, and read-write (providers/redis-cluster/agent/store.ts AGENT_DOC_ACCESS). */
    read: readonly string[];
    readWrite: readonly string[];
}

/** The identity a VM runs as (IAM instance profile, service account, user-assigned managed identity). */
export interface IdentityRecord {
    id: pulumi.Output<string>;
    /** Principal that grants refer to (role ARN, SA email, principal id). */
    principal: pulumi.Output<string>;
    native: Record<string, pulumi.Output<string>>;
    /** Client id of a user-assigned managed identity the VM must name when asking IMDS for a token (Azure). */
    clientId?: pulumi.Output<string>;
}

// ---------------------------------------------------------------- vm

export interface AddressArgs extends AdapterCallArgs {
    network: NetworkRecord;
    /** Firewall groups; adapters whose address carries the firewall (AWS ENIs) attach `groups[role]`. */
    firewall: FirewallRecord;
    zone: string;
    role: NodeRole;
    /** Host name of the VM that will use the address (used for cloud internal DNS names). */
    hostName: string;
}

/**
 * A private address reserved before the VM exists, so that certificates can name it
 * and do not change when the VM is replaced.
 */
export interface AddressRecord {
    zone: string;
    privateIp: pulumi.Output<string>;
    /** Internal DNS name resolving to `privateIp` inside the network. */
    dnsName: pulumi.Output<string>;
    /** Cloud id (ENI id, address self-link, NIC id). */
    id: pulumi.Output<string>;
}

export interface VmArgs extends AdapterCallArgs {
    network: NetworkRecord;
    firewall: FirewallRecord;
    identity: IdentityRecord;
    address: AddressRecord;
    zone: string;
    role: NodeRole;
    hostName: string;
    /** Cloud-specific size string, already validated (`r7g.large`, `n2-highmem-2`, `Standard_E2s_v5`). */
    size: string;
    /** Size of the separate data disk in GiB (Redis data / AOF); 0 = no data disk (Envoys). */
    dataDiskGb: number;
    /** cloud-init user-data (YAML text with `#cloud-config`). Never contains a secret. */
    userData: pulumi.Input<string>;
    /** Allow SSH from these CIDRs; empty = SSH closed (default). */
    sshCidrs: string[];
}

export interface VmRecord {
    id: pulumi.Output<string>;
    zone: string;
    role: NodeRole;
    hostName: string;
    privateIp: pulumi.Output<string>;
    dnsName: pulumi.Output<string>;
    /** Id of the separate data disk ("" when none was asked for). */
    dataDiskId: pulumi.Output<string>;
}

// ---------------------------------------------------------------- load balancer

export interface LoadBalancerArgs extends AdapterCallArgs {
    region: string;
    network: NetworkRecord;
    /** Firewall groups (for health-check rules that target the Envoys). */
    firewall: FirewallRecord;
    /** The client-facing TLS port. */
    port: number;
    /** Port the LB health-checks on the Envoys (Envoy's TCP listener itself). */
    healthCheckPort: number;
    /** Client CIDRs; the LB (or the Envoys behind a pass-through LB) accept the client port only from these. */
    clientCidrs: string[];
    /** `true` = internal LB (private address only). */
    internal: boolean;
}

export interface LoadBalancerRecord {
    /** DNS name of the LB, or the IP where the cloud gives no name. */
    dnsName: pulumi.Output<string>;
    /** Address (may be empty where only a name exists, e.g. AWS NLB). */
    address: pulumi.Output<string>;
    id: pulumi.Output<string>;
    native: Record<string, pulumi.Output<string>>;
}

export interface AttachArgs extends AdapterCallArgs {
    lb: LoadBalancerRecord;
    network: NetworkRecord;
    port: number;
    targets: VmRecord[];
}

// ---------------------------------------------------------------- the adapter

export interface CloudAdapter {
    readonly kind: CloudKind;
    readonly capabilities: AdapterCapabilities;
    /** Where the VM sees the separate data disk (cloud-init waits for it, formats it once, mounts it). */
    readonly dataDiskDevice: string;
    /**
     * How many times slower than a cloud VM this substrate starts and probes containers (the
     * user-data's start timeouts, health waits and health-check timing are multiplied by it).
     * Optional; default 1. The qemu adapter (software emulation) sets more.
     */
    readonly timeScale?: number;
    /** Checks a VM size string for this cloud; returns null if valid, else the rule it breaks. */
    checkInstanceSize(size: string): string | null;
    /**
     * CPU architecture of a VM size (images are built for it). Optional; default `amd64`.
     */
    architectureOf?(size: string): "amd64" | "arm64";
    /** Checks that `zone` looks like a zone of `region`; returns null if so, else the rule it breaks. */
    checkZone(region: string, zone: string): string | null;

    createNetwork(name: string, args: NetworkArgs): NetworkRecord;
    createFirewall(name: string, args: FirewallArgs): FirewallRecord;
    createSecretStore(name: string, args: SecretStoreArgs): SecretStoreRecord;
    createSecret(name: string, args: SecretArgs): SecretRecord;
    createBucket(name: string, args: BucketArgs): BucketRecord;
    createRegistry(name: string, args: RegistryArgs): RegistryRecord;
    createIdentity(name: string, args: IdentityArgs): IdentityRecord;
    reserveAddress(name: string, args: AddressArgs): AddressRecord;
    createVm(name: string, args: VmArgs): VmRecord;
    createLoadBalancer(name: string, args: LoadBalancerArgs): LoadBalancerRecord;
    /**
     * Where the converge agent and the deployer find a cluster's documents in `bucket` (formation
     * `agent`; providers/redis-cluster/agent/stores.ts settings: names and endpoints only). Absent:
     * this cloud offers no converge store and only formation `direct` works on it.
     */
    convergeStoreSettings?(bucket: BucketRecord, prefix: string): pulumi.Output<ConvergeStoreSettings>;
    attachToLoadBalancer(name: string, args: AttachArgs): void;
}
