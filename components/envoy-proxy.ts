/**
 * EnvoyProxy: the cluster's one client endpoint. A TCP load balancer in front of two or more
 * Envoy VMs (spread over the zones) running `redis_proxy`: downstream TLS + ACL auth, upstream
 * mTLS + auth, cluster discovery from the seed nodes. The server certificate names the load
 * balancer (created first for that reason); the client certificate authenticates Envoy at
 * the nodes (`tls-auth-clients yes`).
 */
import * as pulumi from "@pulumi/pulumi";
import { buildEnvoyUserData, CloudKind as TemplateCloud, renderCloudInit } from "../templates/cloud-init";
import type { CloudAdapter, FirewallRecord, NetworkRecord, RegistryRecord, SecretRecord, SecretStoreRecord, VmRecord } from "../providers/types";
import type { Pki } from "./pki";
import { tagsFor } from "./tags";

export interface EnvoyInstancePlan {
    /** Stable key, e.g. `envoy1`. */
    key: string;
    zone: string;
}

export interface EnvoyProxyArgs {
    adapter: CloudAdapter;
    /** Cluster (stack) name; a DNS label. */
    clusterName: string;
    /** Region (for the load balancer). */
    region: string;
    /** The Envoy VMs (≥ 1; ≥ 2 for no single point of failure), each in a zone. */
    instances: EnvoyInstancePlan[];
    /** Cloud VM size. */
    size: string;
    network: NetworkRecord;
    firewall: FirewallRecord;
    store: SecretStoreRecord;
    /** CA certificate and the `app` password (clients at Envoy, Envoy at the nodes). */
    shared: { tlsCa: SecretRecord; appPassword: SecretRecord };
    pki: Pki;
    /** Redis nodes Envoy discovers the cluster from (private IPs and TLS port). */
    seeds: pulumi.Input<{ host: string; port: number }[]>;
    /** Digest-pinned image refs. */
    images: { envoy: pulumi.Input<string>; nodeExporter: pulumi.Input<string> };
    ports: { client: number; envoyAdmin: number; nodeExporter: number };
    /** Client CIDRs (the only sources of the client port). */
    clientCidrs: string[];
    /** Internal (private) load balancer; default true. */
    internal: boolean;
    registry?: RegistryRecord;
    sshCidrs: string[];
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export class EnvoyProxy extends pulumi.ComponentResource {
    /** Where clients connect: the LB DNS name (or IP) and the client port. */
    public readonly endpoint: pulumi.Output<string>;
    public readonly lbDnsName: pulumi.Output<string>;
    public readonly instances: VmRecord[];
    public readonly userData: pulumi.Output<string>[];
    public readonly serverCertSans: pulumi.Output<{ ips: string[]; dns: string[] }>;

    constructor(name: string, args: EnvoyProxyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redisforge:envoy:EnvoyProxy", name, {}, opts);
        if (args.instances.length < 1) {
            throw new pulumi.ResourceError(`EnvoyProxy ${name}: needs at least 1 instance; got 0 (set redisforge:envoyCount to 2 or more)`, this);
        }
        const a = args.adapter;
        const tags = tagsFor({ cluster: args.clusterName, role: "envoy" });
        const base = { parent: this as pulumi.Resource, tags };

        let lb: ReturnType<CloudAdapter["createLoadBalancer"]> | undefined;
        if (a.capabilities.loadBalancer) {
            lb = a.createLoadBalancer(`${name}-lb`, {
                ...base,
                region: args.region,
                network: args.network,
                firewall: args.firewall,
                port: args.ports.client,
                healthCheckPort: args.ports.client,
                clientCidrs: args.clientCidrs,
                internal: args.internal,
            });
        }
        const lbNames = lb ? pulumi.all([lb.dnsName, lb.address]).apply(([d, ip]) => [...new Set([d, ip].filter((x) => x !== ""))]) : pulumi.output<string[]>([]);
        const server = args.pki.issue(`${name}-server-tls`, {
            commonName: `${args.clusterName}-endpoint`,
            ipAddresses: lbNames.apply((xs) => xs.filter((x) => IPV4.test(x))) as unknown as pulumi.Input<string>[],
            dnsNames: lbNames.apply((xs) => xs.filter((x) => !IPV4.test(x))) as unknown as pulumi.Input<string>[],
            server: true,
            client: false,
        }, this);
        const client = args.pki.issue(`${name}-client-tls`, { commonName: `${args.clusterName}-envoy`, server: false, client: true }, this);
        const secret = (key: string, value: pulumi.Output<string>) =>
            a.createSecret(`${name}-${key}`, { ...base, store: args.store, key: `${args.clusterName}-envoy-${key}`, value: pulumi.secret(value) });
        const s = {
            serverCert: secret("server-cert", server.certPem),
            serverKey: secret("server-key", server.keyPem),
            clientCert: secret("client-cert", client.certPem),
            clientKey: secret("client-key", client.keyPem),
        };
        const identity = a.createIdentity(`${name}-identity`, {
            ...base,
            role: "envoy",
            store: args.store,
            readSecrets: [s.serverCert, s.serverKey, s.clientCert, s.clientKey, args.shared.tlsCa, args.shared.appPassword],
            pullRegistry: args.registry,
        });

        this.instances = [];
        this.userData = [];
        for (const inst of args.instances) {
            const hostName = `${args.clusterName}-${inst.key}`;
            const itags = tagsFor({ cluster: args.clusterName, role: "envoy", zone: inst.zone });
            const ibase = { parent: this as pulumi.Resource, tags: itags };
            const address = a.reserveAddress(`${name}-${inst.key}-addr`, { ...ibase, network: args.network, firewall: args.firewall, zone: inst.zone, role: "envoy", hostName });
            const userData = a.capabilities.cloudInit
                ? pulumi
                      .all([address.privateIp, s.serverCert.ref, s.serverKey.ref, s.clientCert.ref, s.clientKey.ref, args.shared.tlsCa.ref, args.shared.appPassword.ref, args.images.envoy, args.images.nodeExporter, args.seeds])
                      .apply(([ip, scRef, skRef, ccRef, ckRef, caRef, pwRef, envoyImage, nodeExporterImage, seeds]) =>
                          renderCloudInit(buildEnvoyUserData({
                              cloud: a.kind as TemplateCloud,
                              ...(a.timeScale !== undefined ? { timeScale: a.timeScale } : {}),
                              clusterName: args.clusterName,
                              nodeName: hostName,
                              zone: inst.zone,
                              privateIp: ip as string,
                              nodeExporterImage: nodeExporterImage as string,
                              nodeExporterPort: args.ports.nodeExporter,
                              envoyImage: envoyImage as string,
                              envoy: {
                                  listenPort: args.ports.client,
                                  adminPort: args.ports.envoyAdmin,
                                  seeds: seeds as { host: string; port: number }[],
                                  downstreamUsername: "app",
                                  upstreamUsername: "app",
                              },
                              secrets: {
                                  serverCert: scRef as string,
                                  serverKey: skRef as string,
                                  ca: caRef as string,
                                  clientCert: ccRef as string,
                                  clientKey: ckRef as string,
                                  downstreamPassword: pwRef as string,
                                  upstreamPassword: pwRef as string,
                              },
                          })),
                      )
                : pulumi.output("");
            const vm = a.createVm(`${name}-${inst.key}-vm`, {
                ...ibase,
                network: args.network,
                firewall: args.firewall,
                identity,
                address,
                zone: inst.zone,
                role: "envoy",
                hostName,
                size: args.size,
                dataDiskGb: 0, // Envoy keeps no data
                userData,
                sshCidrs: args.sshCidrs,
            });
            this.instances.push(vm);
            this.userData.push(userData);
        }
        if (lb) a.attachToLoadBalancer(`${name}-lb`, { ...base, lb, network: args.network, port: args.ports.client, targets: this.instances });
        this.lbDnsName = lb ? lb.dnsName : this.instances[0].privateIp;
        this.endpoint = pulumi.interpolate`${this.lbDnsName}:${args.ports.client}`;
        this.serverCertSans = pulumi.all([server.ipAddresses, server.dnsNames]).apply(([ips, dns]) => ({ ips, dns }));
        this.registerOutputs({ endpoint: this.endpoint });
    }
}
