/**
 * AWS adapter: VPC over three AZs (private subnets + one NAT gateway per AZ), security groups,
 * EC2 instances on pre-created ENIs (no public IP, IMDSv2 only) with a separate encrypted EBS
 * data volume and an IAM instance profile, an NLB, ECR, an S3 bucket and Secrets Manager.
 *
 * Imports only the SDK submodules it uses, to keep type-checking and program start fast.
 */
import { gzipSync } from "zlib";
import * as pulumi from "@pulumi/pulumi";
import * as ec2 from "@pulumi/aws/ec2";
import * as ebs from "@pulumi/aws/ebs";
import * as vpc from "@pulumi/aws/vpc";
import * as iam from "@pulumi/aws/iam";
import * as s3 from "@pulumi/aws/s3";
import * as lb from "@pulumi/aws/lb";
import * as ecr from "@pulumi/aws/ecr";
import * as secretsmanager from "@pulumi/aws/secretsmanager";
import { subnetPlan } from "../network-plan";
import { convergeStatements } from "../object-store/s3-admin";
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

/** Debian's official AMI owner account. */
const DEBIAN_OWNER = "136693071363";

function opts(parent: pulumi.Resource, extra?: pulumi.CustomResourceOptions): pulumi.CustomResourceOptions {
    return { parent, ...extra };
}

const withName = (tags: Record<string, string>, name: string) => ({ ...tags, Name: name });

export const awsAdapter: CloudAdapter = {
    kind: "aws",
    capabilities: { firewall: true, loadBalancer: true, containerRegistry: true, cloudInit: true },
    dataDiskDevice: "/dev/nvme1n1",

    checkInstanceSize(size) {
        // family[generation][attributes].size, e.g. r7g.large, m6i.2xlarge, c7gn.medium
        return /^[a-z][a-z0-9-]*\d[a-z0-9-]*\.(nano|micro|small|medium|large|metal|\d{0,2}xlarge)$/.test(size)
            ? null
            : "is not an EC2 instance type (family.size, e.g. r7g.large); use an EC2 type name";
    },

    architectureOf(size) {
        // Graviton families carry a `g` after the generation: r7g, m7gd, c7gn, t4g, x2gd.
        return /^[a-z]+\d+g[a-z]*\./.test(size) ? "arm64" : "amd64";
    },

    checkZone(region, zone) {
        return zone.startsWith(region) && /^[a-z]$/.test(zone.slice(region.length))
            ? null
            : `is not an availability zone of ${region} (expected ${region}a, ${region}b, …)`;
    },

    createNetwork(name: string, a: NetworkArgs): NetworkRecord {
        const plan = subnetPlan(a.cidr, a.zones);
        const net = new ec2.Vpc(`${name}-vpc`, { cidrBlock: a.cidr, enableDnsHostnames: true, enableDnsSupport: true, tags: withName(a.tags, `${name}-vpc`) }, opts(a.parent));
        const igw = new ec2.InternetGateway(`${name}-igw`, { vpcId: net.id, tags: withName(a.tags, `${name}-igw`) }, opts(a.parent));
        const publicRt = new ec2.RouteTable(`${name}-public-rt`, { vpcId: net.id, routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }], tags: withName(a.tags, `${name}-public-rt`) }, opts(a.parent));
        const subnetIds: Record<string, pulumi.Output<string>> = {};
        const publicSubnetIds: pulumi.Output<string>[] = [];
        for (const zone of a.zones) {
            // Public subnet only holds the NAT gateway (and an external NLB if asked for).
            const pub = new ec2.Subnet(`${name}-public-${zone}`, { vpcId: net.id, cidrBlock: plan.public[zone], availabilityZone: zone, mapPublicIpOnLaunch: false, tags: withName(a.tags, `${name}-public-${zone}`) }, opts(a.parent));
            new ec2.RouteTableAssociation(`${name}-public-${zone}`, { subnetId: pub.id, routeTableId: publicRt.id }, opts(a.parent));
            const eip = new ec2.Eip(`${name}-nat-${zone}`, { domain: "vpc", tags: withName(a.tags, `${name}-nat-${zone}`) }, opts(a.parent));
            const nat = new ec2.NatGateway(`${name}-nat-${zone}`, { subnetId: pub.id, allocationId: eip.id, tags: withName(a.tags, `${name}-nat-${zone}`) }, opts(a.parent, { dependsOn: [igw] }));
            const priv = new ec2.Subnet(`${name}-private-${zone}`, { vpcId: net.id, cidrBlock: plan.private[zone], availabilityZone: zone, mapPublicIpOnLaunch: false, tags: withName(a.tags, `${name}-private-${zone}`) }, opts(a.parent));
            // One NAT per zone: losing a zone must not cut the other zones' egress.
            const rt = new ec2.RouteTable(`${name}-private-rt-${zone}`, { vpcId: net.id, routes: [{ cidrBlock: "0.0.0.0/0", natGatewayId: nat.id }], tags: withName(a.tags, `${name}-private-rt-${zone}`) }, opts(a.parent));
            new ec2.RouteTableAssociation(`${name}-private-${zone}`, { subnetId: priv.id, routeTableId: rt.id }, opts(a.parent));
            subnetIds[zone] = priv.id;
            publicSubnetIds.push(pub.id);
        }
        return {
            networkId: net.id,
            subnetIds,
            subnetCidrs: plan.private,
            zones: a.zones.slice(),
            native: { cidr: pulumi.output(a.cidr), publicSubnetIds: pulumi.all(publicSubnetIds).apply((ids) => ids.join(",")) },
        };
    },

    createFirewall(name: string, a: FirewallArgs): FirewallRecord {
        const groups = {} as Record<NodeRole, ec2.SecurityGroup>;
        for (const role of ["redis", "envoy"] as NodeRole[]) {
            groups[role] = new ec2.SecurityGroup(`${name}-${role}`, {
                vpcId: a.network.networkId,
                description: `RedisForge ${role} nodes`,
                // All egress allowed: NAT to the secret store, the registry, the bucket. No inline ingress.
                egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], description: "egress via NAT" }],
                tags: withName(a.tags, `${name}-${role}`),
            }, opts(a.parent));
        }
        for (const rule of a.rules) {
            for (const port of rule.ports) {
                const base = { securityGroupId: groups[rule.to].id, ipProtocol: "tcp", fromPort: port, toPort: port, description: rule.description, tags: a.tags };
                if (rule.from.kind === "role") {
                    new vpc.SecurityGroupIngressRule(`${name}-${rule.key}-${port}`, { ...base, referencedSecurityGroupId: groups[rule.from.role].id }, opts(a.parent));
                } else {
                    rule.from.cidrs.forEach((cidr, i) => {
                        new vpc.SecurityGroupIngressRule(`${name}-${rule.key}-${port}-${i}`, { ...base, cidrIpv4: cidr }, opts(a.parent));
                    });
                }
            }
        }
        return { groups: { redis: groups.redis.id, envoy: groups.envoy.id }, native: {} };
    },

    createSecretStore(name: string, a: SecretStoreArgs): SecretStoreRecord {
        // Secrets Manager needs no container; the store is the name prefix all secrets share.
        // Every secret is encrypted with the account's aws/secretsmanager KMS key.
        void a;
        return { id: pulumi.output(name), native: { prefix: pulumi.output(name) } };
    },

    createSecret(name: string, a: SecretArgs): SecretRecord {
        const secret = new secretsmanager.Secret(`${name}`, { name: pulumi.interpolate`${a.store.native.prefix}/${a.key}`, recoveryWindowInDays: 7, tags: a.tags }, opts(a.parent));
        new secretsmanager.SecretVersion(`${name}`, { secretId: secret.id, secretString: pulumi.secret(a.value) }, opts(a.parent));
        return { key: a.key, ref: secret.arn, id: secret.id };
    },

    createBucket(name: string, a: BucketArgs): BucketRecord {
        const bucket = new s3.Bucket(`${name}`, { forceDestroy: false, tags: a.tags }, opts(a.parent, { protect: false }));
        new s3.BucketPublicAccessBlock(`${name}-public-access`, { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true }, opts(a.parent));
        new s3.BucketVersioning(`${name}-versioning`, { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } }, opts(a.parent));
        new s3.BucketServerSideEncryptionConfiguration(`${name}-encryption`, { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms" }, bucketKeyEnabled: true }] }, opts(a.parent));
        new s3.BucketLifecycleConfiguration(`${name}-retention`, {
            bucket: bucket.id,
            rules: [{
                id: "retention",
                status: "Enabled",
                filter: {},
                ...(a.keepCurrent ? {} : { expiration: { days: a.retentionDays } }),
                noncurrentVersionExpiration: { noncurrentDays: a.retentionDays },
                abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
            }],
        }, opts(a.parent));
        new s3.BucketPolicy(`${name}-tls-only`, {
            bucket: bucket.id,
            policy: bucket.arn.apply((arn) => JSON.stringify({
                Version: "2012-10-17",
                Statement: [{ Sid: "DenyPlaintext", Effect: "Deny", Principal: "*", Action: "s3:*", Resource: [arn, `${arn}/*`], Condition: { Bool: { "aws:SecureTransport": "false" } } }],
            })),
        }, opts(a.parent));
        // region: the adapter's default provider creates the bucket in the stack's region.
        return { name: bucket.bucket, url: pulumi.interpolate`s3://${bucket.bucket}`, id: bucket.id, native: { arn: bucket.arn }, region: pulumi.output(a.region) };
    },

    createRegistry(name: string, a: RegistryArgs): RegistryRecord {
        const repo = new ecr.Repository(`${name}`, {
            imageTagMutability: "IMMUTABLE",
            imageScanningConfiguration: { scanOnPush: true },
            encryptionConfigurations: [{ encryptionType: "KMS" }],
            forceDelete: false,
            tags: a.tags,
        }, opts(a.parent));
        const token = ecr.getAuthorizationTokenOutput({ registryId: repo.registryId }, { parent: a.parent });
        return {
            id: repo.arn,
            url: repo.repositoryUrl,
            server: repo.repositoryUrl.apply((u) => u.split("/")[0]),
            username: token.userName,
            password: pulumi.secret(token.password),
        };
    },

    createIdentity(name: string, a: IdentityArgs): IdentityRecord {
        const role = new iam.Role(`${name}`, {
            assumeRolePolicy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }] }),
            tags: a.tags,
        }, opts(a.parent));
        const secretArns = pulumi.all(a.readSecrets.map((s) => s.ref));
        const bucketArn = a.writeBucket ? a.writeBucket.native.arn : pulumi.output("");
        const convergeArn = a.convergeStore ? a.convergeStore.bucket.native.arn : pulumi.output("");
        const policy = pulumi.all([secretArns, bucketArn, convergeArn]).apply(([arns, barn, carn]) => {
            const statements: object[] = [];
            if (arns.length > 0) statements.push({ Sid: "ReadOwnSecrets", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: arns });
            if (barn) {
                statements.push({ Sid: "WriteBackups", Effect: "Allow", Action: ["s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:AbortMultipartUpload"], Resource: [barn, `${barn}/*`] });
                // Nodes may write but never delete: a compromised node cannot erase the backups.
                statements.push({ Sid: "NeverDelete", Effect: "Deny", Action: ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutLifecycleConfiguration", "s3:PutBucketVersioning"], Resource: [barn, `${barn}/*`] });
            }
            if (carn && a.convergeStore) statements.push(...convergeStatements(carn, a.convergeStore));
            statements.push({ Sid: "PullImages", Effect: "Allow", Action: ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], Resource: "*" });
            return JSON.stringify({ Version: "2012-10-17", Statement: statements });
        });
        new iam.RolePolicy(`${name}`, { role: role.id, policy }, opts(a.parent));
        const profile = new iam.InstanceProfile(`${name}`, { role: role.name, tags: a.tags }, opts(a.parent));
        return { id: profile.name, principal: role.arn, native: { roleName: role.name } };
    },

    convergeStoreSettings(bucket: BucketRecord, prefix: string): pulumi.Output<ConvergeStoreSettings> {
        return pulumi.all([bucket.name, bucket.region ?? pulumi.output("")]).apply(([b, region]): ConvergeStoreSettings => ({ kind: "s3", endpoint: `https://s3.${region}.amazonaws.com`, bucket: b, prefix, region }));
    },

    reserveAddress(name: string, a: AddressArgs): AddressRecord {
        const eni = new ec2.NetworkInterface(`${name}`, {
            subnetId: a.network.subnetIds[a.zone],
            securityGroups: [a.firewall.groups[a.role]],
            sourceDestCheck: true,
            tags: withName(a.tags, a.hostName),
        }, opts(a.parent));
        return { zone: a.zone, privateIp: eni.privateIp, dnsName: eni.privateDnsName, id: eni.id };
    },

    createVm(name: string, a: VmArgs): VmRecord {
        const ami = ec2.getAmiOutput({
            mostRecent: true,
            owners: [DEBIAN_OWNER],
            filters: [{ name: "name", values: [`debian-12-${awsAdapter.architectureOf!(a.size)}-*`] }],
        }, { parent: a.parent });
        const vm = new ec2.Instance(`${name}`, {
            ami: ami.id,
            instanceType: a.size,
            availabilityZone: a.zone,
            primaryNetworkInterface: { networkInterfaceId: a.address.id },
            iamInstanceProfile: a.identity.id,
            // EC2 limits raw user-data to 16 KiB; RedisForge's is ~20 KiB, so it goes gzip + base64
            // (cloud-init detects gzip). A change reaches the VM at its next boot, not by replacement.
            userDataBase64: pulumi.output(a.userData).apply((u) => gzipSync(Buffer.from(u, "utf8"), { level: 9 }).toString("base64")),
            userDataReplaceOnChange: false,
            metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 2 },
            rootBlockDevice: { encrypted: true, volumeType: "gp3", volumeSize: 20 },
            tags: withName(a.tags, a.hostName),
        }, opts(a.parent, { ignoreChanges: ["ami"] }));
        let dataDiskId = pulumi.output("");
        if (a.dataDiskGb > 0) {
            // Attached as /dev/sdf; Nitro instances expose it as /dev/nvme1n1 (dataDiskDevice).
            const disk = new ebs.Volume(`${name}-data`, { availabilityZone: a.zone, size: a.dataDiskGb, type: "gp3", encrypted: true, tags: withName(a.tags, `${a.hostName}-data`) }, opts(a.parent));
            new ec2.VolumeAttachment(`${name}-data`, { instanceId: vm.id, volumeId: disk.id, deviceName: "/dev/sdf" }, opts(a.parent));
            dataDiskId = disk.id;
        }
        return { id: vm.id, zone: a.zone, role: a.role, hostName: a.hostName, privateIp: a.address.privateIp, dnsName: a.address.dnsName, dataDiskId };
    },

    createLoadBalancer(name: string, a: LoadBalancerArgs): LoadBalancerRecord {
        const subnets = a.internal
            ? pulumi.all(a.network.zones.map((z) => a.network.subnetIds[z]))
            : a.network.native.publicSubnetIds.apply((s) => s.split(","));
        const sg = new ec2.SecurityGroup(`${name}-lb`, {
            vpcId: a.network.networkId,
            description: "RedisForge NLB: client port from client CIDRs only",
            ingress: [{ protocol: "tcp", fromPort: a.port, toPort: a.port, cidrBlocks: a.clientCidrs, description: "clients" }],
            egress: [{ protocol: "tcp", fromPort: a.port, toPort: a.port, cidrBlocks: [a.network.native.cidr], description: "to Envoys" }],
            tags: withName(a.tags, `${name}-lb`),
        }, opts(a.parent));
        // NLB health checks (and, with client IP preservation, nothing else) come from the NLB's
        // own addresses: let its security group reach the Envoy listener.
        new vpc.SecurityGroupIngressRule(`${name}-health-checks`, {
            securityGroupId: a.firewall.groups.envoy,
            referencedSecurityGroupId: sg.id,
            ipProtocol: "tcp",
            fromPort: a.healthCheckPort,
            toPort: a.healthCheckPort,
            description: "NLB health checks to the Envoy listener",
            tags: a.tags,
        }, opts(a.parent));
        const nlb = new lb.LoadBalancer(`${name}`, {
            loadBalancerType: "network",
            internal: a.internal,
            subnets,
            securityGroups: [sg.id],
            enableCrossZoneLoadBalancing: true,
            tags: a.tags,
        }, opts(a.parent));
        const tg = new lb.TargetGroup(`${name}`, {
            port: a.port,
            protocol: "TCP",
            targetType: "instance",
            vpcId: a.network.networkId,
            healthCheck: { protocol: "TCP", port: String(a.healthCheckPort), healthyThreshold: 2, unhealthyThreshold: 2, interval: 10 },
            deregistrationDelay: 30,
            tags: a.tags,
        }, opts(a.parent));
        new lb.Listener(`${name}`, { loadBalancerArn: nlb.arn, port: a.port, protocol: "TCP", defaultActions: [{ type: "forward", targetGroupArn: tg.arn }], tags: a.tags }, opts(a.parent));
        return { dnsName: nlb.dnsName, address: pulumi.output(""), id: nlb.arn, native: { targetGroupArn: tg.arn, securityGroupId: sg.id } };
    },

    attachToLoadBalancer(name: string, a: AttachArgs): void {
        a.targets.forEach((t, i) => {
            new lb.TargetGroupAttachment(`${name}-${i}`, { targetGroupArn: a.lb.native.targetGroupArn, targetId: t.id, port: a.port }, opts(a.parent));
        });
    },
};
