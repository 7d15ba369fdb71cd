/**
 * User-data as the machine receives it, and what must (not) be in it. Pure.
 *
 * Decoding follows what each cloud does with the field the adapters fill: AWS `userDataBase64` and
 * Azure `customData`/`userData` are base64 (RedisForge gzips first; cloud-init gunzips), AWS
 * `userData`, GCP `metadata["user-data"]`/`startup-script` and the qemu VM's `userData` (written
 * byte for byte into its NoCloud seed) are plain text; a `#cloud-config`
 * document's `write_files` are decoded by their `encoding` (b64, gzip+b64), since that is what lands
 * on the disk. On the local stack the files that land on the machine are RedisProcess's `redisConf`
 * and `usersAcl` (its `secretsInclude` and `tlsKey` are secret inputs by design and not read).
 */
import { gunzipSync } from "zlib";
import { parse } from "yaml";
import { ResourceLike, T } from "./resources";

/** One decoded text and where it came from (for messages; never the value itself). */
export interface Piece {
    where: string;
    text: string;
}

const GZIP = (b: Buffer) => b.length > 2 && b[0] === 0x1f && b[1] === 0x8b;

/** Text of a field: base64 decoded when the cloud decodes it, gunzipped when gzip. */
export function decodeField(value: string, base64: boolean): string {
    let buf = base64 ? Buffer.from(value, "base64") : Buffer.from(value, "utf8");
    // A plain field may still carry gzip+base64 (cloud-init accepts it on some clouds): "H4sI" is gzip's base64 start.
    if (!base64 && /^H4sI[A-Za-z0-9+/=\s]+$/.test(value)) buf = Buffer.from(value, "base64");
    if (GZIP(buf)) buf = gunzipSync(buf);
    return buf.toString("utf8");
}

/** The user-data fields of a resource: [field path, value, base64?]. */
function fieldsOf(r: ResourceLike): [string, string, boolean][] {
    const p = r.props;
    const s = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
    const out: [string, string, boolean][] = [];
    const add = (field: string, v: unknown, b64: boolean) => {
        const x = s(v);
        if (x !== undefined) out.push([field, x, b64]);
    };
    switch (r.type) {
        case T.awsInstance:
            add("userData", p.userData, false);
            add("userDataBase64", p.userDataBase64, true);
            break;
        case T.awsLaunchTemplate:
            add("userData", p.userData, true);
            break;
        case T.gcpInstance:
        case T.gcpInstanceTemplate:
            for (const k of ["user-data", "startup-script"]) add(`metadata["${k}"]`, p.metadata?.[k], false);
            add("metadataStartupScript", p.metadataStartupScript, false);
            break;
        case T.azureVm:
            add("osProfile.customData", p.osProfile?.customData, true);
            add("userData", p.userData, true);
            break;
        case T.qemuVm:
            add("userData", p.userData, false);
            break;
        case T.localRedisProcess:
            add("redisConf", p.redisConf, false);
            add("usersAcl", p.usersAcl, false);
            break;
        default:
            break;
    }
    return out;
}

/** True for resources whose user-data the policies read. */
export const hasUserData = (r: ResourceLike) => fieldsOf(r).length > 0;

/** Every text that lands on the machine: each field decoded, plus each cloud-config `write_files` entry decoded. */
export function userDataPieces(r: ResourceLike): Piece[] {
    const out: Piece[] = [];
    for (const [field, value, b64] of fieldsOf(r)) {
        let text: string;
        try {
            text = decodeField(value, b64);
        } catch (e) {
            out.push({ where: `${field} (undecodable: ${(e as Error).message})`, text: value });
            continue;
        }
        out.push({ where: field, text });
        if (!text.startsWith("#cloud-config")) continue;
        let doc: any;
        try {
            doc = parse(text);
        } catch {
            continue; // not YAML: scanned as text above
        }
        for (const f of Array.isArray(doc?.write_files) ? doc.write_files : []) {
            if (typeof f?.content !== "string") continue;
            const enc = String(f.encoding ?? "text").toLowerCase();
            let content = f.content as string;
            try {
                if (["b64", "base64"].includes(enc)) content = Buffer.from(content, "base64").toString("utf8");
                else if (["gz+b64", "gzip+b64", "gz+base64", "gzip+base64"].includes(enc)) content = gunzipSync(Buffer.from(content, "base64")).toString("utf8");
            } catch {
                // left as sent: scanned as is
            }
            out.push({ where: `${field} write_files ${String(f.path)}`, text: content });
        }
    }
    return out;
}

/** Secret-looking material, by kind. Each pattern matches a VALUE, not a reference to one. */
export const SECRET_PATTERNS: { name: string; re: RegExp }[] = [
    { name: "a PEM private key", re: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/ },
    { name: "an AWS access key id", re: /\b(AKIA|ASIA)[0-9A-Z]{16}\b/ },
    { name: "an AWS secret access key", re: /aws_secret_access_key[ \t]*[=:][ \t]*["']?[A-Za-z0-9/+]{40}/i },
    { name: "a GCP service-account key", re: /"private_key(_id)?"\s*:\s*"[^"]{8,}/ },
    { name: "an Azure storage account key or SAS signature", re: /AccountKey=[A-Za-z0-9+/]{20,}|[?&]sig=[A-Za-z0-9%+/]{20,}/ },
    { name: "a Redis password directive (requirepass/masterauth with a value)", re: /^\s*(requirepass|masterauth)\s+("[^"\s]+"|\S+)\s*$/m },
    { name: "a plaintext ACL password (>password)", re: /^\s*user\s+\S+[^\n]*\s>\S+/m },
    { name: "a password on a redis-cli command line (-a / --pass / --askpass-less AUTH)", re: /redis-cli\b[^\n]*\s(-a|--pass)\s+(?!\$)\S+/ },
    { name: "a JSON web token", re: /\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/ },
    {
        name: "a password/secret/token assignment with a literal value",
        // KEY=value or key: value where KEY names a password/secret/token and the value is not a
        // reference ($VAR, a path, a secret-store id or URL, a file name).
        re: /\b[A-Za-z0-9_]*(PASSWORD|PASSWD|SECRET_KEY|API_KEY|ACCESS_TOKEN|AUTH_TOKEN)[ \t]*[=:][ \t]*["']?(?![$/{<]|arn:|projects\/|https?:\/\/)[A-Za-z0-9+/!@#%^&*_.=-]{8,}/i,
    },
];

export interface SecretFinding {
    where: string;
    line: number;
    kind: string;
}

/** Secret-looking material in the texts: where and what kind (never the value). */
export function findSecrets(pieces: Piece[]): SecretFinding[] {
    const out: SecretFinding[] = [];
    for (const piece of pieces) {
        for (const { name, re } of SECRET_PATTERNS) {
            const m = re.exec(piece.text);
            if (!m) continue;
            const line = piece.text.slice(0, m.index + (m[0].length - m[0].trimStart().length)).split("\n").length;
            out.push({ where: piece.where, line, kind: name });
        }
    }
    return out;
}

/** The redis.conf texts in user-data (a write_files entry ending in redis.conf, or the local stack's redisConf). */
export function redisConfs(r: ResourceLike): Piece[] {
    return userDataPieces(r).filter((p) => /write_files \S*redis\.conf$/.test(p.where) || (r.type === T.localRedisProcess && p.where === "redisConf"));
}

/** Why a redis.conf is not TLS-only ([] when it is): plaintext port 0, a TLS port, TLS on replication and the bus. */
export function tlsProblems(conf: string): string[] {
    const last = new Map<string, string>();
    for (const raw of conf.split("\n")) {
        const line = raw.trim();
        if (!line || line.startsWith("#")) continue;
        const m = /^(\S+)\s*(.*)$/.exec(line);
        if (m) last.set(m[1].toLowerCase(), m[2].trim().replace(/^"(.*)"$/, "$1"));
    }
    const problems: string[] = [];
    const port = last.get("port");
    if (port !== "0") problems.push(port === undefined ? "no `port 0` (the plaintext port defaults to 6379)" : `\`port ${port}\` opens a plaintext port (must be \`port 0\`)`);
    const tlsPort = Number(last.get("tls-port") ?? "0");
    if (!(tlsPort > 0)) problems.push("no `tls-port` (clients could not connect over TLS)");
    for (const k of ["tls-replication", "tls-cluster"]) {
        if ((last.get(k) ?? "no").toLowerCase() !== "yes") problems.push(`\`${k}\` is not yes (${k === "tls-cluster" ? "cluster bus" : "replication"} would be plaintext)`);
    }
    return problems;
}
