/**
 * The stack-wide checks behind the policies that need more than one resource: public addresses of
 * VMs (an Azure NIC or an AWS Elastic IP belongs to a VM), the backup bucket and its companion
 * resources (AWS S3 settings are resources of their own), and the zone placement of the shards.
 * Pure: each takes the stack's resources and returns violations as { message, resource }.
 */
import { arr, known, ResourceLike, roleOf, T, tagOf, VM_TYPES } from "./resources";

export interface Violation {
    message: string;
    resource?: ResourceLike;
}

export interface StackContext {
    resources: ResourceLike[];
    depsOf?: (r: ResourceLike, prop: string) => ResourceLike[];
}

const idOf = (r: ResourceLike) => (r as { id?: string }).id;

/** Does `r.props[prop]` point at `owner` (engine dependency, id, name), or is `r` named after it? */
function linked(r: ResourceLike, prop: string, owner: ResourceLike, ctx: StackContext): boolean {
    if (ctx.depsOf?.(r, prop).some((d) => d.urn === owner.urn)) return true;
    // Values may be unknown in a preview (ids of resources still to be created): then only the name links.
    const v = known(() => r.props[prop]);
    const ownerKeys = [idOf(owner), ...["id", "name", "bucket", "accountName"].map((k) => known(() => owner.props[k]))];
    if (typeof v === "string" && v !== "" && ownerKeys.includes(v)) return true;
    return r.name === owner.name || r.name.startsWith(`${owner.name}-`);
}

// ---------------------------------------------------------------- public IPs
/**
 * RedisForge VMs (tagged with a role) and their NICs that get a public address. qemu VMs are not
 * read: no QemuVm input can express a public address (its only NIC is the `tap` on the stack's
 * private bridge, started with `-nodefaults`, so no user-mode NIC; providers/qemu/resources/vm.ts),
 * and the stack namespace has no route out. tests/unit/policy/policies.test.ts fails if one appears.
 */
export function publicIpViolations(ctx: StackContext): Violation[] {
    const out: Violation[] = [];
    const vms = ctx.resources.filter((r) => VM_TYPES.includes(r.type) && roleOf(r) !== undefined);
    for (const vm of vms) {
        const p = vm.props;
        const say = (how: string) => out.push({ resource: vm, message: `${roleOf(vm)} VM ${vm.name} gets a public IP (${how}); RedisForge VMs have private addresses only (egress through NAT): remove it` });
        if (vm.type === T.awsInstance && p.associatePublicIpAddress === true) say("associatePublicIpAddress: true");
        if (vm.type === T.gcpInstance) {
            arr<Record<string, any>>(p.networkInterfaces).forEach((n, i) => {
                if (arr(n.accessConfigs).length) say(`networkInterfaces[${i}].accessConfigs`);
                if (arr(n.ipv6AccessConfigs).length) say(`networkInterfaces[${i}].ipv6AccessConfigs`);
            });
        }
        if (vm.type === T.azureVm) {
            arr<Record<string, any>>(p.networkProfile?.networkInterfaceConfigurations).forEach((n, i) => {
                if (arr<Record<string, any>>(n.ipConfigurations).some((c) => c.publicIPAddressConfiguration)) say(`networkProfile.networkInterfaceConfigurations[${i}] has a publicIPAddressConfiguration`);
            });
        }
    }
    for (const nic of ctx.resources.filter((r) => r.type === T.azureNic && roleOf(r) !== undefined)) {
        arr<Record<string, any>>(nic.props.ipConfigurations).forEach((c, i) => {
            if (c.publicIPAddress) out.push({ resource: nic, message: `network interface ${nic.name} of a ${roleOf(nic)} VM has a public IP (ipConfigurations[${i}].publicIPAddress); remove it` });
        });
    }
    for (const eip of ctx.resources.filter((r) => r.type === T.awsEip)) {
        const attachedTo = (r: ResourceLike) =>
            (eip.props.instance !== undefined && linked(eip, "instance", r, ctx)) || (eip.props.networkInterface !== undefined && linked(eip, "networkInterface", r, ctx));
        const target = ctx.resources.find((r) => (r.type === T.awsInstance || r.type === "aws:ec2/networkInterface:NetworkInterface") && roleOf(r) !== undefined && attachedTo(r));
        if (target) out.push({ resource: eip, message: `Elastic IP ${eip.name} is attached to ${roleOf(target)} ${target.name}; RedisForge VMs have private addresses only: remove it` });
    }
    return out;
}

// ---------------------------------------------------------------- backup bucket
// The qemu cloud's bucket (a qemu:Service "s3" running versitygw's posix backend, providers/qemu/NOTES.md)
// has no versioning, lifecycle or encryption settings: nothing to read. tests/unit/policy/policies.test.ts
// fails when a new qemu resource type appears.
const on = (v: unknown) => v === true || v === "true";

/** Every bucket of the stack: private, versioned, encrypted, with retention. */
export function bucketViolations(ctx: StackContext): Violation[] {
    const out: Violation[] = [];
    const of = (owner: ResourceLike, types: string[], prop: string) => ctx.resources.filter((r) => types.includes(r.type) && linked(r, prop, owner, ctx));
    const report = (b: ResourceLike, missing: string[]) => {
        if (missing.length) out.push({ resource: b, message: `bucket ${b.name} must be private, versioned, encrypted and have retention; ${missing.join("; ")}` });
    };
    for (const b of ctx.resources.filter((r) => r.type === T.awsBucket || r.type === T.awsBucketV2)) {
        const missing: string[] = [];
        const pab = of(b, [T.awsPublicAccessBlock], "bucket");
        if (!pab.some((x) => ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"].every((k) => on(x.props[k])))) missing.push("not private: no BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets all true");
        const acls = [b.props.acl, ...of(b, [T.awsBucketAcl], "bucket").map((x) => x.props.acl)];
        if (acls.some((a) => typeof a === "string" && /public|authenticated/.test(a))) missing.push("not private: a public canned ACL");
        const versioned = on(b.props.versioning?.enabled) || of(b, [T.awsVersioning, T.awsVersioningV2], "bucket").some((x) => x.props.versioningConfiguration?.status === "Enabled");
        if (!versioned) missing.push("not versioned: add a BucketVersioning with status Enabled");
        const encrypted = !!b.props.serverSideEncryptionConfiguration || of(b, [T.awsEncryption, T.awsEncryptionV2], "bucket").some((x) => arr<Record<string, any>>(x.props.rules).some((r) => r.applyServerSideEncryptionByDefault?.sseAlgorithm));
        if (!encrypted) missing.push("not encrypted: add a BucketServerSideEncryptionConfiguration (aws:kms)");
        const rules = [...arr<Record<string, any>>(b.props.lifecycleRules), ...of(b, [T.awsLifecycle, T.awsLifecycleV2], "bucket").flatMap((x) => arr<Record<string, any>>(x.props.rules))];
        const retention = rules.some((r) => (r.status === "Enabled" || r.enabled === true) && Number(arr<Record<string, any>>(r.expiration)[0]?.days ?? 0) > 0 && Number(arr<Record<string, any>>(r.noncurrentVersionExpiration)[0]?.noncurrentDays ?? arr<Record<string, any>>(r.noncurrentVersionExpiration)[0]?.days ?? 0) > 0);
        if (!retention) missing.push("no retention: add an enabled lifecycle rule with expiration days and noncurrentVersionExpiration");
        report(b, missing);
    }
    for (const b of ctx.resources.filter((r) => r.type === T.gcpBucket)) {
        const missing: string[] = [];
        if (b.props.publicAccessPrevention !== "enforced" || !on(b.props.uniformBucketLevelAccess)) missing.push('not private: set publicAccessPrevention "enforced" and uniformBucketLevelAccess true');
        const grants = of(b, [T.gcpBucketIamMember, T.gcpBucketIamBinding], "bucket").flatMap((x) => [...arr<string>(x.props.member), ...arr<string>(x.props.members)]);
        if (grants.some((m) => m === "allUsers" || m === "allAuthenticatedUsers")) missing.push("not private: granted to allUsers/allAuthenticatedUsers");
        if (!on(b.props.versioning?.enabled)) missing.push("not versioned: set versioning.enabled true");
        // Cloud Storage always encrypts at rest (Google-managed keys unless `encryption.defaultKmsKeyName`): nothing to require.
        const retention = arr<Record<string, any>>(b.props.lifecycleRules).some((r) => r.action?.type === "Delete" && Number(r.condition?.age ?? r.condition?.daysSinceNoncurrentTime ?? 0) > 0) || Number(b.props.retentionPolicy?.retentionPeriod ?? 0) > 0;
        if (!retention) missing.push("no retention: add a Delete lifecycle rule with condition.age");
        report(b, missing);
    }
    for (const a of ctx.resources.filter((r) => r.type === T.azureStorageAccount)) {
        const missing: string[] = [];
        if (a.props.allowBlobPublicAccess !== false) missing.push("not private: set allowBlobPublicAccess false");
        for (const c of of(a, [T.azureContainer], "accountName")) {
            if (c.props.publicAccess !== undefined && c.props.publicAccess !== "None") missing.push(`not private: container ${c.name} has publicAccess ${JSON.stringify(c.props.publicAccess)}`);
        }
        // Azure Storage always encrypts at rest; refuse an account that turns blob encryption off or allows plain HTTP.
        if (a.props.encryption?.services?.blob?.enabled === false || a.props.enableHttpsTrafficOnly === false) missing.push("not encrypted: keep encryption.services.blob.enabled and enableHttpsTrafficOnly true");
        if (!of(a, [T.azureBlobService], "accountName").some((x) => on(x.props.isVersioningEnabled))) missing.push("not versioned: add BlobServiceProperties with isVersioningEnabled true");
        const rules = of(a, [T.azureManagementPolicy], "accountName").flatMap((x) => arr<Record<string, any>>(x.props.policy?.rules));
        const retention = rules.some((r) => r.enabled !== false && Number(r.definition?.actions?.baseBlob?.delete?.daysAfterModificationGreaterThan ?? 0) > 0);
        if (!retention) missing.push("no retention: add a ManagementPolicy rule deleting base blobs after N days");
        report(a, missing);
    }
    return out;
}

// ---------------------------------------------------------------- zones
/**
 * Redis VMs by their tags (`redisforge:zone`, `redisforge:redis-role` master/replica,
 * `redisforge:shard`): no shard's master shares a zone with one of its replicas, and masters are
 * spread (the zones holding Redis VMs differ by at most one master).
 */
export function placementViolations(ctx: StackContext): Violation[] {
    const out: Violation[] = [];
    const nodes = ctx.resources.filter((r) => VM_TYPES.includes(r.type) && roleOf(r) === "redis");
    const shards = new Map<string, { masters: ResourceLike[]; replicas: ResourceLike[] }>();
    const zones = new Set<string>();
    for (const n of nodes) {
        const zone = tagOf(n, "redisforge:zone");
        const role = tagOf(n, "redisforge:redis-role");
        const shard = tagOf(n, "redisforge:shard");
        if (!zone || !role || shard === undefined) {
            out.push({ resource: n, message: `Redis VM ${n.name} lacks the redisforge:zone / redisforge:redis-role / redisforge:shard tags, so its placement cannot be checked; tag it with components/tags.ts tagsFor` });
            continue;
        }
        zones.add(zone);
        const s = shards.get(shard) ?? { masters: [], replicas: [] };
        (role === "master" ? s.masters : s.replicas).push(n);
        shards.set(shard, s);
    }
    const mastersPerZone = new Map<string, ResourceLike[]>([...zones].map((z) => [z, []]));
    for (const [shard, s] of [...shards].sort(([a], [b]) => Number(a) - Number(b))) {
        if (s.masters.length !== 1) {
            out.push({ resource: s.masters[1] ?? s.replicas[0], message: `shard ${shard} has ${s.masters.length} VMs tagged master (expected 1)` });
            continue;
        }
        const m = s.masters[0];
        const mz = tagOf(m, "redisforge:zone")!;
        mastersPerZone.get(mz)!.push(m);
        for (const r of s.replicas) {
            if (tagOf(r, "redisforge:zone") === mz) out.push({ resource: r, message: `shard ${shard}: replica ${r.name} is in zone ${mz} with its master ${m.name}; losing that zone loses the shard. Place the replica in another zone (providers/redis-cluster/placement.ts)` });
        }
    }
    const counts = [...mastersPerZone].map(([z, ms]) => [z, ms.length] as const).sort(([a], [b]) => a.localeCompare(b));
    if (counts.length) {
        const max = Math.max(...counts.map(([, c]) => c));
        const min = Math.min(...counts.map(([, c]) => c));
        if (max - min > 1) {
            const crowded = counts.find(([, c]) => c === max)![0];
            out.push({ resource: mastersPerZone.get(crowded)![0], message: `masters are not spread over the zones: ${counts.map(([z, c]) => `${z}: ${c}`).join(", ")} (zones may differ by at most one master, so losing one zone never loses the majority)` });
        }
    }
    return out;
}
