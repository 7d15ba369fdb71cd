/**
 * Credentials of the VM's own identity, fetched from the cloud's metadata service the way the
 * cloud's SDKs do, and cached until shortly before they expire. What the converge agent on a node
 * uses to reach its store, so that no key is written on the node:
 *
 *   AWS (and the qemu cloud's metadata service, which speaks the same protocol): IMDSv2 session
 *     token (PUT /latest/api/token), role name, then the role's temporary keys
 *     (GET /latest/meta-data/iam/security-credentials/<role>: AccessKeyId, SecretAccessKey, Token,
 *     Expiration).
 *   GCP: the default service account's OAuth token
 *     (GET /computeMetadata/v1/instance/service-accounts/default/token, Metadata-Flavor: Google).
 *   Azure: a managed identity token for Azure Storage
 *     (GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com/
 *      [&client_id=<user-assigned identity>], Metadata: true; expires_on in epoch seconds).
 *
 * Every request is bounded (timeoutMs); a refused or malformed answer is an error naming the
 * endpoint and the status, never the credential.
 */
import { httpCall } from "./http";
import { SigV4Credentials } from "./sigv4";

/** Refresh this long before the expiry the metadata service announced. */
const EARLY_MS = 5 * 60 * 1000;

export interface InstanceCredentialOptions {
    /** Metadata service base URL; default the cloud's link-local one. */
    endpoint?: string;
    timeoutMs?: number;
    /** Clock for tests; default Date.now. */
    now?: () => number;
}

function cached<T>(fetchOne: () => Promise<{ value: T; expiresAt: number }>, now: () => number): () => Promise<T> {
    let cur: { value: T; expiresAt: number } | undefined;
    let inflight: Promise<{ value: T; expiresAt: number }> | undefined;
    return async () => {
        if (cur && now() < cur.expiresAt - EARLY_MS) return cur.value;
        inflight ??= fetchOne().finally(() => (inflight = undefined));
        cur = await inflight;
        return cur.value;
    };
}

function expiryOf(v: unknown, what: string): number {
    const t = typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(String(v));
    if (!Number.isFinite(t)) throw new Error(`${what}: no usable expiry (${JSON.stringify(v)})`);
    return t;
}

async function getJson(url: URL, headers: Record<string, string>, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    const r = await httpCall(url, "GET", headers, "", timeoutMs);
    if (r.status !== 200) throw new Error(`${what}: ${url.origin}${url.pathname} answered ${r.status}`);
    try {
        return JSON.parse(r.body) as Record<string, unknown>;
    } catch {
        throw new Error(`${what}: ${url.origin}${url.pathname} did not answer JSON`);
    }
}

/** AWS instance-role keys through IMDSv2 (also the qemu cloud's metadata service). */
export function awsInstanceCredentials(o: InstanceCredentialOptions = {}): () => Promise<SigV4Credentials> {
    const base = (o.endpoint ?? "http://169.254.169.254").replace(/\/$/, "");
    const t = o.timeoutMs ?? 5000;
    const what = "instance role credentials";
    return cached(async () => {
        const tok = await httpCall(new URL(`${base}/latest/api/token`), "PUT", { "x-aws-ec2-metadata-token-ttl-seconds": "300" }, "", t);
        if (tok.status !== 200 || !tok.body) throw new Error(`${what}: ${base}/latest/api/token answered ${tok.status} (IMDSv2 session token)`);
        const h = { "x-aws-ec2-metadata-token": tok.body.trim() };
        const list = await httpCall(new URL(`${base}/latest/meta-data/iam/security-credentials/`), "GET", h, "", t);
        const role = list.status === 200 ? list.body.split("\n")[0].trim() : "";
        if (!role) throw new Error(`${what}: ${base}/latest/meta-data/iam/security-credentials/ answered ${list.status}${list.status === 200 ? " with no role" : ""}: does this VM have an instance profile?`);
        const c = await getJson(new URL(`${base}/latest/meta-data/iam/security-credentials/${encodeURIComponent(role)}`), h, t, what);
        if (typeof c.AccessKeyId !== "string" || typeof c.SecretAccessKey !== "string" || !c.AccessKeyId || !c.SecretAccessKey) throw new Error(`${what}: the answer for role ${role} has no AccessKeyId/SecretAccessKey`);
        const value: SigV4Credentials = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: typeof c.Token === "string" && c.Token ? c.Token : undefined };
        return { value, expiresAt: expiryOf(c.Expiration, what) };
    }, o.now ?? Date.now);
}

/** GCP: the VM's default service account token (GCE_METADATA_HOST-style host:port in `endpoint` for tests). */
export function gceInstanceToken(o: InstanceCredentialOptions = {}): () => Promise<string> {
    const base = (o.endpoint ?? "http://metadata.google.internal").replace(/\/$/, "");
    const now = o.now ?? Date.now;
    const what = "service account token";
    return cached(async () => {
        const j = await getJson(new URL(`${base}/computeMetadata/v1/instance/service-accounts/default/token`), { "metadata-flavor": "Google" }, o.timeoutMs ?? 5000, what);
        if (typeof j.access_token !== "string" || !j.access_token) throw new Error(`${what}: the answer has no access_token`);
        const exp = Number(j.expires_in);
        if (!Number.isFinite(exp) || exp <= 0) throw new Error(`${what}: the answer has no usable expires_in`);
        return { value: j.access_token, expiresAt: now() + exp * 1000 };
    }, now);
}

/** Azure: a managed identity token for Azure Storage (clientId names a user-assigned identity). */
export function azureInstanceToken(o: InstanceCredentialOptions & { clientId?: string } = {}): () => Promise<string> {
    const base = (o.endpoint ?? "http://169.254.169.254").replace(/\/$/, "");
    const what = "managed identity token";
    return cached(async () => {
        const u = new URL(`${base}/metadata/identity/oauth2/token`);
        u.searchParams.set("api-version", "2018-02-01");
        u.searchParams.set("resource", "https://storage.azure.com/");
        if (o.clientId) u.searchParams.set("client_id", o.clientId);
        const j = await getJson(u, { metadata: "true" }, o.timeoutMs ?? 5000, what);
        if (typeof j.access_token !== "string" || !j.access_token) throw new Error(`${what}: the answer has no access_token`);
        return { value: j.access_token, expiresAt: expiryOf(j.expires_on, what) };
    }, o.now ?? Date.now);
}
