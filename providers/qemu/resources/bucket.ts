/**
 * A bucket on the stack's S3 service and an identity's grant on it, as dynamic resources (the
 * requests are made from the deploying machine over the S3 API, as a cloud's bucket and IAM
 * resources are; the operations are providers/qemu/s3-grants.ts, loaded in the provider host):
 * - QemuS3Bucket: the bucket; delete removes it when empty and keeps one that holds objects (they
 *   go with the S3 service's data when the stack is destroyed: never a silent data loss);
 * - QemuBucketGrant: one identity's policy statements on one bucket; the bucket policy is the
 *   union of the bucket's grants, with the stack's VM principal as Principal.
 * The state keeps names, the statements (no key) and the keys file's digest, never a key.
 */
import * as pulumi from "@pulumi/pulumi";
import type { S3Statement } from "../../object-store/s3-admin";
import { hostModule } from "./host";

type Grants = typeof import("../s3-grants");
const grants = () => hostModule<Grants>("providers/qemu/s3-grants");

export interface QemuS3BucketInputs {
    /** The stack's S3 endpoint, http://<services .3>:9000. */
    endpoint: string;
    /** The stack's QemuBucketKeys file and its digest (new keys: the bucket is made again on the restarted service). */
    keysFile: string;
    keysDigest: string;
    bucket: string;
}

export const qemuS3BucketProvider: pulumi.dynamic.ResourceProvider = {
    async check(_o: QemuS3BucketInputs, news: QemuS3BucketInputs) {
        const failures = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(news.bucket) ? [] : [{ property: "bucket", reason: `bucket ${JSON.stringify(news.bucket)} must be 3-63 lower-case letters, digits and -` }];
        return { inputs: news, failures };
    },
    async diff(_id: string, olds: QemuS3BucketInputs, news: QemuS3BucketInputs) {
        const replaces = (["bucket", "endpoint", "keysFile"] as const).filter((k) => olds[k] !== news[k]);
        return { changes: replaces.length > 0 || olds.keysDigest !== news.keysDigest, replaces, deleteBeforeReplace: true };
    },
    async create(i: QemuS3BucketInputs) {
        await grants().createBucket(i.endpoint, i.keysFile, i.bucket);
        return { id: i.bucket, outs: i };
    },
    async update(_id: string, _o: QemuS3BucketInputs, news: QemuS3BucketInputs) {
        await grants().createBucket(news.endpoint, news.keysFile, news.bucket);
        return { outs: news };
    },
    async delete(_id: string, props: QemuS3BucketInputs) {
        await grants().deleteBucket(props.endpoint, props.keysFile, props.bucket);
    },
};

export class QemuS3Bucket extends pulumi.dynamic.Resource {
    declare public readonly bucket: pulumi.Output<string>;
    declare public readonly endpoint: pulumi.Output<string>;
    constructor(name: string, args: { [K in keyof QemuS3BucketInputs]: pulumi.Input<QemuS3BucketInputs[K]> }, opts?: pulumi.CustomResourceOptions) {
        super(qemuS3BucketProvider, name, args, opts, "qemu", "S3Bucket");
    }
}

export interface QemuBucketGrantInputs extends QemuS3BucketInputs {
    /** `<state>/s3-grants`: one file per bucket and identity. */
    grantsDir: string;
    /** The identity's name. */
    identity: string;
    statements: S3Statement[];
}

const apply = (i: QemuBucketGrantInputs, statements?: S3Statement[]) =>
    grants().applyGrant({ endpoint: i.endpoint, keysFile: i.keysFile, grantsDir: i.grantsDir, bucket: i.bucket, identity: i.identity, statements });

export const qemuBucketGrantProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: QemuBucketGrantInputs, news: QemuBucketGrantInputs) {
        const replaces = (["bucket", "endpoint", "keysFile", "grantsDir", "identity"] as const).filter((k) => olds[k] !== news[k]);
        const changes = replaces.length > 0 || olds.keysDigest !== news.keysDigest || JSON.stringify(olds.statements) !== JSON.stringify(news.statements);
        return { changes, replaces, deleteBeforeReplace: true };
    },
    async create(i: QemuBucketGrantInputs) {
        await apply(i, i.statements);
        return { id: `${i.bucket}/${i.identity}`, outs: i };
    },
    async update(_id: string, _o: QemuBucketGrantInputs, news: QemuBucketGrantInputs) {
        await apply(news, news.statements);
        return { outs: news };
    },
    async delete(_id: string, props: QemuBucketGrantInputs) {
        await apply(props, undefined);
    },
};

export class QemuBucketGrant extends pulumi.dynamic.Resource {
    constructor(name: string, args: { [K in keyof QemuBucketGrantInputs]: pulumi.Input<QemuBucketGrantInputs[K]> }, opts?: pulumi.CustomResourceOptions) {
        super(qemuBucketGrantProvider, name, args, opts, "qemu", "BucketGrant");
    }
}
