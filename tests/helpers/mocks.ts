/**
 * A mocked Pulumi engine for unit tests: records every resource registration (type, name,
 * inputs as the engine would receive them, secrets still wrapped), answers a small table of
 * known invokes and THROWS on any other invoke, so a new data-source call cannot slip in
 * untested.
 *
 * Outputs are realistic enough for the code under test to validate them: IPs come from the
 * subnet the address was reserved in, secret references match each cloud's format, TLS keys
 * are real keys generated at test time, passwords are random.
 *
 * Use: `const engine = await installMocks({ stack: "prod" })` BEFORE creating resources; one
 * engine per program run (it keeps all state in the instance).
 */
import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import { formatIp, parseCidr } from "../../providers/network-plan";

/** The SDK's wire marker for a secret value. */
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";

export interface RecordedResource {
    type: string;
    name: string;
    /** Inputs as the engine received them (secrets are `{[sig]: SECRET_SIG, value}` objects). */
    inputs: Record<string, unknown>;
    id: string;
    state: Record<string, unknown>;
}

export interface RecordedInvoke {
    token: string;
    inputs: Record<string, unknown>;
}

export const MOCK_ACCOUNT = "123456789012";
export const MOCK_GCP_PROJECT = "redisforge-test";
export const MOCK_SUBSCRIPTION = "00000000-0000-4000-8000-000000000001";

/** True if `v` is a wire-format secret. */
export function isWireSecret(v: unknown): v is { value: unknown } {
    return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** Removes secret wrappers (for reading values in assertions). */
export function unwrap(v: unknown): unknown {
    if (isWireSecret(v)) return unwrap(v.value);
    if (Array.isArray(v)) return v.map(unwrap);
    if (typeof v === "object" && v !== null) {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) out[k] = unwrap(x);
        return out;
    }
    return v;
}

/** Every string leaf of `v`, with whether it sits under a secret wrapper. */
export function stringLeaves(v: unknown, secret = false, path = ""): { path: string; value: string; secret: boolean }[] {
    if (typeof v === "string") return [{ path, value: v, secret }];
    if (isWireSecret(v)) return stringLeaves(v.value, true, path);
    if (Array.isArray(v)) return v.flatMap((x, i) => stringLeaves(x, secret, `${path}[${i}]`));
    if (typeof v === "object" && v !== null) return Object.entries(v).flatMap(([k, x]) => stringLeaves(x, secret, path ? `${path}.${k}` : k));
    return [];
}

const sha = (s: string) => crypto.createHash("sha256").update(s).digest("hex");

export class MockEngine implements pulumi.runtime.Mocks {
    readonly resources: RecordedResource[] = [];
    readonly invokes: RecordedInvoke[] = [];
    /** Passwords and private keys handed out, for leak checks. */
    readonly secretValues: string[] = [];
    private readonly subnetCidr = new Map<string, string>();
    private readonly nextHost = new Map<string, number>();
    private publicIp = 0;

    constructor(private readonly region = "eu-west-1") {}

    byType(type: string): RecordedResource[] {
        return this.resources.filter((r) => r.type === type);
    }

    private allocate(subnetId: unknown): string {
        const cidr = this.subnetCidr.get(String(unwrap(subnetId)));
        if (!cidr) throw new Error(`mock: address requested in unknown subnet ${JSON.stringify(subnetId)}`);
        const [base] = parseCidr(cidr)!;
        const n = (this.nextHost.get(cidr) ?? 20) + 1; // low hosts are reserved by the clouds; .10 is the Azure LB
        this.nextHost.set(cidr, n);
        return formatIp(base + n);
    }

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string | undefined; state: Record<string, unknown> } {
        const inputs = args.inputs as Record<string, unknown>;
        const plain = unwrap(inputs) as Record<string, any>;
        const id = `${args.name}-id`;
        let state: Record<string, unknown> = { ...inputs };
        let rid = id;
        const keyPem = () => {
            const { privateKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
            const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
            this.secretValues.push(pem);
            return pem;
        };
        const fakePem = (kind: string) => `-----BEGIN ${kind}-----\n${Buffer.from(sha(args.name)).toString("base64")}\n-----END ${kind}-----\n`;
        switch (args.type) {
            // ---- tls / random
            case "tls:index/privateKey:PrivateKey": {
                const pem = keyPem();
                state = { ...state, privateKeyPem: pem, privateKeyPemPkcs8: pem, publicKeyPem: fakePem("PUBLIC KEY"), publicKeyOpenssh: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA${sha(args.name).slice(0, 40)} mock` };
                break;
            }
            case "tls:index/certRequest:CertRequest":
                state = { ...state, certRequestPem: fakePem("CERTIFICATE REQUEST") };
                break;
            case "tls:index/selfSignedCert:SelfSignedCert":
            case "tls:index/locallySignedCert:LocallySignedCert":
                state = { ...state, certPem: fakePem("CERTIFICATE"), validityEndTime: "2027-11-27T00:00:00Z", readyForRenewal: false };
                break;
            case "random:index/randomPassword:RandomPassword": {
                const pw = crypto.randomBytes(36).toString("base64").replace(/[^A-Za-z0-9]/g, "").slice(0, 40).padEnd(Number(plain.length ?? 48), "x");
                this.secretValues.push(pw);
                state = { ...state, result: pw };
                break;
            }
            case "docker:index/image:Image": {
                const name = String(plain.imageName);
                const repo = name.replace(/:[^/:]+$/, "");
                state = { ...state, repoDigest: `${repo}@sha256:${sha(name)}`, imageName: name };
                break;
            }
            // ---- aws
            case "aws:ec2/subnet:Subnet":
                rid = `subnet-${sha(args.name).slice(0, 17)}`;
                this.subnetCidr.set(rid, String(plain.cidrBlock));
                state = { ...state, arn: `arn:aws:ec2:${this.region}:${MOCK_ACCOUNT}:subnet/${rid}` };
                break;
            case "aws:ec2/networkInterface:NetworkInterface": {
                const ip = this.allocate(plain.subnetId);
                rid = `eni-${sha(args.name).slice(0, 17)}`;
                state = { ...state, privateIp: ip, privateIps: [ip], privateDnsName: `ip-${ip.replace(/\./g, "-")}.${this.region}.compute.internal` };
                break;
            }
            case "aws:secretsmanager/secret:Secret":
                state = { ...state, arn: `arn:aws:secretsmanager:${this.region}:${MOCK_ACCOUNT}:secret:${plain.name}-${sha(args.name).slice(0, 6)}` };
                rid = String(state.arn);
                break;
            case "aws:s3/bucket:Bucket": {
                const b = `${args.name}-${sha(args.name).slice(0, 7)}`;
                state = { ...state, bucket: b, arn: `arn:aws:s3:::${b}` };
                rid = b;
                break;
            }
            case "aws:lb/loadBalancer:LoadBalancer":
                state = { ...state, arn: `arn:aws:elasticloadbalancing:${this.region}:${MOCK_ACCOUNT}:loadbalancer/net/${args.name}/1`, dnsName: `${plain.internal ? "internal-" : ""}${args.name}-${sha(args.name).slice(0, 8)}.elb.${this.region}.amazonaws.com` };
                break;
            case "aws:lb/targetGroup:TargetGroup":
                state = { ...state, arn: `arn:aws:elasticloadbalancing:${this.region}:${MOCK_ACCOUNT}:targetgroup/${args.name}/1` };
                break;
            case "aws:ecr/repository:Repository":
                state = { ...state, registryId: MOCK_ACCOUNT, repositoryUrl: `${MOCK_ACCOUNT}.dkr.ecr.${this.region}.amazonaws.com/${args.name}` };
                break;
            case "aws:iam/role:Role":
                state = { ...state, arn: `arn:aws:iam::${MOCK_ACCOUNT}:role/${args.name}`, name: args.name };
                break;
            case "aws:iam/instanceProfile:InstanceProfile":
                state = { ...state, name: args.name, arn: `arn:aws:iam::${MOCK_ACCOUNT}:instance-profile/${args.name}` };
                break;
            // ---- gcp
            case "gcp:compute/subnetwork:Subnetwork":
                rid = `projects/${MOCK_GCP_PROJECT}/regions/${plain.region}/subnetworks/${args.name}`;
                this.subnetCidr.set(rid, String(plain.ipCidrRange));
                break;
            case "gcp:compute/address:Address": {
                const ip = plain.addressType === "EXTERNAL" ? `34.77.0.${++this.publicIp}` : this.allocate(plain.subnetwork);
                state = { ...state, address: ip, project: MOCK_GCP_PROJECT };
                break;
            }
            case "gcp:secretmanager/secret:Secret":
                rid = `projects/${MOCK_GCP_PROJECT}/secrets/${plain.secretId}`;
                state = { ...state, name: rid, project: MOCK_GCP_PROJECT };
                break;
            case "gcp:serviceaccount/account:Account":
                state = { ...state, email: `${plain.accountId}@${MOCK_GCP_PROJECT}.iam.gserviceaccount.com` };
                break;
            case "gcp:artifactregistry/repository:Repository":
                state = { ...state, project: MOCK_GCP_PROJECT };
                break;
            case "gcp:storage/bucket:Bucket":
                state = { ...state, name: `${args.name}-${sha(args.name).slice(0, 7)}`, url: `gs://${args.name}` };
                break;
            // ---- azure
            case "azure-native:resources:ResourceGroup":
                state = { ...state, name: `${args.name}-rg1` };
                break;
            case "azure-native:network:Subnet":
                rid = `/subscriptions/${MOCK_SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/${args.name}`;
                this.subnetCidr.set(rid, String(plain.addressPrefix));
                break;
            case "azure-native:network:NetworkInterface": {
                const cfg = (plain.ipConfigurations ?? [])[0] ?? {};
                const ip = this.allocate(cfg.subnet?.id);
                state = { ...state, ipConfigurations: [{ ...cfg, privateIPAddress: ip }], dnsSettings: { internalDomainNameSuffix: "abcdefgh.ax.internal.cloudapp.net" } };
                break;
            }
            case "azure-native:network:PublicIPAddress":
                state = { ...state, ipAddress: `20.50.0.${++this.publicIp}`, dnsSettings: plain.dnsSettings ? { ...plain.dnsSettings, fqdn: `${plain.dnsSettings.domainNameLabel}.westeurope.cloudapp.azure.com` } : undefined };
                break;
            case "azure-native:keyvault:Vault":
                state = { ...state, name: plain.vaultName, properties: { ...plain.properties, vaultUri: `https://${plain.vaultName}.vault.azure.net/` } };
                break;
            case "azure-native:managedidentity:UserAssignedIdentity":
                state = { ...state, principalId: crypto.randomUUID(), clientId: crypto.randomUUID() };
                break;
            case "azure-native:containerregistry:Registry":
                state = { ...state, loginServer: `${plain.registryName}.azurecr.io` };
                break;
            case "azure-native:storage:StorageAccount":
            case "azure-native:storage:BlobContainer":
                state = { ...state, name: `${args.name.replace(/[^a-z0-9]/g, "").slice(0, 20)}x` };
                break;
            default:
                break;
        }
        if (args.type.startsWith("azure-native:") && !args.type.startsWith("azure-native:network:Subnet")) {
            rid = `/subscriptions/${MOCK_SUBSCRIPTION}/resourceGroups/rg/providers/${args.type.split(":")[1]}/${args.name}`;
        }
        this.resources.push({ type: args.type, name: args.name, inputs, id: rid, state });
        return { id: rid, state };
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        this.invokes.push({ token: args.token, inputs: args.inputs as Record<string, unknown> });
        switch (args.token) {
            case "aws:ec2/getAmi:getAmi":
                return { id: "ami-0abcdef1234567890", architecture: "x86_64", name: "debian-12-amd64-20261101-1234" };
            case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
                return { id: MOCK_ACCOUNT, userName: "AWS", password: "mock-ecr-token", authorizationToken: "QVdTOm1vY2s=", proxyEndpoint: `https://${MOCK_ACCOUNT}.dkr.ecr.${this.region}.amazonaws.com`, expiresAt: "2030-01-01T00:00:00Z" };
            case "gcp:organizations/getClientConfig:getClientConfig":
                return { id: "mock", accessToken: "mock-gcp-token", project: MOCK_GCP_PROJECT, region: "europe-west1", zone: "europe-west1-b" };
            case "azure-native:authorization:getClientConfig":
                return { clientId: crypto.randomUUID(), objectId: crypto.randomUUID(), subscriptionId: MOCK_SUBSCRIPTION, tenantId: "00000000-0000-4000-8000-0000000000aa" };
            case "azure-native:containerregistry:listRegistryCredentials":
                return { username: "mockacr", passwords: [{ name: "password", value: "mock-acr-password" }] };
            default:
                throw new Error(`unmocked invoke ${args.token} (${JSON.stringify(args.inputs)}); add it to tests/helpers/mocks.ts if the program really needs it`);
        }
    }
}

export interface InstallOptions {
    project?: string;
    stack?: string;
    preview?: boolean;
    region?: string;
}

/** Installs a fresh MockEngine as the Pulumi engine. Call before creating any resource. */
export async function installMocks(o: InstallOptions = {}): Promise<MockEngine> {
    const engine = new MockEngine(o.region);
    await pulumi.runtime.setMocks(engine, o.project ?? "redisforge", o.stack ?? "test", o.preview ?? false);
    return engine;
}

/**
 * Resolves an Output's value in tests. Bounded: an Output that stays unknown (e.g. a resource
 * output the mock did not return, during a preview) fails after `ms` instead of hanging.
 */
export function valueOf<T>(o: pulumi.Output<T>, ms = 30000): Promise<T> {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`Output did not resolve within ${ms} ms (unknown during preview?)`)), ms);
        o.apply((v) => {
            clearTimeout(timer);
            resolve(v);
            return v;
        });
    });
}

/**
 * Waits until the engine has seen no new registration for a few ticks (bounded: ≤ 60 s).
 * Resource registration is asynchronous; assertions over `engine.resources` need it settled.
 * The bound is generous because on a loaded machine (2 cores, load 15-20) the first 20 ms tick
 * alone can take 20 s while the queued registrations run.
 */
export async function settle(engine: MockEngine, maxMs = 60000): Promise<void> {
    const start = Date.now();
    let last = -1;
    let stable = 0;
    while (Date.now() - start < maxMs) {
        await new Promise((r) => setTimeout(r, 20));
        if (engine.resources.length === last) {
            if (++stable >= 5) return;
        } else {
            stable = 0;
            last = engine.resources.length;
        }
    }
    throw new Error(`mock engine did not settle within ${maxMs} ms (${engine.resources.length} resources so far)`);
}
