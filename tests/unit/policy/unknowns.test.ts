/**
 * In a preview the engine hands stack policies properties that are not known yet, through
 * @pulumi/policy's own proxy (reading one throws UnknownValueError). A bucket whose companions'
 * `bucket` id is unknown is still linked to them (by dependency or name) and checked, instead of the
 * whole policy being skipped.
 */
import { bucketViolations } from "../../../policy/checks";
import type { ResourceLike } from "../../../policy/resources";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const proxy = require("@pulumi/policy/proxy");

const res = (type: string, name: string, props: Record<string, unknown>): ResourceLike => ({ type, name, urn: `urn:pulumi:s::p::${type}::${name}`, props: proxy.unknownCheckingProxy(props) });

describe("stack policies with values unknown at preview", () => {
    const bucket = res("aws:s3/bucket:Bucket", "backup", { bucket: proxy.unknownStringValue, id: proxy.unknownStringValue });
    const companions = (status: string) => [
        res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "backup-public-access", { bucket: proxy.unknownStringValue, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true }),
        res("aws:s3/bucketVersioning:BucketVersioning", "backup-versioning", { bucket: proxy.unknownStringValue, versioningConfiguration: { status } }),
        res("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "backup-encryption", { bucket: proxy.unknownStringValue, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms" } }] }),
        res("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "backup-retention", { bucket: proxy.unknownStringValue, rules: [{ status: "Enabled", expiration: { days: 14 }, noncurrentVersionExpiration: { noncurrentDays: 14 } }] }),
    ];

    it("the proxy really throws on an unknown read", () => {
        expect(() => String((bucket.props as { bucket: unknown }).bucket)).toThrow(/can't be known during preview/);
    });

    it("links companions by name and checks them", () => {
        expect(bucketViolations({ resources: [bucket, ...companions("Enabled")] })).toEqual([]);
        expect(bucketViolations({ resources: [bucket, ...companions("Suspended")] }).map((v) => v.message)).toEqual([expect.stringMatching(/not versioned/)]);
    });
});
