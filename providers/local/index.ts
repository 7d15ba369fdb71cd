/**
 * The `local` cloud adapter: this machine as the "cloud".
 *
 * There is no network, firewall, secret store, bucket, registry or load balancer to create here:
 * nodes are redis-server processes on loopback addresses (127.0.0.0/8, unreachable from any other
 * machine), secrets reach them as 0600 files, and clients connect to the nodes directly (no Envoy,
 * no load balancer). So the adapter's records are plain loopback values and create no resources; the
 * processes themselves, the PKI and the cluster are composed by `LocalRedisStack` (infra/local/stack.ts, the local composition root), which
 * `deployLocalStack` (infra/local/program.ts) runs for a stack whose `redisforge:cloud` is `local`.
 *
 * `createVm` and `reserveAddress` describe a loopback "VM" (the real process is a RedisProcess with
 * the same host name); `createRegistry` and `createLoadBalancer` are not supported (capabilities say
 * so) and throw a clear error if called.
 */
import * as pulumi from "@pulumi/pulumi";
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
    RegistryArgs,
    RegistryRecord,
    SecretArgs,
    SecretRecord,
    SecretStoreArgs,
    SecretStoreRecord,
    VmArgs,
    VmRecord,
} from "../types";

/** The one address every local node binds (loopback only). */
export const LOCAL_HOST = "127.0.0.1";
/** Instance "sizes" the local adapter accepts. */
export const LOCAL_SIZES = ["process"] as const;

const out = <T>(v: T) => pulumi.output(v);

export const localAdapter: CloudAdapter = {
    kind: "local",
    capabilities: { firewall: false, loadBalancer: false, containerRegistry: false, cloudInit: false },
    // A local node's data lives in a directory, not on a separate disk.
    dataDiskDevice: "",

    checkInstanceSize(size: string): string | null {
        return (LOCAL_SIZES as readonly string[]).includes(size) ? null : `is not a local size: the local stack runs each node as a redis-server process; use "process"`;
    },

    checkZone(region: string, zone: string): string | null {
        if (region !== "local") return `belongs to region ${JSON.stringify(region)}, but the local stack's region must be "local"`;
        return /^[a-z0-9][a-z0-9-]{0,30}$/.test(zone) ? null : `is not a zone label (lowercase letters, digits and "-", e.g. local-a)`;
    },

    createNetwork(_name: string, a: NetworkArgs): NetworkRecord {
        return {
            networkId: out("loopback"),
            subnetIds: Object.fromEntries(a.zones.map((z) => [z, out(`loopback-${z}`)])),
            subnetCidrs: Object.fromEntries(a.zones.map((z) => [z, "127.0.0.0/8"])),
            zones: a.zones.slice(),
            native: {},
        };
    },

    createFirewall(_name: string, _a: FirewallArgs): FirewallRecord {
        // Nothing listens beyond 127.0.0.0/8, which no other machine can reach.
        return { groups: { redis: out("loopback-only"), envoy: out("loopback-only") }, native: {} };
    },

    createSecretStore(name: string, _a: SecretStoreArgs): SecretStoreRecord {
        return { id: out(`file:${name}`), native: {} };
    },

    createSecret(_name: string, a: SecretArgs): SecretRecord {
        // The value reaches the node as a 0600 file written by its RedisProcess; the ref names that file.
        return { key: a.key, ref: out(`file:${a.key}`), id: out(`file:${a.key}`) };
    },

    createBucket(name: string, _a: BucketArgs): BucketRecord {
        return { name: out(name), url: out(`file://.local-stack/backups/${name}`), id: out(name), native: {} };
    },

    createRegistry(_name: string, _a: RegistryArgs): RegistryRecord {
        throw new Error("local: there is no container registry on the local stack (capabilities.containerRegistry is false); nodes run the Debian redis-server binary");
    },

    createIdentity(name: string, a: IdentityArgs): IdentityRecord {
        return { id: out(`local-${a.role}-${name}`), principal: out(`local-${a.role}`), native: {} };
    },

    reserveAddress(_name: string, a: AddressArgs): AddressRecord {
        return { zone: a.zone, privateIp: out(LOCAL_HOST), dnsName: out(a.hostName), id: out(`${LOCAL_HOST}/${a.hostName}`) };
    },

    createVm(_name: string, a: VmArgs): VmRecord {
        return { id: out(`process:${a.hostName}`), zone: a.zone, role: a.role, hostName: a.hostName, privateIp: out(LOCAL_HOST), dnsName: out(a.hostName), dataDiskId: out(`dir:${a.hostName}`) };
    },

    createLoadBalancer(_name: string, _a: LoadBalancerArgs): LoadBalancerRecord {
        throw new Error("local: there is no load balancer on the local stack (capabilities.loadBalancer is false); clients connect to the nodes with a cluster client");
    },

    attachToLoadBalancer(_name: string, _a: AttachArgs): void {
        throw new Error("local: there is no load balancer on the local stack (capabilities.loadBalancer is false)");
    },
};
