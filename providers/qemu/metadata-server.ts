/**
 * The qemu cloud's metadata service: what a cloud's IMDS + secret store + instance identity are to
 * a VM, on 169.254.169.254 inside the stack's network namespace. Run as its own process by a
 * QemuService resource: `tsx metadata-server.ts <storeDir> <host> <port>`.
 *
 * Identity: the caller's source address. Each VM's tap only lets its own address out (nftables
 * rule per tap, providers/qemu/resources/vm.ts), and the adapter hands out every address, so the
 * source address names the VM as reliably as a cloud hypervisor names the instance asking its IMDS.
 *
 * Store layout (written by the QemuSecret / QemuIdentity / QemuVm resources; read per request,
 * so a change applies at once; a 4th argument, the service dir, is ignored: it only marks the
 * process as the QemuService's own):
 *   <storeDir>/secrets/<key>               the secret's content (0600)
 *   <storeDir>/identities/<name>.json      {"secrets": [keys], "s3": {"accessKey","secretKey"}?}
 *   <storeDir>/members/<ip>                the identity name of the VM with that address
 *
 * Endpoints:
 *   GET /redisforge/v1/secrets/<key>       the content when the caller's identity may read <key>,
 *                                          403 otherwise, 404 when the key does not exist
 *   PUT /latest/api/token                  IMDSv2 session token (the EC2 protocol rclone's AWS SDK speaks):
 *                                          the request names its lifetime in X-aws-ec2-metadata-token-ttl-seconds
 *                                          (1-21600, 400 otherwise) and the response echoes it in the same
 *                                          header, as EC2 does; the SDK rejects a token without it, retries
 *                                          the PUT with back-off and falls back to IMDSv1 (the sixteenth VM run:
 *                                          ~60-90 s per rclone call with the backup script's retry flags)
 *   GET /latest/meta-data/iam/security-credentials/[<name>]
 *                                          the identity's S3 keys (write/read/list, no delete) in the
 *                                          EC2 instance-role format; 404 for identities without a bucket
 * Nothing is logged but the method, path, caller and status: never a value.
 */
import { randomBytes } from "crypto";
import { existsSync, readFileSync } from "fs";
import { createServer, IncomingMessage, ServerResponse } from "http";
import { join } from "path";

export interface Identity {
    secrets: string[];
    s3?: { accessKey: string; secretKey: string };
}

const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$/;
/** The IMDSv2 TTL header (request and response) and EC2's bounds for it, seconds. */
export const TOKEN_TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds";
export const TOKEN_TTL_MAX_SEC = 21600;
const IP_RE = /^(\d{1,3}\.){3}\d{1,3}$/;

export function identityOf(storeDir: string, ip: string): { name: string; identity: Identity } | undefined {
    if (!IP_RE.test(ip)) return undefined;
    const member = join(storeDir, "members", ip);
    if (!existsSync(member)) return undefined;
    const name = readFileSync(member, "utf8").trim();
    if (!KEY_RE.test(name)) return undefined;
    const file = join(storeDir, "identities", `${name}.json`);
    if (!existsSync(file)) return undefined;
    return { name, identity: JSON.parse(readFileSync(file, "utf8")) as Identity };
}

/** Answers one request (exported so tests can run the handler on 127.0.0.1). */
export function handler(storeDir: string): (req: IncomingMessage, res: ServerResponse) => void {
    /** Session token -> expiry (ms since the epoch). */
    const tokens = new Map<string, number>();
    return (req, res) => {
        const caller = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
        const send = (code: number, body: string, type = "text/plain", headers: Record<string, string> = {}) => {
            res.writeHead(code, { "content-type": type, ...headers });
            res.end(body);
            process.stdout.write(`${new Date().toISOString()} ${req.method} ${req.url} from ${caller}: ${code}\n`);
        };
        const url = new URL(req.url ?? "/", "http://metadata");
        const who = identityOf(storeDir, caller);
        const secret = /^\/redisforge\/v1\/secrets\/([^/]+)$/.exec(url.pathname);
        if (secret && req.method === "GET") {
            const key = secret[1];
            if (!KEY_RE.test(key)) return send(400, "bad key");
            if (!who) return send(403, `no identity for ${caller}`);
            if (!who.identity.secrets.includes(key)) return send(403, `identity ${who.name} may not read ${key}`);
            const file = join(storeDir, "secrets", key);
            if (!existsSync(file)) return send(404, `no secret ${key}`);
            res.writeHead(200, { "content-type": "application/octet-stream" });
            res.end(readFileSync(file));
            process.stdout.write(`${new Date().toISOString()} GET ${url.pathname} from ${caller}: 200\n`);
            return;
        }
        if (url.pathname === "/latest/api/token" && req.method === "PUT") {
            const ttlHeader = String(req.headers[TOKEN_TTL_HEADER] ?? "");
            const ttl = /^\d{1,5}$/.test(ttlHeader) ? Number(ttlHeader) : NaN;
            if (!(ttl >= 1 && ttl <= TOKEN_TTL_MAX_SEC)) return send(400, `${TOKEN_TTL_HEADER} must be 1-${TOKEN_TTL_MAX_SEC}`);
            const now = Date.now();
            for (const [k, exp] of tokens) if (exp <= now) tokens.delete(k);
            const t = randomBytes(24).toString("base64url");
            tokens.set(t, now + ttl * 1000);
            return send(200, t, "text/plain", { [TOKEN_TTL_HEADER]: String(ttl) });
        }
        const creds = /^\/latest\/meta-data\/iam\/security-credentials\/([^/]*)$/.exec(url.pathname);
        if (creds && req.method === "GET") {
            const token = req.headers["x-aws-ec2-metadata-token"];
            if (token !== undefined && !((tokens.get(String(token)) ?? 0) > Date.now())) return send(401, "unknown or expired session token");
            if (!who?.identity.s3) return send(404, "no role");
            if (creds[1] === "") return send(200, who.name);
            if (creds[1] !== who.name) return send(404, "no such role");
            const expiration = new Date(Date.now() + 6 * 3600 * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
            return send(200, JSON.stringify({ Code: "Success", Type: "AWS-HMAC", AccessKeyId: who.identity.s3.accessKey, SecretAccessKey: who.identity.s3.secretKey, Token: "", Expiration: expiration, LastUpdated: new Date().toISOString() }), "application/json");
        }
        return send(404, "not found");
    };
}

if (require.main === module) {
    const [storeDir, host, port] = process.argv.slice(2);
    if (!storeDir || !host || !port) {
        process.stderr.write("usage: metadata-server.ts <storeDir> <host> <port>\n");
        process.exit(2);
    }
    createServer(handler(storeDir)).listen(Number(port), host, () => process.stdout.write(`metadata service on ${host}:${port}, store ${storeDir}\n`));
    process.on("SIGTERM", () => process.exit(0));
}
