/**
 * The complete, cloud-neutral allow list (everything else is denied). Pure, so the invariants
 * are testable without any cloud, and every adapter implements the same list:
 *
 * - Redis TLS port and cluster bus: only between Redis nodes; the Redis port also from the Envoys.
 * - redis_exporter, node_exporter, Envoy admin: only from the monitoring CIDRs.
 * - the client port: only on the Envoys (behind the load balancer), only from the client CIDRs.
 * - SSH: only when admin CIDRs are configured (off by default).
 */
import type { AllowRule } from "../providers/types";

export interface FirewallRulesArgs {
    ports: { client: number; redis: number; bus: number; redisExporter: number; nodeExporter: number; envoyAdmin: number };
    clientCidrs: string[];
    monitoringCidrs: string[];
    adminCidrs: string[];
}

export function firewallRules(a: FirewallRulesArgs): AllowRule[] {
    const p = a.ports;
    const rules: AllowRule[] = [
        { key: "redis-from-redis", to: "redis", ports: [p.redis, p.bus], from: { kind: "role", role: "redis" }, description: "Redis TLS + cluster bus between cluster nodes" },
        { key: "redis-from-envoy", to: "redis", ports: [p.redis], from: { kind: "role", role: "envoy" }, description: "Redis TLS from the Envoy proxies" },
        { key: "envoy-from-clients", to: "envoy", ports: [p.client], from: { kind: "cidrs", cidrs: a.clientCidrs }, description: "client TLS port from the client CIDRs" },
    ];
    if (a.monitoringCidrs.length > 0) {
        rules.push(
            { key: "redis-from-monitoring", to: "redis", ports: [p.redisExporter, p.nodeExporter], from: { kind: "cidrs", cidrs: a.monitoringCidrs }, description: "redis_exporter + node_exporter from the monitoring CIDRs" },
            { key: "envoy-from-monitoring", to: "envoy", ports: [p.envoyAdmin, p.nodeExporter], from: { kind: "cidrs", cidrs: a.monitoringCidrs }, description: "Envoy admin + node_exporter from the monitoring CIDRs" },
        );
    }
    if (a.adminCidrs.length > 0) {
        rules.push(
            { key: "redis-ssh", to: "redis", ports: [22], from: { kind: "cidrs", cidrs: a.adminCidrs }, description: "SSH from the admin CIDRs" },
            { key: "envoy-ssh", to: "envoy", ports: [22], from: { kind: "cidrs", cidrs: a.adminCidrs }, description: "SSH from the admin CIDRs" },
        );
    }
    return rules;
}
