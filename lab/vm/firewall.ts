/**
 * Allow-list firewall of a VM stack, enforced by nftables inside the stack's namespace.
 *
 * Every packet between two endpoints of the stack (VM taps, extra namespaces, the host link) is
 * routed through the namespace (lab/vm/network.ts isolates the bridge ports), so one `inet` table
 * with a forward chain sees all of it; its input chain guards the namespace's own addresses (the
 * services a stack runs on the bridge: registry, S3 server, load balancer).
 *
 *   table inet rfvm
 *     forward, input: policy drop
 *       established/related accepted (replies), invalid dropped, loopback accepted (input)
 *       one `accept` per AllowRule (saddr, daddr, proto, ports)
 *       everything else: TCP answered with a reset, the rest with ICMP admin-prohibited, so a
 *       refused connection fails at once instead of timing out (tests stay fast).
 *
 * setFirewall() replaces the whole table in ONE nft transaction (never a moment without rules
 * once the first set is loaded). Before the first call the namespace forwards everything.
 * The vm engineer maps FirewallRecord rules onto AllowRule.
 */
import { run, runIn } from "./exec";
import type { StackNetwork } from "./network";

export const FIREWALL_TABLE = "rfvm";

export interface AllowRule {
    /** Source address or CIDR, e.g. 10.210.0.0/24 or 0.0.0.0/0. */
    from: string;
    /** Destination address or CIDR. */
    to: string;
    /** Default tcp. "icmp" allows echo requests (ports ignored). */
    proto?: "tcp" | "udp" | "icmp";
    /** One port, or an inclusive [from, to] range. Omit for every port. */
    ports?: number | [number, number];
    /** Kept as an nft comment (shown by `nft list table`), e.g. the FirewallRecord name. */
    comment?: string;
}

const CIDR_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(\/(\d{1,2}))?$/;

function checkCidr(where: string, v: unknown, problems: string[]): void {
    const m = typeof v === "string" ? CIDR_RE.exec(v) : null;
    if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || (m[6] !== undefined && Number(m[6]) > 32)) {
        problems.push(`${where} must be an IPv4 address or CIDR like 10.210.0.0/24; got ${JSON.stringify(v)}`);
    }
}

function checkPort(where: string, p: unknown, problems: string[]): void {
    if (!Number.isInteger(p) || (p as number) < 1 || (p as number) > 65535) problems.push(`${where} must be a port 1..65535; got ${JSON.stringify(p)}`);
}

/** The nft rule text of one AllowRule (pure). */
export function allowRuleToNft(r: AllowRule): string {
    const net = (a: string) => (a === "0.0.0.0/0" ? "" : a);
    const parts: string[] = [];
    if (net(r.from)) parts.push(`ip saddr ${r.from}`);
    if (net(r.to)) parts.push(`ip daddr ${r.to}`);
    const proto = r.proto ?? "tcp";
    if (proto === "icmp") parts.push("icmp type echo-request");
    else if (r.ports === undefined) parts.push(`meta l4proto ${proto}`);
    else parts.push(`${proto} dport ${Array.isArray(r.ports) ? `${r.ports[0]}-${r.ports[1]}` : r.ports}`);
    parts.push("accept");
    if (r.comment) parts.push(`comment ${JSON.stringify(r.comment.replace(/[^A-Za-z0-9 ._:/=-]/g, "_").slice(0, 120))}`);
    return parts.join(" ");
}

/** The whole table as one nft script (pure). Throws naming every bad rule. */
export function renderFirewall(rules: AllowRule[]): string {
    const problems: string[] = [];
    rules.forEach((r, i) => {
        checkCidr(`rules[${i}].from`, r.from, problems);
        checkCidr(`rules[${i}].to`, r.to, problems);
        if (r.proto !== undefined && !["tcp", "udp", "icmp"].includes(r.proto)) problems.push(`rules[${i}].proto must be tcp, udp or icmp; got ${JSON.stringify(r.proto)}`);
        if (Array.isArray(r.ports)) {
            checkPort(`rules[${i}].ports[0]`, r.ports[0], problems);
            checkPort(`rules[${i}].ports[1]`, r.ports[1], problems);
            if (r.ports[0] > r.ports[1]) problems.push(`rules[${i}].ports range ${r.ports[0]}-${r.ports[1]} is reversed; write [low, high]`);
        } else if (r.ports !== undefined) checkPort(`rules[${i}].ports`, r.ports, problems);
    });
    if (problems.length) throw new Error(`firewall rules: ${problems.join("; ")}`);
    const body = rules.map((r) => `    ${allowRuleToNft(r)}`);
    const tail = ["    meta l4proto tcp reject with tcp reset", "    reject with icmpx type admin-prohibited"];
    const chain = (name: string, hook: string, extra: string[]) => [
        `  chain ${name} {`,
        `    type filter hook ${hook} priority 0; policy drop;`,
        "    ct state established,related accept",
        "    ct state invalid drop",
        ...extra,
        ...body,
        ...tail,
        "  }",
    ];
    // add + delete + define in one file = one atomic transaction, whether the table existed or not.
    return [
        `table inet ${FIREWALL_TABLE}`,
        `delete table inet ${FIREWALL_TABLE}`,
        `table inet ${FIREWALL_TABLE} {`,
        ...chain("forward", "forward", []),
        ...chain("input", "input", ["    iif lo accept"]),
        "}",
        "",
    ].join("\n");
}

/** Loads the allow-list into the stack's namespace, replacing any previous one atomically. */
export function setFirewall(net: StackNetwork, rules: AllowRule[]): void {
    runIn(net.netns, "nft", ["-f", "-"], { input: renderFirewall(rules) });
}

/** Removes the table (the namespace forwards everything again). Idempotent. */
export function clearFirewall(net: StackNetwork): void {
    const tables = runIn(net.netns, "nft", ["list", "tables"]);
    if (tables.includes(`inet ${FIREWALL_TABLE}`)) runIn(net.netns, "nft", ["delete", "table", "inet", FIREWALL_TABLE]);
}

/** `nft list table` of the stack's firewall (for logs and diagnostics), or "" when none is loaded. */
export function showFirewall(net: StackNetwork): string {
    const tables = runIn(net.netns, "nft", ["list", "tables"]);
    return tables.includes(`inet ${FIREWALL_TABLE}`) ? runIn(net.netns, "nft", ["list", "table", "inet", FIREWALL_TABLE]) : "";
}

/** Checks `nft` can parse the rules without loading them (nft -c), for validation before a deploy. */
export function checkFirewallSyntax(rules: AllowRule[]): void {
    run("nft", ["-c", "-f", "-"], { input: renderFirewall(rules) });
}
