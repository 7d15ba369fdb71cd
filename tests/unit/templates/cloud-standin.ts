/**
 * A local stand-in (127.0.0.1 only) for each cloud's instance metadata service and secret store,
 * strict about what the real services require: AWS IMDSv2 session token and a SigV4 signature that
 * is recomputed here from the AWS documentation's algorithm (session token header signed); GCE's
 * `Metadata-Flavor: Google` and the bearer token; Azure IMDS `Metadata: true`, the Key Vault
 * resource and api-version. Secrets are looked up by the name part of the fixtures' references.
 */
import { createHash, createHmac } from "crypto";
import * as http from "http";

export const CREDS = { AccessKeyId: "ASIATESTACCESSKEY", SecretAccessKey: "test/secret+access=key", Token: 'session-token-"quoted"' };

export interface Seen {
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    body: string;
}

const hmac = (k: Buffer | string, s: string) => createHmac("sha256", k).update(s, "utf8").digest();
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** Recomputes the SigV4 signature of a request; null when it is valid, else the problem. */
export function checkSigV4(req: Seen): string | null {
    const auth = String(req.headers.authorization ?? "");
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) return `bad Authorization header: ${auth}`;
    const [, ak, date, region, service, signedHeaders, signature] = m;
    if (ak !== CREDS.AccessKeyId) return `wrong access key ${ak}`;
    if (region !== "us-east-1" || service !== "secretsmanager") return `wrong scope ${region}/${service}`;
    const names = signedHeaders.split(";");
    for (const h of ["host", "x-amz-date", "x-amz-security-token", "x-amz-target"]) if (!names.includes(h)) return `header ${h} not signed`;
    if (req.headers["x-amz-security-token"] !== CREDS.Token) return "session token header missing or wrong";
    const canonicalHeaders = names.map((n) => `${n}:${String(req.headers[n] ?? "").trim().replace(/\s+/g, " ")}\n`).join("");
    const [p, q = ""] = req.url.split("?");
    const canonical = [req.method, p, q, canonicalHeaders, signedHeaders, sha256(req.body)].join("\n");
    const amzDate = String(req.headers["x-amz-date"]);
    const toSign = ["AWS4-HMAC-SHA256", amzDate, `${date}/${region}/${service}/aws4_request`, sha256(canonical)].join("\n");
    let key = hmac(`AWS4${CREDS.SecretAccessKey}`, date);
    for (const part of [region, service, "aws4_request"]) key = hmac(key, part);
    const expected = createHmac("sha256", key).update(toSign, "utf8").digest("hex");
    return expected === signature ? null : "signature mismatch";
}

/** The fixture name inside an AWS secret id / GCP secret / Key Vault secret name. */
function nameOf(s: string): string {
    const aws = /secret:prod-redis\/(.+)-AbCdEf$/.exec(s);
    if (aws) return aws[1];
    return s.replace(/^prod-redis-/, "");
}

export interface CloudStandin {
    /** `http://127.0.0.1:<port>`: use for every endpoint override of fetch-secrets.sh. */
    base: string;
    seen: Seen[];
    /** SigV4 problems found (empty when every signed request was valid). */
    failures: string[];
    /** Serve this many HTTP 500s from the secret store before answering again. */
    flaky: number;
    /** Endpoint overrides for fetch-secrets.sh. */
    env(): Record<string, string>;
    close(): Promise<void>;
}

export async function startCloudStandin(store: Record<string, string>): Promise<CloudStandin> {
    const st: CloudStandin = {
        base: "",
        seen: [],
        failures: [],
        flaky: 0,
        env: () => ({
            AWS_IMDS: st.base, AWS_SM_ENDPOINT: st.base, GCE_METADATA: st.base, GCP_SM_ENDPOINT: st.base, AZURE_IMDS: st.base, AZURE_KV_ENDPOINT: st.base, QEMU_METADATA: st.base,
        }),
        close: () => new Promise((r) => server.close(() => r())),
    };
    const server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
            const r: Seen = { method: req.method!, url: req.url!, headers: req.headers, body };
            st.seen.push(r);
            const send = (code: number, payload: string | object) => {
                res.writeHead(code, { "content-type": "application/json" });
                res.end(typeof payload === "string" ? payload : JSON.stringify(payload));
            };
            const fromStore = (name: string, wrap: (v: string) => object) => {
                if (st.flaky > 0) {
                    st.flaky--;
                    return send(500, { error: "try again" });
                }
                return name in store ? send(200, wrap(store[name])) : send(404, { error: `no secret ${name}` });
            };
            const u = new URL(req.url!, "http://x");
            // AWS IMDSv2 + Secrets Manager
            if (u.pathname === "/latest/api/token") {
                return req.method === "PUT" && req.headers["x-aws-ec2-metadata-token-ttl-seconds"] ? send(200, "IMDSV2TOKEN") : send(403, "imdsv2 needs PUT + ttl");
            }
            if (u.pathname.startsWith("/latest/meta-data/iam/security-credentials/")) {
                if (req.headers["x-aws-ec2-metadata-token"] !== "IMDSV2TOKEN") return send(401, "no imdsv2 token");
                return u.pathname.endsWith("/") ? send(200, "redis-node-role") : u.pathname.endsWith("/redis-node-role") ? send(200, CREDS) : send(404, "");
            }
            if (u.pathname === "/" && req.method === "POST") {
                const problem = checkSigV4(r);
                if (problem) {
                    st.failures.push(problem);
                    return send(403, { message: problem });
                }
                if (req.headers["x-amz-target"] !== "secretsmanager.GetSecretValue") return send(400, "target");
                return fromStore(nameOf(JSON.parse(body).SecretId), (v) => ({ SecretString: v }));
            }
            // GCP metadata + Secret Manager
            if (u.pathname === "/computeMetadata/v1/instance/service-accounts/default/token") {
                return req.headers["metadata-flavor"] === "Google" ? send(200, { access_token: "GCPTOKEN", expires_in: 3000 }) : send(403, "flavor");
            }
            const g = /^\/v1\/projects\/redisforge-prod\/secrets\/([^/]+)\/versions\/latest:access$/.exec(u.pathname);
            if (g) {
                if (req.headers.authorization !== "Bearer GCPTOKEN") return send(401, "bearer");
                return fromStore(nameOf(g[1]), (v) => ({ name: g[1], payload: { data: Buffer.from(v).toString("base64") } }));
            }
            // Azure IMDS + Key Vault
            if (u.pathname === "/metadata/identity/oauth2/token") {
                const ok = req.headers.metadata === "true" && u.searchParams.get("resource") === "https://vault.azure.net" && u.searchParams.get("api-version");
                return ok ? send(200, { access_token: "AZTOKEN" }) : send(400, "imds");
            }
            const a = /^\/secrets\/([^/]+)$/.exec(u.pathname);
            if (a) {
                if (req.headers.authorization !== "Bearer AZTOKEN" || u.searchParams.get("api-version") !== "7.4") return send(401, "bearer");
                return fromStore(nameOf(a[1]), (v) => ({ value: v, id: a[1] }));
            }
            // qemu metadata service (providers/qemu/metadata-server.ts): the raw content, caller known by address.
            const q = /^\/redisforge\/v1\/secrets\/([A-Za-z0-9_-]+)$/.exec(u.pathname);
            if (q && req.method === "GET") {
                if (st.flaky > 0) {
                    st.flaky--;
                    return send(500, "try again");
                }
                const name = nameOf(q[1]);
                if (!(name in store)) return send(404, `no secret ${name}`);
                res.writeHead(200, { "content-type": "application/octet-stream" });
                return res.end(store[name]);
            }
            return send(404, "unknown");
        });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    st.base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    return st;
}
