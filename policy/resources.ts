/**
 * What the policies read from a resource: its type token, its properties as the engine hands them
 * to the analyzer, and the identity tags the adapters set (components/tags.ts: `redisforge:role`,
 * `redisforge:zone`, `redisforge:redis-role`, `redisforge:shard`; GCP carries them as labels with
 * `:` turned into `_`, see gcpLabels in providers/gcp; the qemu VM records them as its `tags` input).
 * Pure: no engine, no SDK.
 */

/** The part of a resource every policy reads (PolicyResource and ResourceValidationArgs both fit). */
export interface ResourceLike {
    type: string;
    name: string;
    urn: string;
    props: Record<string, any>;
}

export const T = {
    awsSecurityGroup: "aws:ec2/securityGroup:SecurityGroup",
    awsSecurityGroupRule: "aws:ec2/securityGroupRule:SecurityGroupRule",
    awsIngressRule: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    awsInstance: "aws:ec2/instance:Instance",
    awsLaunchTemplate: "aws:ec2/launchTemplate:LaunchTemplate",
    awsEip: "aws:ec2/eip:Eip",
    awsBucket: "aws:s3/bucket:Bucket",
    awsBucketV2: "aws:s3/bucketV2:BucketV2",
    awsPublicAccessBlock: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    awsVersioning: "aws:s3/bucketVersioning:BucketVersioning",
    awsVersioningV2: "aws:s3/bucketVersioningV2:BucketVersioningV2",
    awsEncryption: "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    awsEncryptionV2: "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    awsLifecycle: "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    awsLifecycleV2: "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
    awsBucketAcl: "aws:s3/bucketAclV2:BucketAclV2",
    gcpFirewall: "gcp:compute/firewall:Firewall",
    gcpInstance: "gcp:compute/instance:Instance",
    gcpInstanceTemplate: "gcp:compute/instanceTemplate:InstanceTemplate",
    gcpBucket: "gcp:storage/bucket:Bucket",
    gcpBucketIamMember: "gcp:storage/bucketIAMMember:BucketIAMMember",
    gcpBucketIamBinding: "gcp:storage/bucketIAMBinding:BucketIAMBinding",
    azureNsg: "azure-native:network:NetworkSecurityGroup",
    azureSecurityRule: "azure-native:network:SecurityRule",
    azureNic: "azure-native:network:NetworkInterface",
    azureVm: "azure-native:compute:VirtualMachine",
    azureStorageAccount: "azure-native:storage:StorageAccount",
    azureBlobService: "azure-native:storage:BlobServiceProperties",
    azureContainer: "azure-native:storage:BlobContainer",
    azureManagementPolicy: "azure-native:storage:ManagementPolicy",
    localRedisProcess: "pulumi-nodejs:dynamic/local:RedisProcess",
    // The qemu cloud (providers/qemu/resources): dynamic resources of this machine's VM stack.
    qemuVm: "pulumi-nodejs:dynamic/qemu:Vm",
    qemuFirewall: "pulumi-nodejs:dynamic/qemu:Firewall",
    qemuService: "pulumi-nodejs:dynamic/qemu:Service",
} as const;

/** The virtual machine types the VM policies look at. */
export const VM_TYPES: readonly string[] = [T.awsInstance, T.gcpInstance, T.azureVm, T.qemuVm];

/** GCP label key of a tag key (what gcpLabels does to keys). */
export function labelKey(key: string): string {
    return key.toLowerCase().replace(/[^a-z0-9_-]/g, "_").slice(0, 63);
}

/** A RedisForge identity tag of a resource: AWS/Azure/qemu `tags`, GCP `labels` (key mangled, value lower-cased). */
export function tagOf(r: Pick<ResourceLike, "props">, key: string): string | undefined {
    const tags = r.props.tags;
    if (tags && typeof tags === "object" && !Array.isArray(tags) && typeof tags[key] === "string") return tags[key];
    const labels = r.props.labels;
    if (labels && typeof labels === "object" && typeof labels[labelKey(key)] === "string") return labels[labelKey(key)];
    return undefined;
}

/** `redis`, `envoy`, ... from the `redisforge:role` tag; undefined for resources without it. */
export const roleOf = (r: Pick<ResourceLike, "props">) => tagOf(r, "redisforge:role");

/** Array of a property that may be absent or a single value. */
export function arr<X = any>(v: unknown): X[] {
    if (v === undefined || v === null) return [];
    return Array.isArray(v) ? (v as X[]) : [v as X];
}

/**
 * `f()`, or undefined when it reads a value the engine cannot know yet: during a preview
 * @pulumi/policy hands over properties that throw an UnknownValueError on access (an id of a resource
 * still to be created), and one such read would otherwise skip a whole stack policy.
 */
export function known<X>(f: () => X): X | undefined {
    try {
        return f();
    } catch (e) {
        if ((e as { constructor?: { name?: string } })?.constructor?.name === "UnknownValueError") return undefined;
        throw e;
    }
}
