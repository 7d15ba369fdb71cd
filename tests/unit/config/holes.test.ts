/**
 * Validation holes of issue 9, closed: the whole internet as several ranges, per-zone subnet
 * capacity per cloud, privileged and SSH client ports, upper bounds on nodes and Envoys.
 * Bad configs run through the real program entry under the mocked engine (zero resources
 * registered); the boundaries that must still be accepted run through validateConfig (pure).
 */
import { adapters } from "../../../providers/registry";
import { ConfigError, MAX_ENVOYS, MAX_REDIS_NODES, validateConfig } from "../../../infra/config";
import { familiesCovered } from "../../../infra/cidr-cover";
import { Raw, runProgram, stackFixture } from "../components/program";

const aws = stackFixture("aws");
const gcp = stackFixture("gcp");
const azure = stackFixture("azure");

const problemsOf = (raw: Raw): string[] => {
    try {
        validateConfig(raw, adapters, { stackName: "prod", isSecret: () => true });
        return [];
    } catch (e) {
        if (e instanceof ConfigError) return e.problems;
        throw e;
    }
};

interface BadCase {
    what: string;
    raw: Raw;
    expect: string[];
}

const SMALL_NET = "10.40.0.0/24"; // 3 zones -> /27 subnets: 32 addresses

const BAD: BadCase[] = [
    {
        what: "monitoring as two halves of IPv4",
        raw: { ...aws, monitoringCidrs: ["0.0.0.0/1", "128.0.0.0/1"] },
        expect: ['redisforge:monitoringCidrs=["0.0.0.0/1","128.0.0.0/1"] together cover all of IPv4 (the same as 0.0.0.0/0)', "open the exporter and Envoy admin ports to the whole internet", "list only your Prometheus network"],
    },
    {
        what: "SSH as three ranges covering IPv4",
        raw: { ...aws, adminCidrs: ["128.0.0.0/1", "64.0.0.0/2", "0.0.0.0/2"] },
        expect: ["redisforge:adminCidrs=", "together cover all of IPv4", "open SSH to the whole internet", "list only your bastion/VPN network"],
    },
    {
        what: "SSH as two halves of IPv6",
        raw: { ...aws, adminCidrs: ["::/1", "8000::/1"] },
        expect: ["together cover all of IPv6 (the same as ::/0)", 'redisforge:adminCidrs entry "::/1" is not an IPv4 CIDR', "IPv6 sources are not supported"],
    },
    {
        what: "60 shards in a /24 on AWS",
        raw: { ...aws, shards: 60, networkCidr: SMALL_NET },
        expect: ['redisforge:networkCidr="10.40.0.0/24" gives each zone a /27 private subnet with 27 usable addresses (32 minus 5 reserved by aws)', 'zone "eu-west-1a" must hold 42 (40 Redis nodes + 1 Envoys + 1 load-balancer address)', "use a /23 or larger redisforge:networkCidr"],
    },
    {
        what: "60 shards in a /24 on GCP",
        raw: { ...gcp, shards: 60, networkCidr: SMALL_NET },
        expect: ["with 28 usable addresses (32 minus 4 reserved by gcp)", "must hold 42 (40 Redis nodes + 1 Envoys + 1 load-balancer address)", "use a /23 or larger"],
    },
    {
        what: "60 shards in a /24 on Azure",
        raw: { ...azure, shards: 60, networkCidr: SMALL_NET },
        expect: ["with 27 usable addresses (32 minus 5 reserved by azure)", "use a /23 or larger"],
    },
    {
        what: "38 shards in a /24 on AWS (one address short)",
        raw: { ...aws, shards: 38, networkCidr: SMALL_NET },
        expect: ["with 27 usable addresses", "must hold 28 (26 Redis nodes + 1 Envoys + 1 load-balancer address)"],
    },
    { what: "client port 22", raw: { ...aws, clientPort: 22 }, expect: ["redisforge:clientPort=22 collides with SSH", "pick another port from 1024 to 65535"] },
    { what: "client port 443", raw: { ...aws, clientPort: 443 }, expect: ["redisforge:clientPort=443 is a privileged port (below 1024): Envoy runs as a non-root user", "pick a port from 1024 to 65535"] },
    { what: "Envoy admin port 80", raw: { ...aws, envoyAdminPort: 80 }, expect: ["redisforge:envoyAdminPort=80 is a privileged port (below 1024): Envoy"] },
    { what: "Redis port 636", raw: { ...aws, redisPort: 636 }, expect: ["redisforge:redisPort=636 is a privileged port (below 1024): Redis"] },
    { what: "client port on node_exporter's", raw: { ...aws, clientPort: 9100 }, expect: ["redisforge:clientPort=9100 collides with redisforge:nodeExporterPort=9100 on the Envoy host"] },
    { what: "400 Envoys", raw: { ...aws, envoyCount: 400 }, expect: [`redisforge:envoyCount=400 is above ${MAX_ENVOYS}`, `set it to ${MAX_ENVOYS} or fewer`] },
    { what: "10 000 shards", raw: { ...aws, shards: 10000 }, expect: [`redisforge:shards=10000 with redisforge:replicasPerShard=1 makes 20000 Redis nodes`, `at most ${MAX_REDIS_NODES}`, "set redisforge:shards to 500 or fewer"] },
    { what: "334 shards x 2 replicas", raw: { ...aws, shards: 334, replicasPerShard: 2 }, expect: ["makes 1002 Redis nodes", "set redisforge:shards to 333 or fewer"] },
];

describe("validation holes are closed (real entry, nothing registered)", () => {
    test.each(BAD.map((c) => [c.what, c] as const))("%s", async (_what, c) => {
        const run = await runProgram(c.raw, { stack: "prod" });
        expect(run.error).toBeInstanceOf(ConfigError);
        for (const s of c.expect) expect(run.error!.message).toContain(s);
        expect(run.engine.resources).toHaveLength(0);
        expect(run.engine.invokes).toHaveLength(0);
        // Every problem names a fix (same rule as validate.test.ts).
        const FIX = /(;|:) .*\b(set|add|remove|use|list|lower|raise|pick|give|choose|store|write|quote|pin)\b|pulumi config set/;
        expect((run.error as ConfigError).problems.filter((p) => !FIX.test(p))).toEqual([]);
    });

    test("10 000 shards is refused at once, without planning", async () => {
        const run = await runProgram({ ...aws, shards: 10000 }, { stack: "prod" });
        expect(run.error).toBeInstanceOf(ConfigError);
        process.stdout.write(`config: redisforge:shards=10000 refused in ${run.ms.toFixed(0)} ms\n`);
    });
});

describe("the boundaries are still accepted", () => {
    test.each([
        // [what, raw]
        ["37 shards in a /24 on AWS (zone a: 25 nodes + 1 Envoy + 1 NLB address = 27 of 27)", { ...aws, shards: 37, networkCidr: SMALL_NET }],
        ["38 shards in a /24 on GCP (4 reserved: 28 of 28)", { ...gcp, shards: 38, networkCidr: SMALL_NET }],
        ["38 shards in a /24 on AWS with a public load balancer (no NLB address in the private subnet)", { ...aws, shards: 38, networkCidr: SMALL_NET, internalLoadBalancer: false }],
        ["500 shards x 1 replica (1000 nodes) in the default /16", { ...aws, shards: 500 }],
        [`${MAX_ENVOYS} Envoys`, { ...aws, envoyCount: MAX_ENVOYS }],
        ["client port 1024", { ...aws, clientPort: 1024 }],
        ["monitoring from half of IPv4 (large, but not everything)", { ...aws, monitoringCidrs: ["0.0.0.0/1", "128.0.0.0/2"] }],
    ] as [string, Raw][])("%s", (_what, raw) => {
        expect(problemsOf(raw)).toEqual([]);
    });

    test("client CIDRs covering IPv4 as two ranges warn like 0.0.0.0/0", () => {
        const { warnings } = validateConfig({ ...aws, clientCidrs: ["0.0.0.0/1", "128.0.0.0/1"] }, adapters, { stackName: "prod", isSecret: () => true });
        expect(warnings.join("\n")).toContain('redisforge:clientCidrs=["0.0.0.0/1","128.0.0.0/1"] together cover all of IPv4');
    });
});

describe("familiesCovered (the union check)", () => {
    test.each([
        [["0.0.0.0/0"], ["ipv4"]],
        [["0.0.0.0/1", "128.0.0.0/1"], ["ipv4"]],
        [["0.0.0.0/1", "128.0.0.0/2"], []],
        [["0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/2"], ["ipv4"]],
        // overlapping and unsorted ranges, host bits set
        [["128.0.0.0/1", "0.0.0.0/2", "10.0.0.0/8", "64.0.0.1/2"], ["ipv4"]],
        [["255.255.255.255/32", "0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3", "224.0.0.0/3"], ["ipv4"]],
        [["::/0"], ["ipv6"]],
        [["::/1", "8000::/1"], ["ipv6"]],
        [["::/1", "8000::/2"], []],
        [["2001:db8::/32", "::/1", "8000::/1", "0.0.0.0/0"], ["ipv4", "ipv6"]],
        [["not-a-cidr", "10.0.0.0/8"], []],
    ] as [string[], string[]][])("%j -> %j", (cidrs, families) => {
        expect(familiesCovered(cidrs)).toEqual(families);
    });

    test("all 256 /8 networks cover IPv4; dropping any one does not", () => {
        const all = Array.from({ length: 256 }, (_, i) => `${i}.0.0.0/8`);
        expect(familiesCovered(all)).toEqual(["ipv4"]);
        for (const drop of [0, 127, 255]) expect(familiesCovered(all.filter((_, i) => i !== drop))).toEqual([]);
    });
});
