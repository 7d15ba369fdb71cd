/**
 * PKI: one cluster CA and the certificates it signs, all with @pulumi/tls.
 *
 * Invariants:
 * - every private key leaves this module only as a Pulumi secret Output;
 * - every leaf certificate carries `validityPeriodHours` and `earlyRenewalHours`, so a
 *   `pulumi up` inside the renewal window re-issues it before it expires (the CA likewise,
 *   with a ten times longer life and window);
 * - node certificates name the node's private IP and DNS name (SANs), the Envoy server
 *   certificate names the load balancer's DNS name / IP.
 */
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";

export interface PkiArgs {
    /** Cluster name; goes into the CA subject. */
    clusterName: string;
    /** Life of a leaf certificate, in days (≥ 2). */
    validityDays: number;
    /** Re-issue a leaf certificate when fewer than this many days are left (< validityDays). */
    renewBeforeDays: number;
}

export interface IssueArgs {
    /** Subject common name (host name of the node). */
    commonName: string;
    /** IP SANs. */
    ipAddresses?: pulumi.Input<string>[];
    /** DNS SANs. */
    dnsNames?: pulumi.Input<string>[];
    /** serverAuth usage (TLS server). */
    server: boolean;
    /** clientAuth usage (mTLS client: cluster bus, replication, Envoy upstream, exporter). */
    client: boolean;
}

export interface IssuedCert {
    certPem: pulumi.Output<string>;
    /** Secret. */
    keyPem: pulumi.Output<string>;
    /** The resolved SANs as requested (for tests and outputs). */
    ipAddresses: pulumi.Output<string[]>;
    dnsNames: pulumi.Output<string[]>;
}

const HOURS_PER_DAY = 24;

export class Pki extends pulumi.ComponentResource {
    /** CA certificate (public). */
    public readonly caCertPem: pulumi.Output<string>;
    private readonly caKeyPem: pulumi.Output<string>;
    private readonly args: PkiArgs;

    constructor(name: string, args: PkiArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redisforge:pki:Pki", name, {}, opts);
        this.args = args;
        const key = new tls.PrivateKey(`${name}-ca-key`, { algorithm: "ECDSA", ecdsaCurve: "P384" }, { parent: this });
        const ca = new tls.SelfSignedCert(`${name}-ca`, {
            privateKeyPem: key.privateKeyPem,
            isCaCertificate: true,
            subject: { commonName: `${args.clusterName} RedisForge CA`, organization: "RedisForge" },
            validityPeriodHours: args.validityDays * 10 * HOURS_PER_DAY,
            earlyRenewalHours: args.renewBeforeDays * 10 * HOURS_PER_DAY,
            allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
        }, { parent: this });
        this.caCertPem = ca.certPem;
        this.caKeyPem = pulumi.secret(key.privateKeyPem);
        this.registerOutputs({ caCertPem: this.caCertPem });
    }

    /** Issues a leaf certificate; its resources are children of `parent` (the node that uses it). */
    issue(name: string, a: IssueArgs, parent: pulumi.Resource): IssuedCert {
        const key = new tls.PrivateKey(`${name}-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent });
        const ipAddresses = pulumi.output(a.ipAddresses ?? []).apply((xs) => xs.filter((x) => x !== ""));
        const dnsNames = pulumi.output(a.dnsNames ?? []).apply((xs) => xs.filter((x) => x !== ""));
        const csr = new tls.CertRequest(`${name}-csr`, {
            privateKeyPem: key.privateKeyPem,
            subject: { commonName: a.commonName, organization: "RedisForge" },
            ipAddresses,
            dnsNames,
        }, { parent });
        const uses = ["digital_signature", "key_encipherment"];
        if (a.server) uses.push("server_auth");
        if (a.client) uses.push("client_auth");
        const cert = new tls.LocallySignedCert(`${name}`, {
            certRequestPem: csr.certRequestPem,
            caCertPem: this.caCertPem,
            caPrivateKeyPem: this.caKeyPem,
            validityPeriodHours: this.args.validityDays * HOURS_PER_DAY,
            earlyRenewalHours: this.args.renewBeforeDays * HOURS_PER_DAY,
            allowedUses: uses,
        }, { parent });
        return { certPem: cert.certPem, keyPem: pulumi.secret(key.privateKeyPem), ipAddresses, dnsNames };
    }
}
