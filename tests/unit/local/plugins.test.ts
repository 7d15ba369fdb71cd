/**
 * The `tls` and `random` resource plugins RedisForge ships (tools/pulumi-build/providers): what they
 * create is checked with the real tools (openssl verify, node's X509 parser), not with themselves.
 */
import { execFileSync } from "child_process";
import { X509Certificate, createPrivateKey, createPublicKey } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const tlsPlugin = require("../../../tools/pulumi-build/providers/tls.js");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const randomPlugin = require("../../../tools/pulumi-build/providers/random.js");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const common = require("../../../tools/pulumi-build/providers/common.js");

describe("tls plugin", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-tls-test-"));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    test("CA + CSR + locally signed leaf verify with openssl and carry the requested SANs and usages", () => {
        const caKey = tlsPlugin.createPrivateKey({ algorithm: "ECDSA", ecdsaCurve: "P384" });
        expect(createPrivateKey(caKey.outs.privateKeyPem).asymmetricKeyDetails?.namedCurve).toBe("secp384r1");
        const ca = tlsPlugin.createSelfSignedCert({
            privateKeyPem: caKey.outs.privateKeyPem,
            isCaCertificate: true,
            subject: { commonName: "test CA", organization: "RedisForge" },
            validityPeriodHours: 240,
            allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
        });
        const leafKey = tlsPlugin.createPrivateKey({ algorithm: "RSA", rsaBits: 2048 });
        const csr = tlsPlugin.createCertRequest({ privateKeyPem: leafKey.outs.privateKeyPem, subject: { commonName: "node0" }, ipAddresses: ["127.0.0.1"], dnsNames: ["localhost"] });
        expect(csr.outs.certRequestPem).toMatch(/BEGIN CERTIFICATE REQUEST/);
        const leaf = tlsPlugin.createLocallySignedCert({
            certRequestPem: csr.outs.certRequestPem,
            caCertPem: ca.outs.certPem,
            caPrivateKeyPem: caKey.outs.privateKeyPem,
            validityPeriodHours: 48,
            allowedUses: ["digital_signature", "key_encipherment", "server_auth", "client_auth"],
        });
        fs.writeFileSync(path.join(dir, "ca.pem"), ca.outs.certPem);
        fs.writeFileSync(path.join(dir, "leaf.pem"), leaf.outs.certPem);
        const verify = execFileSync("openssl", ["verify", "-CAfile", path.join(dir, "ca.pem"), "-purpose", "sslserver", path.join(dir, "leaf.pem")]).toString();
        expect(verify).toMatch(/leaf\.pem: OK/);
        execFileSync("openssl", ["verify", "-CAfile", path.join(dir, "ca.pem"), "-purpose", "sslclient", path.join(dir, "leaf.pem")]);

        const caX = new X509Certificate(ca.outs.certPem);
        const leafX = new X509Certificate(leaf.outs.certPem);
        expect(caX.ca).toBe(true);
        expect(leafX.ca).toBe(false);
        expect(leafX.checkIssued(caX)).toBe(true);
        expect(leafX.subjectAltName).toMatch(/IP Address:127\.0\.0\.1/);
        expect(leafX.subjectAltName).toMatch(/DNS:localhost/);
        expect(leafX.keyUsage).toEqual(expect.arrayContaining(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]));
        expect(leafX.publicKey.export({ type: "spki", format: "pem" })).toBe(createPublicKey(leafKey.outs.privateKeyPem).export({ type: "spki", format: "pem" }));
        const hours = (Date.parse(leaf.outs.validityEndTime) - Date.parse(leaf.outs.validityStartTime)) / 3600e3;
        expect(hours).toBeGreaterThanOrEqual(48);
        expect(leaf.outs.caKeyAlgorithm).toBe("ECDSA");
        expect(leaf.id).toBe(BigInt(`0x${leafX.serialNumber}`).toString(10));
    });

    test("private keys: algorithms, public key forms, bad algorithm named", () => {
        const ed = tlsPlugin.createPrivateKey({ algorithm: "ED25519" });
        expect(ed.outs.publicKeyOpenssh).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+\n$/);
        expect(ed.outs.publicKeyFingerprintSha256).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
        const ec = tlsPlugin.createPrivateKey({ algorithm: "ECDSA", ecdsaCurve: "P256" });
        expect(ec.outs.privateKeyPem).toMatch(/BEGIN EC PRIVATE KEY/);
        expect(ec.outs.privateKeyPemPkcs8).toMatch(/BEGIN PRIVATE KEY/);
        expect(ec.outs.publicKeyOpenssh).toMatch(/^ecdsa-sha2-nistp256 /);
        expect(() => tlsPlugin.createPrivateKey({ algorithm: "DSA" })).toThrow(/RSA, ECDSA or ED25519; got DSA/);
    });

    test("helpers: secrets unwrapped, unknowns found, canonical comparison, type of a URN", () => {
        const secret = (v: unknown) => ({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value: v });
        expect(common.unwrap({ a: secret("x"), b: [secret(1)] })).toEqual({ a: "x", b: [1] });
        expect(common.containsUnknown({ a: ["04da6b54-80e4-46f7-96ec-b56ff0331ba9"] })).toBe(true);
        expect(common.canonical({ b: 1, a: [1, { d: 2, c: null }] })).toBe(common.canonical({ a: [1, { d: 2 }], b: 1 }));
        expect(common.typeOf("urn:pulumi:s::p::redisforge:pki:Pki$tls:index/privateKey:PrivateKey::ca-key")).toBe("tls:index/privateKey:PrivateKey");
    });
});

describe("random plugin", () => {
    test("length, character sets and minimums", () => {
        for (let i = 0; i < 50; i++) {
            const s: string = randomPlugin.randomString({ length: 48, special: false });
            expect(s).toMatch(/^[A-Za-z0-9]{48}$/);
        }
        const m: string = randomPlugin.randomString({ length: 8, upper: false, lower: false, numeric: true, special: true, overrideSpecial: "#", minSpecial: 4 });
        expect(m).toMatch(/^[0-9#]{8}$/);
        expect((m.match(/#/g) ?? []).length).toBeGreaterThanOrEqual(4);
        expect(() => randomPlugin.randomString({ length: 2, minUpper: 3 })).toThrow(/more than length 2/);
        expect(() => randomPlugin.randomString({ length: 4, upper: false, lower: false, numeric: false, special: false })).toThrow(/enable at least one/);
        const a = randomPlugin.createPassword({ length: 40, special: false }).outs.result;
        const b = randomPlugin.createPassword({ length: 40, special: false }).outs.result;
        expect(a).not.toBe(b);
        const id = randomPlugin.createId({ byteLength: 8, prefix: "p-" });
        expect(id.outs.hex).toMatch(/^p-[0-9a-f]{16}$/);
    });
});
