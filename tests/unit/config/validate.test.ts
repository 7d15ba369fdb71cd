/**
 * Bad config is rejected with a message naming key, rule, value and fix, BEFORE any resource
 * is registered: each case runs the real program entry under the mocked engine and counts the
 * registrations (must be zero).
 */
import { adapters } from "../../../providers/registry";
import { ConfigError, validateConfig } from "../../../infra/config";
import { Raw, runProgram, stackFixture } from "../components/program";

const aws = stackFixture("aws");
const gcp = stackFixture("gcp");
const azure = stackFixture("azure");
const without = (raw: Raw, key: string): Raw => {
    const copy = { ...raw };
    delete copy[key];
    return copy;
};

interface BadCase {
    what: string;
    raw: Raw;
    /** Substrings the error must contain (key=value, rule, fix). */
    expect: string[];
    secretKeys?: string[];
}

const LONG = "A".repeat(20) + "b".repeat(20); // 40 chars, no forbidden characters

const CASES: BadCase[] = [
    { what: "unknown cloud", raw: { ...aws, cloud: "ibm" }, expect: ['redisforge:cloud="ibm" is not a registered cloud', "use one of: aws, gcp, azure"] },
    { what: "missing cloud", raw: without(aws, "cloud"), expect: ["redisforge:cloud is required and missing", "pulumi config set redisforge:cloud"] },
    { what: "missing region", raw: without(aws, "region"), expect: ["redisforge:region is required and missing"] },
    { what: "two zones", raw: { ...aws, zones: ["eu-west-1a", "eu-west-1b"], replicasPerShard: 1 }, expect: ["needs at least 3 distinct zones", "got 2", "add zones"] },
    { what: "duplicate zone", raw: { ...aws, zones: ["eu-west-1a", "eu-west-1a", "eu-west-1b"] }, expect: ['redisforge:zones=["eu-west-1a","eu-west-1a","eu-west-1b"] lists a zone more than once ("eu-west-1a")', "remove the repeated entry", "needs at least 3 distinct zones"] },
    { what: "zone of another region", raw: { ...aws, zones: ["eu-west-1a", "eu-west-1b", "us-east-1c"] }, expect: ['redisforge:zones entry "us-east-1c" is not an availability zone of eu-west-1'] },
    { what: "two shards", raw: { ...aws, shards: 2 }, expect: ["redisforge:shards=2 must be at least 3", "set redisforge:shards to 3 or more"] },
    { what: "no replica in production", raw: { ...aws, replicasPerShard: 0 }, expect: ["redisforge:replicasPerShard=0 must be at least 1 for a production stack", "set it to 1 or more"] },
    { what: "more replicas than zones allow", raw: { ...aws, replicasPerShard: 3 }, expect: ["redisforge:replicasPerShard=3 needs at least 4 zones", "got 3 zones", "lower redisforge:replicasPerShard to 2 or add zones"] },
    { what: "negative replicas", raw: { ...aws, production: false, replicasPerShard: -1 }, expect: ["redisforge:replicasPerShard=-1 must not be negative"] },
    { what: "shards not an integer", raw: { ...aws, shards: "three" }, expect: ['redisforge:shards="three" must be an integer'] },
    { what: "invalid network CIDR", raw: { ...aws, networkCidr: "10.40.0.0/33" }, expect: ['redisforge:networkCidr="10.40.0.0/33" is not an IPv4 CIDR'] },
    { what: "public network CIDR", raw: { ...aws, networkCidr: "8.8.0.0/16" }, expect: ['redisforge:networkCidr="8.8.0.0/16" must be inside a private range'] },
    { what: "network too small", raw: { ...aws, networkCidr: "10.40.0.0/26" }, expect: ['redisforge:networkCidr="10.40.0.0/26" is too small'] },
    { what: "client CIDR with host bits", raw: { ...aws, clientCidrs: ["10.10.0.1/16"] }, expect: ['redisforge:clientCidrs entry "10.10.0.1/16" is not an IPv4 CIDR'] },
    { what: "monitoring open to the world", raw: { ...aws, monitoringCidrs: ["0.0.0.0/0"] }, expect: ['redisforge:monitoringCidrs entry "0.0.0.0/0" opens the exporter and Envoy admin ports to the whole internet', "list your Prometheus network"] },
    { what: "SSH open to the world", raw: { ...aws, adminCidrs: ["0.0.0.0/0"] }, expect: ['redisforge:adminCidrs entry "0.0.0.0/0" opens SSH to the whole internet'] },
    { what: "no client CIDRs", raw: { ...aws, clientCidrs: [] }, expect: ["redisforge:clientCidrs=[] leaves no client able to connect"] },
    { what: "Azure size on AWS", raw: { ...aws, nodeSize: "Standard_E2s_v5" }, expect: ['redisforge:nodeSize="Standard_E2s_v5" is not an EC2 instance type'] },
    { what: "EC2 size on GCP", raw: { ...gcp, envoySize: "r7i.large" }, expect: ['redisforge:envoySize="r7i.large" is not a Compute Engine machine type'] },
    { what: "GCE size on Azure", raw: { ...azure, nodeSize: "n2-highmem-2" }, expect: ['redisforge:nodeSize="n2-highmem-2" is not an Azure VM size'] },
    { what: "zone name on Azure", raw: { ...azure, zones: ["westeurope-1", "2", "3"] }, expect: ['redisforge:zones entry "westeurope-1" is not an Azure availability zone'] },
    { what: "no Envoy", raw: { ...aws, envoyCount: 0 }, expect: ["redisforge:envoyCount=0 must be at least 1", "set it to 2 or more"] },
    { what: "zero-day backup retention", raw: { ...aws, backupRetentionDays: 0 }, expect: ["redisforge:backupRetentionDays=0 must be at least 1 day"] },
    { what: "exporter ports collide", raw: { ...aws, redisExporterPort: 9100 }, expect: ["redisforge:redisExporterPort=9100 collides with redisforge:nodeExporterPort=9100 on the Redis node host"] },
    { what: "Envoy admin on the client port", raw: { ...aws, envoyAdminPort: 6379 }, expect: ["redisforge:clientPort=6379 collides with redisforge:envoyAdminPort=6379 on the Envoy host"] },
    { what: "bus and Redis port collide", raw: { ...aws, busPort: 6379 }, expect: ["redisforge:redisPort=6379 collides with redisforge:busPort=6379 on the Redis node host"] },
    { what: "port out of range", raw: { ...aws, busPort: 70000 }, expect: ["redisforge:busPort=70000 must be a TCP port between 1 and 65535"] },
    { what: "short supplied password", raw: { ...aws, adminPassword: "short-password" }, secretKeys: ["adminPassword"], expect: ["redisforge:adminPassword is 14 characters; a supplied password must be at least 32", "pulumi config set --secret redisforge:adminPassword"] },
    { what: "password in plaintext config", raw: { ...aws, appPassword: LONG }, expect: ["redisforge:appPassword is stored in plaintext", "--secret"] },
    { what: "password with a quote", raw: { ...aws, replicationPassword: `${LONG}"x` }, secretKeys: ["replicationPassword"], expect: ["redisforge:replicationPassword contains whitespace, a quote or a backslash"] },
    { what: "unknown key", raw: { ...aws, shard: 3 }, expect: ["redisforge:shard is not a RedisForge config key"] },
    { what: "no image and no build", raw: { ...aws, buildImages: false }, expect: ["redisforge:redisImage is required when redisforge:buildImages=false", "redisforge:envoyImage is required"] },
    { what: "exporter image by tag", raw: { ...aws, redisExporterImage: "oliver006/redis_exporter:v1.67.0" }, expect: ['redisforge:redisExporterImage="oliver006/redis_exporter:v1.67.0" must be pinned by digest'] },
    { what: "node timeout too short", raw: { ...aws, clusterNodeTimeoutMs: 500 }, expect: ["redisforge:clusterNodeTimeoutMs=500 must be between 1000 and 60000 ms", "needless failovers", "set it to 5000 (the default) or 2000"] },
    { what: "node timeout too long", raw: { ...aws, clusterNodeTimeoutMs: 120000 }, expect: ["redisforge:clusterNodeTimeoutMs=120000 must be between 1000 and 60000 ms", "over a minute"] },
    { what: "CA generation below 1", raw: { ...aws, tlsCaGeneration: 0 }, expect: ["redisforge:tlsCaGeneration=0 must be an integer from 1 to 1000", "raise it by one to rotate the CA", "pulumi config set redisforge:tlsCaGeneration 2"] },
    { what: "renewal window not below validity", raw: { ...aws, tlsValidityDays: 30, tlsRenewBeforeDays: 30 }, expect: ["redisforge:tlsRenewBeforeDays=30 must be at least 1 and below redisforge:tlsValidityDays=30", "re-issues certificates before they expire", "set redisforge:tlsRenewBeforeDays to 10 (or raise redisforge:tlsValidityDays)"] },
    { what: "tiny data disk", raw: { ...aws, dataDiskGb: 5 }, expect: ["redisforge:dataDiskGb=5 must be at least 10 GiB"] },
    { what: "missing node memory", raw: without(aws, "nodeMemoryGb"), expect: ["redisforge:nodeMemoryGb is required and missing"] },
    { what: "zero node memory", raw: { ...aws, nodeMemoryGb: 0 }, expect: ["redisforge:nodeMemoryGb=0 must be at least 1", "set it to the RAM of redisforge:nodeSize"] },
    { what: "cluster name not a DNS label", raw: { ...aws, clusterName: "Prod_1" }, expect: ['redisforge:clusterName="Prod_1" must be a lower-case DNS label'] },
    { what: "boolean as yes", raw: { ...aws, production: "yes" }, expect: ['redisforge:production="yes" must be true or false'] },
];

describe("bad config registers nothing and says what to fix", () => {
    test("the table has at least 25 bad configs", () => {
        expect(CASES.length).toBeGreaterThanOrEqual(25);
    });

    test.each(CASES.map((c) => [c.what, c] as const))("%s", async (_what, c) => {
        const run = await runProgram(c.raw, { stack: "prod", secretKeys: c.secretKeys });
        expect(run.error).toBeInstanceOf(ConfigError);
        for (const s of c.expect) expect(run.error!.message).toContain(s);
        expect(run.engine.resources).toHaveLength(0);
        expect(run.engine.invokes).toHaveLength(0);
        // A supplied secret is never echoed back.
        for (const k of ["adminPassword", "appPassword", "replicationPassword"]) {
            const v = c.raw[k];
            if (typeof v === "string") expect(run.error!.message).not.toContain(v);
        }
    });

    test("every problem of every case names a fix (an action after the rule)", () => {
        // The fix is the clause that tells the operator what to do: an imperative after "; " or ": ".
        const FIX = /(;|:) .*\b(set|add|remove|use|list|lower|raise|pick|give|choose|store|write|quote|pin)\b|pulumi config set/;
        const missing: string[] = [];
        for (const c of CASES) {
            try {
                validateConfig(c.raw, adapters, { stackName: "prod", isSecret: (key) => (c.secretKeys ?? []).includes(key) });
                missing.push(`${c.what}: no error`);
            } catch (e) {
                for (const p of (e as ConfigError).problems) if (!FIX.test(p)) missing.push(p);
            }
        }
        expect(missing).toEqual([]);
    });

    test("every problem is reported at once, in one error", async () => {
        const raw = { ...aws, cloud: "aws", shards: 2, replicasPerShard: 0, monitoringCidrs: ["0.0.0.0/0"], envoyCount: 0, backupRetentionDays: 0, busPort: 6379 };
        const run = await runProgram(raw, { stack: "prod" });
        expect(run.error).toBeInstanceOf(ConfigError);
        const problems = (run.error as ConfigError).problems;
        expect(problems.length).toBeGreaterThanOrEqual(6);
        expect(run.error!.message).toMatch(/invalid stack config \(\d+ problems\)/);
        expect(run.engine.resources).toHaveLength(0);
    });
});

describe("valid config", () => {
    test.each(["aws", "gcp", "azure"])("the %s example stack validates without problems", (kind) => {
        const { config, warnings } = validateConfig(stackFixture(kind), adapters, { stackName: "prod", isSecret: () => true });
        expect(config.cloud).toBe(kind);
        expect(config.zones).toHaveLength(3);
        expect(config.shards * (1 + config.replicasPerShard)).toBe(6);
        expect(warnings).toEqual([]);
    });

    test("a single Envoy is allowed with a warning naming the single point of failure", () => {
        const { config, warnings } = validateConfig({ ...aws, envoyCount: 1 }, adapters, { stackName: "prod" });
        expect(config.envoyCount).toBe(1);
        expect(warnings.join("\n")).toContain("redisforge:envoyCount=1 is a single point of failure");
    });

    test("engine-style string values parse (numbers, booleans, JSON lists)", () => {
        const raw = { ...aws, shards: "4", replicasPerShard: "2", production: "true", zones: JSON.stringify(aws.zones), clientCidrs: JSON.stringify(aws.clientCidrs) };
        const { config } = validateConfig(raw, adapters, { stackName: "prod" });
        expect(config.shards).toBe(4);
        expect(config.replicasPerShard).toBe(2);
        expect(config.clientCidrs).toEqual(aws.clientCidrs);
    });

    test("a supplied secret password becomes a secret Output", async () => {
        const pulumi = await import("@pulumi/pulumi");
        const { config } = validateConfig({ ...aws, adminPassword: LONG }, adapters, { stackName: "prod", isSecret: () => true });
        expect(await pulumi.isSecret(config.passwords.admin!)).toBe(true);
    });
});
