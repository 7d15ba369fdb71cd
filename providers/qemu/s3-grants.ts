/**
 * The qemu cloud's bucket operations, run in the deploying machine's provider host (loaded by
 * resources/bucket.ts through hostModule): make a bucket on the stack's S3 service, and keep each
 * bucket's policy equal to the union of its grants.
 *
 * A grant is one identity's statements on one bucket (the backup writer's, the converge agent's),
 * kept as `<grantsDir>/<bucket>/<identity>.json`; the bucket policy is rebuilt from those files on
 * every change, with the stack's VM principal as Principal, so removing one identity's grant never
 * removes what another identity still needs (every Redis identity grants the same statements).
 * Changes of one bucket's policy are serialised in this process (the engine runs the grants of
 * several nodes in parallel, all in one provider host).
 */
import * as fs from "fs";
import * as path from "path";
import { ensureBucket, putBucketPolicy, removeBucketIfEmpty, S3AdminTarget, S3Statement } from "../object-store/s3-admin";
import { BucketKeys, readKeys } from "./resources/store";

export const QEMU_S3_REGION = "us-east-1";

function keysOf(keysFile: string): BucketKeys {
    const text = readKeys(keysFile);
    if (!text) throw new Error(`the stack's S3 keys file ${keysFile} is missing; run \`pulumi up\` again (it recreates the keys and restarts the S3 service)`);
    return JSON.parse(text) as BucketKeys;
}

const targetOf = (endpoint: string, keys: BucketKeys): S3AdminTarget => ({ endpoint, region: QEMU_S3_REGION, root: keys.root });

/** Why a request to the stack's S3 service failed, with what to do. */
function explain(what: string, endpoint: string, e: Error): Error {
    const down = /ECONNREFUSED|ECONNRESET|EHOSTUNREACH|no answer within/.test(e.message);
    return new Error(`qemu S3 service ${endpoint}: ${what}: ${e.message}${down ? " (the stack's S3 service is not answering, or the stack firewall refuses this machine: `pulumi refresh` then `pulumi up` restarts the service and reloads the rules)" : ""}`);
}

export async function createBucket(endpoint: string, keysFile: string, bucket: string): Promise<void> {
    try {
        await ensureBucket(targetOf(endpoint, keysOf(keysFile)), bucket);
    } catch (e) {
        throw explain(`create bucket ${bucket}`, endpoint, e as Error);
    }
}

/** Deletes the bucket when empty; a bucket with objects is kept (false) and goes with the service's data. */
export async function deleteBucket(endpoint: string, keysFile: string, bucket: string): Promise<boolean> {
    if (readKeys(keysFile) === undefined) return true; // the stack's S3 service and its data are gone already
    try {
        return await removeBucketIfEmpty(targetOf(endpoint, keysOf(keysFile)), bucket);
    } catch (e) {
        throw explain(`delete bucket ${bucket}`, endpoint, e as Error);
    }
}

/** The bucket policy of these grants: their statements, identical ones once, Sids made unique. */
export function policyOf(grants: S3Statement[][], principal: string): S3Statement[] {
    const seen = new Set<string>();
    const sids = new Map<string, number>();
    const out: S3Statement[] = [];
    for (const st of grants.flat()) {
        const key = JSON.stringify(st);
        if (seen.has(key)) continue;
        seen.add(key);
        const n = sids.get(st.Sid) ?? 0;
        sids.set(st.Sid, n + 1);
        out.push({ ...st, Sid: n ? `${st.Sid}${n + 1}` : st.Sid, Principal: { AWS: principal } });
    }
    return out;
}

const chains = new Map<string, Promise<unknown>>();

/** Runs `f` after every earlier change of the same bucket's policy in this process. */
function serial<T>(key: string, f: () => Promise<T>): Promise<T> {
    const next = (chains.get(key) ?? Promise.resolve()).catch(() => undefined).then(f);
    chains.set(key, next);
    return next;
}

export interface GrantArgs {
    endpoint: string;
    keysFile: string;
    grantsDir: string;
    bucket: string;
    /** The identity's name (one grant file per identity and bucket). */
    identity: string;
    /** The identity's statements; undefined removes its grant. */
    statements?: S3Statement[];
}

/** Writes (or removes) one identity's grant and sets the bucket's policy to the union of its grants. */
export function applyGrant(a: GrantArgs): Promise<void> {
    return serial(`${a.grantsDir}/${a.bucket}`, async () => {
        const dir = path.join(a.grantsDir, a.bucket);
        const file = path.join(dir, `${a.identity}.json`);
        // The keys first (a grant is never written for a service without keys); a removal after the
        // stack's S3 service and its data went (keys file gone) has nothing to tell it.
        const keys = a.statements === undefined && readKeys(a.keysFile) === undefined ? undefined : keysOf(a.keysFile);
        if (a.statements === undefined) fs.rmSync(file, { force: true });
        else {
            fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
            fs.writeFileSync(file, `${JSON.stringify(a.statements)}\n`, { mode: 0o600 });
        }
        const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort() : [];
        const grants = names.map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as S3Statement[]);
        if (keys) {
            try {
                await putBucketPolicy(targetOf(a.endpoint, keys), a.bucket, policyOf(grants, keys.vm.accessKeyId));
            } catch (e) {
                throw explain(`set the policy of ${a.bucket} (${grants.length} grant(s))`, a.endpoint, e as Error);
            }
        }
        if (grants.length === 0) fs.rmSync(dir, { recursive: true, force: true }); // the bucket's last grant went
    });
}
