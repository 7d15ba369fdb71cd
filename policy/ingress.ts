/**
 * Inbound rules of every cloud's firewall resources, in one shape, and the check that no protected
 * port (Redis TLS, cluster bus, exporters, Envoy admin) is reachable from the whole internet. Pure.
 *
 * Read per resource type: AWS security groups (inline `ingress`) and their rule resources
 * (SecurityGroupRule, vpc.SecurityGroupIngressRule), GCP VPC firewalls, Azure NSGs (inline
 * `securityRules`) and SecurityRule resources, and the qemu cloud's one QemuFirewall (its `rules`
 * allow list, see qemuRules below). "Reachable from the internet" means the sources of the
 * allow rules that reach one target on one port cover a whole address family TOGETHER: "0.0.0.0/1" +
 * "128.0.0.0/1" in two rules is as open as "0.0.0.0/0" (infra/cidr-cover.ts merges the ranges).
 *
 * The client port is the one exception, and only on the client-facing side (Envoy group, load
 * balancer): it is open to `redisforge:clientCidrs` by design. A rule's target is read from the group
 * it belongs to (a dependency on, or the id of, a security group / NSG the adapters name
 * `<name>-redis`, `<name>-envoy`, `<name>-lb`), else from its own name; a rule whose target cannot be
 * told is never exempt.
 */
import { cidrInterval, familiesCovered } from "../infra/cidr-cover";
import { arr, ResourceLike, roleOf, T } from "./resources";

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
    /** Which entry of a resource that holds many (reported with it), e.g. `rules[3] redis-from-monitoring`. */
    entry?: string;
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
        case T.qemuFirewall:
            return qemuRules(r, ctx);
        default:
            return [];
    }
}

/** [first, last] of an IPv4 address or CIDR (lab/vm/firewall.ts takes both). */
const span = (a: string) => cidrInterval(a.includes("/") ? a : `${a}/32`);
const within = (inner: string, outer: string) => {
    const i = span(inner);
    const o = span(outer);
    return !!i && !!o && i.family === o.family && o.first <= i.first && i.last <= o.last;
};

/**
 * The qemu cloud's allow list (providers/qemu/plan.ts firewallPlan -> QemuFirewall `rules`: `from`,
 * `to` as IPv4 addresses or CIDRs, `proto` default tcp, no `ports` = every port). A rule reaches
 * the machines whose address is in its `to`. CIDRs either nest or are disjoint, so the rules that
 * reach the machines of one `to` are exactly those whose `to` contains it: each distinct `to` is a
 * target whose sources add up over all of them. Its role is told by the stack's machines in it (a
 * QemuVm's `ip` and role tag, the `lb` QemuService's probe address): a comment cannot exempt a range
 * that holds a Redis VM. A range that holds none of them yet (a zone without an Envoy) is named by
 * its rules' comment (`envoy-from-clients`, `lb-from-clients`: components/firewall-rules.ts keys).
 */
function qemuRules(fw: ResourceLike, ctx: IngressContext): IngressRule[] {
    const rules = arr<Record<string, any>>(fw.props.rules)
        .map((x, i) => ({ x, entry: `rules[${i}]${x.comment ? ` ${String(x.comment)}` : ""}: ${String(x.from)} -> ${String(x.to)}` }))
        .filter(({ x }) => typeof x.from === "string" && typeof x.to === "string" && isTcp(x.proto));
    const machines = ctx.resources.flatMap((r) => {
        if (r.type === T.qemuVm && typeof r.props.ip === "string") return [{ ip: r.props.ip as string, role: roleOf(r) ?? "unknown" }];
        if (r.type === T.qemuService && r.props.name === "lb" && typeof r.props.probe?.host === "string") return [{ ip: r.props.probe.host as string, role: "lb" }];
        return [];
    });
    const targetOf = (to: string): Target => {
        const roles = new Set(machines.filter((m) => within(m.ip, to)).map((m) => m.role));
        if (roles.size === 0) {
            const named = new Set(rules.filter(({ x }) => x.to === to).map(({ x }) => targetOfName(String(x.comment ?? "").replace(/-from-.*$/, ""))));
            return named.size === 1 ? [...named][0] : "unknown";
        }
        if ([...roles].every((role) => role === "envoy" || role === "lb")) return roles.has("envoy") ? "envoy" : "lb";
        if (roles.size === 1 && roles.has("redis")) return "redis";
        return roles.has("redis") ? "all" : "unknown";
    };
    const out: IngressRule[] = [];
    for (const to of new Set(rules.map(({ x }) => x.to as string))) {
        const target = targetOf(to);
        for (const { x, entry } of rules.filter(({ x }) => within(to, x.to))) {
            const ports: [number, number][] = x.ports === undefined ? [[0, 65535]] : Array.isArray(x.ports) ? [portRange(x.ports[0], x.ports[1])] : [portRange(x.ports, x.ports)];
            out.push({ resource: fw, targetKey: `${fw.urn}:${to}`, target, ports, cidrs: [x.from], entry });
        }
    }
    return out;
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
    /** The entries of those resources that open it, where a resource holds many (qemu's rules). */
    entries: string[];
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
            if (families.length) out.push({ port, target: relevant[0].target, families, resources: [...new Set(relevant.map((g) => g.resource))], entries: relevant.flatMap((g) => (g.entry ? [g.entry] : [])) });
        }
    }
    return out;
}
