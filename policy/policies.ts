/**
 * The RedisForge invariants as CrossGuard policies (../../shared/DESIGN.md, "Invariants"). Each is
 * mandatory unless the pack's config says otherwise (README "Policies": `--policy-pack-config` with
 * `{"<policy name>": "advisory"}`). This file only describes them; index.ts hands them to the engine,
 * and the tests (tests/unit/policy) call the same objects on the resources of the mocked programs.
 *
 * Messages never quote a secret: they name the resource, the field and the kind of material found.
 */
import type { PolicyResource, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { bucketViolations, placementViolations, publicIpViolations, StackContext, Violation } from "./checks";
import { DEFAULT_PORTS, exposedPorts, ingressRulesOf, PortPolicy } from "./ingress";
import { ResourceLike, roleOf, T, VM_TYPES } from "./resources";
import { findSecrets, hasUserData, redisConfs, tlsProblems, userDataPieces } from "./user-data";

/** The engine's stack resources as the checks read them (dependencies from propertyDependencies). */
function contextOf(resources: PolicyResource[]): StackContext {
    return {
        resources: resources as unknown as ResourceLike[],
        depsOf: (r, prop) => ((r as unknown as PolicyResource).propertyDependencies?.[prop] ?? []) as unknown as ResourceLike[],
    };
}

function reportAll(violations: Violation[], report: (message: string, urn?: string) => void): void {
    for (const v of violations) report(v.message, v.resource?.urn);
}

export const portsNotPublic: StackValidationPolicy = {
    name: "redis-ports-not-public",
    description: "No Redis TLS, cluster bus, exporter or Envoy admin port is reachable from the internet (0.0.0.0/0, ::/0, or ranges that add up to them), on any cloud's firewall resources; only the client port on the Envoys / load balancer may face the client CIDRs. On qemu, the QemuFirewall's allow list, each rule's target told by the machines in its `to` range.",
    configSchema: {
        properties: {
            protectedPorts: { type: "array", items: { type: "integer" }, default: DEFAULT_PORTS.protectedPorts, description: "redisPort, busPort, redisExporterPort, nodeExporterPort, envoyAdminPort of the stack" },
            clientPort: { type: "integer", default: DEFAULT_PORTS.clientPort, description: "redisforge:clientPort (the Envoys' listener)" },
        },
    },
    validateStack: (args, report) => {
        const cfg = { ...DEFAULT_PORTS, ...(args.getConfig<Partial<PortPolicy>>() ?? {}) };
        const ctx = contextOf(args.resources);
        const rules = ctx.resources.flatMap((r) => ingressRulesOf(r, ctx));
        // Nested targets (a qemu rule to 0.0.0.0/0 reaches every range) can expose a port the same way twice: say it once.
        const said = new Set<string>();
        for (const e of exposedPorts(rules, cfg)) {
            const names = e.resources.map((r) => `${r.type} ${r.name}`).join(", ");
            const entries = e.entries.length ? ` (${e.entries.join("; ")})` : "";
            const message = `port ${e.port} (${e.target === "all" ? "every instance" : `${e.target} nodes`}) is reachable from the whole ${e.families.join(" and ")} internet through ${names}${entries}; allow only the cluster's own groups or named CIDRs (redisforge:monitoringCidrs / adminCidrs / clientCidrs)`;
            if (!said.has(message)) report(message, e.resources[0].urn);
            said.add(message);
        }
    },
};

export const noPublicIp: StackValidationPolicy = {
    name: "no-public-ip-on-vms",
    description: "No RedisForge VM (Redis or Envoy) has a public IP: no AWS public IP or Elastic IP, no GCP access config, no Azure public IP on the VM or its NIC. (A qemu VM has no property that could give it one: its only NIC is a tap on the stack's private bridge.)",
    validateStack: (args, report) => reportAll(publicIpViolations(contextOf(args.resources)), report),
};

export const bucketProtected: StackValidationPolicy = {
    name: "backup-bucket-protected",
    description: "Every bucket is private, versioned, encrypted and has retention (S3 + its public-access block, versioning, encryption and lifecycle resources; GCS; Azure storage account + blob service, containers and management policy). The qemu cloud's bucket server (versitygw, posix backend) has no versioning, lifecycle or encryption settings (providers/qemu/NOTES.md): nothing to check there.",
    validateStack: (args, report) => reportAll(bucketViolations(contextOf(args.resources)), report),
};

export const shardsSpread: StackValidationPolicy = {
    name: "shards-spread-over-zones",
    description: "No shard's master shares a zone with one of its replicas, and masters are spread over the zones (at most one apart), read from the Redis VMs' redisforge:zone / redis-role / shard tags (AWS/Azure/qemu tags, GCP labels).",
    validateStack: (args, report) => reportAll(placementViolations(contextOf(args.resources)), report),
};

export const userDataNoSecrets: ResourceValidationPolicy = {
    name: "user-data-no-secrets",
    description: "No secret-looking material (private keys, cloud keys, passwords, tokens) in any VM's user-data, decoded as the cloud decodes it (base64, gzip, cloud-config write_files; the qemu VM's userData as is), nor in the local stack's redis.conf / users.acl: VMs read secrets from the secret store at boot.",
    validateResource: (args, report) => {
        const r = args as unknown as ResourceLike;
        if (!hasUserData(r)) return;
        for (const f of findSecrets(userDataPieces(r))) report(`${r.type} ${r.name}: ${f.where} line ${f.line} holds ${f.kind}; put the value in the secret store and pass a reference (VMs fetch it at boot)`);
    },
};

export const redisTlsOnly: ResourceValidationPolicy = {
    name: "redis-config-tls-only",
    description: "Every Redis VM's user-data carries a redis.conf that is TLS-only: port 0, a tls-port, tls-replication yes, tls-cluster yes (the local stack's RedisProcess redisConf too).",
    validateResource: (args, report) => {
        const r = args as unknown as ResourceLike;
        const isRedisVm = VM_TYPES.includes(r.type) && roleOf(r) === "redis";
        if (!isRedisVm && r.type !== T.localRedisProcess) return;
        const confs = redisConfs(r);
        if (confs.length === 0) {
            report(`${r.type} ${r.name}: no redis.conf found in its user-data, so TLS-only cannot be checked; render it with templates/redis into cloud-init write_files`);
            return;
        }
        for (const c of confs) {
            const problems = tlsProblems(c.text);
            if (problems.length) report(`${r.type} ${r.name}: ${c.where} is not TLS-only: ${problems.join("; ")}`);
        }
    },
};

/** Every policy of the pack, in the order the engine reports them. */
export const POLICIES: (ResourceValidationPolicy | StackValidationPolicy)[] = [portsNotPublic, noPublicIp, bucketProtected, shardsSpread, userDataNoSecrets, redisTlsOnly];
