/**
 * Test-time PKI for the lab: a throwaway CA plus one server/client certificate, made with
 * the openssl CLI into a private directory. Nothing here is committed; production
 * certificates come from @pulumi/tls (components/pki.ts).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export interface LabTlsFiles {
    caFile: string;
    certFile: string;
    keyFile: string;
    /** A separate client certificate (clientAuth) for tools and exporters. */
    clientCertFile: string;
    clientKeyFile: string;
}

function openssl(args: string[], cwd: string): void {
    try {
        execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
        const err = e as { stderr?: Buffer; message: string };
        throw new Error(`openssl ${args[0]} failed in ${cwd}: ${err.stderr?.toString() || err.message}`);
    }
}

/**
 * Creates (or reuses, if complete) a CA and certificates valid for `hosts` (IPs and DNS names).
 * @param days validity; short on purpose.
 */
export function ensureLabTls(dir: string, hosts: string[] = ["127.0.0.1", "localhost"], days = 7): LabTlsFiles {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const files: LabTlsFiles = {
        caFile: path.join(dir, "ca.crt"),
        certFile: path.join(dir, "node.crt"),
        keyFile: path.join(dir, "node.key"),
        clientCertFile: path.join(dir, "client.crt"),
        clientKeyFile: path.join(dir, "client.key"),
    };
    if (Object.values(files).every((f) => fs.existsSync(f))) return files;

    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(["req", "-x509", "-new", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", String(days), "-subj", "/O=RedisForge lab/CN=RedisForge lab CA"], dir);
    const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
    const issue = (name: string, cn: string, usage: string) => {
        fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${usage}\nkeyUsage=digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n`);
        openssl(["req", "-new", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/O=RedisForge lab/CN=${cn}`], dir);
        openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.crt`, "-days", String(days), "-extfile", `${name}.ext`], dir);
    };
    issue("node", "redis-node", "serverAuth,clientAuth");
    issue("client", "redisforge-client", "clientAuth");
    for (const f of fs.readdirSync(dir)) if (f.endsWith(".key")) fs.chmodSync(path.join(dir, f), 0o600);
    return files;
}
