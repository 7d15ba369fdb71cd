/**
 * templates/scripts/fetch-secrets.sh, run for real (bash, curl, jq) against a local stand-in for
 * each cloud's metadata service and secret store on 127.0.0.1. The stand-in checks what the real
 * services require: IMDSv2 session token, a SigV4 signature recomputed here from the AWS spec
 * (including the session token header), GCE's Metadata-Flavor header and bearer token, Azure IMDS
 * `Metadata: true` and the Key Vault resource. The script must write exact contents, 0400, owned as
 * listed, retry transient errors (bounded), and fail naming the reference when a secret is missing.
 */
import { execFile } from "child_process";
import { createHash, createHmac } from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { CloudKind, CLOUD_KINDS } from "../../../templates/cloud-init";
import { secretRef } from "./fixtures";
import { tmpDir } from "./tools";

const SCRIPT = path.resolve(__dirname, "../../../templates/scripts/fetch-secrets.sh");
const dir = tmpDir("fetch-secrets");
const UID = process.getuid!();

const CREDS = { AccessKeyId: "ASIATESTACCESSKEY", SecretAccessKey: "test/secret+access=key", Token: "session-token-\"quoted\"" };
const PEM = "-----BEGIN TEST KEY-----\nAAAA\nBBBB\n-----END TEST KEY-----\n";
const STORE: Record<string, string> = { "node0-key": PEM, "app-password": "pw-no-newline-0123456789abcdefABCDEF", "exporter-password": "exporter-pw-0123456789abcdefABCDEF" };

interface Seen {
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    body: string;
}
const seen: Seen[] = [];
const failures: string[] = [];
let flaky = 0; // number of 500s still to serve for the secret store

const hmac = (k: Buffer | string, s: string) => createHmac("sha256", k).update(s, "utf8").digest();
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** Recomputes the SigV4 signature of a request from the AWS documentation's algorithm. */
function checkSigV4(req: Seen): string | null {
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

function secretName(ref: string): string {
    return /(node0-key|app-password|exporter-password|missing)/.exec(ref)?.[1] ?? ref;
}

const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
        const r: Seen = { method: req.method!, url: req.url!, headers: req.headers, body };
        seen.push(r);
        const send = (code: number, payload: string | object) => {
            res.writeHead(code, { "content-type": "application/json" });
            res.end(typeof payload === "string" ? payload : JSON.stringify(payload));
        };
        const fromStore = (name: string, wrap: (v: string) => object) => {
            if (flaky > 0) {
                flaky--;
                return send(500, { error: "try again" });
            }
            return name in STORE ? send(200, wrap(STORE[name])) : send(404, { error: `no secret ${name}` });
        };
        const u = new URL(req.url!, "http://x");
        // AWS IMDSv2
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
                failures.push(problem);
                return send(403, { message: problem });
            }
            if (req.headers["x-amz-target"] !== "secretsmanager.GetSecretValue") return send(400, "target");
            return fromStore(secretName(JSON.parse(body).SecretId), (v) => ({ SecretString: v }));
        }
        // GCP
        if (u.pathname === "/computeMetadata/v1/instance/service-accounts/default/token") {
            return req.headers["metadata-flavor"] === "Google" ? send(200, { access_token: "GCPTOKEN", expires_in: 3000 }) : send(403, "flavor");
        }
        const g = /^\/v1\/projects\/redisforge-prod\/secrets\/([^/]+)\/versions\/latest:access$/.exec(u.pathname);
        if (g) {
            if (req.headers.authorization !== "Bearer GCPTOKEN") return send(401, "bearer");
            return fromStore(secretName(g[1]), (v) => ({ name: g[1], payload: { data: Buffer.from(v).toString("base64") } }));
        }
        // Azure
        if (u.pathname === "/metadata/identity/oauth2/token") {
            const ok = req.headers.metadata === "true" && u.searchParams.get("resource") === "https://vault.azure.net" && u.searchParams.get("api-version");
            return ok ? send(200, { access_token: "AZTOKEN" }) : send(400, "imds");
        }
        const a = /^\/secrets\/([^/]+)$/.exec(u.pathname);
        if (a) {
            if (req.headers.authorization !== "Bearer AZTOKEN" || u.searchParams.get("api-version") !== "7.4") return send(401, "bearer");
            return fromStore(secretName(a[1]), (v) => ({ value: v, id: a[1] }));
        }
        return send(404, "unknown");
    });
});

let base = "";
beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
});

function runScript(cloud: CloudKind, names: string[], formats: string[] = names.map(() => "file")) {
    const d = fs.mkdtempSync(path.join(dir, `${cloud}-`));
    fs.writeFileSync(path.join(d, "boot.env"), `CLOUD=${cloud}\n`);
    const list = names.map((n, i) => `${d}/out/${n} ${UID} ${formats[i]} ${secretRef(cloud, n)}`).join("\n");
    fs.writeFileSync(path.join(d, "secrets.list"), `# test\n${list}\n`);
    const env = {
        PATH: process.env.PATH,
        BOOT_ENV: path.join(d, "boot.env"),
        SECRETS_LIST: path.join(d, "secrets.list"),
        MAX_ATTEMPTS: "3",
        RETRY_SLEEP: "0",
        AWS_IMDS: base,
        AWS_SM_ENDPOINT: base,
        GCE_METADATA: base,
        GCP_SM_ENDPOINT: base,
        AZURE_IMDS: base,
        AZURE_KV_ENDPOINT: base,
    };
    return new Promise<{ code: number; out: string; dir: string }>((resolve) => {
        execFile("bash", [SCRIPT], { env, timeout: 30000 }, (err, stdout, stderr) => {
            resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr, dir: d });
        });
    });
}

describe.each(CLOUD_KINDS)("fetch-secrets.sh on %s", (cloud) => {
    beforeEach(() => {
        seen.length = 0;
        failures.length = 0;
        flaky = 0;
    });

    it("writes each secret's exact content, 0400, owned as listed; env format for the exporter", async () => {
        const r = await runScript(cloud, ["node0-key", "app-password", "exporter-password"], ["file", "file", "env:REDIS_PASSWORD"]);
        expect(failures).toEqual([]);
        expect(r.out).toContain("wrote 3 secret file(s)");
        expect(r.code).toBe(0);
        const out = path.join(r.dir, "out");
        expect(fs.readFileSync(path.join(out, "node0-key"), "utf8")).toBe(PEM);
        expect(fs.readFileSync(path.join(out, "app-password"), "utf8")).toBe(STORE["app-password"]);
        expect(fs.readFileSync(path.join(out, "exporter-password"), "utf8")).toBe(`REDIS_PASSWORD=${STORE["exporter-password"]}\n`);
        for (const f of fs.readdirSync(out)) {
            const st = fs.statSync(path.join(out, f));
            expect([f, st.mode & 0o777, st.uid]).toEqual([f, 0o400, UID]);
        }
        expect(fs.readdirSync(out).sort()).toEqual(["app-password", "exporter-password", "node0-key"]); // no temp files left
        if (cloud === "aws") expect(seen.filter((s) => s.method === "POST").length).toBe(3);
    });

    it("retries transient store errors (bounded) and then succeeds", async () => {
        flaky = 2;
        const r = await runScript(cloud, ["app-password"]);
        expect(r.code).toBe(0);
        expect(fs.readFileSync(path.join(r.dir, "out", "app-password"), "utf8")).toBe(STORE["app-password"]);
    });

    it("fails, naming the reference, when a secret does not exist; writes nothing for it", async () => {
        const r = await runScript(cloud, ["missing"]);
        expect(r.code).not.toBe(0);
        expect(r.out).toContain(`could not read ${secretRef(cloud, "missing")} after 3 attempts`);
        expect(fs.existsSync(path.join(r.dir, "out")) ? fs.readdirSync(path.join(r.dir, "out")) : []).toEqual([]);
    });
});

describe("the stand-in is strict", () => {
    it("rejects a request whose signature does not match", () => {
        const req: Seen = {
            method: "POST",
            url: "/",
            body: "{}",
            headers: {
                authorization: `AWS4-HMAC-SHA256 Credential=${CREDS.AccessKeyId}/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-amz-target, Signature=${"0".repeat(64)}`,
                host: "127.0.0.1",
                "x-amz-date": "20260101T000000Z",
                "x-amz-security-token": CREDS.Token,
                "x-amz-target": "secretsmanager.GetSecretValue",
            },
        };
        expect(checkSigV4(req)).toBe("signature mismatch");
        expect(checkSigV4({ ...req, headers: { ...req.headers, authorization: String(req.headers.authorization).replace("x-amz-security-token;", "") } })).toBe("header x-amz-security-token not signed");
    });
});
