/**
 * The Envoy v3 bootstrap for RedisForge's client endpoint: one `redis_proxy` listener that
 * terminates TLS and ACL auth for applications, and one `envoy.clusters.redis` upstream that
 * discovers the slot map itself (CLUSTER SLOTS), follows MOVED/ASK redirects, and talks to
 * every node over mTLS with its own ACL user.
 *
 * Invariants (tests/unit/templates/envoy.test.ts, validated by tools/envoy-validate):
 * - no secret is inline: every password, key and certificate is a `filename` DataSource
 *   pointing at the 0600 files the boot script fetched from the cloud secret store;
 * - downstream TLS (DownstreamTlsContext) and downstream ACL auth are always on;
 * - upstream TLS carries a client certificate (Redis runs `tls-auth-clients yes`);
 * - redirection, cluster refresh, redirect/failure/degraded refresh thresholds are on;
 * - the admin interface listens on the private IP only (firewalled to the monitoring CIDRs).
 *
 * The object is plain JSON-shaped data (proto3 JSON field names); `renderEnvoyYaml` serialises it
 * with the `yaml` library.
 */
import { stringify } from "yaml";
import { assertNoSecretContent, IPV4_RE, NAME_RE, PATH_RE, Problems } from "../cloud-init/checks";

/** Where the Envoy container finds its files (the boot script writes them; see templates/docker/envoy). */
export interface EnvoyFiles {
    /** Envoy's server certificate for clients (SAN: the load balancer DNS/IP). */
    serverCertFile: string;
    serverKeyFile: string;
    /** The cluster CA: verifies Redis nodes upstream. */
    caFile: string;
    /** Envoy's client certificate towards Redis (clientAuth usage). */
    clientCertFile: string;
    clientKeyFile: string;
    /** File whose exact content (no trailing newline) is the password clients use to AUTH to Envoy. */
    downstreamPasswordFile: string;
    /** File whose exact content is the password of `upstreamUsername` on the Redis nodes. */
    upstreamPasswordFile: string;
}

/** Container paths used by templates/docker/envoy and the cloud-init Envoy unit. */
export const ENVOY_FILES: EnvoyFiles = {
    serverCertFile: "/run/secrets/envoy/tls/server.crt",
    serverKeyFile: "/run/secrets/envoy/tls/server.key",
    caFile: "/run/secrets/envoy/tls/ca.crt",
    clientCertFile: "/run/secrets/envoy/tls/client.crt",
    clientKeyFile: "/run/secrets/envoy/tls/client.key",
    downstreamPasswordFile: "/run/secrets/envoy/downstream.password",
    upstreamPasswordFile: "/run/secrets/envoy/upstream.password",
};

/** Path of the rendered config inside the Envoy container. */
export const ENVOY_CONFIG_PATH = "/etc/envoy/envoy.yaml";

export interface RedisSeed {
    /** Private IP of a Redis node. */
    host: string;
    /** Its TLS port. */
    port: number;
}

export interface EnvoyConfigParams {
    /** Cluster name; used in stat prefixes and the Envoy cluster name. */
    clusterName: string;
    /** Private IP of this Envoy VM: the admin interface binds here only. */
    privateIp: string;
    /**
     * Address the client listener binds to. Default `0.0.0.0`: pass-through load balancers (GCP internal
     * TCP/UDP LB, Azure Standard LB with floating IP) deliver packets addressed to the LB's IP, not the
     * VM's, so binding the private IP would drop them. The firewall limits the port to the client CIDRs.
     */
    listenAddress?: string;
    /** Client-facing TLS port. Default 6379. */
    listenPort?: number;
    /** Admin port (stats, /ready). Default 9901. */
    adminPort?: number;
    /** Seed nodes; Envoy discovers the rest from CLUSTER SLOTS. At least one. */
    seeds: RedisSeed[];
    /** ACL user clients authenticate as at Envoy. Default `app`. */
    downstreamUsername?: string;
    /** ACL user Envoy authenticates as at Redis. Default `app`. */
    upstreamUsername?: string;
    /** How often Envoy refreshes the slot map, ms. Default 5000. */
    clusterRefreshRateMs?: number;
    /** Per-operation timeout, ms. Default 5000. */
    opTimeoutMs?: number;
    /** Maximum concurrent client connections (overload manager). Default 50000. */
    maxDownstreamConnections?: number;
    /** File locations; default ENVOY_FILES (the image layout). */
    files?: Partial<EnvoyFiles>;
}

/** Envoy bootstrap as plain data (proto3 JSON names). */
export type EnvoyBootstrap = Record<string, unknown>;

const ms = (n: number) => `${(n / 1000).toFixed(3).replace(/\.?0+$/, "")}s`;

function validate(p: EnvoyConfigParams): void {
    const pr = new Problems();
    pr.match("clusterName", p.clusterName, NAME_RE, "must be a lower-case DNS label", "use e.g. prod-redis");
    pr.match("privateIp", p.privateIp, IPV4_RE, "must be an IPv4 address", "pass the Envoy VM's private IP");
    if (p.listenAddress !== undefined) pr.match("listenAddress", p.listenAddress, IPV4_RE, "must be an IPv4 address", "omit it for 0.0.0.0");
    if (p.listenPort !== undefined) pr.port("listenPort", p.listenPort);
    if (p.adminPort !== undefined) pr.port("adminPort", p.adminPort);
    if ((p.listenPort ?? 6379) === (p.adminPort ?? 9901)) pr.add("adminPort", "must differ from listenPort", p.adminPort, "pick another port");
    if (!Array.isArray(p.seeds) || p.seeds.length === 0) {
        pr.add("seeds", "needs at least one Redis node", p.seeds, "pass the private IP and TLS port of the cluster's nodes");
    } else {
        p.seeds.forEach((s, i) => {
            pr.match(`seeds[${i}].host`, s.host, IPV4_RE, "must be an IPv4 address", "pass the node's private IP");
            pr.port(`seeds[${i}].port`, s.port);
        });
    }
    for (const k of ["downstreamUsername", "upstreamUsername"] as const) {
        if (p[k] !== undefined) pr.match(k, p[k], /^[a-z][a-z0-9_-]{0,31}$/, "must be an ACL user name", "use one of the ACL users (app)");
    }
    for (const k of ["clusterRefreshRateMs", "opTimeoutMs", "maxDownstreamConnections"] as const) {
        const v = p[k];
        if (v !== undefined && (!Number.isInteger(v) || v < 1)) pr.add(k, "must be a positive integer", v, "omit it for the default");
    }
    for (const [k, v] of Object.entries(p.files ?? {})) {
        pr.match(`files.${k}`, v, PATH_RE, "must be an absolute path", "point at the file the boot script writes");
    }
    pr.throwIfAny("buildEnvoyConfig");
}

const file = (filename: string) => ({ filename });

/** Builds the Envoy bootstrap for one Envoy instance. Throws a TemplateParamError on bad params. */
export function buildEnvoyConfig(p: EnvoyConfigParams): EnvoyBootstrap {
    validate(p);
    const f: EnvoyFiles = { ...ENVOY_FILES, ...(p.files ?? {}) };
    const clusterName = `${p.clusterName}-redis`;
    const opTimeout = ms(p.opTimeoutMs ?? 5000);
    const tlsParams = { tls_minimum_protocol_version: "TLSv1_2" };

    return {
        node: { id: p.privateIp, cluster: `${p.clusterName}-envoy` },
        admin: {
            address: { socket_address: { address: p.privateIp, port_value: p.adminPort ?? 9901 } },
        },
        stats_config: { use_all_default_tags: true },
        overload_manager: {
            resource_monitors: [
                {
                    name: "envoy.resource_monitors.global_downstream_max_connections",
                    typed_config: {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                        max_active_downstream_connections: String(p.maxDownstreamConnections ?? 50000),
                    },
                },
            ],
        },
        static_resources: {
            listeners: [
                {
                    name: "redis",
                    address: { socket_address: { address: p.listenAddress ?? "0.0.0.0", port_value: p.listenPort ?? 6379 } },
                    per_connection_buffer_limit_bytes: 1048576,
                    filter_chains: [
                        {
                            filters: [
                                {
                                    name: "envoy.filters.network.redis_proxy",
                                    typed_config: {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy",
                                        stat_prefix: p.clusterName,
                                        settings: {
                                            op_timeout: opTimeout,
                                            enable_redirection: true,
                                            enable_hashtagging: true,
                                            enable_command_stats: true,
                                            read_policy: "MASTER",
                                            max_upstream_unknown_connections: 100,
                                        },
                                        prefix_routes: { catch_all_route: { cluster: clusterName } },
                                        downstream_auth_username: { inline_string: p.downstreamUsername ?? "app" },
                                        downstream_auth_passwords: [file(f.downstreamPasswordFile)],
                                    },
                                },
                            ],
                            transport_socket: {
                                name: "envoy.transport_sockets.tls",
                                typed_config: {
                                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                                    require_client_certificate: false,
                                    common_tls_context: {
                                        tls_params: tlsParams,
                                        tls_certificates: [{ certificate_chain: file(f.serverCertFile), private_key: file(f.serverKeyFile) }],
                                    },
                                },
                            },
                        },
                    ],
                },
            ],
            clusters: [
                {
                    name: clusterName,
                    connect_timeout: "5s",
                    lb_policy: "CLUSTER_PROVIDED",
                    dns_lookup_family: "V4_ONLY",
                    cluster_type: {
                        name: "envoy.clusters.redis",
                        typed_config: {
                            "@type": "type.googleapis.com/envoy.extensions.clusters.redis.v3.RedisClusterConfig",
                            cluster_refresh_rate: ms(p.clusterRefreshRateMs ?? 5000),
                            cluster_refresh_timeout: "3s",
                            redirect_refresh_interval: "1s",
                            redirect_refresh_threshold: 5,
                            failure_refresh_threshold: 3,
                            host_degraded_refresh_threshold: 3,
                        },
                    },
                    load_assignment: {
                        cluster_name: clusterName,
                        endpoints: [
                            {
                                lb_endpoints: p.seeds.map((s) => ({
                                    endpoint: { address: { socket_address: { address: s.host, port_value: s.port } } },
                                })),
                            },
                        ],
                    },
                    typed_extension_protocol_options: {
                        "envoy.filters.network.redis_proxy": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions",
                            auth_username: { inline_string: p.upstreamUsername ?? "app" },
                            auth_password: file(f.upstreamPasswordFile),
                        },
                    },
                    transport_socket: {
                        name: "envoy.transport_sockets.tls",
                        typed_config: {
                            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                            common_tls_context: {
                                tls_params: tlsParams,
                                // Redis runs `tls-auth-clients yes`: Envoy must present a client certificate.
                                tls_certificates: [{ certificate_chain: file(f.clientCertFile), private_key: file(f.clientKeyFile) }],
                                // The CA is private to this cluster, so a chain to it identifies a cluster node.
                                validation_context: { trusted_ca: file(f.caFile) },
                            },
                        },
                    },
                },
            ],
        },
    };
}

/** Serialises a bootstrap to YAML (the `yaml` library) and refuses inline secrets. */
export function renderEnvoyYaml(config: EnvoyBootstrap): string {
    // YAML 1.1 quoting: Envoy's YAML loader (yaml-cpp) reads plain y/n/yes/no/on/off as booleans,
    // so a cluster named "no" must be emitted as "no".
    const text = `# Envoy bootstrap rendered by RedisForge. Secrets are files under /run/secrets/envoy, fetched at boot.\n${stringify(config, { lineWidth: 0, version: "1.1" })}`;
    assertNoSecretContent(text, "envoy.yaml");
    return text;
}
