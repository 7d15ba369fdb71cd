/**
 * AWS Signature Version 4 for one S3-style request: the converge agent's store client
 * (providers/redis-cluster/agent/s3-store.ts) and the lab's S3 server admin calls use it.
 *
 * Signs host, x-amz-date, x-amz-content-sha256, x-amz-security-token (temporary credentials of an
 * instance role) and every extra header passed in `headers` (e.g. if-match, if-none-match), so a
 * proxy cannot strip a condition without breaking the signature.
 */
import { createHash, createHmac } from "crypto";

export interface SigV4Credentials {
    accessKeyId: string;
    secretAccessKey: string;
    /** Session token of temporary credentials (instance role); sent and signed as x-amz-security-token. */
    sessionToken?: string;
}

const uriEncode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export function sigv4Headers(p: {
    method: string;
    url: URL;
    body: Buffer;
    creds: SigV4Credentials;
    region: string;
    service?: string;
    now?: Date;
    /** Extra headers to send AND sign (names lower-cased here). */
    headers?: Record<string, string>;
}): Record<string, string> {
    const now = p.now ?? new Date();
    const amzDate = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, ""); // 20261129T110000Z
    const day = amzDate.slice(0, 8);
    const service = p.service ?? "s3";
    const payloadHash = createHash("sha256").update(p.body).digest("hex");
    const query = [...p.url.searchParams.entries()]
        .map(([k, v]) => [uriEncode(k), uriEncode(v)])
        .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
        .map(([k, v]) => `${k}=${v}`)
        .join("&");
    const headers: Record<string, string> = { host: p.url.host, "x-amz-content-sha256": payloadHash, "x-amz-date": amzDate };
    if (p.creds.sessionToken) headers["x-amz-security-token"] = p.creds.sessionToken;
    for (const [k, v] of Object.entries(p.headers ?? {})) headers[k.toLowerCase()] = v.trim();
    const names = Object.keys(headers).sort();
    const canonical = [p.method, p.url.pathname || "/", query, ...names.map((n) => `${n}:${headers[n]}`), "", names.join(";"), payloadHash].join("\n");
    const scope = `${day}/${p.region}/${service}/aws4_request`;
    const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, createHash("sha256").update(canonical).digest("hex")].join("\n");
    const hmac = (key: Buffer | string, s: string) => createHmac("sha256", key).update(s).digest();
    const key = hmac(hmac(hmac(hmac(`AWS4${p.creds.secretAccessKey}`, day), p.region), service), "aws4_request");
    const signature = createHmac("sha256", key).update(toSign).digest("hex");
    return { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${p.creds.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}` };
}
