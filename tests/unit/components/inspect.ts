/**
 * Per-cloud readers of the mocked engine's records: they translate what each adapter actually
 * sent to the engine (security group rules, VPC firewalls, NSG rules, instance inputs, bucket
 * settings) into one neutral shape the invariant tests assert on. They read raw resource
 * inputs, never the adapters' own records, so an adapter cannot agree with itself.
 */
import { gunzipSync } from "zlib";
import { MockEngine, RecordedResource, unwrap } from "../../helpers/mocks";

export interface VmView {
    name: string;
    zone: string;
    /** Any path to a public address (public IP flag, access config, public IP on the NIC, EIP). */
    publicIp: boolean;
    /** Decoded cloud-init user-data ("" when none). */
    userData: string;
    /** Size the cloud counts against its limit, and that limit (bytes). */
    sentBytes: number;
    limitBytes: number;
}

export interface IngressView {
    /** Where the rule came from, for messages. */
    label: string;
    /** What receives the traffic: Redis nodes, Envoys, or the load balancer itself. */
    target: "redis" | "envoy" | "lb" | "unknown";
    /** TCP ports opened ("*" = all). */
    ports: number[] | "*";
    /** Source CIDRs (empty when the source is a group/tag/ASG). */
    cidrs: string[];
}

export interface BucketView {
    publicAccessBlocked: boolean;
    versioned: boolean;
    /** "explicit" when the program configures encryption; "provider-default" where the service always encrypts. */
    encryption: "explicit" | "provider-default" | "none";
    retentionDays: number[];
}

export interface CertView {
    name: string;
    ipAddresses: string[];
    dnsNames: string[];
}

export interface CloudInspector {
    vms(e: MockEngine): VmView[];
    /** Addresses/ids the TCP load balancer forwards to. */
    lbTargets(e: MockEngine): string[];
    /** Zones whose private subnet has a default route through a NAT (or a regional NAT covers all). */
    natZones(e: MockEngine, zones: string[]): string[];
    dataDisks(e: MockEngine): number;
    ingress(e: MockEngine): IngressView[];
    bucket(e: MockEngine): BucketView;
}

const plain = (r: RecordedResource) => unwrap(r.inputs) as Record<string, any>;

function decodeUserData(text: string | undefined, base64: boolean): string {
    if (!text) return "";
    if (!base64) return text;
    const buf = Buffer.from(text, "base64");
    return buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf).toString("utf8") : buf.toString("utf8");
}

function portRange(from: number, to: number): number[] {
    const out: number[] = [];
    for (let p = from; p <= to && out.length < 70000; p++) out.push(p);
    return out;
}

export const certs = (e: MockEngine): CertView[] =>
    e.byType("tls:index/certRequest:CertRequest").map((r) => ({ name: r.name, ipAddresses: plain(r).ipAddresses ?? [], dnsNames: plain(r).dnsNames ?? [] }));

const aws: CloudInspector = {
    vms(e) {
        const enis = new Map(e.byType("aws:ec2/networkInterface:NetworkInterface").map((r) => [r.id, plain(r)]));
        const subnets = new Map(e.byType("aws:ec2/subnet:Subnet").map((r) => [r.id, plain(r)]));
        const eips = e.byType("aws:ec2/eip:Eip").map(plain);
        return e.byType("aws:ec2/instance:Instance").map((r) => {
            const i = plain(r);
            const eni = enis.get(i.primaryNetworkInterface?.networkInterfaceId);
            const subnet = eni ? subnets.get(eni.subnetId) : undefined;
            const eipAttached = eips.some((x) => x.instance !== undefined || x.networkInterface === i.primaryNetworkInterface?.networkInterfaceId);
            return {
                name: r.name,
                zone: i.availabilityZone,
                publicIp: i.associatePublicIpAddress === true || !eni || subnet?.mapPublicIpOnLaunch === true || eipAttached,
                userData: i.userData ?? decodeUserData(i.userDataBase64, true),
                // EC2: 16 KiB of raw (pre-base64) user-data.
                sentBytes: i.userData !== undefined ? Buffer.byteLength(i.userData) : Buffer.from(i.userDataBase64 ?? "", "base64").length,
                limitBytes: 16384,
            };
        });
    },
    dataDisks: (e) => e.byType("aws:ec2/volumeAttachment:VolumeAttachment").length,
    lbTargets: (e) => e.byType("aws:lb/targetGroupAttachment:TargetGroupAttachment").map((r) => String(plain(r).targetId)),
    natZones(e, zones) {
        const subnets = e.byType("aws:ec2/subnet:Subnet").map((r) => ({ id: r.id, ...plain(r) }) as Record<string, any>);
        const nats = new Set(e.byType("aws:ec2/natGateway:NatGateway").map((r) => r.id));
        const rts = new Map(e.byType("aws:ec2/routeTable:RouteTable").map((r) => [r.id, plain(r)]));
        const assoc = e.byType("aws:ec2/routeTableAssociation:RouteTableAssociation").map(plain);
        return zones.filter((z) => subnets.filter((s) => s.availabilityZone === z && s.mapPublicIpOnLaunch === false && /private/.test(s.tags?.Name ?? "")).some((s) => {
            const rt = rts.get(assoc.find((a) => a.subnetId === s.id)?.routeTableId);
            return (rt?.routes ?? []).some((r: any) => r.cidrBlock === "0.0.0.0/0" && nats.has(r.natGatewayId));
        }));
    },
    ingress(e) {
        const out: IngressView[] = [];
        const sgs = e.byType("aws:ec2/securityGroup:SecurityGroup");
        const sgTarget = (name: string): IngressView["target"] => (name.endsWith("-lb-lb") ? "lb" : name.endsWith("-redis") ? "redis" : name.endsWith("-envoy") ? "envoy" : "unknown");
        const byId = new Map(sgs.map((r) => [r.id, sgTarget(r.name)]));
        for (const r of e.byType("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")) {
            const i = plain(r);
            const ports = i.ipProtocol === "-1" ? "*" : portRange(i.fromPort, i.toPort);
            out.push({ label: `SecurityGroupIngressRule ${r.name}`, target: byId.get(i.securityGroupId) ?? "unknown", ports, cidrs: [i.cidrIpv4, i.cidrIpv6].filter(Boolean) });
        }
        for (const r of sgs) {
            for (const g of plain(r).ingress ?? []) {
                out.push({ label: `SecurityGroup ${r.name} inline`, target: sgTarget(r.name), ports: g.protocol === "-1" ? "*" : portRange(g.fromPort, g.toPort), cidrs: [...(g.cidrBlocks ?? []), ...(g.ipv6CidrBlocks ?? [])] });
            }
        }
        return out;
    },
    bucket(e) {
        const pab = e.byType("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").map(plain);
        const ver = e.byType("aws:s3/bucketVersioning:BucketVersioning").map(plain);
        const sse = e.byType("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").map(plain);
        const lc = e.byType("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").map(plain);
        return {
            publicAccessBlocked: pab.length === 1 && ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"].every((k) => pab[0][k] === true),
            versioned: ver.length === 1 && ver[0].versioningConfiguration?.status === "Enabled",
            encryption: sse.length === 1 && sse[0].rules?.[0]?.applyServerSideEncryptionByDefault?.sseAlgorithm ? "explicit" : "none",
            retentionDays: lc.flatMap((x) => (x.rules ?? []).flatMap((rule: any) => [rule.expiration?.days, rule.noncurrentVersionExpiration?.noncurrentDays])).filter((d: unknown) => d !== undefined) as number[],
        };
    },
};

const gcp: CloudInspector = {
    vms: (e) =>
        e.byType("gcp:compute/instance:Instance").map((r) => {
            const i = plain(r);
            return {
                name: r.name,
                zone: i.zone,
                publicIp: (i.networkInterfaces ?? []).some((n: any) => (n.accessConfigs ?? []).length > 0 || (n.ipv6AccessConfigs ?? []).length > 0),
                userData: i.metadata?.["user-data"] ?? "",
                // GCE: 256 KiB per metadata value.
                sentBytes: Buffer.byteLength(i.metadata?.["user-data"] ?? ""),
                limitBytes: 256 * 1024,
            };
        }),
    dataDisks: (e) => e.byType("gcp:compute/instance:Instance").reduce((n, r) => n + (plain(r).attachedDisks ?? []).length, 0),
    lbTargets: (e) => {
        const groups = new Set(e.byType("gcp:compute/regionBackendService:RegionBackendService").flatMap((r) => (plain(r).backends ?? []).map((b: any) => b.group)));
        return e.byType("gcp:compute/instanceGroup:InstanceGroup").filter((r) => groups.has(r.id)).flatMap((r) => plain(r).instances ?? []);
    },
    // Cloud NAT is regional: one RouterNat for all subnetworks covers every zone.
    natZones: (e, zones) => (e.byType("gcp:compute/routerNat:RouterNat").some((r) => plain(r).sourceSubnetworkIpRangesToNat === "ALL_SUBNETWORKS_ALL_IP_RANGES") ? zones : []),
    ingress: (e) =>
        e.byType("gcp:compute/firewall:Firewall").flatMap((r) => {
            const i = plain(r);
            if ((i.direction ?? "INGRESS") !== "INGRESS" || !i.allows) return [];
            const tags: string[] = i.targetTags ?? [];
            const target: IngressView["target"] = tags.length === 1 && tags[0].endsWith("-redis") ? "redis" : tags.length === 1 && tags[0].endsWith("-envoy") ? "envoy" : "unknown";
            return (i.allows as any[]).map((a) => ({
                label: `Firewall ${r.name}`,
                target,
                ports: !a.ports || a.protocol === "all" ? "*" : (a.ports as string[]).flatMap((p) => { const [f, t] = p.split("-").map(Number); return portRange(f, t ?? f); }),
                cidrs: i.sourceRanges ?? [],
            }));
        }),
    bucket(e) {
        const b = e.byType("gcp:storage/bucket:Bucket").map(plain);
        return {
            publicAccessBlocked: b.length === 1 && b[0].publicAccessPrevention === "enforced" && b[0].uniformBucketLevelAccess === true,
            versioned: b.length === 1 && b[0].versioning?.enabled === true,
            // Cloud Storage encrypts every object at rest; a CMEK would show up as `encryption`.
            encryption: b.length === 1 ? (b[0].encryption?.defaultKmsKeyName ? "explicit" : "provider-default") : "none",
            retentionDays: b.flatMap((x) => (x.lifecycleRules ?? []).map((l: any) => l.condition?.age ?? l.condition?.daysSinceNoncurrentTime)).filter((d: unknown) => d !== undefined) as number[],
        };
    },
};

const azure: CloudInspector = {
    vms(e) {
        const nics = new Map(e.byType("azure-native:network:NetworkInterface").map((r) => [r.id, plain(r)]));
        return e.byType("azure-native:compute:VirtualMachine").map((r) => {
            const i = plain(r);
            const nicIds: string[] = (i.networkProfile?.networkInterfaces ?? []).map((n: any) => n.id);
            const publicIp = nicIds.length === 0 || nicIds.some((id) => { const n = nics.get(id); return !n || (n.ipConfigurations ?? []).some((c: any) => c.publicIPAddress); }) || (i.networkProfile?.networkInterfaceConfigurations ?? []).length > 0;
            // Azure: customData up to 64 KiB (base64 text).
            return { name: r.name, zone: (i.zones ?? [])[0], publicIp, userData: decodeUserData(i.osProfile?.customData, true), sentBytes: (i.osProfile?.customData ?? "").length, limitBytes: 64 * 1024 };
        });
    },
    dataDisks: (e) => e.byType("azure-native:compute:VirtualMachine").reduce((n, r) => n + (plain(r).storageProfile?.dataDisks ?? []).length, 0),
    lbTargets: (e) => e.byType("azure-native:network:LoadBalancer").flatMap((r) => (plain(r).backendAddressPools ?? []).flatMap((p: any) => (p.loadBalancerBackendAddresses ?? []).map((a: any) => a.ipAddress))),
    natZones(e, zones) {
        const nats = new Map(e.byType("azure-native:network:NatGateway").map((r) => [r.id, plain(r)]));
        const subnets = e.byType("azure-native:network:Subnet").map(plain);
        return zones.filter((z) => subnets.some((s) => (nats.get(s.natGateway?.id)?.zones ?? []).includes(z)));
    },
    ingress: (e) =>
        e.byType("azure-native:network:NetworkSecurityGroup").flatMap((r) =>
            ((plain(r).securityRules ?? []) as any[])
                .filter((s) => s.direction === "Inbound" && s.access === "Allow")
                .map((s) => {
                    const ranges: string[] = s.destinationPortRanges ?? (s.destinationPortRange ? [s.destinationPortRange] : []);
                    const ports = ranges.includes("*") ? "*" : ranges.flatMap((p) => { const [f, t] = p.split("-").map(Number); return portRange(f, t ?? f); });
                    const src: string[] = s.sourceAddressPrefixes ?? (s.sourceAddressPrefix ? [s.sourceAddressPrefix] : []);
                    // Service tags that mean "anywhere" count as 0.0.0.0/0.
                    const target: IngressView["target"] = r.name.endsWith("-redis") ? "redis" : r.name.endsWith("-envoy") ? "envoy" : "unknown";
                    return { label: `NSG ${r.name} rule ${s.name}`, target, ports, cidrs: src.map((x) => (x === "*" || x === "Internet" || x === "Any" ? "0.0.0.0/0" : x)) } as IngressView;
                }),
        ),
    bucket(e) {
        const acct = e.byType("azure-native:storage:StorageAccount").map(plain);
        const svc = e.byType("azure-native:storage:BlobServiceProperties").map(plain);
        const cont = e.byType("azure-native:storage:BlobContainer").map(plain);
        const pol = e.byType("azure-native:storage:ManagementPolicy").map(plain);
        return {
            publicAccessBlocked: acct.length === 1 && acct[0].allowBlobPublicAccess === false && cont.length === 1 && cont[0].publicAccess === "None",
            versioned: svc.length === 1 && svc[0].isVersioningEnabled === true,
            encryption: acct.length === 1 && acct[0].encryption?.services?.blob?.enabled === true ? "explicit" : "none",
            retentionDays: pol.flatMap((p) => (p.policy?.rules ?? []).flatMap((r: any) => [r.definition?.actions?.baseBlob?.delete?.daysAfterModificationGreaterThan, r.definition?.actions?.version?.delete?.daysAfterCreationGreaterThan])).filter((d: unknown) => d !== undefined) as number[],
        };
    },
};

/**
 * qemu: the VM, firewall and load-balancer dynamic resources' raw inputs. A role is an address
 * range of the stack network (providers/qemu/plan.ts): a source that is one of those ranges is a
 * group reference (no CIDR), the deployer's host-link address is reported as a CIDR.
 */
const QEMU_ROLE_RANGE = /^10\.210\.(\d+)\.(0\/26|64\/27)$/;
const qemu: CloudInspector = {
    vms: (e) =>
        e.byType("pulumi-nodejs:dynamic/qemu:Vm").map((r) => {
            const i = plain(r);
            return {
                name: r.name,
                zone: i.zone,
                // The only NIC is a tap on the stack namespace's bridge; nothing routes out of that namespace.
                publicIp: !(typeof i.tap === "string" && i.tap.length > 0 && typeof i.network === "string"),
                userData: i.userData ?? "",
                // The NoCloud seed ISO has no practical limit; GCP's 256 KiB keeps the user-data portable.
                sentBytes: Buffer.byteLength(i.userData ?? ""),
                limitBytes: 256 * 1024,
            };
        }),
    dataDisks: (e) => e.byType("pulumi-nodejs:dynamic/qemu:Vm").filter((r) => Number(plain(r).dataDiskGb) > 0).length,
    lbTargets: (e) =>
        e.byType("pulumi-nodejs:dynamic/qemu:Service")
            .filter((r) => plain(r).name === "lb")
            .flatMap((r) => [...String(plain(r).files?.["haproxy.cfg"] ?? "").matchAll(/^\s*server \S+ (\S+)/gm)].map((m) => m[1])),
    // No egress at all (stricter than NAT): the namespace has no default route.
    natZones: () => [],
    ingress: (e) =>
        e.byType("pulumi-nodejs:dynamic/qemu:Firewall").flatMap((r) =>
            ((plain(r).rules ?? []) as { from: string; to: string; ports?: number | [number, number]; comment?: string }[]).map((x) => {
                const to = QEMU_ROLE_RANGE.exec(x.to);
                const target: IngressView["target"] = to ? (to[2] === "0/26" ? "redis" : "envoy") : /^10\.210\.\d+\.4$/.test(x.to) ? "lb" : "unknown";
                const ports = x.ports === undefined ? "*" : Array.isArray(x.ports) ? portRange(x.ports[0], x.ports[1]) : [x.ports];
                return { label: `Firewall ${r.name} ${x.comment ?? ""} ${x.from} -> ${x.to}`, target, ports, cidrs: QEMU_ROLE_RANGE.test(x.from) ? [] : [x.from] };
            }),
        ),
    bucket: () => ({ publicAccessBlocked: false, versioned: false, encryption: "none", retentionDays: [] }),
};

/** Inspectors by cloud kind. A registered cloud without one fails the tests that need it. */
export const INSPECTORS: Record<string, CloudInspector> = { aws, gcp, azure, qemu };

export function inspectorFor(kind: string): CloudInspector {
    const i = INSPECTORS[kind];
    if (!i) throw new Error(`no inspector for cloud "${kind}": add one to tests/unit/components/inspect.ts`);
    return i;
}

// ---------------------------------------------------------------------------- identity grants

export interface GrantsView {
    /** Ids (ARN, resource name, resource id) of the secrets this identity may read. */
    readableSecrets: string[];
    bucketWrite: boolean;
    bucketDelete: boolean;
    /** Objects can be read (restore, `rclone check`). */
    bucketRead: boolean;
    /** Objects can be listed (`rclone copy/check`, restore --list). */
    bucketList: boolean;
    /** S3 only: incomplete multipart uploads (large AOFs) can be aborted; "n/a" elsewhere. */
    bucketAbortMultipart: boolean | "n/a";
}

/** Id of a stored secret, by the name of the secret resource (as adapters record it in grants). */
export function secretIdOf(kind: string, e: MockEngine, secretResourceName: string): string {
    const type = { aws: "aws:secretsmanager/secret:Secret", gcp: "gcp:secretmanager/secret:Secret", azure: "azure-native:keyvault:Secret", qemu: "pulumi-nodejs:dynamic/qemu:Secret" }[kind]!;
    const r = e.byType(type).find((x) => x.name === secretResourceName);
    if (!r) throw new Error(`no ${type} named ${secretResourceName}`);
    if (kind === "qemu") return String(plain(r).key);
    return kind === "aws" ? String(r.state.arn) : r.id;
}

export function grantsOf(kind: string, e: MockEngine, identity: string): GrantsView {
    if (kind === "aws") {
        const p = e.byType("aws:iam/rolePolicy:RolePolicy").find((r) => r.name === identity);
        const doc = JSON.parse(String(plain(p!).policy)) as { Statement: { Effect: string; Action: string[] | string; Resource: string[] | string }[] };
        const acts = (s: { Action: string[] | string }) => ([] as string[]).concat(s.Action);
        const allows = doc.Statement.filter((s) => s.Effect === "Allow");
        const denies = doc.Statement.filter((s) => s.Effect === "Deny");
        const allowed = (a: string) => allows.some((s) => acts(s).some((x) => x === a || x === "s3:*" || x === "*")) && !denies.some((s) => acts(s).includes(a));
        return {
            readableSecrets: allows.filter((s) => acts(s).includes("secretsmanager:GetSecretValue")).flatMap((s) => ([] as string[]).concat(s.Resource)),
            bucketWrite: allowed("s3:PutObject"),
            bucketDelete: allowed("s3:DeleteObject") || allowed("s3:DeleteObjectVersion"),
            bucketRead: allowed("s3:GetObject"),
            bucketList: allowed("s3:ListBucket"),
            bucketAbortMultipart: allowed("s3:AbortMultipartUpload"),
        };
    }
    if (kind === "gcp") {
        const roles = e.byType("gcp:storage/bucketIAMMember:BucketIAMMember").filter((r) => r.name.startsWith(`${identity}-`)).map((r) => String(plain(r).role));
        return {
            readableSecrets: e.byType("gcp:secretmanager/secretIamMember:SecretIamMember").filter((r) => r.name.startsWith(`${identity}-read-`) && plain(r).role === "roles/secretmanager.secretAccessor").map((r) => String(plain(r).secretId)),
            bucketWrite: roles.some((x) => ["roles/storage.objectCreator", "roles/storage.objectAdmin", "roles/storage.admin", "roles/storage.legacyBucketWriter"].includes(x)),
            bucketDelete: roles.some((x) => ["roles/storage.objectAdmin", "roles/storage.admin", "roles/storage.legacyBucketWriter", "roles/storage.legacyBucketOwner"].includes(x)),
            // Predefined roles holding storage.objects.get / storage.objects.list.
            bucketRead: roles.some((x) => ["roles/storage.objectViewer", "roles/storage.objectUser", "roles/storage.objectAdmin", "roles/storage.admin", "roles/storage.legacyObjectReader"].includes(x)),
            bucketList: roles.some((x) => ["roles/storage.objectViewer", "roles/storage.objectUser", "roles/storage.objectAdmin", "roles/storage.admin", "roles/storage.legacyBucketReader"].includes(x)),
            bucketAbortMultipart: "n/a",
        };
    }
    if (kind === "azure") {
        const assignments = e.byType("azure-native:authorization:RoleAssignment").filter((r) => r.name.startsWith(`${identity}-`)).map(plain);
        const defs = new Map(e.byType("azure-native:authorization:RoleDefinition").map((r) => [r.id, plain(r)]));
        const perms = assignments.flatMap((a) => (defs.get(a.roleDefinitionId)?.permissions ?? []) as { dataActions?: string[]; notDataActions?: string[] }[]);
        const can = (suffix: string) => perms.some((p) => (p.dataActions ?? []).some((d) => d.endsWith(suffix) || d === "*") && !(p.notDataActions ?? []).some((d) => d.endsWith(suffix)));
        return {
            readableSecrets: e.byType("azure-native:authorization:RoleAssignment").filter((r) => r.name.startsWith(`${identity}-read-`)).map((r) => String(plain(r).scope)),
            bucketWrite: can("blobs/write"),
            bucketDelete: can("blobs/delete"),
            bucketRead: can("blobs/read"),
            // List Blobs is authorised by the blobs/read data action.
            bucketList: can("blobs/read"),
            bucketAbortMultipart: "n/a",
        };
    }
    if (kind === "qemu") {
        const id = e.byType("pulumi-nodejs:dynamic/qemu:Identity").find((r) => r.name === identity);
        // Bucket access: the identity holds the VM principal's keys (s3Keys names the stack's
        // QemuBucketKeys file, which the S3 service runs with), and what the principal may do in the
        // backup bucket is the Allow statements of this identity's QemuBucketGrant on it (the
        // converge store bucket, `-converge`, is the agent's grant, checked by its own tests).
        const keysFile = (plain(id!).s3Keys as { file?: string } | undefined)?.file;
        const keys = keysFile !== undefined && e.byType("pulumi-nodejs:dynamic/qemu:BucketKeys").some((r) => plain(r).file === keysFile);
        const server = keysFile !== undefined && e.byType("pulumi-nodejs:dynamic/qemu:Service").some((r) => plain(r).name === "s3" && ((plain(r).argv ?? []) as string[]).includes(keysFile));
        const grants = e.byType("pulumi-nodejs:dynamic/qemu:BucketGrant").map(plain).filter((g) => g.identity === plain(id!).name && !String(g.bucket).endsWith("-converge"));
        const allowed = grants.flatMap((g) => (g.statements as { Effect: string; Action: string[] }[]).filter((st) => st.Effect === "Allow").flatMap((st) => st.Action));
        const actions: string[] = keys && server ? allowed : [];
        return {
            readableSecrets: (plain(id!).secrets ?? []) as string[],
            bucketWrite: actions.includes("s3:PutObject"),
            bucketDelete: actions.some((a) => /^s3:Delete/.test(a) || a === "s3:*"),
            bucketRead: actions.includes("s3:GetObject"),
            bucketList: actions.includes("s3:ListBucket"),
            bucketAbortMultipart: actions.includes("s3:AbortMultipartUpload"),
        };
    }
    throw new Error(`no grants reader for cloud "${kind}"`);
}
