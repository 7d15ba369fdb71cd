/**
 * The Envoy bootstrap: built from the node list, validated by tools/envoy-validate (go-control-plane
 * protos + protoc-gen-validate rules, every typed_config unpacked), and the validator is shown to
 * reject broken configs: unknown field, wrong type, violated validation rule, unknown @type.
 */
import fc from "fast-check";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { buildEnvoyConfig, ENVOY_FILES, EnvoyConfigParams, renderEnvoyYaml } from "../../../templates/envoy";
import { buildEnvoyUserData, CLOUD_KINDS } from "../../../templates/cloud-init";
import { envoyParams, FAKE_SECRETS } from "./fixtures";
import { run, tmpDir, writeTmp } from "./tools";

const ROOT = path.resolve(__dirname, "../../..");
const VALIDATOR = path.join(ROOT, ".tools/bin/envoy-validate");
const dir = tmpDir("envoy");

beforeAll(() => {
    // Idempotent and cached by source hash: a no-op when setup.sh already built it.
    const r = run("bash", [path.join(ROOT, "scripts/install-envoy-validate.sh")], { timeoutMs: 15 * 60 * 1000 });
    if (r.code !== 0) throw new Error(`scripts/install-envoy-validate.sh failed:\n${r.out}`);
}, 15 * 60 * 1000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function validate(name: string, yamlText: string) {
    return run(VALIDATOR, [writeTmp(dir, name, yamlText)]);
}

const seeds = (n: number) => Array.from({ length: n }, (_, i) => ({ host: `10.0.${(i % 3) + 1}.${10 + i}`, port: 6379 }));
const params = (over: Partial<EnvoyConfigParams> = {}): EnvoyConfigParams => ({ clusterName: "prod-redis", privateIp: "10.0.1.50", seeds: seeds(6), ...over });

type Obj = Record<string, any>;
const listener = (c: Obj) => c.static_resources.listeners[0];
const proxy = (c: Obj) => listener(c).filter_chains[0].filters[0].typed_config;
const cluster = (c: Obj) => c.static_resources.clusters[0];

describe("buildEnvoyConfig", () => {
    it.each([1, 3, 9, 30])("with %i seed nodes passes envoy-validate", (n) => {
        const r = validate(`seeds-${n}.yaml`, renderEnvoyYaml(buildEnvoyConfig(params({ seeds: seeds(n) }))));
        expect(r.out).toMatch(/^OK .* \(6 typed configs unpacked and validated\)$/m);
        expect(r.code).toBe(0);
    });

    it("the Envoy config inside every cloud's user-data passes envoy-validate", () => {
        for (const cloud of CLOUD_KINDS) {
            const ud = buildEnvoyUserData(envoyParams(cloud));
            const f = ud.write_files.find((w) => w.path === "/etc/redisforge/envoy/envoy.yaml")!;
            const r = validate(`ud-${cloud}.yaml`, f.content);
            expect(r.code).toBe(0);
            expect(r.out).toMatch(/^OK /);
        }
    });

    it("terminates TLS and ACL auth for clients, from files only", () => {
        const c = buildEnvoyConfig(params()) as Obj;
        const ts = listener(c).filter_chains[0].transport_socket;
        expect(ts.typed_config["@type"]).toBe("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext");
        expect(ts.typed_config.common_tls_context.tls_certificates).toEqual([
            { certificate_chain: { filename: ENVOY_FILES.serverCertFile }, private_key: { filename: ENVOY_FILES.serverKeyFile } },
        ]);
        expect(ts.typed_config.common_tls_context.tls_params.tls_minimum_protocol_version).toBe("TLSv1_2");
        const p = proxy(c);
        expect(p["@type"]).toBe("type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy");
        expect(p.downstream_auth_username).toEqual({ inline_string: "app" });
        expect(p.downstream_auth_passwords).toEqual([{ filename: ENVOY_FILES.downstreamPasswordFile }]);
    });

    it("discovers the cluster (envoy.clusters.redis) with refresh, redirects and thresholds on", () => {
        const c = buildEnvoyConfig(params()) as Obj;
        expect(proxy(c).settings).toMatchObject({ enable_redirection: true, enable_hashtagging: true, op_timeout: "5s" });
        const cl = cluster(c);
        expect(cl.lb_policy).toBe("CLUSTER_PROVIDED");
        expect(cl.cluster_type.name).toBe("envoy.clusters.redis");
        expect(cl.cluster_type.typed_config).toMatchObject({
            cluster_refresh_rate: "5s",
            redirect_refresh_interval: "1s",
            redirect_refresh_threshold: 5,
            failure_refresh_threshold: 3,
            host_degraded_refresh_threshold: 3,
        });
        expect(cl.load_assignment.endpoints[0].lb_endpoints.map((e: Obj) => e.endpoint.address.socket_address.address)).toEqual(seeds(6).map((s) => s.host));
        expect(proxy(c).prefix_routes.catch_all_route.cluster).toBe(cl.name);
    });

    it("talks to Redis over mTLS with its own ACL user, password from a file", () => {
        const cl = cluster(buildEnvoyConfig(params({ upstreamUsername: "app" })) as Obj);
        const tls = cl.transport_socket.typed_config;
        expect(tls["@type"]).toBe("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
        expect(tls.common_tls_context.tls_certificates[0]).toEqual({
            certificate_chain: { filename: ENVOY_FILES.clientCertFile },
            private_key: { filename: ENVOY_FILES.clientKeyFile },
        });
        expect(tls.common_tls_context.validation_context.trusted_ca).toEqual({ filename: ENVOY_FILES.caFile });
        const opts = cl.typed_extension_protocol_options["envoy.filters.network.redis_proxy"];
        expect(opts["@type"]).toBe("type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions");
        expect(opts.auth_password).toEqual({ filename: ENVOY_FILES.upstreamPasswordFile });
    });

    it("binds admin to the private IP only; clients on the listen port", () => {
        const c = buildEnvoyConfig(params({ adminPort: 9901, listenPort: 6380 })) as Obj;
        expect(c.admin.address.socket_address).toEqual({ address: "10.0.1.50", port_value: 9901 });
        expect(listener(c).address.socket_address).toEqual({ address: "0.0.0.0", port_value: 6380 });
    });

    it("no DataSource anywhere carries an inline password, key or certificate", () => {
        const inline: string[] = [];
        const walk = (v: unknown, p: string) => {
            if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${p}[${i}]`));
            else if (v && typeof v === "object") {
                for (const [k, x] of Object.entries(v)) {
                    if (/^inline_(string|bytes)$/.test(k) && !/_username$/.test(p)) inline.push(p);
                    walk(x, `${p}.${k}`);
                }
            }
        };
        walk(buildEnvoyConfig(params()), "");
        expect(inline).toEqual([]);
    });

    it.each(["y", "no", "off", "on"])("a cluster named %p stays a string for YAML 1.1 readers (Envoy's yaml-cpp)", (name) => {
        const r = validate(`yaml11-${name}.yaml`, renderEnvoyYaml(buildEnvoyConfig(params({ clusterName: name }))));
        expect(r.out).toMatch(/^OK /);
        expect(r.code).toBe(0);
    });

    it("round-trips through YAML", () => {
        const c = buildEnvoyConfig(params());
        expect(parse(renderEnvoyYaml(c))).toEqual(c);
    });

    it("refuses bad parameters, naming each, and secret-shaped values", () => {
        expect(() => buildEnvoyConfig(params({ seeds: [] }))).toThrow(/seeds: needs at least one Redis node/);
        expect(() => buildEnvoyConfig(params({ privateIp: "0.0.0.0.0", adminPort: 6379, listenPort: 6379 }))).toThrow(/privateIp: must be an IPv4[\s\S]*adminPort: must differ from listenPort/);
        for (const s of FAKE_SECRETS) {
            expect(() => buildEnvoyConfig(params({ files: { upstreamPasswordFile: s } }))).toThrow(/files\.upstreamPasswordFile: must be an absolute path/);
            expect(() => buildEnvoyConfig(params({ upstreamUsername: s }))).toThrow(/upstreamUsername: must be an ACL user name/);
        }
    });

    it("renderEnvoyYaml refuses a config with an inline secret", () => {
        const c = buildEnvoyConfig(params()) as Obj;
        proxy(c).downstream_auth_passwords = [{ inline_string: "password-in-config" }];
        expect(() => renderEnvoyYaml(c)).toThrow(/inline secret/);
        const c2 = buildEnvoyConfig(params()) as Obj;
        listener(c2).filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificates[0].private_key = { inline_string: FAKE_SECRETS[2] };
        expect(() => renderEnvoyYaml(c2)).toThrow(/PEM key/);
    });
});

describe("envoy-validate rejects broken configs", () => {
    const broken = (name: string, mutate: (c: Obj) => void) => {
        const c = buildEnvoyConfig(params()) as Obj;
        mutate(c);
        return validate(`${name}.yaml`, `# ${name}\n${require("yaml").stringify(c)}`);
    };

    it("an unknown field", () => {
        const r = broken("unknown-field", (c) => (proxy(c).settings.enable_teleport = true));
        expect(r.code).toBe(1);
        expect(r.out).toMatch(/INVALID[\s\S]*unknown field "enable_teleport"/);
    });

    it("a wrong type", () => {
        const r = broken("wrong-type", (c) => (cluster(c).cluster_type.typed_config.redirect_refresh_threshold = "five"));
        expect(r.code).toBe(1);
        expect(r.out).toMatch(/INVALID[\s\S]*invalid value for uint32 field/);
    });

    it("an unknown enum value", () => {
        const r = broken("bad-enum", (c) => (cluster(c).lb_policy = "CLUSTER_GUESSED"));
        expect(r.code).toBe(1);
        expect(r.out).toMatch(/INVALID[\s\S]*CLUSTER_GUESSED/);
    });

    it("a violated validation rule inside a typed_config (empty stat_prefix)", () => {
        const r = broken("pgv-any", (c) => (proxy(c).stat_prefix = ""));
        expect(r.code).toBe(1);
        expect(r.out).toMatch(/RedisProxy\.StatPrefix: value length must be at least 1/);
    });

    it("a violated validation rule in the bootstrap itself (connect_timeout <= 0, port > 65535)", () => {
        const r = broken("pgv-root", (c) => {
            cluster(c).connect_timeout = "0s";
            c.admin.address.socket_address.port_value = 70000;
        });
        expect(r.code).toBe(1);
        expect(r.out).toMatch(/ConnectTimeout: value must be greater than 0s/);
        expect(r.out).toMatch(/PortValue: value must be less than or equal to 65535/);
    });

    it("an unknown @type", () => {
        const r = broken("unknown-type", (c) => (cluster(c).cluster_type.typed_config["@type"] += "X"));
        expect(r.code).toBe(1);
        expect(r.out).toMatch(/unable to resolve "type\.googleapis\.com\/envoy\.extensions\.clusters\.redis\.v3\.RedisClusterConfigX"/);
    });

    it("a typed_config of the wrong message for its field", () => {
        const r = broken("wrong-any", (c) => {
            const tc = cluster(c).cluster_type.typed_config;
            for (const k of Object.keys(tc)) if (k !== "@type") delete tc[k];
            tc["@type"] = "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy";
        });
        // Envoy looks the factory up by payload type within the field's category.
        expect(r.code).toBe(1);
        expect(r.out).toMatch(/cluster_type\.typed_config: envoy\.extensions\.filters\.network\.redis_proxy\.v3\.RedisProxy is not a cluster extension/);
    });
});

describe("property: any valid parameter set yields a config envoy-validate accepts", () => {
    it("40 random parameter sets, validated in one run of the real validator", () => {
        const ip = fc.tuple(fc.integer({ min: 1, max: 223 }), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 })).map((t) => t.join("."));
        const port = fc.integer({ min: 1, max: 65535 });
        const arb = fc.record({
            clusterName: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
            privateIp: ip,
            listenPort: port,
            adminPort: port,
            seeds: fc.array(fc.record({ host: ip, port }), { minLength: 1, maxLength: 40 }),
            clusterRefreshRateMs: fc.integer({ min: 1, max: 600000 }),
            opTimeoutMs: fc.integer({ min: 1, max: 600000 }),
            maxDownstreamConnections: fc.integer({ min: 1, max: 1000000 }),
        }).filter((p) => p.listenPort !== p.adminPort);
        const files = fc.sample(arb, { numRuns: 40, seed: 42 }).map((p, i) => writeTmp(dir, `prop-${i}.yaml`, renderEnvoyYaml(buildEnvoyConfig(p))));
        const r = run(VALIDATOR, files);
        expect(r.out.split("\n").filter((l) => !l.startsWith("OK ") && l)).toEqual([]);
        expect(r.out.split("\n").filter((l) => l.startsWith("OK ")).length).toBe(40);
        expect(r.code).toBe(0);
    });
});
