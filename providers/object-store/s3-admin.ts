/**
 * Administrative S3 requests, signed with an administrator's key: make a bucket, register a user
 * (Versity Gateway's admin API, `PATCH /create-user`), set or remove a bucket policy; and the
 * policy statements RedisForge grants on S3 (the backup writer's, the converge agent's).
 *
 * Used by the qemu cloud's bucket and grant resources (from the deploying machine, over the
 * stack's S3 endpoint) and by lab's S3Server (the tests' versitygw). Every call is one bounded
 * request; the caller decides about retries.
 */
import { httpCall, HttpAnswer } from "./http";
import { sigv4Headers, SigV4Credentials } from "./sigv4";

export interface S3AdminTarget {
    /** http(s)://host:port of the S3 API (path-style requests). */
    endpoint: string;
    region: string;
    /** The administrator (versitygw's root user). */
    root: SigV4Credentials;
    timeoutMs?: number;
}

/** The actions the backup writer is granted: what rclone copy/copyto/check/lsf/cat need, and no delete. */
export const BACKUP_USER_ACTIONS = ["s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:ListBucketMultipartUploads"];

/** A policy statement (IAM or bucket policy shape). */
export type S3Statement = Record<string, unknown> & { Sid: string; Effect: "Allow" | "Deny"; Action: string[]; Resource: string[] };

/** The backup writer's statement on `bucketArn`: put, get, list, no delete. */
export function backupStatements(bucketArn: string): S3Statement[] {
    return [{ Sid: "RedisForgeBackupWriteReadListNoDelete", Effect: "Allow", Action: BACKUP_USER_ACTIONS, Resource: [bucketArn, `${bucketArn}/*`] }];
}

/**
 * The converge agent's grant on its store bucket (formation `agent`): get the spec, get and put the
 * status and the lease, under the cluster's prefix only. ListBucket on that bucket (it holds nothing
 * but converge documents) because S3 answers a GET of a missing object with 403 instead of 404 to a
 * caller without it, and the agent must tell "no lease yet" from "refused". Never delete.
 */
export function convergeStatements(bucketArn: string, g: { prefix: string; read: readonly string[]; readWrite: readonly string[] }): S3Statement[] {
    const objects = (keys: readonly string[]) => keys.map((k) => `${bucketArn}/${g.prefix}/${k}`);
    return [
        { Sid: "ConvergeReadSpec", Effect: "Allow", Action: ["s3:GetObject"], Resource: objects(g.read) },
        { Sid: "ConvergeWriteStatus", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: objects(g.readWrite) },
        { Sid: "ConvergeList", Effect: "Allow", Action: ["s3:ListBucket"], Resource: [bucketArn] },
        { Sid: "ConvergeNeverDelete", Effect: "Deny", Action: ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutLifecycleConfiguration", "s3:PutBucketVersioning", "s3:PutBucketPolicy"], Resource: [bucketArn, `${bucketArn}/*`] },
    ];
}

/** One request signed as the administrator (or `as`). */
export function s3AdminCall(t: S3AdminTarget, method: string, pathAndQuery: string, body: Buffer | string = "", as: SigV4Credentials = t.root): Promise<HttpAnswer> {
    const url = new URL(`${t.endpoint.replace(/\/+$/, "")}${pathAndQuery}`);
    const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
    return httpCall(url, method, sigv4Headers({ method, url, body: b, creds: as, region: t.region }), b, t.timeoutMs ?? 10000);
}

const ok = (a: HttpAnswer) => a.status >= 200 && a.status <= 299;
const fail = (what: string, a: HttpAnswer) => new Error(`${what}: HTTP ${a.status} ${a.body.slice(0, 300)}`);

/** Creates the bucket, or finds it already there (owned by the administrator). */
export async function ensureBucket(t: S3AdminTarget, bucket: string): Promise<void> {
    const a = await s3AdminCall(t, "PUT", `/${bucket}`);
    if (!ok(a) && !/BucketAlreadyOwnedByYou/.test(a.body)) throw fail(`create bucket ${bucket}`, a);
}

/**
 * Removes the bucket when it is empty: true when gone (or never there), false when it still holds
 * objects (kept: a delete never destroys data it was not asked to).
 */
export async function removeBucketIfEmpty(t: S3AdminTarget, bucket: string): Promise<boolean> {
    const a = await s3AdminCall(t, "DELETE", `/${bucket}`);
    if (ok(a) || a.status === 404) return true;
    if (/BucketNotEmpty/.test(a.body)) return false;
    throw fail(`delete bucket ${bucket}`, a);
}

/** Registers a user (Versity Gateway admin API); an existing user of that key id is the one asked for. */
export async function ensureUser(t: S3AdminTarget, user: SigV4Credentials): Promise<void> {
    const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
    const account = `<Account><Access>${esc(user.accessKeyId)}</Access><Secret>${esc(user.secretAccessKey)}</Secret><Role>user</Role><UserID>0</UserID><GroupID>0</GroupID><ProjectID>0</ProjectID></Account>`;
    const a = await s3AdminCall(t, "PATCH", "/create-user", account);
    if (!ok(a) && !(a.status === 409 && /XAdminUserExists/.test(a.body))) throw fail(`create user ${user.accessKeyId}`, a);
}

/** Sets the bucket's policy to these statements; none removes the policy. */
export async function putBucketPolicy(t: S3AdminTarget, bucket: string, statements: S3Statement[]): Promise<void> {
    if (statements.length === 0) {
        const d = await s3AdminCall(t, "DELETE", `/${bucket}?policy`);
        if (!ok(d) && d.status !== 404) throw fail(`delete the policy of ${bucket}`, d);
        return;
    }
    const a = await s3AdminCall(t, "PUT", `/${bucket}?policy`, JSON.stringify({ Version: "2012-10-17", Statement: statements }));
    if (!ok(a)) throw fail(`put the policy of ${bucket}`, a);
}
