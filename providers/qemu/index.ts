/**
 * The `qemu` cloud adapter: a cloud on this machine, so that `pulumi up --stack vm` runs the same
 * four components and the same user-data the clouds get, on real Debian VMs.
 *
 *   network       QemuNetwork: a namespace per stack, one bridge, one /24 segment per zone
 *                 (lab/vm/network.ts), the metadata address and the service addresses
 *   firewall      QemuFirewall: the allow list as nftables rules in that namespace (plan.ts maps
 *                 roles to address ranges), default deny with TCP reset
 *   secret store  QemuService running metadata-server.ts on 169.254.169.254 in the namespace;
 *                 QemuSecret files; the VM's source address (pinned on its tap) is its identity
 *   identity      QemuIdentity: which secrets (and bucket keys) an identity may read
 *   registry      QemuService running docker-registry on the services segment, serving the
 *                 blob store the host pushed the images into (scripts/vm-up.sh)
 *   bucket        one S3 service per stack (a cloud's S3 endpoint): QemuBucketKeys (root + the
 *                 stack's VM principal, generated in the provider, 0600 in the state dir) +
 *                 QemuService running s3-service.ts (versitygw on services .3); each bucket a
 *                 QemuS3Bucket made over the S3 API from the deploying machine
 *   grants        QemuBucketGrant per identity and bucket: the backup writer's statements
 *                 (put/get/list, no delete), the converge agent's (get the spec, get/put status
 *                 and lease, never delete); the bucket policy is their union for the VM
 *                 principal, whose keys the metadata service hands to identities with a grant
 *   address       pure: from the host name's ordinal and zone (plan.ts), known before the VM
 *   vm            QemuVm (QEMU process, tap, seed with the unmodified user-data, data disk)
 *                 + QemuVmReady (waits for cloud-init)
 *   load balancer QemuService running haproxy (TCP) on the services segment, in front of the Envoys
 *
 * Host-side settings come from the environment (scripts/vm-up.sh sets them), never from the
 * user-data: REDISFORGE_VM_IMAGE (the cached image dir, scripts/build-vm-image.sh),
 * REDISFORGE_VM_STATE (state root, default <repo>/.vm-stack), REDISFORGE_VM_REGISTRY_DATA (the
 * registry blob store, default ~/.cache/redisforge/vm-registry/data).
 */
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { describeStackNetwork } from "../../lab/vm/network";
import { DATA_DISK_DEVICE } from "../../lab/vm/qemu";
import { macFor } from "../../lab/vm/seed";
import type {
    AddressArgs,
    AddressRecord,
    AttachArgs,
    BucketArgs,
    BucketRecord,
    CloudAdapter,
    ConvergeStoreSettings,
    FirewallArgs,
    FirewallRecord,
    IdentityArgs,
    IdentityRecord,
    LoadBalancerArgs,
    LoadBalancerRecord,
    NetworkArgs,
    NetworkRecord,
    RegistryArgs,
    RegistryRecord,
    SecretArgs,
    SecretRecord,
    SecretStoreArgs,
    SecretStoreRecord,
    VmArgs,
    VmRecord,
} from "../types";
import { addressFor, firewallPlan, METADATA_IP, METADATA_PORT, REGISTRY_PORT, S3_PORT, s3Endpoint, serviceAddress, slotOf, stackIdOf, tapNameOf } from "./plan";
import { QemuFirewall } from "./resources/firewall";
import { QemuNetwork } from "./resources/network";
import { QemuService, QemuServiceInputs } from "./resources/service";
import { backupStatements, convergeStatements, S3Statement } from "../object-store/s3-admin";
import { QemuBucketGrant, QemuS3Bucket } from "./resources/bucket";
import { QemuBucketKeys, QemuIdentity, QemuSecret } from "./resources/store";
import { QEMU_S3_REGION } from "./s3-grants";
import { QemuVm } from "./resources/vm";
import { QemuVmReady } from "./resources/vm-ready";

/** VM sizes: `vm-<MiB>` of guest RAM (software emulation, one vCPU). */
export const QEMU_SIZE_RE = /^vm-(512|768|1024|1536|2048)$/;
/** Zone labels of the qemu cloud: `vm-a`, `vm-b`, ... */
export const QEMU_ZONE_RE = /^vm-[a-h]$/;
export const QEMU_REGION = "local-vm";

const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const settings = () => ({
    imageDir: process.env.REDISFORGE_VM_IMAGE ?? "",
    stateRoot: process.env.REDISFORGE_VM_STATE ?? path.join(REPO_ROOT, ".vm-stack"),
    registryData: process.env.REDISFORGE_VM_REGISTRY_DATA ?? path.join(os.homedir(), ".cache", "redisforge", "vm-registry", "data"),
    tsx: path.join(REPO_ROOT, "node_modules", ".bin", "tsx"),
    metadataServer: path.join(__dirname, "metadata-server.ts"),
    s3Service: path.join(__dirname, "s3-service.ts"),
});

/** The metadata service's store (secrets, identities, members) in a stack's state dir. */
export const storeDirOf = (stateDir: string) => path.join(stateDir, "metadata");

/** A QemuService's inputs but the namespace (which the network resource's output carries). */
export type ServiceSpec = Omit<QemuServiceInputs, "netns">;

/** The QemuService inputs of the metadata service (plain: the adapter and the namespace tests run the same). */
export function metadataServiceSpec(stateDir: string): ServiceSpec {
    const s = settings();
    return {
        name: "metadata",
        dir: path.join(stateDir, "metadata-service"),
        // The trailing {dir} (ignored by the server) puts the service dir on its command line, which is
        // how QemuService recognises its own PID: without it refresh saw the service as dead, `up`
        // restarted it and the old process outlived `destroy` (found on the first vm-up).
        argv: [process.execPath, s.tsx, s.metadataServer, storeDirOf(stateDir), METADATA_IP, String(METADATA_PORT), "{dir}"],
        files: {},
        probe: { host: METADATA_IP, port: METADATA_PORT },
    };
}

/** S3 bucket name from the resource name (3-63 lower-case letters, digits and -). */
export const bucketNameOf = (name: string) => name.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 63).replace(/-+$/, "");

/** Where QemuBucketKeys keeps the stack's S3 keys (0600; outside the server's dir, which a replace removes). */
export const s3KeysFileOf = (stateDir: string) => path.join(stateDir, "s3-keys", "stack.json");

/** Where the QemuBucketGrant resources keep each bucket's grants (s3-grants.ts). */
export const s3GrantsDirOf = (stateDir: string) => path.join(stateDir, "s3-grants");

/**
 * The QemuService inputs of the stack's S3 service (s3-service.ts: versitygw on services .3, data
 * under `<state>/s3/`). The keys file is named, never read, here; its digest is the one "file" so
 * that new keys restart the server.
 */
export function s3ServiceSpec(a: { stateDir: string; slot: number; keysFile: string; keysDigest: string }): ServiceSpec {
    const s = settings();
    const ip = serviceAddress(a.slot, "s3");
    return {
        name: "s3",
        dir: path.join(a.stateDir, "s3"),
        argv: [process.execPath, s.tsx, s.s3Service, "{dir}", ip, String(S3_PORT), a.keysFile],
        files: { "keys.sha256": `${a.keysDigest}\n` },
        probe: { host: ip, port: S3_PORT },
        readyFile: "ready",
    };
}

const o = (parent: pulumi.Resource, extra?: pulumi.CustomResourceOptions): pulumi.CustomResourceOptions => ({ parent, ...extra });

/** The state directory of a stack (plain). */
const stateDirOf = (stackId: string) => path.join(settings().stateRoot, stackId);

interface StackS3 {
    keysFile: string;
    keysDigest: pulumi.Output<string>;
    /** The S3 endpoint, known once the service is up. */
    endpoint: pulumi.Output<string>;
}

interface StackPlan {
    slot: number;
    stackId: string;
    zones: string[];
    network: QemuNetwork;
    /** The stack's S3 service, made by the first createBucket. */
    s3?: StackS3;
}

/**
 * The stack's S3 service (once per stack), a child of the network resource so that its name does not
 * depend on which bucket asked first (a formation change must not replace the server and its data).
 */
function stackS3(p: StackPlan): StackS3 {
    if (p.s3) return p.s3;
    const stateDir = stateDirOf(p.stackId);
    const keysFile = s3KeysFileOf(stateDir);
    const keys = new QemuBucketKeys(`${p.stackId}-s3-keys`, { file: keysFile }, o(p.network));
    // Everything but the keys' digest is known at program time (previews show it); the digest
    // (a file of the spec) orders the server after its keys and restarts it on new keys.
    const spec = s3ServiceSpec({ stateDir, slot: p.slot, keysFile, keysDigest: "" });
    const svc = new QemuService(`${p.stackId}-s3`, {
        ...spec,
        netns: p.network.id.apply(() => describeStackNetwork(p.stackId, p.slot, p.zones).netns),
        files: keys.digest.apply((keysDigest) => s3ServiceSpec({ stateDir, slot: p.slot, keysFile, keysDigest }).files),
    }, o(p.network));
    p.s3 = { keysFile, keysDigest: keys.digest, endpoint: svc.id.apply(() => s3Endpoint(p.slot)) };
    return p.s3;
}

const arnOf = (bucket: string) => `arn:aws:s3:::${bucket}`;

// The components hand the same NetworkRecord object to every later call; its plain plan (slot,
// zones, stack id) is kept here so addresses and rules are computed without an apply. Registry and
// bucket calls take no network: they use the stack's (one program = one stack).
const plans = new WeakMap<NetworkRecord, StackPlan>();
let current: StackPlan | undefined;

function planFor(n: NetworkRecord): StackPlan {
    const p = plans.get(n);
    if (!p) throw new Error("qemu: this network record was not made by the qemu adapter's createNetwork");
    return p;
}

/** See CloudAdapter.timeScale. */
export const QEMU_TIME_SCALE = 12;

function currentPlan(what: string): StackPlan {
    if (!current) throw new Error(`qemu: ${what} needs the stack network first (createNetwork)`);
    return current;
}

export const qemuAdapter: CloudAdapter = {
    kind: "qemu",
    capabilities: { firewall: true, loadBalancer: true, containerRegistry: true, cloudInit: true },
    dataDiskDevice: DATA_DISK_DEVICE,
    // Software emulation (TCG) on a shared 2-core host: a container start took ~15 s (vs ~1 s on a
    // cloud VM) and the Redis image's 5 s TLS health probe never answered in time in the third
    // vm-up (redis.service failed after wait-healthy's 300 s). x12 gives the probe 60 s.
    timeScale: QEMU_TIME_SCALE,

    checkInstanceSize(size: string): string | null {
        return QEMU_SIZE_RE.test(size) ? null : "is not a qemu VM size; use vm-<guest RAM MiB>, one of vm-512, vm-768, vm-1024, vm-1536, vm-2048 (e.g. vm-512)";
    },

    architectureOf(): "amd64" {
        return "amd64";
    },

    checkZone(region: string, zone: string): string | null {
        if (region !== QEMU_REGION) return `belongs to region ${JSON.stringify(region)}, but the qemu cloud's region is "${QEMU_REGION}"`;
        return QEMU_ZONE_RE.test(zone) ? null : "is not a qemu zone; use vm-a … vm-h";
    },

    createNetwork(name: string, a: NetworkArgs): NetworkRecord {
        const s = slotOf(a.cidr);
        if ("error" in s) throw new Error(`qemu: ${s.error}`);
        const stackId = stackIdOf(name.replace(/-net$/, ""));
        const plan = describeStackNetwork(stackId, s.slot, a.zones);
        const net = new QemuNetwork(`${name}`, { stackId, slot: s.slot, zones: a.zones.slice() }, o(a.parent));
        const record: NetworkRecord = {
            networkId: net.id,
            subnetIds: Object.fromEntries(a.zones.map((z) => [z, pulumi.interpolate`${net.id}/${plan.zones[z].cidr}`])),
            subnetCidrs: Object.fromEntries(a.zones.map((z) => [z, plan.zones[z].cidr])),
            zones: a.zones.slice(),
            // The plan is pure (known at program time); going through the resource's id keeps the dependency.
            native: { key: pulumi.output(stackId), network: net.id.apply(() => JSON.stringify(plan)), netns: net.id.apply(() => plan.netns), stateDir: pulumi.output(stateDirOf(stackId)) },
        };
        current = { slot: s.slot, stackId, zones: a.zones.slice(), network: net };
        plans.set(record, current);
        return record;
    },

    createFirewall(name: string, a: FirewallArgs): FirewallRecord {
        const p = planFor(a.network);
        // The deployer reaches the nodes' TLS port (the RedisCluster resource and the rolling gates
        // run in the `pulumi` process): the port of the redis-from-redis rule is the Redis TLS port.
        const redisPort = a.rules.find((r) => r.key === "redis-from-envoy")?.ports[0] ?? 6379;
        // Formation agent: the deployer reaches the S3 API only (the converge store), never a node.
        const fw = new QemuFirewall(`${name}`, { network: a.network.native.network, rules: firewallPlan({ slot: p.slot, zoneCount: p.zones.length, rules: a.rules, redisPort, deployerReachesNodes: a.deployerReachesNodes ?? true }) }, o(a.parent));
        return { groups: { redis: pulumi.interpolate`${fw.id}:redis`, envoy: pulumi.interpolate`${fw.id}:envoy` }, native: { id: fw.id } };
    },

    createSecretStore(name: string, a: SecretStoreArgs): SecretStoreRecord {
        const p = planFor(a.network);
        const spec = metadataServiceSpec(stateDirOf(p.stackId));
        const svc = new QemuService(`${name}`, { ...spec, netns: a.network.native.netns }, o(a.parent));
        return { id: svc.id, native: { storeDir: pulumi.output(storeDirOf(stateDirOf(p.stackId))), service: svc.id } };
    },

    createSecret(name: string, a: SecretArgs): SecretRecord {
        const sec = new QemuSecret(`${name}`, { storeDir: a.store.native.storeDir, key: a.key, value: a.value }, o(a.parent, { dependsOn: [] }));
        return { key: a.key, ref: pulumi.interpolate`http://${METADATA_IP}/redisforge/v1/secrets/${sec.key}`, id: sec.key };
    },

    createBucket(name: string, a: BucketArgs): BucketRecord {
        // versitygw's posix backend has no versioning, lifecycle or encryption: a.retentionDays is
        // not enforced on qemu (providers/qemu/NOTES.md).
        const p = currentPlan("createBucket");
        const s3 = stackS3(p);
        const b = new QemuS3Bucket(`${name}`, { endpoint: s3.endpoint, keysFile: s3.keysFile, keysDigest: s3.keysDigest, bucket: bucketNameOf(name) }, o(a.parent));
        return { name: b.bucket, url: pulumi.interpolate`s3://${b.bucket}`, id: b.id, native: {}, endpoint: b.endpoint };
    },

    convergeStoreSettings(bucket: BucketRecord, prefix: string): pulumi.Output<ConvergeStoreSettings> {
        const p = currentPlan("convergeStoreSettings");
        return bucket.name.apply((b): ConvergeStoreSettings => ({ kind: "s3", endpoint: s3Endpoint(p.slot), bucket: b, prefix, region: QEMU_S3_REGION }));
    },

    createRegistry(name: string, a: RegistryArgs): RegistryRecord {
        void a;
        const p = currentPlan("createRegistry");
        const ip = serviceAddress(p.slot, "registry");
        const dir = path.join(stateDirOf(p.stackId), "registry");
        const config = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            `    rootdirectory: ${settings().registryData}`,
            "  delete:",
            "    enabled: false",
            "http:",
            `  addr: ${ip}:${REGISTRY_PORT}`,
            "",
        ].join("\n");
        const svc = new QemuService(`${name}`, {
            name: "registry",
            netns: p.network.id.apply(() => describeStackNetwork(p.stackId, p.slot, p.zones).netns),
            dir,
            argv: ["docker-registry", "serve", "{dir}/config.yml"],
            files: { "config.yml": config },
            probe: { host: ip, port: REGISTRY_PORT },
        }, o(a.parent));
        const server = pulumi.interpolate`${svc.id.apply(() => ip)}:${REGISTRY_PORT}`;
        return { id: svc.id, url: pulumi.interpolate`${server}/redisforge`, server, username: pulumi.output(""), password: pulumi.secret("") };
    },

    createIdentity(name: string, a: IdentityArgs): IdentityRecord {
        const idName = name.toLowerCase().replace(/[^a-z0-9-]/g, "-");
        const cs = a.convergeStore;
        const s3 = a.writeBucket || cs ? stackS3(currentPlan("createIdentity")) : undefined;
        const grants: QemuBucketGrant[] = [];
        const grant = (suffix: string, bucket: BucketRecord, statements: (bucketName: string) => S3Statement[]) => {
            const grantsDir = s3GrantsDirOf(stateDirOf(currentPlan("createIdentity").stackId));
            // bucket.name is the QemuS3Bucket's output: the grant comes after its bucket.
            grants.push(new QemuBucketGrant(`${name}-${suffix}`, { endpoint: s3!.endpoint, keysFile: s3!.keysFile, keysDigest: s3!.keysDigest, bucket: bucket.name, grantsDir, identity: idName, statements: bucket.name.apply(statements) }, o(a.parent)));
        };
        if (a.writeBucket) grant("backup-grant", a.writeBucket, (b) => backupStatements(arnOf(b)));
        if (cs) grant("converge-grant", cs.bucket, (b) => convergeStatements(arnOf(b), cs));
        // The identity (and so the VM, which names it) comes after its grants: a VM never starts
        // with keys its policies do not cover yet.
        const id = new QemuIdentity(`${name}`, {
            storeDir: a.store.native.storeDir,
            name: idName,
            secrets: a.readSecrets.map((x) => x.id),
            s3Keys: s3 ? { file: s3.keysFile, digest: s3.keysDigest } : undefined,
        }, o(a.parent, { dependsOn: grants }));
        const access = [a.writeBucket ? "backup:write-read-list" : "", cs ? "converge:spec-read,status-lease-read-write" : ""].filter(Boolean).join(" ");
        return { id: id.name, principal: id.name, native: { bucket: pulumi.output(access || "none") } };
    },

    reserveAddress(_name: string, a: AddressArgs): AddressRecord {
        const p = planFor(a.network);
        const zi = p.zones.indexOf(a.zone);
        if (zi < 0) throw new Error(`qemu: zone ${a.zone} is not one of the stack's zones ${p.zones.join(", ")}`);
        const ip = addressFor(p.slot, zi, a.role, a.hostName);
        return { zone: a.zone, privateIp: pulumi.output(ip), dnsName: pulumi.output(a.hostName), id: pulumi.output(`${p.stackId}/${ip}`) };
    },

    createVm(name: string, a: VmArgs): VmRecord {
        const p = planFor(a.network);
        const s = settings();
        const m = /^vm-(\d+)$/.exec(a.size);
        if (!m) throw new Error(`qemu: size ${JSON.stringify(a.size)} is not vm-<MiB>`);
        const dir = path.join(stateDirOf(p.stackId), "vms", a.hostName);
        const vm = new QemuVm(`${name}`, {
            network: a.network.native.network,
            hostName: a.hostName,
            zone: a.zone,
            ip: a.address.privateIp,
            tap: tapNameOf(a.hostName),
            mac: macFor(a.hostName),
            userData: a.userData,
            dataDiskGb: a.dataDiskGb,
            memoryMiB: Number(m[1]),
            imageDir: s.imageDir,
            dir,
            storeDir: a.network.native.stateDir.apply(storeDirOf),
            identity: a.identity.principal,
            tags: a.tags,
        }, o(a.parent, { dependsOn: [] }));
        // Whatever depends on the node's component (the RedisCluster resource) waits for cloud-init.
        new QemuVmReady(`${name}-ready`, { hostName: a.hostName, dir: vm.dir, instanceId: vm.instanceId }, o(a.parent));
        return { id: vm.id, zone: a.zone, role: a.role, hostName: a.hostName, privateIp: a.address.privateIp, dnsName: a.address.dnsName, dataDiskId: pulumi.output(a.dataDiskGb > 0 ? `${dir}/data.qcow2` : "") };
    },

    createLoadBalancer(_name: string, a: LoadBalancerArgs): LoadBalancerRecord {
        const p = planFor(a.network);
        const ip = serviceAddress(p.slot, "lb");
        // haproxy itself is started by attachToLoadBalancer, which knows the Envoys.
        return { dnsName: pulumi.output(ip), address: pulumi.output(ip), id: pulumi.output(`${p.stackId}/lb`), native: { port: pulumi.output(String(a.port)), healthCheckPort: pulumi.output(String(a.healthCheckPort)) } };
    },

    attachToLoadBalancer(name: string, a: AttachArgs): void {
        const p = planFor(a.network);
        const ip = serviceAddress(p.slot, "lb");
        const targets = pulumi.all(a.targets.map((t) => t.privateIp));
        const config = targets.apply((ips) =>
            [
                "global",
                "  maxconn 4096",
                "defaults",
                "  mode tcp",
                "  timeout connect 5s",
                "  timeout client 1h",
                "  timeout server 1h",
                `frontend redisforge`,
                `  bind ${ip}:${a.port}`,
                "  default_backend envoys",
                "backend envoys",
                "  balance leastconn",
                ...ips.map((x, i) => `  server envoy${i} ${x}:${a.port} check inter 2s fall 2 rise 2`),
                "",
            ].join("\n"),
        );
        new QemuService(`${name}-haproxy`, {
            name: "lb",
            netns: a.network.native.netns,
            dir: path.join(stateDirOf(p.stackId), "lb"),
            argv: ["haproxy", "-db", "-f", "{dir}/haproxy.cfg"],
            files: config.apply((c) => ({ "haproxy.cfg": c })),
            probe: { host: ip, port: a.port },
        }, o(a.parent, { dependsOn: a.targets.length ? [] : [] }));
    },
};
