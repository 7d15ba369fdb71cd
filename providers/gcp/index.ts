/**
 * GCP adapter: custom-mode VPC with one private subnetwork per zone and Cloud NAT, VPC firewall
 * rules on network tags, Compute Engine instances without access configs (no public IP) with a
 * separate persistent data disk and a dedicated service account, an internal (or external)
 * passthrough TCP load balancer, Artifact Registry, a GCS bucket and Secret Manager.
 */
import * as pulumi from "@pulumi/pulumi";
import * as compute from "@pulumi/gcp/compute";
import * as secretmanager from "@pulumi/gcp/secretmanager";
import * as storage from "@pulumi/gcp/storage";
import * as artifactregistry from "@pulumi/gcp/artifactregistry";
import * as serviceaccount from "@pulumi/gcp/serviceaccount";
import * as organizations from "@pulumi/gcp/organizations";
import { subnetPlan } from "../network-plan";
import type {
    AddressArgs,
    AddressRecord,
    AttachArgs,
    BucketArgs,
    BucketRecord,
    CloudAdapter,
    FirewallArgs,
    FirewallRecord,
    IdentityArgs,
    IdentityRecord,
    LoadBalancerArgs,
    LoadBalancerRecord,
    NetworkArgs,
    NetworkRecord,
    NodeRole,
    RegistryArgs,
    RegistryRecord,
    SecretArgs,
    SecretRecord,
    SecretStoreArgs,
    SecretStoreRecord,
    VmArgs,
    VmRecord,
    ConvergeStoreSettings,
} from "../types";

/** Google's health-check probers (passthrough LBs): documented fixed ranges. */
export const GCP_HEALTH_CHECK_RANGES = ["35.191.0.0/16", "130.211.0.0/22"];

/** GCP labels: lowercase letters, digits, `_` and `-`, ≤ 63 chars; keys start with a letter. */
export function gcpLabels(tags: Record<string, string>): Record<string, string> {
    const clean = (s: string) => s.toLowerCase().replace(/[^a-z0-9_-]/g, "_").slice(0, 63);
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(tags)) out[clean(key).replace(/^[^a-z]+/, "k")] = clean(value);
    return out;
}

const o = (parent: pulumi.Resource, extra?: pulumi.CustomResourceOptions): pulumi.CustomResourceOptions => ({ parent, ...extra });

/** Zone `europe-west1-b` → region `europe-west1`. */
const regionOf = (zone: string) => zone.replace(/-[a-z]$/, "");

export const gcpAdapter: CloudAdapter = {
    kind: "gcp",
    capabilities: { firewall: true, loadBalancer: true, containerRegistry: true, cloudInit: true },
    dataDiskDevice: "/dev/disk/by-id/google-data",

    checkInstanceSize(size) {
        // series-type-vCPUs (n2-highmem-4, e2-standard-2, c3-standard-4-lssd) or custom (n2-custom-4-16384)
        return /^[a-z][a-z0-9]*-(standard|highmem|highcpu|highgpu|megamem|ultramem|custom|micro|small|medium)(-\d+){0,2}(-lssd)?$/.test(size)
            ? null
            : "is not a Compute Engine machine type (series-type-vcpus, e.g. n2-highmem-4); use a GCE machine type name";
    },

    architectureOf(size) {
        // Arm series: Tau T2A, Axion C4A.
        return /^(t2a|c4a)-/.test(size) ? "arm64" : "amd64";
    },

    checkZone(region, zone) {
        return regionOf(zone) === region && /-[a-z]$/.test(zone) ? null : `is not a zone of ${region} (expected ${region}-b, ${region}-c, …)`;
    },

    createNetwork(name: string, a: NetworkArgs): NetworkRecord {
        const plan = subnetPlan(a.cidr, a.zones);
        const net = new compute.Network(`${name}-vpc`, { autoCreateSubnetworks: false, routingMode: "REGIONAL", deleteDefaultRoutesOnCreate: false }, o(a.parent));
        const subnetIds: Record<string, pulumi.Output<string>> = {};
        for (const zone of a.zones) {
            // GCP subnetworks are regional; one per zone keeps the zone → CIDR layout the same on every cloud.
            const sn = new compute.Subnetwork(`${name}-private-${zone}`, {
                network: net.id,
                region: a.region,
                ipCidrRange: plan.private[zone],
                privateIpGoogleAccess: true,
                logConfig: { aggregationInterval: "INTERVAL_5_SEC", flowSampling: 0.5, metadata: "INCLUDE_ALL_METADATA" },
            }, o(a.parent));
            subnetIds[zone] = sn.id;
        }
        const router = new compute.Router(`${name}-router`, { network: net.id, region: a.region }, o(a.parent));
        // Cloud NAT is a regional managed service: no NAT VMs to lose with a zone.
        new compute.RouterNat(`${name}-nat`, {
            router: router.name,
            region: a.region,
            natIpAllocateOption: "AUTO_ONLY",
            sourceSubnetworkIpRangesToNat: "ALL_SUBNETWORKS_ALL_IP_RANGES",
            logConfig: { enable: true, filter: "ERRORS_ONLY" },
        }, o(a.parent));
        return { networkId: net.id, subnetIds, subnetCidrs: plan.private, zones: a.zones.slice(), native: { networkName: net.name, cidr: pulumi.output(a.cidr) } };
    },

    createFirewall(name: string, a: FirewallArgs): FirewallRecord {
        const tag = (role: NodeRole) => `${name}-${role}`;
        for (const rule of a.rules) {
            new compute.Firewall(`${name}-${rule.key}`, {
                network: a.network.networkId,
                direction: "INGRESS",
                priority: 1000,
                description: rule.description,
                allows: [{ protocol: "tcp", ports: rule.ports.map(String) }],
                targetTags: [tag(rule.to)],
                ...(rule.from.kind === "role" ? { sourceTags: [tag(rule.from.role)] } : { sourceRanges: rule.from.cidrs }),
            }, o(a.parent));
        }
        // Explicit lowest-priority deny, so a later broad allow elsewhere is visible in review.
        new compute.Firewall(`${name}-deny-all`, {
            network: a.network.networkId,
            direction: "INGRESS",
            priority: 65000,
            description: "RedisForge: deny everything not allowed above",
            denies: [{ protocol: "all" }],
            sourceRanges: ["0.0.0.0/0"],
            targetTags: [tag("redis"), tag("envoy")],
        }, o(a.parent));
        return { groups: { redis: pulumi.output(tag("redis")), envoy: pulumi.output(tag("envoy")) }, native: {} };
    },

    createSecretStore(name: string, a: SecretStoreArgs): SecretStoreRecord {
        void a;
        // Secret Manager is project-wide; the store is the secret-id prefix.
        return { id: pulumi.output(name), native: { prefix: pulumi.output(name) } };
    },

    createSecret(name: string, a: SecretArgs): SecretRecord {
        const secret = new secretmanager.Secret(`${name}`, {
            secretId: pulumi.interpolate`${a.store.native.prefix}-${a.key}`,
            replication: { auto: {} },
            labels: gcpLabels(a.tags),
        }, o(a.parent));
        new secretmanager.SecretVersion(`${name}`, { secret: secret.id, secretData: pulumi.secret(a.value) }, o(a.parent));
        return { key: a.key, ref: secret.id, id: secret.id };
    },

    createBucket(name: string, a: BucketArgs): BucketRecord {
        const bucket = new storage.Bucket(`${name}`, {
            location: a.region.toUpperCase(),
            storageClass: "STANDARD",
            uniformBucketLevelAccess: true,
            publicAccessPrevention: "enforced",
            versioning: { enabled: true },
            forceDestroy: false,
            // Data at rest in GCS is always encrypted (Google-managed keys); set a CMEK here if policy demands one.
            lifecycleRules: [
                ...(a.keepCurrent ? [] : [{ action: { type: "Delete" }, condition: { age: a.retentionDays, withState: "ANY" } }]),
                { action: { type: "Delete" }, condition: { daysSinceNoncurrentTime: a.retentionDays, withState: "ARCHIVED" } },
            ],
            labels: gcpLabels(a.tags),
        }, o(a.parent));
        return { name: bucket.name, url: pulumi.interpolate`gs://${bucket.name}`, id: bucket.id, native: {} };
    },

    createRegistry(name: string, a: RegistryArgs): RegistryRecord {
        const repo = new artifactregistry.Repository(`${name}`, {
            location: a.region,
            repositoryId: name.toLowerCase(),
            format: "DOCKER",
            dockerConfig: { immutableTags: true },
            labels: gcpLabels(a.tags),
        }, o(a.parent));
        const client = organizations.getClientConfigOutput({ parent: a.parent });
        const server = `${a.region}-docker.pkg.dev`;
        return {
            url: pulumi.interpolate`${server}/${repo.project}/${repo.repositoryId}`,
            server: pulumi.output(server),
            username: pulumi.output("oauth2accesstoken"),
            password: pulumi.secret(client.accessToken),
        };
    },

    createIdentity(name: string, a: IdentityArgs): IdentityRecord {
        const sa = new serviceaccount.Account(`${name}`, {
            accountId: name.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 30).replace(/-+$/, ""),
            displayName: `RedisForge ${a.role} nodes`,
        }, o(a.parent));
        const member = pulumi.interpolate`serviceAccount:${sa.email}`;
        a.readSecrets.forEach((s) => {
            new secretmanager.SecretIamMember(`${name}-read-${s.key}`, { secretId: s.id, role: "roles/secretmanager.secretAccessor", member }, o(a.parent));
        });
        if (a.writeBucket) {
            // objectCreator cannot overwrite or delete; objectViewer lets a node read for restore.
            new storage.BucketIAMMember(`${name}-backup-create`, { bucket: a.writeBucket.name, role: "roles/storage.objectCreator", member }, o(a.parent));
            new storage.BucketIAMMember(`${name}-backup-read`, { bucket: a.writeBucket.name, role: "roles/storage.objectViewer", member }, o(a.parent));
        }
        if (a.convergeStore) {
            // IAM Conditions on the object names (the bucket has uniform bucket-level access): read the
            // spec; replace the status and the lease (overwriting an object needs create + delete of
            // that name, which objectUser has; the condition keeps it to those two names).
            const g = a.convergeStore;
            const names = (keys: readonly string[]) => g.bucket.name.apply((b) => keys.map((k) => `resource.name == "projects/_/buckets/${b}/objects/${g.prefix}/${k}"`).join(" || "));
            new storage.BucketIAMMember(`${name}-converge-read`, { bucket: g.bucket.name, role: "roles/storage.objectViewer", member, condition: { title: "converge-spec", description: "the converge agent reads its spec", expression: names([...g.read, ...g.readWrite]) } }, o(a.parent));
            new storage.BucketIAMMember(`${name}-converge-write`, { bucket: g.bucket.name, role: "roles/storage.objectUser", member, condition: { title: "converge-status", description: "the converge agent writes its status and lease", expression: names(g.readWrite) } }, o(a.parent));
        }
        if (a.pullRegistry) {
            new artifactregistry.RepositoryIamMember(`${name}-pull`, {
                repository: a.pullRegistry.url.apply((u) => u.split("/")[2]),
                location: a.pullRegistry.server.apply((s) => s.replace(/-docker\.pkg\.dev$/, "")),
                role: "roles/artifactregistry.reader",
                member,
            }, o(a.parent));
        }
        return { id: sa.email, principal: sa.email, native: {} };
    },

    convergeStoreSettings(bucket: BucketRecord, prefix: string): pulumi.Output<ConvergeStoreSettings> {
        return bucket.name.apply((b): ConvergeStoreSettings => ({ kind: "gcs", bucket: b, prefix }));
    },

    reserveAddress(name: string, a: AddressArgs): AddressRecord {
        const addr = new compute.Address(`${name}`, {
            addressType: "INTERNAL",
            purpose: "GCE_ENDPOINT",
            region: regionOf(a.zone),
            subnetwork: a.network.subnetIds[a.zone],
            labels: gcpLabels(a.tags),
        }, o(a.parent));
        return {
            zone: a.zone,
            privateIp: addr.address,
            // Zonal internal DNS name of the VM that will use this address.
            dnsName: pulumi.interpolate`${a.hostName}.${a.zone}.c.${addr.project}.internal`,
            id: addr.id,
        };
    },

    createVm(name: string, a: VmArgs): VmRecord {
        const disk = a.dataDiskGb > 0 ? new compute.Disk(`${name}-data`, { zone: a.zone, size: a.dataDiskGb, type: "pd-balanced", labels: gcpLabels(a.tags) }, o(a.parent)) : undefined;
        const vm = new compute.Instance(`${name}`, {
            name: a.hostName,
            zone: a.zone,
            machineType: a.size,
            bootDisk: { initializeParams: { image: gcpAdapter.architectureOf!(a.size) === "arm64" ? "debian-cloud/debian-12-arm64" : "debian-cloud/debian-12", size: 20, type: "pd-balanced" } },
            attachedDisks: disk ? [{ source: disk.id, deviceName: "data", mode: "READ_WRITE" }] : [],
            // No accessConfigs: no external IP. Egress goes through Cloud NAT.
            networkInterfaces: [{ subnetwork: a.network.subnetIds[a.zone], networkIp: a.address.privateIp }],
            serviceAccount: { email: a.identity.principal, scopes: ["cloud-platform"] },
            metadata: { "user-data": a.userData, "block-project-ssh-keys": "true", "enable-oslogin": "TRUE" },
            tags: [a.firewall.groups[a.role]],
            shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
            allowStoppingForUpdate: true,
            labels: gcpLabels(a.tags),
        }, o(a.parent));
        return { id: vm.id, zone: a.zone, role: a.role, hostName: a.hostName, privateIp: a.address.privateIp, dnsName: a.address.dnsName, dataDiskId: disk ? disk.id : pulumi.output("") };
    },

    createLoadBalancer(name: string, a: LoadBalancerArgs): LoadBalancerRecord {
        // The address exists before the Envoys, so the Envoy certificate can name it.
        const addr = new compute.Address(`${name}`, a.internal
            ? { addressType: "INTERNAL", region: a.region, subnetwork: a.network.subnetIds[a.network.zones[0]] }
            : { addressType: "EXTERNAL", region: a.region, networkTier: "PREMIUM" }, o(a.parent));
        new compute.Firewall(`${name}-health-checks`, {
            network: a.network.networkId,
            direction: "INGRESS",
            description: "Google health-check probers to the Envoy listener",
            allows: [{ protocol: "tcp", ports: [String(a.healthCheckPort)] }],
            sourceRanges: GCP_HEALTH_CHECK_RANGES,
            targetTags: [a.firewall.groups.envoy],
        }, o(a.parent));
        const hc = new compute.RegionHealthCheck(`${name}`, { region: a.region, tcpHealthCheck: { port: a.healthCheckPort }, checkIntervalSec: 5, timeoutSec: 5 }, o(a.parent));
        return { dnsName: addr.address, address: addr.address, id: addr.id, native: { healthCheckId: hc.id, region: pulumi.output(a.region), ...(a.internal ? { subnetwork: a.network.subnetIds[a.network.zones[0]] } : {}) } };
    },

    attachToLoadBalancer(name: string, a: AttachArgs): void {
        const zones = [...new Set(a.targets.map((t) => t.zone))];
        const groups = zones.map((zone) => new compute.InstanceGroup(`${name}-${zone}`, {
            zone,
            network: a.network.networkId,
            instances: a.targets.filter((t) => t.zone === zone).map((t) => t.id),
        }, o(a.parent)));
        // Presence of `subnetwork` marks an internal LB (set by createLoadBalancer).
        const internal = a.lb.native.subnetwork !== undefined;
        const scheme = internal ? "INTERNAL" : "EXTERNAL";
        const backend = new compute.RegionBackendService(`${name}`, {
            region: a.lb.native.region,
            protocol: "TCP",
            loadBalancingScheme: scheme,
            healthChecks: a.lb.native.healthCheckId,
            backends: groups.map((g) => ({ group: g.id, balancingMode: "CONNECTION" })),
            connectionDrainingTimeoutSec: 30,
        }, o(a.parent));
        new compute.ForwardingRule(`${name}`, {
            region: a.lb.native.region,
            loadBalancingScheme: scheme,
            ipAddress: a.lb.address,
            ipProtocol: "TCP",
            ports: [String(a.port)],
            backendService: backend.id,
            ...(internal ? { network: a.network.networkId, subnetwork: a.lb.native.subnetwork } : {}),
        }, o(a.parent));
    },
};
