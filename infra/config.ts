/**
 * Typed, validated stack config. This is the ONLY module that reads Pulumi config.
 *
 * `validateConfig(raw, adapters)` is pure: it parses the raw `redisforge:*` strings, applies
 * defaults, collects EVERY problem and throws one `ConfigError` listing them all, each naming the
 * key, the rule, the value and the fix. It runs before any resource is registered, so a bad
 * stack file registers nothing.
 */
import * as pulumi from "@pulumi/pulumi";
import type { CloudAdapter, CloudKind } from "../providers/types";
import { MAX_SUBNET_PREFIX, parseCidr, requiredNetworkPrefix, subnetPlan } from "../providers/network-plan";
import { familiesCovered } from "./cidr-cover";
import { ACL_USERS, AclUser, MIN_PASSWORD_LENGTH } from "../templates/redis";
import { planTopology } from "../components/topology";
import { checkPkiGeneration } from "../components/pki";
import { IMAGE_BY_DIGEST_RE } from "../templates/cloud-init/checks";

export * from "./config-schema";
import { SUBNET_RULES, NAMESPACE, MAX_REDIS_NODES, MAX_ENVOYS, PortsConfig, ImagesConfig, StackConfig, CONFIG_KEYS, ConfigKey, RawConfig, ConfigError, ValidationResult } from "./config-schema";

const k = (key: string) => `${NAMESPACE}:${key}`;
const show = (v: unknown) => (typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v));

/** True for 10/8, 172.16/12, 192.168/16. */
function isPrivate([ip, prefix]: [number, number]): boolean {
    const inside = (net: number, p: number) => prefix >= p && ((ip ^ net) >>> (32 - p)) === 0;
    return inside(0x0a000000, 8) || inside(0xac100000, 12) || inside(0xc0a80000, 16);
}

function parseList(v: unknown): unknown {
    if (typeof v !== "string") return v;
    const t = v.trim();
    if (t.startsWith("[")) {
        try {
            return JSON.parse(t);
        } catch {
            return v;
        }
    }
    return t === "" ? [] : t.split(",").map((s) => s.trim());
}

/**
 * Validates raw config. `adapters` is the cloud registry (injected so this stays pure).
 * Throws a ConfigError with every problem; returns the typed config and warnings otherwise.
 */
export interface ValidateOptions {
    /** Stack name; the default cluster name. */
    stackName?: string;
    /** Tells whether a key (without namespace) was stored as a secret; when given, supplied passwords must be. */
    isSecret?: (key: string) => boolean;
}

export function validateConfig(raw: RawConfig, adapters: Readonly<Record<string, CloudAdapter>>, opts: ValidateOptions = {}): ValidationResult {
    const stackName = opts.stackName ?? "dev";
    const problems: string[] = [];
    const warnings: string[] = [];
    const known = new Set(Object.keys(CONFIG_KEYS));

    for (const key of Object.keys(raw)) {
        if (!known.has(key)) {
            problems.push(`${k(key)} is not a RedisForge config key; remove it or use one of: ${[...known].join(", ")}`);
        }
    }

    const present = (key: ConfigKey) => raw[key] !== undefined && raw[key] !== null && raw[key] !== "";
    const def = (key: ConfigKey): unknown => (CONFIG_KEYS[key] as { default?: unknown }).default;

    const str = (key: ConfigKey, required: boolean): string => {
        if (!present(key)) {
            if (required) problems.push(`${k(key)} is required and missing; set it with \`pulumi config set ${k(key)} <value>\``);
            return (def(key) as string | undefined) ?? "";
        }
        const v = raw[key];
        if (typeof v !== "string") {
            problems.push(`${k(key)}=${show(v)} must be a string; quote it in Pulumi.<stack>.yaml`);
            return "";
        }
        return v.trim();
    };
    const int = (key: ConfigKey): number => {
        if (!present(key)) return def(key) as number;
        const v = raw[key];
        const n = typeof v === "number" ? v : typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
        if (!Number.isInteger(n)) {
            problems.push(`${k(key)}=${show(v)} must be an integer; e.g. \`pulumi config set ${k(key)} ${String(def(key) ?? 1)}\``);
            return def(key) as number;
        }
        return n;
    };
    const bool = (key: ConfigKey): boolean => {
        if (!present(key)) return def(key) as boolean;
        const v = raw[key];
        if (typeof v === "boolean") return v;
        if (v === "true" || v === "false") return v === "true";
        problems.push(`${k(key)}=${show(v)} must be true or false; set it with \`pulumi config set ${k(key)} true\` (or false)`);
        return def(key) as boolean;
    };
    const list = (key: ConfigKey, required: boolean): string[] => {
        if (!present(key)) {
            if (required) problems.push(`${k(key)} is required and missing; set it as a YAML list in Pulumi.<stack>.yaml`);
            return ((def(key) as string[] | undefined) ?? []).slice();
        }
        const v = parseList(raw[key]);
        if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
            problems.push(`${k(key)}=${show(raw[key])} must be a list of strings; write it as a YAML list in Pulumi.<stack>.yaml`);
            return [];
        }
        return (v as string[]).map((s) => s.trim());
    };

    // ---- name
    const clusterName = str("clusterName", false) || stackName;
    if (!/^[a-z][a-z0-9-]{0,18}[a-z0-9]$/.test(clusterName)) {
        problems.push(`${k("clusterName")}=${show(clusterName)} must be a lower-case DNS label of 2-20 characters (it prefixes host names and secret names); ${present("clusterName") ? "pick a shorter/simpler name" : "the stack name is used by default: set redisforge:clusterName explicitly"}`);
    }

    // ---- cloud, region, zones
    const cloudRaw = str("cloud", true);
    const adapter = adapters[cloudRaw];
    if (cloudRaw !== "" && !adapter) {
        problems.push(`${k("cloud")}=${show(cloudRaw)} is not a registered cloud; use one of: ${Object.keys(adapters).join(", ")}`);
    }
    const region = str("region", true);
    const zones = list("zones", true);
    const distinctZones = [...new Set(zones)];
    if (distinctZones.length !== zones.length) {
        const dups = [...new Set(zones.filter((z, i) => zones.indexOf(z) !== i))];
        problems.push(`${k("zones")}=${show(zones)} lists a zone more than once (${dups.map(show).join(", ")}); each failure domain must appear once: remove the repeated entr${dups.length === 1 ? "y" : "ies"}`);
    }
    if (present("zones") && distinctZones.length < 3) {
        problems.push(`${k("zones")}=${show(zones)} needs at least 3 distinct zones (failure domains); got ${distinctZones.length}; add zones of ${region || "the region"}`);
    }
    if (adapter && region) {
        for (const z of distinctZones) {
            const why = adapter.checkZone(region, z);
            if (why) problems.push(`${k("zones")} entry ${show(z)} ${why}${/; /.test(why) ? "" : `; list only zones of ${region}`}`);
        }
    }

    // ---- topology
    const production = bool("production");
    const shards = int("shards");
    const replicasPerShard = int("replicasPerShard");
    if (shards < 3) {
        problems.push(`${k("shards")}=${shards} must be at least 3 (Redis Cluster needs 3 masters for a majority); set ${k("shards")} to 3 or more`);
    }
    if (replicasPerShard < 0) {
        problems.push(`${k("replicasPerShard")}=${replicasPerShard} must not be negative; set it to 1 or more (0 only with ${k("production")}=false)`);
    } else if (production && replicasPerShard < 1) {
        problems.push(`${k("replicasPerShard")}=${replicasPerShard} must be at least 1 for a production stack (${k("production")}=true): without a replica a failed master loses its slots; set it to 1 or more`);
    }
    if (distinctZones.length >= 1 && replicasPerShard + 1 > distinctZones.length) {
        problems.push(
            `${k("replicasPerShard")}=${replicasPerShard} needs at least ${replicasPerShard + 1} zones: every replica must sit outside its master's zone, and with more replicas than other zones a shard's replicas would have to share zones; got ${distinctZones.length} zones; lower ${k("replicasPerShard")} to ${Math.max(distinctZones.length - 1, 0)} or add zones`,
        );
    }

    const redisNodes = shards * (1 + Math.max(replicasPerShard, 0));
    if (redisNodes > MAX_REDIS_NODES) {
        problems.push(
            `${k("shards")}=${shards} with ${k("replicasPerShard")}=${replicasPerShard} makes ${redisNodes} Redis nodes; Redis Cluster is designed for at most ${MAX_REDIS_NODES} (every node gossips with the others on the cluster bus); set ${k("shards")} to ${Math.floor(MAX_REDIS_NODES / (1 + Math.max(replicasPerShard, 0)))} or fewer and use a larger ${k("nodeSize")} for more memory per shard`,
        );
    }

    // ---- sizes
    const nodeSize = str("nodeSize", true);
    const envoySize = str("envoySize", true);
    if (adapter) {
        for (const key of ["nodeSize", "envoySize"] as const) {
            const v = key === "nodeSize" ? nodeSize : envoySize;
            if (!v) continue;
            const why = adapter.checkInstanceSize(v);
            if (why) problems.push(`${k(key)}=${show(v)} ${why}`);
        }
    }
    let nodeMemoryGb = 0;
    if (!present("nodeMemoryGb")) {
        problems.push(`${k("nodeMemoryGb")} is required and missing; set it to the RAM of ${k("nodeSize")} in GiB (maxmemory is 75 % of it)`);
    } else {
        nodeMemoryGb = int("nodeMemoryGb");
        if (nodeMemoryGb < 1) problems.push(`${k("nodeMemoryGb")}=${nodeMemoryGb} must be at least 1 (GiB of RAM of ${k("nodeSize")}); set it to the RAM of ${k("nodeSize")}${nodeSize ? ` (${nodeSize})` : ""} in GiB, e.g. 16 for a 16 GiB machine`);
    }
    const envoyCount = int("envoyCount");
    if (envoyCount < 1) {
        problems.push(`${k("envoyCount")}=${envoyCount} must be at least 1 (clients reach the cluster only through Envoy); set it to 2 or more`);
    } else if (envoyCount > MAX_ENVOYS) {
        problems.push(`${k("envoyCount")}=${envoyCount} is above ${MAX_ENVOYS}: every Envoy keeps connections to every Redis node and refreshes the slot map from them, so each one adds load on every node; set it to ${MAX_ENVOYS} or fewer and raise ${k("envoySize")} for more throughput`);
    } else if (envoyCount === 1) {
        warnings.push(`${k("envoyCount")}=1 is a single point of failure: one Envoy VM down takes the endpoint down; set it to 2 or more`);
    }
    const dataDiskGb = int("dataDiskGb");
    if (dataDiskGb < 10) problems.push(`${k("dataDiskGb")}=${dataDiskGb} must be at least 10 GiB (AOF rewrites need room); raise it`);

    // ---- network
    const networkCidr = str("networkCidr", false);
    const net = parseCidr(networkCidr);
    if (!net) {
        problems.push(`${k("networkCidr")}=${show(networkCidr)} is not an IPv4 CIDR with a clean network address; write it like 10.40.0.0/16`);
    } else {
        if (!isPrivate(net)) problems.push(`${k("networkCidr")}=${show(networkCidr)} must be inside a private range; pick one inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 (default 10.40.0.0/16)`);
        const need = requiredNetworkPrefix(distinctZones.length);
        if (net[1] > need) problems.push(`${k("networkCidr")}=${show(networkCidr)} is too small: ${distinctZones.length} zones need a /${need} or larger (a private and a public subnet per zone); use a /${need} or larger network`);
    }
    const cidrLists = { clientCidrs: list("clientCidrs", true), monitoringCidrs: list("monitoringCidrs", false), adminCidrs: list("adminCidrs", false) };
    for (const [key, cidrs] of Object.entries(cidrLists) as [ConfigKey, string[]][]) {
        for (const c of cidrs) {
            const p = parseCidr(c);
            if (!p) {
                problems.push(
                    `${k(key)} entry ${show(c)} is not an IPv4 CIDR with a clean network address${c.includes(":") ? " (IPv6 sources are not supported: the firewall rules are IPv4)" : ""}; write it like 203.0.113.0/24`,
                );
            } else if (p[1] === 0 && key !== "clientCidrs") {
                problems.push(`${k(key)} entry ${show(c)} opens ${key === "adminCidrs" ? "SSH" : "the exporter and Envoy admin ports"} to the whole internet; list your ${key === "adminCidrs" ? "bastion/VPN" : "Prometheus"} network instead`);
            }
        }
        // The whole internet as several ranges (0.0.0.0/1 + 128.0.0.0/1, or all of IPv6) is refused like 0.0.0.0/0.
        const v4Reported = cidrs.some((c) => parseCidr(c)?.[1] === 0);
        const whole = familiesCovered(cidrs).filter((f) => f === "ipv6" || !v4Reported);
        if (key !== "clientCidrs" && whole.length > 0) {
            problems.push(
                `${k(key)}=${show(cidrs)} together cover all of ${whole.map((f) => (f === "ipv4" ? "IPv4 (the same as 0.0.0.0/0)" : "IPv6 (the same as ::/0)")).join(" and ")}: ` +
                    `they open ${key === "adminCidrs" ? "SSH" : "the exporter and Envoy admin ports"} to the whole internet; list only your ${key === "adminCidrs" ? "bastion/VPN" : "Prometheus"} network`,
            );
        }
    }
    if (present("clientCidrs") && cidrLists.clientCidrs.length === 0) {
        problems.push(`${k("clientCidrs")}=[] leaves no client able to connect; list your application networks`);
    }
    if (cidrLists.clientCidrs.includes("0.0.0.0/0")) {
        warnings.push(`${k("clientCidrs")} includes 0.0.0.0/0: the TLS endpoint accepts connections from anywhere (ACL + TLS still apply)`);
    } else if (familiesCovered(cidrLists.clientCidrs).includes("ipv4")) {
        warnings.push(`${k("clientCidrs")}=${show(cidrLists.clientCidrs)} together cover all of IPv4 (the same as 0.0.0.0/0): the TLS endpoint accepts connections from anywhere (ACL + TLS still apply)`);
    }
    // Per-zone subnet capacity: nodes and Envoys are dealt round-robin over the zones
    // (components/topology.ts); each zone's private subnet (providers/network-plan.ts) must hold
    // its share plus an internal load balancer's address, after the addresses the cloud reserves.
    const internalLoadBalancer = bool("internalLoadBalancer");
    const rules = adapter ? SUBNET_RULES[adapter.kind] : undefined;
    const Z = distinctZones.length;
    if (rules && net && Z > 0 && net[1] <= requiredNetworkPrefix(Z) && redisNodes <= MAX_REDIS_NODES && envoyCount >= 0 && envoyCount <= MAX_ENVOYS) {
        const sub = Number(subnetPlan(networkCidr, distinctZones).private[distinctZones[0]].split("/")[1]);
        const usable = 2 ** (32 - sub) - rules.reserved;
        const share = (n: number, z: number) => Math.floor(n / Z) + (z < n % Z ? 1 : 0);
        const needs = distinctZones.map((zone, z) => {
            const lb = internalLoadBalancer && (rules.internalLb === "every-zone" || z === 0) ? 1 : 0;
            return { zone, nodes: share(redisNodes, z), envoys: share(envoyCount, z), lb, total: share(redisNodes, z) + share(envoyCount, z) + lb };
        });
        const worst = needs.reduce((a, b) => (b.total > a.total ? b : a));
        if (worst.total > usable) {
            const bits = Math.ceil(Math.log2(Math.max(2 * Z, 2)));
            const subNeeded = 32 - Math.ceil(Math.log2(worst.total + rules.reserved));
            const fix =
                subNeeded >= MAX_SUBNET_PREFIX
                    ? `use a /${subNeeded - bits} or larger ${k("networkCidr")}`
                    : `lower ${k("shards")}, ${k("replicasPerShard")} or ${k("envoyCount")} (a zone's subnet is at most a /${MAX_SUBNET_PREFIX})`;
            problems.push(
                `${k("networkCidr")}=${show(networkCidr)} gives each zone a /${sub} private subnet with ${usable} usable addresses (${2 ** (32 - sub)} minus ${rules.reserved} reserved by ${adapter!.kind}), ` +
                    `but zone ${show(worst.zone)} must hold ${worst.total} (${worst.nodes} Redis nodes + ${worst.envoys} Envoys${worst.lb ? " + 1 load-balancer address" : ""}); ${fix}`,
            );
        }
    }
    if (cidrLists.monitoringCidrs.length === 0) {
        warnings.push(`${k("monitoringCidrs")} is empty: no Prometheus can scrape the exporters`);
    }

    // ---- ports
    const ports: PortsConfig = {
        client: int("clientPort"),
        redis: int("redisPort"),
        bus: int("busPort"),
        redisExporter: int("redisExporterPort"),
        nodeExporter: int("nodeExporterPort"),
        envoyAdmin: int("envoyAdminPort"),
    };
    const portKey: Record<keyof PortsConfig, ConfigKey> = {
        client: "clientPort",
        redis: "redisPort",
        bus: "busPort",
        redisExporter: "redisExporterPort",
        nodeExporter: "nodeExporterPort",
        envoyAdmin: "envoyAdminPort",
    };
    for (const [name, port] of Object.entries(ports) as [keyof PortsConfig, number][]) {
        if (port < 1 || port > 65535) {
            problems.push(`${k(portKey[name])}=${port} must be a TCP port between 1 and 65535; pick one from 1024 to 65535`);
        } else if (port === 22) {
            problems.push(`${k(portKey[name])}=22 collides with SSH (sshd listens on 22 on every VM); pick another port from 1024 to 65535`);
        } else if (port < 1024) {
            // Envoy, Redis and the exporters run as non-root users with every capability dropped
            // (templates/cloud-init: --user, --cap-drop ALL), so none of them can bind a privileged port.
            problems.push(
                `${k(portKey[name])}=${port} is a privileged port (below 1024): ${name === "client" || name === "envoyAdmin" ? "Envoy" : name === "nodeExporter" ? "node_exporter" : name === "redisExporter" ? "redis_exporter" : "Redis"} runs as a non-root user without capabilities and cannot bind it; pick a port from 1024 to 65535${name === "client" ? " (clients connect to the load balancer on the same port)" : ""}`,
            );
        }
    }
    // Ports that share a host must differ: redis VMs run redis + bus + both exporters;
    // Envoy VMs run the client listener, the admin listener and node_exporter.
    const hosts: [string, (keyof PortsConfig)[]][] = [
        ["Redis node", ["redis", "bus", "redisExporter", "nodeExporter"]],
        ["Envoy", ["client", "envoyAdmin", "nodeExporter"]],
    ];
    for (const [host, names] of hosts) {
        for (let i = 0; i < names.length; i++) {
            for (let j = i + 1; j < names.length; j++) {
                if (ports[names[i]] === ports[names[j]]) {
                    problems.push(`${k(portKey[names[i]])}=${ports[names[i]]} collides with ${k(portKey[names[j]])}=${ports[names[j]]} on the ${host} host; give them different ports`);
                }
            }
        }
    }

    // ---- backups
    const backupRetentionDays = int("backupRetentionDays");
    if (backupRetentionDays < 1) problems.push(`${k("backupRetentionDays")}=${backupRetentionDays} must be at least 1 day; set it to 7 or more`);

    // ---- images
    const images: ImagesConfig = {
        build: bool("buildImages"),
        redis: str("redisImage", false),
        envoy: str("envoyImage", false),
        redisExporter: str("redisExporterImage", false),
        nodeExporter: str("nodeExporterImage", false),
        convergeAgent: "",
    };
    const pinned = IMAGE_BY_DIGEST_RE;
    for (const [name, key] of [["redis", "redisImage"], ["envoy", "envoyImage"], ["redisExporter", "redisExporterImage"], ["nodeExporter", "nodeExporterImage"]] as const) {
        const ref = images[name];
        // Only VMs booted by cloud-init pull images. Exporter images are never built here.
        const needed = (!adapter || adapter.capabilities.cloudInit) && (name === "redisExporter" || name === "nodeExporter" || !images.build);
        if (ref === "" && needed) {
            problems.push(`${k(key)} is required when ${k("buildImages")}=false; set it to a digest-pinned ref (repo@sha256:<64 hex>) or set ${k("buildImages")}=true`);
        } else if (ref !== "" && !pinned.test(ref)) {
            problems.push(`${k(key)}=${show(ref)} must be pinned by digest (repo@sha256:<64 hex>; tags move, digests do not); use the digest the registry reports for that tag`);
        }
    }

    // ---- formation: direct (the deployer reaches the nodes) or agent (the converge agent on the nodes)
    const formation = str("formation", false);
    const convergeHeal = bool("convergeHeal");
    images.convergeAgent = str("convergeAgentImage", false);
    if (formation !== "direct" && formation !== "agent") {
        problems.push(`${k("formation")}=${show(formation)} must be "direct" (pulumi up connects to the nodes) or "agent" (the converge agent on the nodes applies what pulumi up publishes)`);
    } else if (formation === "agent") {
        if (adapter && !adapter.convergeStoreSettings) {
            problems.push(`${k("formation")}=agent is not available on the ${cloudRaw} cloud (it offers no converge store yet); use ${k("formation")}=direct there`);
        }
        if (!bool("formCluster")) problems.push(`${k("formation")}=agent needs ${k("formCluster")}=true: the RedisCluster resource is what publishes the spec to the agent`);
        if (images.convergeAgent === "" && !images.build) {
            problems.push(`${k("convergeAgentImage")} is required when ${k("formation")}=agent and ${k("buildImages")}=false; set ${k("buildImages")}=true (built with the other images) or build templates/docker/converge-agent (bash scripts/build-converge-agent.sh, then docker build), push it and set its digest-pinned ref (repo@sha256:<64 hex>)`);
        }
    } else if (convergeHeal) {
        warnings.push(`${k("convergeHeal")}=true does nothing with ${k("formation")}=direct: healing between deploys is done by the converge agent (${k("formation")}=agent)`);
    }
    if (images.convergeAgent !== "" && !pinned.test(images.convergeAgent)) {
        problems.push(`${k("convergeAgentImage")}=${show(images.convergeAgent)} must be pinned by digest (repo@sha256:<64 hex>); use the digest the registry reports for that tag`);
    }

    // ---- failover speed: failure detection takes cluster-node-timeout, the write gap about that + 1-2 s.
    const clusterNodeTimeoutMs = int("clusterNodeTimeoutMs");
    if (clusterNodeTimeoutMs < 1000 || clusterNodeTimeoutMs > 60000) {
        problems.push(
            `${k("clusterNodeTimeoutMs")}=${clusterNodeTimeoutMs} must be between 1000 and 60000 ms: below 1000 a GC pause, a slow fsync or a network hiccup between zones ` +
                `triggers needless failovers; above 60000 a dead master blocks its slots for over a minute; set it to 5000 (the default) or 2000 for faster failover on a quiet network`,
        );
    }

    // ---- version, TLS
    const redisVersion = str("redisVersion", false);
    if (!/^\d+\.\d+(\.\d+)?$/.test(redisVersion)) problems.push(`${k("redisVersion")}=${show(redisVersion)} must look like 8.4 or 8.4.0`);
    const tlsValidityDays = int("tlsValidityDays");
    const tlsRenewBeforeDays = int("tlsRenewBeforeDays");
    if (tlsValidityDays < 2) problems.push(`${k("tlsValidityDays")}=${tlsValidityDays} must be at least 2 days; set it to 365 (the default) or at least 2`);
    if (tlsRenewBeforeDays < 1 || tlsRenewBeforeDays >= tlsValidityDays) {
        const suggest = Math.max(1, Math.min(30, Math.floor(tlsValidityDays / 3)));
        problems.push(
            `${k("tlsRenewBeforeDays")}=${tlsRenewBeforeDays} must be at least 1 and below ${k("tlsValidityDays")}=${tlsValidityDays} so that \`pulumi up\` re-issues certificates before they expire; ` +
                (tlsValidityDays >= 2 ? `set ${k("tlsRenewBeforeDays")} to ${suggest} (or raise ${k("tlsValidityDays")})` : `raise ${k("tlsValidityDays")} first`),
        );
    }

    const tlsCaGeneration = int("tlsCaGeneration");
    problems.push(...checkPkiGeneration({ caGeneration: tlsCaGeneration }));

    // ---- passwords (supplied secrets)
    const passwords: Partial<Record<AclUser, pulumi.Output<string>>> = {};
    for (const user of ACL_USERS) {
        const key = `${user}Password` as ConfigKey;
        if (!present(key)) continue;
        const v = raw[key];
        if (typeof v !== "string" || v.length < MIN_PASSWORD_LENGTH) {
            // Never echo a secret: name the key and the length only.
            problems.push(`${k(key)} is ${typeof v === "string" ? v.length : 0} characters; a supplied password must be at least ${MIN_PASSWORD_LENGTH}; set a longer one with \`pulumi config set --secret ${k(key)}\` or remove it to have one generated`);
        } else if (opts.isSecret && !opts.isSecret(key)) {
            problems.push(`${k(key)} is stored in plaintext; store it encrypted with \`pulumi config set --secret ${k(key)}\``);
        } else if (/[\s"'\\]/.test(v)) {
            problems.push(`${k(key)} contains whitespace, a quote or a backslash (not allowed in redis.conf/users.acl); choose another`);
        } else {
            passwords[user] = pulumi.secret(v);
        }
    }

    // ---- placement: only when the topology inputs themselves are sound, ask the planner
    if (problems.length === 0) {
        try {
            planTopology({ zones: distinctZones, shards, replicasPerShard, envoyCount, redisPort: ports.redis });
        } catch (e) {
            problems.push(`${k("shards")}=${shards} with ${k("replicasPerShard")}=${replicasPerShard} over ${distinctZones.length} zones cannot be placed: ${(e as Error).message}`);
        }
    }

    if (problems.length > 0) throw new ConfigError(problems);

    return {
        warnings,
        config: {
            clusterName,
            cloud: cloudRaw as CloudKind,
            region,
            zones,
            production,
            shards,
            replicasPerShard,
            nodeSize,
            nodeMemoryGb,
            envoySize,
            envoyCount,
            dataDiskGb,
            networkCidr,
            clientCidrs: cidrLists.clientCidrs,
            monitoringCidrs: cidrLists.monitoringCidrs,
            adminCidrs: cidrLists.adminCidrs,
            internalLoadBalancer,
            ports,
            backupRetentionDays,
            images,
            formCluster: bool("formCluster"),
            formation: formation as "direct" | "agent",
            convergeHeal,
            redisVersion,
            allowDowngrade: bool("allowDowngrade"),
            tlsValidityDays,
            tlsRenewBeforeDays,
            tlsCaGeneration,
            tlsCaOverlap: bool("tlsCaOverlap"),
            clusterNodeTimeoutMs,
            passwords,
        },
    };
}

/** Reads every `redisforge:*` key from the engine's config (the only place that does). */
export function readRawConfig(): RawConfig {
    const all = pulumi.runtime.allConfig();
    const raw: RawConfig = {};
    const prefix = `${NAMESPACE}:`;
    for (const [key, value] of Object.entries(all)) {
        if (key.startsWith(prefix)) raw[key.slice(prefix.length)] = value;
    }
    return raw;
}

/** Reads, validates and logs warnings. Throws ConfigError before anything is registered. */
export function loadConfig(adapters: Readonly<Record<string, CloudAdapter>>): StackConfig {
    const runtime = pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean };
    const isSecret = runtime.isConfigSecret ? (key: string) => runtime.isConfigSecret!(`${NAMESPACE}:${key}`) : undefined;
    const { config, warnings } = validateConfig(readRawConfig(), adapters, { stackName: pulumi.getStack(), isSecret });
    for (const w of warnings) void pulumi.log.warn(w);
    return config;
}
