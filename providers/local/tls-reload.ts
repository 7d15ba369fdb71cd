/**
 * Loads new TLS material into a running redis-server without a restart: one
 * `CONFIG SET tls-cert-file <f> tls-key-file <f> tls-ca-cert-file <f>` (atomic: the server applies
 * all three or none), then a fresh TLS handshake proves the node now presents the new certificate.
 *
 * What the servers do (measured on 7.0.15 and 8.6.3 by tests/integration/tls-reload): CONFIG SET of
 * a tls-* file re-reads the file even when the path is unchanged (the files are rewritten in place,
 * so redis.conf stays valid for the next start); tls-ca-cert-file takes a bundle of several CAs;
 * connections already open (clients, replication, cluster bus) keep their session, new ones use the
 * new material; a certificate that does not match its key is refused and the old material stays.
 *
 * Connects as the `tlsreload` ACL user (CONFIG SET only). The TLS client side tries the material
 * the node was started with first (`previous`: the server certainly trusts it), then the new one
 * (a rerun after an interrupted reload, when the files on disk are already new).
 *
 * Requires what it needs inside the function: the RedisProcess provider that calls it is serialised
 * by the engine.
 */

/** PEM texts of a node's TLS material. */
export interface TlsMaterial {
    cert: string;
    key: string;
    ca: string;
}

export interface TlsReloadArgs {
    /** Node name for messages. */
    nodeName: string;
    host: string;
    port: number;
    /** ACL user allowed to CONFIG SET (templates/redis: `tlsreload`). */
    username: string;
    password: string;
    /** Paths as the server sees them (what redis.conf names). */
    files: { cert: string; key: string; ca: string };
    /** Client material to try, in order (e.g. the previous files, then the new ones). */
    connectWith: TlsMaterial[];
    /** The material just written: the handshake afterwards must present `expected.cert`'s leaf. */
    expected: TlsMaterial;
    /** Bound on each connection and command, ms. Default 5000. */
    timeoutMs?: number;
}

/** The first PEM block of a chain, as DER (what a TLS peer certificate's `raw` holds). */
export function leafDer(pemChain: string): Buffer {
    const m = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pemChain);
    if (!m) throw new Error("no PEM certificate in the chain");
    return Buffer.from(m[1].replace(/\s+/g, ""), "base64");
}

/** The certificate a fresh TLS handshake with host:port presents (its DER), using `m` as the client. */
export async function presentedCert(host: string, port: number, m: TlsMaterial, timeoutMs = 5000): Promise<{ der: Buffer; validTo: string; issuer: string }> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const tls = require("tls") as typeof import("tls");
    return new Promise((resolve, reject) => {
        const s = tls.connect({ host, port, ca: m.ca, cert: m.cert, key: m.key, servername: "localhost", checkServerIdentity: () => undefined });
        const timer = setTimeout(() => {
            s.destroy();
            reject(new Error(`TLS handshake with ${host}:${port} did not finish within ${timeoutMs} ms`));
        }, timeoutMs);
        s.once("secureConnect", () => {
            clearTimeout(timer);
            const c = s.getPeerCertificate();
            s.end();
            resolve({ der: c.raw, validTo: c.valid_to, issuer: String(c.issuer?.CN ?? "") });
        });
        s.once("error", (e) => {
            clearTimeout(timer);
            reject(e);
        });
    });
}

export async function reloadTls(a: TlsReloadArgs): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { default: Redis } = require("ioredis") as typeof import("ioredis");
    const timeoutMs = a.timeoutMs ?? 5000;
    const where = `${a.nodeName} (${a.host}:${a.port})`;
    const failures: string[] = [];
    let done = false;
    for (const [i, m] of a.connectWith.entries()) {
        const c = new Redis({
            host: a.host,
            port: a.port,
            username: a.username,
            password: a.password,
            tls: { ca: m.ca, cert: m.cert, key: m.key, servername: "localhost", checkServerIdentity: () => undefined },
            lazyConnect: true,
            enableReadyCheck: false,
            enableOfflineQueue: false,
            maxRetriesPerRequest: 0,
            retryStrategy: () => null,
            connectTimeout: timeoutMs,
            commandTimeout: timeoutMs,
        });
        c.on("error", () => undefined); // reported through the promises below
        try {
            await c.connect();
            await c.call("CONFIG", "SET", "tls-cert-file", a.files.cert, "tls-key-file", a.files.key, "tls-ca-cert-file", a.files.ca);
            done = true;
            break;
        } catch (e) {
            const msg = (e as Error).message;
            failures.push(`client material #${i + 1}: ${msg}`);
            // The server answered and refused the new files: another client certificate will not help.
            if (/CONFIG SET failed|NOPERM|WRONGPASS/.test(msg)) break;
        } finally {
            c.disconnect();
        }
    }
    if (!done) {
        throw new Error(
            `${where}: CONFIG SET tls-cert-file/tls-key-file/tls-ca-cert-file as ACL user ${a.username} failed (${failures.join("; ")}). ` +
                `The node keeps its previous certificate. Check that ${a.files.cert} and ${a.files.key} belong together and that the node's log (redis.log) names no TLS error; rerun \`pulumi up\`.`,
        );
    }
    const want = leafDer(a.expected.cert);
    const got = await presentedCert(a.host, a.port, a.expected, timeoutMs).catch((e: Error) => {
        throw new Error(`${where}: after CONFIG SET, a TLS handshake with the new certificate and CA failed: ${e.message}; rerun \`pulumi up\``);
    });
    if (!got.der.equals(want)) {
        throw new Error(`${where}: after CONFIG SET the node still presents another certificate (valid to ${got.validTo}, issuer ${got.issuer}); rerun \`pulumi up\``);
    }
}
