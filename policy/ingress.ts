/**
 * Inbound rules of every cloud's firewall resources, in one shape, and the check that no protected
 * port (Redis TLS, cluster bus, exporters, Envoy admin) is reachable from the whole internet. Pure.
 *
 * Read per resource type: AWS security groups (inline `ingress`) and their rule resources
 * (SecurityGroupRule, vpc.SecurityGroupIngressRule), GCP VPC firewalls, Azure NSGs (inline
 * `securityRules`) and SecurityRule resources. "Reachable from the internet" means the sources of the
 * allow rules that reach one target on one port cover a whole address family TOGETHER: "0.0.0.0/1" +
 * "128.0.0.0/1" in two rules is as open as "0.0.0.0/0" (infra/cidr-cover.ts merges the ranges).
 *
 * The client port is the one exception, and only on the client-facing side (Envoy group, load
 * balancer): it is open to `redisforge:clientCidrs` by design. A rule's target is read from the group
 * it belongs to (a dependency on, or the id of, a security group / NSG the adapters name
 * `<name>-redis`, `<name>-envoy`, `<name>-lb`), else from its own name; a rule whose target cannot be
 * told is never exempt.
 */
import { familiesCovered } from "../infra/cidr-cover";
import { arr, ResourceLike, T } from "./resources";

export type Target = "redis" | "envoy" | "lb" | "all" | "unknown";

export interface IngressRule {
    /** The resource that opens it (reported on). */
    resource: ResourceLike;
    /** Rules with the same key reach the same machines (their sources add up). */
    targetKey: string;
    target: Target;
    /** Inclusive TCP port ranges; [0, 65535] for "all". */
    ports: [number, number][];
    /** Source CIDRs; "*" / "Internet" become both whole families. */
    cidrs: string[];
}

export interface IngressContext {
    /** All resources of the stack, to resolve a rule's group by id (mocked runs) when no dependency says it. */
    resources: ResourceLike[];
    /** Dependencies of a property (the engine's propertyDependencies), when known. */
    depsOf?: (r: ResourceLike, prop: string) => ResourceLike[];
}

const WORLD = ["0.0.0.0/0", "::/0"];

/** Target of a group by its name: the adapters name groups `<name>-redis`, `<name>-envoy`, `<name>-lb`. */
export function targetOfName(name: string): Target {
    if (/(^|-)redis$/.test(name)) return "redis";
    if (/(^|-)envoy$/.test(name)) return "envoy";
    if (/(^|-)lb$/.test(name)) return "lb";
    return "unknown";
}

/** Target of a rule resource from its own name (`<fw>-redis-from-...`, `<fw>-envoy-from-...`, `<lb>-health-checks`). */
function targetOfRuleName(name: string): Target {
    if (/-redis-(from|ssh)/.test(name)) return "redis";
    if (/-envoy-(from|ssh)/.test(name) || /-health-checks$/.test(name)) return "envoy";
    return "unknown";
}

function portRange(from: unknown, to: unknown): [number, number] {
    const a = Number(from ?? 0);
    const b = Number(to ?? a);
    return [Number.isFinite(a) ? a : 0, Number.isFinite(b) ? b : 65535];
}

const isTcp = (protocol: unknown) => ["tcp", "6", "-1", "all", "*"].includes(String(protocol ?? "tcp").toLowerCase());
const allPorts = (protocol: unknown) => ["-1", "all", "*"].includes(String(protocol ?? "").toLowerCase());

/** "6379", "1000-2000", "*" -> ranges. */
function parsePortSpec(spec: unknown): [number, number][] {
    const s = String(spec).trim();
    if (s === "*" || s === "") return [[0, 65535]];
    const m = /^(\d+)(?:-(\d+))?$/.exec(s);
    return m ? [[Number(m[1]), Number(m[2] ?? m[1])]] : [[0, 65535]];
}

/** Azure source prefixes -> CIDRs ("*" and the Internet service tag are the whole internet). */
function azureSources(prefixes: string[]): string[] {
    return prefixes.flatMap((p) => (p === "*" || /^internet$/i.test(p) || /^any$/i.test(p) ? WORLD : [p]));
}

/** The group a rule belongs to: its dependency on `prop`, else the resource whose id it names. */
function groupOf(rule: ResourceLike, prop: string, ctx: IngressContext): ResourceLike | undefined {
    const dep = ctx.depsOf?.(rule, prop).find((d) => d.type === T.awsSecurityGroup || d.type === T.azureNsg);
    if (dep) return dep;
    const ref = rule.props[prop];
    if (typeof ref !== "string" || ref === "") return undefined;
    return ctx.resources.find((r) => (r as { id?: string }).id === ref || (r.type === T.azureNsg && (r.props.networkSecurityGroupName === ref || r.name === ref)));
}

/** Every inbound allow rule (TCP) a resource opens; [] for resources that open none. */
export function ingressRulesOf(r: ResourceLike, ctx: IngressContext): IngressRule[] {
    const p = r.props;
    switch (r.type) {
        case T.awsSecurityGroup: {
            const target = targetOfName(r.name);
            return arr<Record<string, any>>(p.ingress)
                .filter((i) => isTcp(i.protocol))
                .map((i) => ({ resource: r, targetKey: r.urn, target, ports: [allPorts(i.protocol) ? [0, 65535] : portRange(i.fromPort, i.toPort)], cidrs: [...arr<string>(i.cidrBlocks), ...arr<string>(i.ipv6CidrBlocks)] }));
        }
        case T.awsSecurityGroupRule:
        case T.awsIngressRule: {
            if (r.type === T.awsSecurityGroupRule && p.type !== "ingress") return [];
            const protocol = r.type === T.awsIngressRule ? p.ipProtocol : p.protocol;
            if (!isTcp(protocol)) return [];
            const group = groupOf(r, "securityGroupId", ctx);
            const target = group ? targetOfName(group.name) : targetOfRuleName(r.name);
            const cidrs = r.type === T.awsIngressRule ? [...arr<string>(p.cidrIpv4), ...arr<string>(p.cidrIpv6)] : [...arr<string>(p.cidrBlocks), ...arr<string>(p.ipv6CidrBlocks)];
            return [{ resource: r, targetKey: group ? group.urn : `unresolved:${String(p.securityGroupId ?? r.name)}`, target, ports: [allPorts(protocol) ? [0, 65535] : portRange(p.fromPort, p.toPort)], cidrs }];
        }
        case T.gcpFirewall: {
            if (String(p.direction ?? "INGRESS").toUpperCase() !== "INGRESS" || p.disabled === true) return [];
            const tags = arr<string>(p.targetTags);
            // No target tags (and no service accounts): the rule applies to every instance of the network.
            const target: Target = tags.length === 0 && arr(p.targetServiceAccounts).length === 0 ? "all" : tags.every((t) => targetOfName(t) === "envoy") ? "envoy" : tags.some((t) => targetOfName(t) === "redis") ? "redis" : "unknown";
            const ports = arr<Record<string, any>>(p.allows)
                .filter((a) => isTcp(a.protocol))
                .flatMap((a) => (allPorts(a.protocol) || arr(a.ports).length === 0 ? [[0, 65535] as [number, number]] : arr(a.ports).flatMap(parsePortSpec)));
            if (ports.length === 0) return [];
            const key = tags.length ? `gcp:${String(p.network)}:${[...tags].sort().join(",")}` : `gcp:${String(p.network)}:*`;
            return [{ resource: r, targetKey: key, target, ports, cidrs: arr<string>(p.sourceRanges) }];
        }
        case T.azureNsg:
            return arr<Record<string, any>>(p.securityRules).flatMap((s) => azureRule(r, s, r.urn, targetOfName(r.name)));
        case T.azureSecurityRule: {
            const group = groupOf(r, "networkSecurityGroupName", ctx);
            return azureRule(r, p, group ? group.urn : `unresolved:${String(p.networkSecurityGroupName ?? r.name)}`, group ? targetOfName(group.name) : targetOfRuleName(r.name));
        }
        default:
            return [];
    }
}

function azureRule(r: ResourceLike, s: Record<string, any>, targetKey: string, target: Target): IngressRule[] {
    if (String(s.direction ?? "").toLowerCase() !== "inbound" || String(s.access ?? "").toLowerCase() !== "allow" || !isTcp(s.protocol)) return [];
    const ports = [...arr(s.destinationPortRange), ...arr(s.destinationPortRanges)].flatMap(parsePortSpec);
    const sources = [...arr<string>(s.sourceAddressPrefix), ...arr<string>(s.sourceAddressPrefixes)];
    return [{ resource: r, targetKey, target, ports: ports.length ? ports : [[0, 65535]], cidrs: azureSources(sources) }];
}

export interface PortPolicy {
    /** Ports that must never be reachable from the internet. */
    protectedPorts: number[];
    /** The client-facing port (open to the client CIDRs on Envoys / the load balancer only). */
    clientPort: number;
}

export const DEFAULT_PORTS: PortPolicy = { protectedPorts: [6379, 16379, 9121, 9100, 9901], clientPort: 6379 };

export interface PortExposure {
    port: number;
    target: Target;
    families: string[];
    resources: ResourceLike[];
}

/**
 * The protected ports that the rules, taken together per target, open to a whole address family.
 * Sources of rules that reach the same machines add up; rules of different groups do not.
 */
export function exposedPorts(rules: IngressRule[], policy: PortPolicy): PortExposure[] {
    const out: PortExposure[] = [];
    const byKey = new Map<string, IngressRule[]>();
    for (const rule of rules) byKey.set(rule.targetKey, [...(byKey.get(rule.targetKey) ?? []), rule]);
    for (const group of byKey.values()) {
        for (const port of policy.protectedPorts) {
            const open = group.filter((g) => g.ports.some(([a, b]) => a <= port && port <= b));
            const relevant = open.filter((g) => !(port === policy.clientPort && (g.target === "envoy" || g.target === "lb")));
            if (relevant.length === 0) continue;
            const families = familiesCovered(relevant.flatMap((g) => g.cidrs));
            if (families.length) out.push({ port, target: relevant[0].target, families, resources: [...new Set(relevant.map((g) => g.resource))] });
        }
    }
    return out;
}
