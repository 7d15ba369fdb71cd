/**
 * redis-ports-not-public reads its ports from the policy pack config (`protectedPorts`, `clientPort`,
 * README "Policies"): the client-port exception follows `clientPort`, and the protected set follows
 * `protectedPorts`. Synthetic AWS security groups named the way the adapter names them.
 */
import { portsNotPublic } from "../../../policy/policies";

const sg = (name: string, port: number, cidr: string) => ({
    type: "aws:ec2/securityGroup:SecurityGroup",
    name,
    urn: `urn:pulumi:s::p::aws:ec2/securityGroup:SecurityGroup::${name}`,
    props: { ingress: [{ protocol: "tcp", fromPort: port, toPort: port, cidrBlocks: [cidr] }] },
    propertyDependencies: {},
});

function run(resources: unknown[], config: Record<string, unknown>): string[] {
    const out: string[] = [];
    portsNotPublic.validateStack({ resources, getConfig: () => config } as never, ((m: string) => out.push(m)) as never);
    return out;
}

describe("redis-ports-not-public config", () => {
    const lb = sg("prod-envoy-lb", 6379, "0.0.0.0/0");
    it("default: the client port 6379 open to the world on the load balancer is the allowed exception", () => {
        expect(run([lb], {})).toEqual([]);
    });
    it("clientPort 6390: the same rule on 6379 is now a Redis port open to the world", () => {
        expect(run([lb], { clientPort: 6390 })).toEqual([expect.stringMatching(/^port 6379 \(lb nodes\) is reachable from the whole ipv4 internet through aws:ec2\/securityGroup:SecurityGroup prod-envoy-lb/)]);
    });
    it("protectedPorts: a custom exporter port is protected only when listed", () => {
        const exporter = sg("prod-fw-redis", 19121, "0.0.0.0/0");
        expect(run([exporter], {})).toEqual([]);
        expect(run([exporter], { protectedPorts: [6379, 16379, 19121] })).toEqual([expect.stringMatching(/^port 19121 \(redis nodes\)/)]);
    });
});
