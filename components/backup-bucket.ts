/**
 * BackupBucket: where nodes upload AOF + nodes.conf backups. Private, versioned, encrypted,
 * public access blocked, objects expire after the retention period; node identities may write
 * but never delete (granted per identity by the adapter, see `IdentityArgs.writeBucket`).
 */
import * as pulumi from "@pulumi/pulumi";
import type { BucketRecord, CloudAdapter } from "../providers/types";

export interface BackupBucketArgs {
    adapter: CloudAdapter;
    /** Region of the stack. */
    region: string;
    /** Days a backup (and each old version) is kept; ≥ 1. */
    retentionDays: number;
    /** Identity tags. */
    tags: Record<string, string>;
}

export class BackupBucket extends pulumi.ComponentResource {
    public readonly record: BucketRecord;
    /** `s3://…`, `gs://…`, `https://acct.blob.core.windows.net/c`. */
    public readonly url: pulumi.Output<string>;

    constructor(name: string, args: BackupBucketArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redisforge:backup:BackupBucket", name, {}, opts);
        if (!Number.isInteger(args.retentionDays) || args.retentionDays < 1) {
            throw new pulumi.ResourceError(`BackupBucket ${name}: retentionDays=${args.retentionDays} must be an integer ≥ 1; set redisforge:backupRetentionDays`, this);
        }
        this.record = args.adapter.createBucket(`${name}-bucket`, { parent: this, tags: args.tags, region: args.region, retentionDays: args.retentionDays });
        this.url = this.record.url;
        this.registerOutputs({ url: this.url, name: this.record.name });
    }
}
