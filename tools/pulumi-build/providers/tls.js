#!/usr/bin/env node
// `pulumi-resource-tls` for @pulumi/tls 5.6.1 programs, written for RedisForge (see common.js for why).
// Implements the four resources a PKI needs with the same input and output names as the upstream
// provider: tls:index/privateKey:PrivateKey (node:crypto), tls:index/selfSignedCert:SelfSignedCert,
// tls:index/certRequest:CertRequest, tls:index/locallySignedCert:LocallySignedCert (openssl CLI, keys
// passed through 0600 files in a private temp dir that is removed right after).
// Not implemented: privateKeyOpenssh (returned empty), the getCertificate/getPublicKey invokes.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const { serve } = require("./common");

const VERSION = "5.6.1";

// ---------------------------------------------------------------- keys
const CURVES = { P224: "P-224", P256: "P-256", P384: "P-384", P521: "P-521" };
const SSH_CURVE = { P256: "nistp256", P384: "nistp384", P521: "nistp521" };

function sshString(buf) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(buf.length);
    return Buffer.concat([len, buf]);
}
function sshMpint(b64url) {
    let b = Buffer.from(b64url, "base64url");
    if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return sshString(b);
}

/** OpenSSH public key blob (or undefined where OpenSSH has no format, e.g. P224). */
function sshBlob(algorithm, curve, publicKey) {
    const jwk = publicKey.export({ format: "jwk" });
    if (algorithm === "RSA") {
        return { type: "ssh-rsa", blob: Buffer.concat([sshString(Buffer.from("ssh-rsa")), sshMpint(jwk.e), sshMpint(jwk.n)]) };
    }
    if (algorithm === "ED25519") {
        return { type: "ssh-ed25519", blob: Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(Buffer.from(jwk.x, "base64url"))]) };
    }
    const name = SSH_CURVE[curve];
    if (!name) return undefined;
    const q = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, "base64url"), Buffer.from(jwk.y, "base64url")]);
    const type = `ecdsa-sha2-${name}`;
    return { type, blob: Buffer.concat([sshString(Buffer.from(type)), sshString(Buffer.from(name)), sshString(q)]) };
}

function createPrivateKey(inputs) {
    const algorithm = inputs.algorithm;
    let pair;
    let privateKeyPem;
    if (algorithm === "RSA") {
        pair = crypto.generateKeyPairSync("rsa", { modulusLength: Number(inputs.rsaBits || 2048) });
        privateKeyPem = pair.privateKey.export({ type: "pkcs1", format: "pem" });
    } else if (algorithm === "ECDSA") {
        const curve = CURVES[inputs.ecdsaCurve || "P224"];
        if (!curve) throw new Error(`tls PrivateKey: ecdsaCurve must be one of ${Object.keys(CURVES).join(", ")}; got ${inputs.ecdsaCurve}`);
        pair = crypto.generateKeyPairSync("ec", { namedCurve: curve });
        privateKeyPem = pair.privateKey.export({ type: "sec1", format: "pem" });
    } else if (algorithm === "ED25519") {
        pair = crypto.generateKeyPairSync("ed25519");
        privateKeyPem = pair.privateKey.export({ type: "pkcs8", format: "pem" });
    } else {
        throw new Error(`tls PrivateKey: algorithm must be RSA, ECDSA or ED25519; got ${algorithm}`);
    }
    const publicKeyPem = pair.publicKey.export({ type: "spki", format: "pem" });
    const ssh = sshBlob(algorithm, inputs.ecdsaCurve || "P224", pair.publicKey);
    const md5 = ssh ? crypto.createHash("md5").update(ssh.blob).digest("hex").match(/../g).join(":") : "";
    const sha256 = ssh ? `SHA256:${crypto.createHash("sha256").update(ssh.blob).digest("base64").replace(/=+$/, "")}` : "";
    const der = pair.publicKey.export({ type: "spki", format: "der" });
    return {
        id: crypto.createHash("sha1").update(der).digest("hex"),
        outs: {
            rsaBits: algorithm === "RSA" ? Number(inputs.rsaBits || 2048) : inputs.rsaBits,
            ecdsaCurve: inputs.ecdsaCurve || "P224",
            privateKeyPem,
            privateKeyPemPkcs8: pair.privateKey.export({ type: "pkcs8", format: "pem" }),
            privateKeyOpenssh: "",
            publicKeyPem,
            publicKeyOpenssh: ssh ? `${ssh.type} ${ssh.blob.toString("base64")}\n` : "",
            publicKeyFingerprintMd5: md5,
            publicKeyFingerprintSha256: sha256,
        },
    };
}

function keyAlgorithmOf(pem) {
    const k = crypto.createPrivateKey(pem);
    return { rsa: "RSA", ec: "ECDSA", ed25519: "ED25519" }[k.asymmetricKeyType] || k.asymmetricKeyType.toUpperCase();
}

// ---------------------------------------------------------------- certificates (openssl)
const KEY_USAGE = {
    digital_signature: "digitalSignature",
    content_commitment: "nonRepudiation",
    key_encipherment: "keyEncipherment",
    data_encipherment: "dataEncipherment",
    key_agreement: "keyAgreement",
    cert_signing: "keyCertSign",
    crl_signing: "cRLSign",
    encipher_only: "encipherOnly",
    decipher_only: "decipherOnly",
};
const EXT_KEY_USAGE = {
    any_extended: "anyExtendedKeyUsage",
    server_auth: "serverAuth",
    client_auth: "clientAuth",
    code_signing: "codeSigning",
    email_protection: "emailProtection",
    ipsec_end_system: "ipsecEndSystem",
    ipsec_tunnel: "ipsecTunnel",
    ipsec_user: "ipsecUser",
    timestamping: "timeStamping",
    ocsp_signing: "OCSPSigning",
};
const SUBJECT_FIELDS = {
    country: "C",
    province: "ST",
    locality: "L",
    organization: "O",
    organizationalUnit: "OU",
    commonName: "CN",
    serialNumber: "serialNumber",
    postalCode: "postalCode",
    emailAddress: "emailAddress",
};

function cnfValue(v) {
    const s = String(v);
    if (/[\n\r]/.test(s)) throw new Error(`tls: subject and name values may not contain line breaks: ${JSON.stringify(s)}`);
    return s.replace(/\\/g, "\\\\").replace(/\$/g, "\\$");
}

function dnSection(subject) {
    const lines = [];
    for (const [field, short] of Object.entries(SUBJECT_FIELDS)) {
        const v = subject && subject[field];
        if (v !== undefined && v !== null && v !== "") lines.push(`${short} = ${cnfValue(v)}`);
    }
    if (subject && Array.isArray(subject.streetAddresses)) {
        subject.streetAddresses.forEach((s, i) => lines.push(`${i}.street = ${cnfValue(s)}`));
    }
    // openssl needs at least one field; an empty subject is legal in X.509 and in the upstream provider.
    if (lines.length === 0) lines.push("CN = ");
    return lines.join("\n");
}

function sanLine(inputs) {
    const sans = [];
    for (const d of inputs.dnsNames || []) sans.push(`DNS:${cnfValue(d)}`);
    for (const ip of inputs.ipAddresses || []) sans.push(`IP:${cnfValue(ip)}`);
    for (const u of inputs.uris || []) sans.push(`URI:${cnfValue(u)}`);
    return sans.length ? `subjectAltName = ${sans.join(",")}` : "";
}

function usageLines(inputs) {
    const lines = [];
    const ku = [];
    const eku = [];
    for (const u of inputs.allowedUses || []) {
        if (KEY_USAGE[u]) ku.push(KEY_USAGE[u]);
        else if (EXT_KEY_USAGE[u]) eku.push(EXT_KEY_USAGE[u]);
        else throw new Error(`tls: allowedUses entry "${u}" is not one of ${[...Object.keys(KEY_USAGE), ...Object.keys(EXT_KEY_USAGE)].join(", ")}`);
    }
    if (inputs.isCaCertificate) {
        const pathLen = Number(inputs.maxPathLength || 0) > 0 ? `,pathlen:${Number(inputs.maxPathLength)}` : "";
        lines.push(`basicConstraints = critical,CA:TRUE${pathLen}`);
    } else {
        lines.push("basicConstraints = critical,CA:FALSE");
    }
    if (ku.length) lines.push(`keyUsage = critical,${ku.join(",")}`);
    if (eku.length) lines.push(`extendedKeyUsage = ${eku.join(",")}`);
    if (inputs.setSubjectKeyId || inputs.isCaCertificate) lines.push("subjectKeyIdentifier = hash");
    return lines;
}

function withTempDir(fn) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-tls-"));
    fs.chmodSync(dir, 0o700);
    try {
        const write = (name, content) => {
            const p = path.join(dir, name);
            fs.writeFileSync(p, content, { mode: 0o600 });
            return p;
        };
        return fn(dir, write);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

function openssl(args) {
    try {
        return execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
        throw new Error(`tls: openssl ${args[0]} failed: ${(e.stderr || e.message || "").toString().trim()}`);
    }
}

function digestArgs(keyPem) {
    return keyAlgorithmOf(keyPem) === "ED25519" ? [] : ["-sha256"];
}

function days(hours) {
    return String(Math.max(1, Math.ceil(Number(hours) / 24)));
}

function certOuts(certPem) {
    const x = new crypto.X509Certificate(certPem);
    return {
        id: BigInt(`0x${x.serialNumber}`).toString(10),
        validityStartTime: new Date(x.validFrom).toISOString().replace(/\.\d{3}Z$/, "Z"),
        validityEndTime: new Date(x.validTo).toISOString().replace(/\.\d{3}Z$/, "Z"),
    };
}

function serial() {
    return `0x${crypto.randomBytes(16).toString("hex").replace(/^[89a-f]/, "7")}`;
}

function createSelfSignedCert(inputs) {
    return withTempDir((_dir, write) => {
        const key = write("key.pem", inputs.privateKeyPem);
        const cnf = write(
            "req.cnf",
            ["[req]", "prompt = no", "distinguished_name = dn", "[dn]", dnSection(inputs.subject), "[ext]", ...usageLines(inputs), sanLine(inputs)].join("\n") + "\n",
        );
        const certPem = openssl(["req", "-new", "-x509", "-key", key, "-config", cnf, "-extensions", "ext", "-days", days(inputs.validityPeriodHours), "-set_serial", serial(), ...digestArgs(inputs.privateKeyPem)]);
        const o = certOuts(certPem);
        return { id: o.id, outs: { certPem, keyAlgorithm: keyAlgorithmOf(inputs.privateKeyPem), validityStartTime: o.validityStartTime, validityEndTime: o.validityEndTime, readyForRenewal: false } };
    });
}

function createCertRequest(inputs) {
    return withTempDir((_dir, write) => {
        const key = write("key.pem", inputs.privateKeyPem);
        const san = sanLine(inputs);
        const cnf = write("req.cnf", ["[req]", "prompt = no", "distinguished_name = dn", "[dn]", dnSection(inputs.subject), "[ext]", san || "basicConstraints = CA:FALSE"].join("\n") + "\n");
        const certRequestPem = openssl(["req", "-new", "-key", key, "-config", cnf, "-reqexts", "ext", ...digestArgs(inputs.privateKeyPem)]);
        const id = crypto.createHash("sha1").update(certRequestPem).digest("hex");
        return { id, outs: { certRequestPem, keyAlgorithm: keyAlgorithmOf(inputs.privateKeyPem) } };
    });
}

function createLocallySignedCert(inputs) {
    return withTempDir((_dir, write) => {
        const csr = write("req.csr", inputs.certRequestPem);
        const ca = write("ca.pem", inputs.caCertPem);
        const caKey = write("ca-key.pem", inputs.caPrivateKeyPem);
        const ext = write("ext.cnf", ["[ext]", ...usageLines(inputs), "authorityKeyIdentifier = keyid"].join("\n") + "\n");
        const certPem = openssl(["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-set_serial", serial(), "-days", days(inputs.validityPeriodHours), "-extfile", ext, "-extensions", "ext", "-copy_extensions", "copy", ...digestArgs(inputs.caPrivateKeyPem)]);
        const o = certOuts(certPem);
        return { id: o.id, outs: { certPem, caKeyAlgorithm: keyAlgorithmOf(inputs.caPrivateKeyPem), validityStartTime: o.validityStartTime, validityEndTime: o.validityEndTime, readyForRenewal: false } };
    });
}

module.exports = { createPrivateKey, createSelfSignedCert, createCertRequest, createLocallySignedCert };

if (require.main === module) {
    serve("tls", VERSION, {
        "tls:index/privateKey:PrivateKey": {
            inputs: ["algorithm", "rsaBits", "ecdsaCurve"],
            required: ["algorithm"],
            defaults: {},
            create: createPrivateKey,
        },
        "tls:index/selfSignedCert:SelfSignedCert": {
            inputs: ["privateKeyPem", "subject", "validityPeriodHours", "allowedUses", "isCaCertificate", "dnsNames", "ipAddresses", "uris", "earlyRenewalHours", "setSubjectKeyId", "setAuthorityKeyId", "maxPathLength"],
            required: ["privateKeyPem", "validityPeriodHours", "allowedUses"],
            defaults: { isCaCertificate: false, earlyRenewalHours: 0, setSubjectKeyId: false, setAuthorityKeyId: false },
            create: createSelfSignedCert,
        },
        "tls:index/certRequest:CertRequest": {
            inputs: ["privateKeyPem", "subject", "dnsNames", "ipAddresses", "uris"],
            required: ["privateKeyPem"],
            defaults: {},
            create: createCertRequest,
        },
        "tls:index/locallySignedCert:LocallySignedCert": {
            inputs: ["certRequestPem", "caPrivateKeyPem", "caCertPem", "validityPeriodHours", "allowedUses", "isCaCertificate", "earlyRenewalHours", "setSubjectKeyId", "maxPathLength"],
            required: ["certRequestPem", "caPrivateKeyPem", "caCertPem", "validityPeriodHours", "allowedUses"],
            defaults: { isCaCertificate: false, earlyRenewalHours: 0, setSubjectKeyId: false },
            create: createLocallySignedCert,
        },
    });
}
