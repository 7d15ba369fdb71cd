/**
 * Rendered user-data for every cloud and both roles: valid for the real `cloud-init schema`,
 * every shell script in it passes shellcheck, host tuning and container units as promised,
 * and no secret value is accepted as a parameter or appears in the output.
 */
import * as fs from "fs";
import * as path from "path";
import { gunzipSync } from "zlib";
import fc from "fast-check";
import { parse } from "yaml";
import {
    buildEnvoyUserData,
    buildRedisNodeUserData,
    CLOUD_KINDS,
    CloudConfig,
    CloudKind,
    renderCloudInit,
    renderCloudInitGzipBase64,
} from "../../../templates/cloud-init";
import { TemplateParamError } from "../../../templates/cloud-init/checks";
import { nodeExporterFlags, redisExporterFlags } from "../../../components/exporter-targets";
import { envoyParams, FAKE_SECRETS, redisNodeParams, secretRef } from "./fixtures";
import { cloudInitSchema, run, shellcheck, tmpDir, writeTmp } from "./tools";

const dir = tmpDir("cloud-init");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Role = "redis" | "envoy";
const build = (cloud: CloudKind, role: Role): CloudConfig =>
    role === "redis" ? buildRedisNodeUserData(redisNodeParams(cloud)) : buildEnvoyUserData(envoyParams(cloud));

const file = (c: CloudConfig, p: string) => {
    const f = c.write_files.find((w) => w.path === p);
    if (!f) throw new Error(`no write_files entry ${p}`);
    return f;
};

/** runcmd as a shell script: what cloud-init runs, quoted the way it would be. */
function runcmdScript(c: CloudConfig): string {
    const q = (a: string) => (/^[A-Za-z0-9_@%+=:,.\/-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
    return `#!/bin/sh\nset -e\n${c.runcmd.map((cmd) => cmd.map(q).join(" ")).join("\n")}\n`;
}

describe.each(CLOUD_KINDS.flatMap((cloud) => (["redis", "envoy"] as Role[]).map((role) => [cloud, role] as const)))(
    "cloud-init %s %s node",
    (cloud, role) => {
        const config = build(cloud, role);
        const text = renderCloudInit(config);
        const userData = writeTmp(dir, `${cloud}-${role}.yaml`, text);

        it("passes the real `cloud-init schema` with no errors or deprecations", () => {
            const r = cloudInitSchema(userData);
            expect(r.out).toContain(`Valid cloud-config: ${userData}`);
            expect(r.out).not.toMatch(/schema errors|deprecations: \S/i);
            expect(r.code).toBe(0);
        });

        it("round-trips through a YAML parser to the same object (no string-built YAML)", () => {
            expect(text.startsWith("#cloud-config\n")).toBe(true);
            expect(parse(text)).toEqual(JSON.parse(JSON.stringify(config)));
        });

        it("cloud-init's own parser (PyYAML safe_load, YAML 1.1) reads back exactly the object built", () => {
            const r = run("python3", ["-c", "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", userData]);
            expect(r.code).toBe(0);
            expect(JSON.parse(r.out)).toEqual(JSON.parse(JSON.stringify(config)));
        });

        it("every shell script (write_files with a shebang, runcmd) passes shellcheck", () => {
            const scripts = config.write_files.filter((w) => w.content.startsWith("#!"));
            expect(scripts.map((s) => path.basename(s.path)).sort()).toEqual(
                (role === "redis" ? ["data-disk.sh", "redisforge-backup.sh", "redisforge-restore.sh", "reload-redis-tls.sh"] : []).concat(["disable-thp.sh", "fetch-secrets.sh", "wait-healthy.sh"]).sort(),
            );
            const files = scripts.map((s) => writeTmp(dir, `${cloud}-${role}/${path.basename(s.path)}`, s.content));
            files.push(writeTmp(dir, `${cloud}-${role}/runcmd.sh`, runcmdScript(config)));
            const r = shellcheck(files);
            expect(r.out).toBe("");
            expect(r.code).toBe(0);
            for (const s of scripts) expect(s.permissions).toBe("0755");
        });

        it("tunes the host: somaxconn, overcommit, THP never at every boot, Docker log limits and nofile", () => {
            expect(file(config, "/etc/sysctl.d/90-redisforge.conf").content).toMatch(/^net\.core\.somaxconn = 65535$/m);
            expect(file(config, "/etc/sysctl.d/90-redisforge.conf").content).toMatch(/^vm\.overcommit_memory = 1$/m);
            const thp = file(config, "/etc/systemd/system/redisforge-thp.service").content;
            expect(thp).toMatch(/^ExecStart=\/usr\/local\/lib\/redisforge\/disable-thp\.sh$/m);
            expect(thp).toMatch(/^WantedBy=basic\.target$/m);
            expect(thp).toMatch(/^Before=.*docker\.service/m);
            expect(file(config, "/usr/local/lib/redisforge/disable-thp.sh").content).toContain("/sys/kernel/mm/transparent_hugepage/enabled");
            expect(config.runcmd.find((c) => c.includes("enable"))).toEqual(expect.arrayContaining(["systemctl", "enable", "--now", "redisforge-thp.service", "docker.service"]));
            const daemon = JSON.parse(file(config, "/etc/docker/daemon.json").content);
            expect(daemon).toMatchObject({ "log-driver": "json-file", "log-opts": { "max-size": "50m", "max-file": "5" } });
            // host networking only: no bridge, Docker leaves the host's firewall and forwarding alone
            expect(daemon).toMatchObject({ bridge: "none", iptables: false, "ip-forward": false });
            const runFlags = config.write_files.filter((f) => f.path.endsWith(".service")).flatMap((f) => [...f.content.matchAll(/docker run [^\n]*/g)].map((m) => m[0]));
            expect(runFlags.length).toBeGreaterThan(0);
            for (const r of runFlags) expect(r).toMatch(/--network (host|none)\b/);
            expect(daemon["default-ulimits"].nofile).toEqual({ Name: "nofile", Soft: 100000, Hard: 100000 });
            expect(config.packages).toContain("docker.io");
        });

        it("runs containers as systemd units pulled by digest, with restart, health wait, log limits and nofile 100000", () => {
            const units = role === "redis" ? ["redis", "redis-exporter", "node-exporter"] : ["envoy", "node-exporter"];
            for (const u of units) {
                const unit = file(config, `/etc/systemd/system/${u}.service`).content;
                expect(unit).toMatch(/^Restart=always$/m);
                expect(unit).not.toMatch(/^Exec\w+=.*docker pull/m); // `--pull missing` of a digest: the one fetch there is
                expect(unit).toMatch(/^ExecStart=\/usr\/bin\/docker run --rm --pull missing /m);
                const run = /^ExecStart=(.*)$/m.exec(unit)![1];
                expect(run).toMatch(/ \S+@sha256:[0-9a-f]{64}( |$)/);
                expect(run).toContain("--log-opt max-size=50m --log-opt max-file=5");
                expect(run).toContain("--ulimit nofile=100000:100000");
                expect(run).toContain("--security-opt no-new-privileges");
                expect(run).toMatch(/--user \d+:\d+/);
                expect(run).not.toMatch(/--user 0:|--privileged/);
                expect(unit).toMatch(new RegExp(`^ExecStartPost=/usr/local/lib/redisforge/wait-healthy\\.sh ${u} \\d+$`, "m"));
                expect(unit).toMatch(/^LimitNOFILE=100000$/m);
                expect(config.runcmd.some((c) => c.includes(`${u}.service`) && c.includes("enable"))).toBe(true);
            }
        });

        it("starts every boot unit in one systemd transaction whose order comes from the units themselves", () => {
            const enables = config.runcmd.filter((c) => c.slice(0, 3).join(" ") === "systemctl enable --now");
            const boot = enables[0];
            const containers = role === "redis" ? ["redis", "redis-exporter", "node-exporter"] : ["envoy", "node-exporter"];
            const hostUnits = ["redisforge-thp", "docker", "redisforge-secrets", ...(role === "redis" ? ["redisforge-data-disk"] : [])];
            expect(boot).toEqual(expect.arrayContaining([...hostUnits, ...containers].map((u) => `${u}.service`)));
            // what `install -d` creates for node-exporter's textfile collector exists before that transaction
            expect(config.runcmd.findIndex((c) => c[0] === "install")).toBeLessThan(config.runcmd.indexOf(boot));
            const deps = (u: string, key: string) => (new RegExp(`^${key}=(.*)$`, "m").exec(file(config, `/etc/systemd/system/${u}.service`).content)?.[1] ?? "").split(/\s+/);
            expect(deps("redisforge-thp", "Before")).toContain("docker.service");
            for (const u of containers) {
                expect(deps(u, "Requires")).toContain("docker.service");
                expect(deps(u, "After")).toContain("docker.service");
            }
            const main = role === "redis" ? "redis" : "envoy";
            const needs = role === "redis" ? ["redisforge-secrets.service", "redisforge-data-disk.service"] : ["redisforge-secrets.service"];
            expect(deps(main, "Requires")).toEqual(expect.arrayContaining(needs));
            expect(deps(main, "After")).toEqual(expect.arrayContaining(needs));
            if (role === "redis") expect(deps("redis-exporter", "After")).toContain("redis.service");
        });

        it("fetches secrets at boot by reference into /run, never by value", () => {
            const list = file(config, "/etc/redisforge/secrets.list").content.split("\n").filter((l) => l && !l.startsWith("#"));
            expect(list.length).toBe(7); // redis: TLS x3, users.acl, masterauth, exporter env, tlsreload auth; envoy: 7 of its own
            for (const line of list) {
                const [dest, uid, format, ref] = line.split(" ");
                expect(dest).toMatch(/^\/run\/redisforge\//);
                expect(uid).toMatch(/^\d+$/);
                expect(format).toMatch(/^(file|env:[A-Z_]+)$/);
                expect(ref).toMatch({ aws: /^arn:aws:secretsmanager:/, gcp: /^projects\//, azure: /^https:\/\/.*\.vault\.azure\.net\/secrets\//, qemu: /^http:\/\/169\.254\.169\.254\/redisforge\/v1\/secrets\// }[cloud]);
            }
            expect(file(config, "/etc/redisforge/boot.env").content).toMatch(new RegExp(`^CLOUD=${cloud}$`, "m"));
            expect(text).not.toMatch(/BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)|requirepass|masterauth /);
        });
    },
);

describe("redis node specifics", () => {
    const config = buildRedisNodeUserData(redisNodeParams("aws"));

    it("ships the redis.conf rendered by the one renderer, TLS-only, with container paths", () => {
        const conf = file(config, "/etc/redisforge/redis/redis.conf").content.split("\n");
        for (const l of ["port 0", "tls-port 6379", "tls-cluster yes", "tls-replication yes", "bind 10.0.1.10", "cluster-announce-ip 10.0.1.10",
            "aclfile /run/secrets/redis/users.acl", "include /run/secrets/redis/secrets.conf", "tls-key-file /run/secrets/redis/tls/node.key",
            "dir /data", `maxmemory ${6 * 1024 ** 3}`, "tcp-backlog 4096"]) expect(conf).toContain(l);
    });

    it("formats the data disk once (label + filesystem check) and mounts it by UUID through fstab", () => {
        const s = file(config, "/usr/local/lib/redisforge/data-disk.sh").content;
        expect(s).toContain('blkid -L "$DATA_LABEL"');
        expect(s).toMatch(/blkid -p -o value -s TYPE/);
        expect(s).toMatch(/refusing to format/);
        expect(s).toMatch(/UUID=%s %s xfs/);
        expect(file(config, "/etc/redisforge/boot.env").content).toMatch(/^DATA_DISK_DEVICE=\/dev\/nvme1n1$/m);
        const unit = file(config, "/etc/systemd/system/redis.service").content;
        expect(unit).toMatch(/^Requires=docker\.service .*redisforge-data-disk\.service/m);
        expect(unit).toContain("-v /var/lib/redisforge/data:/data ");
        expect(unit).toContain("--read-only");
    });

    it("gives the exporter its password through an env file, not the command line", () => {
        const unit = file(config, "/etc/systemd/system/redis-exporter.service").content;
        expect(unit).toContain("--env-file /run/redisforge/exporter/exporter.env");
        expect(unit).toContain("--redis.user=exporter");
        expect(unit).toContain("--web.listen-address=10.0.1.10:9121");
        expect(unit).not.toMatch(/password=/i);
    });

    it("runs redis_exporter with the monitoring contract's flags by default; takes exporter-targets.ts flags verbatim", () => {
        const unit = file(config, "/etc/systemd/system/redis-exporter.service").content;
        const defaults = redisExporterFlags({
            redisHost: "10.0.1.10", redisPort: 6379, caFile: "/run/secrets/redis/tls/ca.crt", clientCertFile: "/run/secrets/redis/tls/node.crt",
            clientKeyFile: "/run/secrets/redis/tls/node.key", listenAddress: "10.0.1.10:9121",
        });
        expect(/^ExecStart=.*@sha256:[0-9a-f]{64} (.*)$/m.exec(unit)![1].split(" ")).toEqual(defaults);
        const nodeFlags = nodeExporterFlags({ listenAddress: "10.0.1.10:9100" });
        const withFlags = buildRedisNodeUserData({ ...redisNodeParams("aws"), nodeExporterFlags: nodeFlags });
        const ne = file(withFlags, "/etc/systemd/system/node-exporter.service").content;
        const args = /^ExecStart=.*@sha256:[0-9a-f]{64} (.*)$/m.exec(ne)![1].split(" ");
        // systemd would expand `$)`: a literal dollar is written `$$`.
        expect(args).toEqual(["--path.rootfs=/host", ...nodeFlags.map((f) => f.replace(/\$/g, "$$$$"))]);
        expect(ne).toContain("-v /var/lib/prometheus/node-exporter:/var/lib/prometheus/node-exporter:ro");
    });

    it("worst case (longest names, long ARNs, 40 Envoy seeds, backups): the gzip form fits AWS's 16 KiB raw and Azure's 64 KiB base64, the text fits GCP", () => {
        const long = (cloud: CloudKind, n: string) => secretRef(cloud, `${n}-${"x".repeat(90)}`);
        for (const cloud of CLOUD_KINDS) {
            const r = redisNodeParams(cloud);
            const big = {
                ...r, clusterName: `c${"a".repeat(62)}`, nodeName: `n${"b".repeat(62)}`,
                secrets: Object.fromEntries(Object.keys(r.secrets).map((k) => [k, long(cloud, k)])) as unknown as typeof r.secrets,
            };
            const e = envoyParams(cloud);
            const bigEnvoy = {
                ...e, clusterName: big.clusterName, nodeName: big.nodeName,
                envoy: { seeds: Array.from({ length: 40 }, (_, i) => ({ host: `10.${i}.200.200`, port: 6379 })) },
                secrets: Object.fromEntries(Object.keys(e.secrets).map((k) => [k, long(cloud, k)])) as unknown as typeof e.secrets,
            };
            for (const c of [buildRedisNodeUserData(big), buildEnvoyUserData(bigEnvoy)]) {
                // AWS: 16 KiB "in raw form, before it is base64-encoded" (EC2 user guide): the gzip bytes.
                expect(Buffer.from(renderCloudInitGzipBase64(c), "base64").length).toBeLessThan(16 * 1024);
                // Azure customData (gzip + base64 since the backup scripts): 64 KiB.
                expect(renderCloudInitGzipBase64(c).length).toBeLessThan(64 * 1024);
                // GCP: the text in the user-data metadata value (256 KiB).
                expect(Buffer.byteLength(renderCloudInit(c))).toBeLessThan(256 * 1024);
            }
        }
    });

    it("fits the clouds' user-data limits (AWS 16 KiB raw: gzip+base64 form)", () => {
        for (const cloud of CLOUD_KINDS) {
            for (const c of [buildRedisNodeUserData(redisNodeParams(cloud)), buildEnvoyUserData(envoyParams(cloud))]) {
                const gz = renderCloudInitGzipBase64(c);
                expect(gunzipSync(Buffer.from(gz, "base64")).toString("utf8")).toBe(renderCloudInit(c));
                expect(Buffer.from(gz, "base64").length).toBeLessThan(16 * 1024);
                expect(renderCloudInit(c).length).toBeLessThan(64 * 1024);
            }
        }
    });
});

describe("the schema check can fail", () => {
    it("rejects a config with a wrong type and one with a misspelt write_files key", () => {
        const bad = JSON.parse(JSON.stringify(buildRedisNodeUserData(redisNodeParams("gcp"))));
        bad.packages = "docker.io";
        const r1 = cloudInitSchema(writeTmp(dir, "bad-type.yaml", renderCloudInit(bad)));
        expect(r1.code).not.toBe(0);
        expect(r1.out).toMatch(/packages: 'docker.io' is not of type 'array'/);
        const bad2 = JSON.parse(JSON.stringify(buildRedisNodeUserData(redisNodeParams("gcp"))));
        bad2.write_files[0].contents = bad2.write_files[0].content;
        const r2 = cloudInitSchema(writeTmp(dir, "bad-key.yaml", renderCloudInit(bad2)));
        expect(r2.code).not.toBe(0);
        expect(r2.out).toMatch(/'contents' was unexpected/);
    });

    it("shellcheck flags a broken script", () => {
        const r = shellcheck([writeTmp(dir, "bad.sh", "#!/bin/bash\nrm -rf $DIR/*\n")]);
        expect(r.code).not.toBe(0);
        expect(r.out).toMatch(/SC2086|SC2115/);
    });
});

describe("secret values are refused as parameters and never rendered", () => {
    const redisStringParams = ["clusterName", "nodeName", "zone", "privateIp", "dataDiskDevice", "redisImage", "redisExporterImage", "nodeExporterImage"] as const;
    const redisSecretKeys = ["tlsCert", "tlsKey", "tlsCa", "usersAcl", "secretsInclude", "exporterPassword"] as const;
    const envoySecretKeys = ["serverCert", "serverKey", "ca", "clientCert", "clientKey", "downstreamPassword", "upstreamPassword"] as const;

    it.each(CLOUD_KINDS)("%s: every fake secret in every secret reference and string parameter is rejected", (cloud) => {
        let rejected = 0;
        for (const secret of FAKE_SECRETS) {
            for (const k of redisSecretKeys) {
                const p = redisNodeParams(cloud);
                p.secrets[k] = secret;
                expect(() => buildRedisNodeUserData(p)).toThrow(new RegExp(`secrets\\.${k}: must be a ${cloud} secret reference, not a value`));
                rejected++;
            }
            for (const k of envoySecretKeys) {
                const p = envoyParams(cloud);
                p.secrets[k] = secret;
                expect(() => buildEnvoyUserData(p)).toThrow(TemplateParamError);
                rejected++;
            }
            for (const k of redisStringParams) {
                const p = { ...redisNodeParams(cloud), [k]: secret };
                expect(() => buildRedisNodeUserData(p)).toThrow(new RegExp(`^[\\s\\S]*- ${k}: `));
                rejected++;
            }
            const flags = { ...redisNodeParams(cloud), redisExporterFlags: [`--redis.password=${secret}`] };
            expect(() => buildRedisNodeUserData(flags)).toThrow(TemplateParamError);
            const e = envoyParams(cloud);
            expect(() => buildEnvoyUserData({ ...e, envoy: { ...e.envoy, downstreamUsername: secret } })).toThrow(TemplateParamError);
            rejected += 2;
        }
        expect(rejected).toBe(FAKE_SECRETS.length * (redisSecretKeys.length + envoySecretKeys.length + redisStringParams.length + 2));
    });

    it("error messages never echo a whole secret", () => {
        const p = redisNodeParams("aws");
        p.secrets.tlsKey = FAKE_SECRETS[2];
        p.nodeName = FAKE_SECRETS[0];
        try {
            buildRedisNodeUserData(p);
            throw new Error("accepted");
        } catch (e) {
            const msg = (e as Error).message;
            expect(msg).toMatch(/secrets\.tlsKey: must be a aws secret reference, not a value; got "----…\(\d+ chars\)". Fix: pass the secret's ARN/);
            for (const s of FAKE_SECRETS) expect(msg).not.toContain(s.slice(0, 16));
        }
    });

    it("exporter flags: credential flags and token-shaped values are refused, path flags pass", () => {
        const ok = { ...redisNodeParams("aws"), redisExporterFlags: ["--include-system-metrics", "--tls-client-key-file=/x/k.pem", "--check-keys=db0:queue"] };
        expect(() => buildRedisNodeUserData(ok)).not.toThrow();
        for (const f of ["--redis.password=abc", "--redis.password-file=x", "--web.config.token=t", "--api-key=x", `--ping-on-connect=${FAKE_SECRETS[0]}`]) {
            if (f === "--redis.password-file=x") {
                expect(() => buildRedisNodeUserData({ ...ok, redisExporterFlags: [f] })).not.toThrow();
                continue;
            }
            expect(() => buildRedisNodeUserData({ ...ok, redisExporterFlags: [f] })).toThrow(/redisExporterFlags\[0\]: must not carry a credential/);
        }
    });

    it("accepts every reference form the providers produce", () => {
        const forms: Record<CloudKind, string[]> = {
            aws: ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:a/b_c+d=e.f@g-h-AbCdEf", "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x-AbCdEf"],
            gcp: ["projects/my-project-1/secrets/redis-app", "projects/123456789012/secrets/redis_app/versions/3", "projects/my-project-1/secrets/x/versions/latest"],
            azure: ["https://kv-prod-1.vault.azure.net/secrets/redis-app", `https://kvprod.vault.azure.net/secrets/redis-app/${"0a".repeat(16)}`],
            qemu: ["http://169.254.169.254/redisforge/v1/secrets/vm-node0-tls-key", "http://169.254.169.254/redisforge/v1/secrets/vm-envoy-app-password"],
        };
        for (const cloud of CLOUD_KINDS) {
            for (const ref of forms[cloud]) {
                const p = redisNodeParams(cloud);
                p.secrets.usersAcl = ref;
                expect(() => buildRedisNodeUserData(p)).not.toThrow();
            }
        }
    });

    it("a reference from another cloud is refused", () => {
        const p = redisNodeParams("aws");
        p.secrets.usersAcl = secretRef("gcp", "users-acl");
        expect(() => buildRedisNodeUserData(p)).toThrow(/secrets\.usersAcl: must be a aws secret reference/);
    });

    it("names every problem at once", () => {
        const p = { ...redisNodeParams("azure"), privateIp: "10.0.1", redisImage: "redis:8.4", maxmemoryBytes: 10, busPort: 6379 };
        const err = (() => {
            try {
                buildRedisNodeUserData(p);
            } catch (e) {
                return e as TemplateParamError;
            }
            throw new Error("accepted");
        })();
        expect(err.problems.map((x) => x.split(":")[0]).sort()).toEqual(["busPort", "maxmemoryBytes", "privateIp", "redisImage"]);
    });

    it("valid user-data contains none of the fake secrets, in any cloud or role", () => {
        for (const cloud of CLOUD_KINDS) {
            const out = renderCloudInit(buildRedisNodeUserData(redisNodeParams(cloud))) + renderCloudInit(buildEnvoyUserData(envoyParams(cloud)));
            for (const s of FAKE_SECRETS) expect(out).not.toContain(s.split("\n")[0]);
        }
    });
});

describe("properties", () => {
    const password = fc.uint8Array({ minLength: 24, maxLength: 48 }).map((b) => Buffer.from(b).toString("base64url"));
    const stringParams = ["clusterName", "nodeName", "zone", "privateIp", "dataDiskDevice", "redisImage", "redisExporterImage", "nodeExporterImage"] as const;
    const secretKeys = ["tlsCert", "tlsKey", "tlsCa", "usersAcl", "secretsInclude", "exporterPassword"] as const;

    it("a generated-password-shaped value is refused in every string parameter and secret slot, on every cloud", () => {
        fc.assert(
            fc.property(password, fc.constantFrom(...CLOUD_KINDS), fc.constantFrom<string>(...stringParams, ...secretKeys.map((k) => `secrets.${k}`)), (pw, cloud, slot) => {
                const p = redisNodeParams(cloud);
                if (slot.startsWith("secrets.")) (p.secrets as unknown as Record<string, string>)[slot.slice(8)] = pw;
                else (p as unknown as Record<string, string>)[slot] = pw;
                let msg = "";
                try {
                    buildRedisNodeUserData(p);
                } catch (e) {
                    msg = (e as Error).message;
                }
                return msg.includes(`- ${slot}: `) && !msg.includes(pw);
            }),
            { numRuns: 300 },
        );
    });

    it("YAML-1.1-ambiguous strings (on, no, y, 0644) survive cloud-init's parser as strings", () => {
        const p = { ...redisNodeParams("azure"), zone: "on", clusterName: "no", nodeName: "y" };
        const c = buildRedisNodeUserData(p);
        const f = writeTmp(dir, "yaml11.yaml", renderCloudInit(c));
        const r = run("python3", ["-c", "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", f]);
        expect(JSON.parse(r.out)).toEqual(JSON.parse(JSON.stringify(c)));
        expect(cloudInitSchema(f).code).toBe(0);
    });

    it("user-data is deterministic (the same inputs never cause a VM diff)", () => {
        for (const cloud of CLOUD_KINDS) {
            expect(renderCloudInit(buildRedisNodeUserData(redisNodeParams(cloud)))).toBe(renderCloudInit(buildRedisNodeUserData(redisNodeParams(cloud))));
            expect(renderCloudInitGzipBase64(buildEnvoyUserData(envoyParams(cloud)))).toBe(renderCloudInitGzipBase64(buildEnvoyUserData(envoyParams(cloud))));
        }
    });
});

describe("layout consistency: every file a config names is where the boot script / mounts put it", () => {
    /** `-v host:container[:opts]` pairs of a unit's docker run line. */
    const mounts = (unit: string) => [...unit.matchAll(/ -v ([^: ]+):([^: ]+)(?::\S+)?/g)].map((m) => ({ host: m[1], container: m[2] }));
    const toHost = (unit: string, p: string) => {
        const m = mounts(unit).filter((x) => p === x.container || p.startsWith(`${x.container}/`)).sort((a, b) => b.container.length - a.container.length)[0];
        return m ? m.host + p.slice(m.container.length) : null;
    };
    const secretDests = (c: CloudConfig) => file(c, "/etc/redisforge/secrets.list").content.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(" ")[0]);

    it.each(CLOUD_KINDS)("%s redis node: redis.conf paths map to fetched secrets, the data disk, and the exporter's TLS files", (cloud) => {
        const c = buildRedisNodeUserData(redisNodeParams(cloud));
        const unit = file(c, "/etc/systemd/system/redis.service").content;
        const conf = file(c, "/etc/redisforge/redis/redis.conf").content;
        const dests = secretDests(c);
        for (const key of ["tls-cert-file", "tls-key-file", "tls-ca-cert-file", "aclfile", "include"]) {
            const p = new RegExp(`^${key} (\\S+)$`, "m").exec(conf)![1];
            expect([key, toHost(unit, p)]).toEqual([key, expect.stringMatching(/^\/run\/redisforge\/redis\//)]);
            expect(dests).toContain(toHost(unit, p));
        }
        expect(toHost(unit, /^dir (\S+)$/m.exec(conf)![1])).toBe(file(c, "/etc/redisforge/boot.env").content.match(/^DATA_MOUNT=(.*)$/m)![1]);
        // The image's CMD reads /etc/redis/redis.conf: that is the rendered file.
        expect(toHost(unit, "/etc/redis/redis.conf")).toBe("/etc/redisforge/redis/redis.conf");
        const exporter = file(c, "/etc/systemd/system/redis-exporter.service").content;
        for (const m of exporter.matchAll(/--tls-[a-z-]+-file=(\S+)/g)) expect(dests).toContain(toHost(exporter, m[1]));
        expect(dests).toContain(/--env-file (\S+)/.exec(exporter)![1]);
    });

    it.each(CLOUD_KINDS)("%s envoy node: every filename in envoy.yaml maps to a fetched secret", (cloud) => {
        const c = buildEnvoyUserData(envoyParams(cloud));
        const unit = file(c, "/etc/systemd/system/envoy.service").content;
        const yaml = file(c, "/etc/redisforge/envoy/envoy.yaml").content;
        const names = [...yaml.matchAll(/filename: (\S+)/g)].map((m) => m[1]);
        expect(names.length).toBe(7);
        const dests = secretDests(c);
        for (const n of names) expect(dests).toContain(toHost(unit, n));
        expect(toHost(unit, "/etc/envoy/envoy.yaml")).toBe("/etc/redisforge/envoy/envoy.yaml");
    });
});

describe("the backup param: required, checked against the cloud, names and ids only", () => {
    it.each(CLOUD_KINDS)("%s: a missing backup param is refused, naming the fix", (cloud) => {
        const p = redisNodeParams(cloud) as Partial<ReturnType<typeof redisNodeParams>>;
        delete p.backup;
        expect(() => buildRedisNodeUserData(p as ReturnType<typeof redisNodeParams>)).toThrow(/backup: is required .*Fix: pass \{ bucket/);
    });

    it("the cloud's own fields are required there and refused elsewhere", () => {
        const aws = redisNodeParams("aws");
        expect(() => buildRedisNodeUserData({ ...aws, backup: { bucket: "prod-redis-backups" } })).toThrow(/backup\.region: is required on aws/);
        expect(() => buildRedisNodeUserData({ ...aws, backup: { ...aws.backup, storageAccount: "prodredisbackups" } })).toThrow(/backup\.storageAccount: is only used on azure/);
        const az = redisNodeParams("azure");
        expect(() => buildRedisNodeUserData({ ...az, backup: { bucket: "prod-redis-backups" } })).toThrow(/backup\.storageAccount: is required on azure/);
        expect(() => buildRedisNodeUserData({ ...az, backup: { ...az.backup, region: "us-east-1" } })).toThrow(/backup\.region: is only used on aws/);
        const gcp = redisNodeParams("gcp");
        expect(() => buildRedisNodeUserData({ ...gcp, backup: { ...gcp.backup, msiClientId: "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9" } })).toThrow(/backup\.msiClientId: is only used on azure/);
        // The backup builders' own checks surface too (bad bucket, bad region, bad client id).
        expect(() => buildRedisNodeUserData({ ...gcp, backup: { bucket: "Bad Bucket!" } })).toThrow(/bucket: must be a bucket\/container name/);
        expect(() => buildRedisNodeUserData({ ...aws, backup: { bucket: "b-ok", region: "nowhere" } })).toThrow(/region: must be an AWS region/);
        expect(() => buildRedisNodeUserData({ ...az, backup: { ...az.backup, msiClientId: "not-a-uuid" } })).toThrow(/msiClientId: must be a client id/);
    });

    it.each(CLOUD_KINDS)("%s: a secret-looking value in any backup field is refused and never rendered", (cloud) => {
        for (const secret of FAKE_SECRETS) {
            for (const k of ["bucket", "region", "storageAccount", "msiClientId"] as const) {
                const p = redisNodeParams(cloud);
                p.backup = { ...p.backup, [k]: secret };
                let msg = "";
                try {
                    buildRedisNodeUserData(p);
                } catch (e) {
                    msg = (e as Error).message;
                }
                expect(msg).not.toBe("");
                expect(msg).not.toContain(secret);
            }
        }
    });

    it.each(CLOUD_KINDS)("%s: rclone.conf names the cloud's remote with the VM identity and no credential option", (cloud) => {
        const c = buildRedisNodeUserData(redisNodeParams(cloud));
        const rc = c.write_files.find((w) => w.path === "/etc/redisforge/backup/rclone.conf")!.content;
        expect(rc).toMatch({ aws: /type = s3\nprovider = AWS\nenv_auth = true\nregion = us-east-1/, gcp: /type = google cloud storage/, azure: /type = azureblob\naccount = prodredisbackups\nuse_msi = true\nmsi_client_id = 0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9/, qemu: /type = s3\nprovider = Other\nenv_auth = true\nendpoint = http:\/\/10\.77\.0\.1:9000\nregion = us-east-1/ }[cloud]);
        expect(rc).not.toMatch(/^(key|secret_access_key|sas_url|service_account_file|service_account_credentials|client_secret|token|password)\s*=/m);
        const env = c.write_files.find((w) => w.path === "/etc/redisforge/backup.env")!.content;
        expect(env).toMatch(/^BACKUP_REMOTE=redisforge:prod-redis-backups$/m);
    });
});
