/**
 * PKI: the cluster CA and the certificates it signs, all with @pulumi/tls.
 *
 * Invariants:
 * - every private key leaves this module only as a Pulumi secret Output;
 * - every leaf certificate carries `validityPeriodHours` and `earlyRenewalHours`, so a
 *   `pulumi up` inside the renewal window re-issues it before it expires (the CA likewise,
 *   with a ten times longer life and window);
 * - node certificates name the node's private IP and DNS name (SANs), the Envoy server
 *   certificate names the load balancer's DNS name / IP.
 *
 * CA rotation (`redisforge:tlsCaGeneration`, `redisforge:tlsCaOverlap`). Generation N has its
 * own CA key and certificate (subject "<cluster> RedisForge CA" for 1, "... CA gN" after), and
 * every leaf of generation N has its own key. While the overlap is on and N > 1, the previous
 * generation stays:
 * - the trust bundle (`caCertPem`: what nodes load as tls-ca-cert-file and clients get as the
 *   stack's CA) holds CA N and CA N-1, so certificates of either generation are accepted;
 * - CA N is also cross-signed by CA N-1, and every leaf is served with that cross certificate
 *   after it (`certPem` is a chain), so a peer or client that still trusts only CA N-1 verifies
 *   leaf -> cross(N by N-1) -> CA N-1. Nodes that reload at different moments therefore always
 *   accept each other (cluster bus, replication), and old clients keep working.
 * Turning the overlap off drops CA N-1, its cross certificate and the chains' second element.
 * Generation 1 keeps the resource names PKIs had before generations existed, so existing stacks
 * see no change.
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
    /** CA generation that signs the certificates (integer ≥ 1, `redisforge:tlsCaGeneration`). Default 1. */
    caGeneration?: number;
    /**
     * Keep trusting generation caGeneration-1 (bundle + cross-signed chains) — the rotation's
     * overlap window (`redisforge:tlsCaOverlap`). Default true; no effect for generation 1.
     */
    caOverlap?: boolean;
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
    /** The leaf certificate, followed by the cross-signed CA during an overlap (a PEM chain). */
    certPem: pulumi.Output<string>;
    /** Secret. */
    keyPem: pulumi.Output<string>;
    /** The resolved SANs as requested (for tests and outputs). */
    ipAddresses: pulumi.Output<string[]>;
    dnsNames: pulumi.Output<string[]>;
}

const HOURS_PER_DAY = 24;

/** Pure: the resource-name suffix and CA subject suffix of a generation (1 keeps the historic names). */
export function generationSuffix(generation: number): string {
    return generation === 1 ? "" : `-g${generation}`;
}

/** Pure: checks the generation args; returns problems (key, rule, value, fix). */
export function checkPkiGeneration(a: Pick<PkiArgs, "caGeneration">): string[] {
    const g = a.caGeneration ?? 1;
    return Number.isInteger(g) && g >= 1 && g <= 1000
        ? []
        : [`redisforge:tlsCaGeneration=${JSON.stringify(a.caGeneration)} must be an integer from 1 to 1000; raise it by one to rotate the CA (e.g. \`pulumi config set redisforge:tlsCaGeneration 2\`)`];
}

/** Joins PEM blocks, one newline between them. */
function pemChain(parts: string[]): string {
    return parts.map((p) => (p.endsWith("\n") ? p : `${p}\n`)).join("");
}

export class Pki extends pulumi.ComponentResource {
    /** The trust bundle (public): the CA of this generation, plus the previous one during an overlap. */
    public readonly caCertPem: pulumi.Output<string>;
    /** The CA of this generation alone (public). */
    public readonly currentCaCertPem: pulumi.Output<string>;
    /** The generation that signs (for outputs and tests). */
    public readonly generation: number;
    private readonly caKeyPem: pulumi.Output<string>;
    /** CA N cross-signed by CA N-1, served after every leaf during an overlap. */
    private readonly crossCertPem?: pulumi.Output<string>;
    private readonly args: PkiArgs;

    constructor(name: string, args: PkiArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redisforge:pki:Pki", name, {}, opts);
        const problems = checkPkiGeneration(args);
        if (problems.length) throw new Error(problems.join("\n"));
        this.args = args;
        const g = (this.generation = args.caGeneration ?? 1);
        const ca = (gen: number) => {
            const sfx = gen === 1 ? "" : `${gen}`;
            const key = new tls.PrivateKey(`${name}-ca${sfx}-key`, { algorithm: "ECDSA", ecdsaCurve: "P384" }, { parent: this });
            const subject = { commonName: `${args.clusterName} RedisForge CA${gen === 1 ? "" : ` g${gen}`}`, organization: "RedisForge" };
            const cert = new tls.SelfSignedCert(`${name}-ca${sfx}`, {
                privateKeyPem: key.privateKeyPem,
                isCaCertificate: true,
                subject,
                validityPeriodHours: args.validityDays * 10 * HOURS_PER_DAY,
                earlyRenewalHours: args.renewBeforeDays * 10 * HOURS_PER_DAY,
                allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
            }, { parent: this });
            return { key, cert, subject, sfx };
        };
        const current = ca(g);
        this.currentCaCertPem = current.cert.certPem;
        this.caKeyPem = pulumi.secret(current.key.privateKeyPem);
        if (g > 1 && (args.caOverlap ?? true)) {
            const previous = ca(g - 1);
            const csr = new tls.CertRequest(`${name}-ca${current.sfx}-cross-csr`, { privateKeyPem: current.key.privateKeyPem, subject: current.subject }, { parent: this });
            const cross = new tls.LocallySignedCert(`${name}-ca${current.sfx}-cross`, {
                certRequestPem: csr.certRequestPem,
                caCertPem: previous.cert.certPem,
                caPrivateKeyPem: pulumi.secret(previous.key.privateKeyPem),
                isCaCertificate: true,
                validityPeriodHours: args.validityDays * 10 * HOURS_PER_DAY,
                earlyRenewalHours: args.renewBeforeDays * 10 * HOURS_PER_DAY,
                allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
            }, { parent: this });
            this.crossCertPem = cross.certPem;
            this.caCertPem = pulumi.all([current.cert.certPem, previous.cert.certPem]).apply(pemChain);
        } else {
            this.caCertPem = current.cert.certPem;
        }
        this.registerOutputs({ caCertPem: this.caCertPem });
    }

    /** Issues a leaf certificate; its resources are children of `parent` (the node that uses it). */
    issue(name: string, a: IssueArgs, parent: pulumi.Resource): IssuedCert {
        // A new generation gets new leaf keys too (new names: created, then the old ones deleted).
        const n = `${name}${generationSuffix(this.generation)}`;
        const key = new tls.PrivateKey(`${n}-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent });
        const ipAddresses = pulumi.output(a.ipAddresses ?? []).apply((xs) => xs.filter((x) => x !== ""));
        const dnsNames = pulumi.output(a.dnsNames ?? []).apply((xs) => xs.filter((x) => x !== ""));
        const csr = new tls.CertRequest(`${n}-csr`, {
            privateKeyPem: key.privateKeyPem,
            subject: { commonName: a.commonName, organization: "RedisForge" },
            ipAddresses,
            dnsNames,
        }, { parent });
        const uses = ["digital_signature", "key_encipherment"];
        if (a.server) uses.push("server_auth");
        if (a.client) uses.push("client_auth");
        const cert = new tls.LocallySignedCert(`${n}`, {
            certRequestPem: csr.certRequestPem,
            caCertPem: this.currentCaCertPem,
            caPrivateKeyPem: this.caKeyPem,
            validityPeriodHours: this.args.validityDays * HOURS_PER_DAY,
            earlyRenewalHours: this.args.renewBeforeDays * HOURS_PER_DAY,
            allowedUses: uses,
        }, { parent });
        const certPem = this.crossCertPem ? pulumi.all([cert.certPem, this.crossCertPem]).apply(pemChain) : cert.certPem;
        return { certPem, keyPem: pulumi.secret(key.privateKeyPem), ipAddresses, dnsNames };
    }
}
