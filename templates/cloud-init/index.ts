/**
 * cloud-init user-data for RedisForge VMs (Redis nodes and Envoy proxies), built as typed
 * objects and serialised with the `yaml` library.
 *
 * What a Redis node gets at first boot (and keeps across reboots):
 * - sysctl `net.core.somaxconn=65535`, `vm.overcommit_memory=1` (/etc/sysctl.d);
 * - Transparent Huge Pages `never` from a systemd unit that runs at every boot;
 * - Docker (distro package) with json-file log limits and a nofile 100000 default ulimit;
 * - the data disk formatted once (only when it has no filesystem) and mounted by UUID via fstab;
 * - secrets (TLS key/cert/CA, users.acl, masterauth include, exporter password) fetched from the
 *   cloud secret store with the VM's identity into 0400 files under /run (tmpfs) at every boot, and
 *   re-read daily (randomised over 12 h per node): a changed secret restarts the unit that uses it,
 *   so certificates that `pulumi up` re-issues before expiry reach the running processes;
 * - redis.conf rendered by Pulumi with templates/redis (it holds no secrets);
 * - Redis, redis_exporter and node_exporter containers, pulled by digest, as systemd units with
 *   restart, health waits and log limits.
 *
 * Invariant: no secret VALUE is ever a parameter. Secrets are passed as references (ARN, resource
 * name, Key Vault URI) that are checked against the cloud's reference format, and the rendered
 * text is scanned for PEM blocks and password directives before it is returned.
 *
 * Callers with Pulumi Outputs (ARNs, IPs) build user-data inside one `pulumi.all([...]).apply(...)`.
 *
 * Image assumptions: a systemd distribution with Debian package names (Ubuntu 22.04/24.04 or
 * Debian 12 images, available on all three clouds): `docker.io`, `curl` ≥ 7.75 (SigV4 for AWS),
 * `jq`, `xfsprogs` (+ `rclone`, `redis-tools` for backups); /run is a tmpfs. On AWS and Azure pass
 * the gzip form (renderCloudInitGzipBase64) (the text form exceeds their limits).
 *
 * Backups: every Redis node gets templates/backup's bundle (scripts, rclone.conf naming the stack's
 * bucket, backup.env, redisforge-backup.service/.timer), enabled after redis. The rclone remote
 * authenticates with the VM identity only; `backup` params are names and ids, never credentials.
 */
import { gzipSync } from "zlib";
import { stringify } from "yaml";
import { loadTemplate, render } from "../render";
import { renderRedisConf } from "../redis";
import { buildEnvoyConfig, ENVOY_CONFIG_PATH, ENVOY_FILES, EnvoyConfigParams, renderEnvoyYaml } from "../envoy";
import { buildBackupFiles, RcloneRemoteParams } from "../backup";
import { buildConvergeFiles, checkConvergeParams, CONVERGE_UID } from "./converge";
import { checkTimeScale, LOG_LIMITS, NOFILE, renderContainerUnit, renderHostUnit, SECRET_REFRESH_RANDOM_DELAY } from "../systemd";
import {
    assertNoSecretContent,
    CREDENTIAL_FLAG_RE,
    looksLikeSecret,
    DEVICE_RE,
    IMAGE_BY_DIGEST_RE,
    IPV4_RE,
    NAME_RE,
    Problems,
    SECRET_REF_FIX,
    SECRET_REF_RE,
    ZONE_RE,
} from "./checks";

export * from "./params";
import { CloudKind, CLOUD_KINDS, SecretRef, RedisNodeSecretRefs, EnvoySecretRefs, VmUserDataParams, RedisNodeUserDataParams, RedisNodeBackupParams, EnvoyUserDataParams, WriteFile, CloudConfig, HOST, REDIS_UID, ENVOY_UID, REDIS_CONTAINER, IMAGE_HEALTHCHECK } from "./params";

const DEFAULTS = { redisPort: 6379, busPort: 16379, redisExporterPort: 9121, nodeExporterPort: 9100 } as const;
const FLAG_RE = /^--[a-z0-9][a-z0-9._-]*(=[A-Za-z0-9._:\/,=+@^()|?*$-]*)?$/;

/** node_exporter's textfile collector dir (the backup job writes its metrics there). Same path on host and in the container. */
export const NODE_EXPORTER_TEXTFILE_DIR = "/var/lib/prometheus/node-exporter";
const PACKAGES = ["docker.io", "curl", "jq", "xfsprogs", "openssl"];

/** Checks the backup params against the node's cloud and returns the rclone remote (only after all checks pass). */
function checkBackup(cloud: CloudKind, b: RedisNodeBackupParams | undefined, pr: Problems): RcloneRemoteParams | undefined {
    if (typeof b !== "object" || b === null) {
        pr.add("backup", "is required (every Redis VM backs up to the stack's bucket)", b, "pass { bucket, region (aws) | storageAccount (azure) } from the BackupBucket record");
        return undefined;
    }
    const before = pr.list.length;
    for (const [k, v] of Object.entries(b)) {
        if (typeof v === "string" && looksLikeSecret(v)) pr.add(`backup.${k}`, "looks like a secret; the VM authenticates to the bucket with its identity only", v, "pass names and ids, never a key or token");
    }
    const only = (k: keyof RedisNodeBackupParams, on: CloudKind) => {
        if (b[k] !== undefined && cloud !== on) pr.add(`backup.${k}`, `is only used on ${on}`, b[k], `drop it for a ${cloud} node`);
    };
    only("region", "aws");
    only("storageAccount", "azure");
    only("msiClientId", "azure");
    only("endpoint", "qemu");
    if (cloud === "qemu" && b.endpoint === undefined) pr.add("backup.endpoint", "is required on qemu", b.endpoint, "pass the bucket's S3 endpoint, e.g. http://10.77.0.1:9000");
    if (cloud === "aws" && b.region === undefined) pr.add("backup.region", "is required on aws", b.region, "pass the bucket's region, e.g. us-east-1");
    if (cloud === "azure" && b.storageAccount === undefined) pr.add("backup.storageAccount", "is required on azure", b.storageAccount, "pass the storage account name of the BackupBucket");
    if (pr.list.length > before) return undefined;
    switch (cloud) {
        case "aws":
            return { cloud, region: b.region as string };
        case "gcp":
            return { cloud };
        case "azure":
            return { cloud, account: b.storageAccount as string, ...(b.msiClientId !== undefined ? { msiClientId: b.msiClientId } : {}) };
        case "qemu":
            return { cloud, endpoint: b.endpoint as string };
        default:
            return undefined;
    }
}

function checkCommon(p: VmUserDataParams, pr: Problems): void {
    if (!CLOUD_KINDS.includes(p.cloud)) pr.add("cloud", `must be one of ${CLOUD_KINDS.join(", ")}`, p.cloud, "pick the stack's cloud");
    pr.match("clusterName", p.clusterName, NAME_RE, "must be a lower-case DNS label", "use e.g. prod-redis");
    pr.match("nodeName", p.nodeName, NAME_RE, "must be a lower-case DNS label", "use e.g. prod-redis-shard0-master");
    pr.match("zone", p.zone, ZONE_RE, "must be a zone name", "use e.g. us-east-1a, europe-west1-b or 1");
    pr.match("privateIp", p.privateIp, IPV4_RE, "must be an IPv4 address", "pass the VM's static private IP");
    pr.match("nodeExporterImage", p.nodeExporterImage, IMAGE_BY_DIGEST_RE, "must be pinned by digest", "use repo/name@sha256:<64 hex>");
    if (p.nodeExporterPort !== undefined) pr.port("nodeExporterPort", p.nodeExporterPort);
    checkFlags("nodeExporterFlags", p.nodeExporterFlags, pr);
    checkTimeScale(p.timeScale, pr);
}

function checkFlags(param: string, flags: string[] | undefined, pr: Problems): void {
    (flags ?? []).forEach((f, i) => {
        pr.match(`${param}[${i}]`, f, FLAG_RE, "must be one --flag[=value] without spaces or quotes", "split or simplify the flag");
        if (typeof f === "string" && (CREDENTIAL_FLAG_RE.test(f) || looksLikeSecret(f))) {
            pr.add(`${param}[${i}]`, "must not carry a credential", f, "credentials reach exporters through files fetched from the secret store (e.g. the exporter env file)");
        }
    });
}

function checkRefs(cloud: CloudKind, refs: object | undefined, keys: readonly string[], pr: Problems): void {
    const re = SECRET_REF_RE[cloud];
    if (!re) return; // the cloud itself is already reported
    const r = (refs ?? {}) as Record<string, unknown>;
    for (const k of keys) pr.match(`secrets.${k}`, r[k], re, `must be a ${cloud} secret reference, not a value`, SECRET_REF_FIX[cloud]);
    for (const k of Object.keys(r)) if (!keys.includes(k)) pr.add(`secrets.${k}`, "is not a known secret", k, `use only ${keys.join(", ")}`);
}

const REDIS_SECRET_KEYS = ["tlsCert", "tlsKey", "tlsCa", "usersAcl", "secretsInclude", "exporterPassword", "reloadPassword"] as const;
const ENVOY_SECRET_KEYS = ["serverCert", "serverKey", "ca", "clientCert", "clientKey", "downstreamPassword", "upstreamPassword"] as const;

interface SecretFile {
    dest: string;
    uid: number;
    format: "file" | `env:${string}`;
    ref: SecretRef;
}

function secretsList(files: SecretFile[]): string {
    const header = "# <dest path> <owner uid> <format> <secret reference>: read by fetch-secrets.sh. References only, no values.\n";
    return header + files.map((f) => render("{{dest}} {{uid}} {{format}} {{ref}}\n", { ...f }, "secrets.list")).join("");
}

function bootEnv(p: VmUserDataParams, role: "redis" | "envoy", dataDiskDevice: string): string {
    return render(
        loadTemplate("systemd/boot.env.tmpl"),
        {
            cloud: p.cloud,
            clusterName: p.clusterName,
            nodeName: p.nodeName,
            role,
            dataDiskDevice,
            dataMount: role === "redis" ? HOST.dataMount : "",
            dataLabel: role === "redis" ? HOST.dataLabel : "",
            dataUid: role === "redis" ? REDIS_UID : "",
        },
        "boot.env",
    );
}

/** Facts for reload-redis-tls.sh: where the node listens and where its TLS files are (host and container). */
function tlsReloadEnv(privateIp: string, redisPort: number): string {
    return render(
        loadTemplate("systemd/tls-reload.env.tmpl"),
        {
            redisHost: privateIp,
            redisPort,
            tlsHostDir: `${HOST.redisSecretsDir}/tls`,
            tlsServerDir: `${REDIS_CONTAINER.secretsDir}/tls`,
            authFile: HOST.tlsReloadAuth,
            afterReloadUnits: "redis-exporter.service",
        },
        "tls-reload.env",
    );
}

const sysctlConf = "# RedisForge host tuning\nnet.core.somaxconn = 65535\nvm.overcommit_memory = 1\n";

/**
 * containerd as Docker's runtime only: without the Kubernetes CRI plugin (what Docker's own
 * containerd packages ship; Debian's enables it), which would otherwise start a streaming server and
 * CNI and snapshot syncers that nothing here uses. Debian ships /etc/containerd/config.toml as a
 * conffile: write_files runs before cloud-init installs the packages and cloud-init's apt keeps an
 * existing conffile (--force-confold), so containerd never starts with the default. tests/integration/templates/containerd-config.test.ts
 * starts the real containerd with it.
 */
export const CONTAINERD_CONFIG = [
    "version = 2",
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    "",
    "[plugins]",
    // Debian's own setting, kept: containerd's optional binaries under /var/lib, not /opt.
    '  [plugins."io.containerd.internal.v1.opt"]',
    '    path = "/var/lib/containerd/opt"',
    "",
].join("\n");

/**
 * Every RedisForge container runs with `--network host` (the units) or `--network none` (backup checks),
 * so Docker needs no bridge and must not touch the host: no docker0, no iptables chains of its own
 * (which would sit beside, and around, the host firewall) and no IP forwarding on a database host.
 * It also spares Docker's start the dozens of iptables calls it makes otherwise.
 */
function dockerDaemonJson(): string {
    return `${JSON.stringify(
        {
            bridge: "none",
            iptables: false,
            "ip-forward": false,
            "log-driver": "json-file",
            "log-opts": { "max-size": LOG_LIMITS.maxSize, "max-file": String(LOG_LIMITS.maxFiles) },
            "default-ulimits": { nofile: { Name: "nofile", Soft: NOFILE, Hard: NOFILE } },
        },
        null,
        2,
    )}\n`;
}

/**
 * A boot script without its comment-only and blank lines (the shebang and shellcheck directives
 * stay): AWS caps raw user-data at 16 KiB. The full, commented script is templates/scripts/<name>;
 * the embedded one is what the tests shellcheck.
 */
export function compactScript(text: string): string {
    return text
        .split("\n")
        .filter((line, i) => (i === 0 && line.startsWith("#!")) || /^\s*# shellcheck /.test(line) || !/^\s*(#.*)?$/.test(line))
        // Indentation too: our scripts have no heredoc and no multi-line string (bash's own reading of
        // each script, `declare -f`, is the same with and without it: tests/unit/templates/compact-script.test.ts).
        .map((line) => line.replace(/^[ \t]+/, ""))
        .join("\n")
        .concat("\n");
}

const script = (name: string): WriteFile => ({
    path: `${HOST.libDir}/${name}`,
    content: compactScript(loadTemplate(`scripts/${name}`)),
    owner: "root:root",
    permissions: "0755",
});

const unitFile = (name: string, content: string): WriteFile => ({
    path: `/etc/systemd/system/${name}.service`,
    content,
    owner: "root:root",
    permissions: "0644",
});

/**
 * The Redis container's `docker run` arguments (non-root, read-only root, no capabilities; config,
 * secrets and data mounted from the host paths). `hostDirs` replaces the host side of the three
 * mounts (tests run the image with the same flags from temporary directories).
 */
export function redisRunArgs(hostDirs: { conf: string; secrets: string; data: string } = { conf: HOST.redisConfDir, secrets: HOST.redisSecretsDir, data: HOST.dataMount }): string[] {
    const c = REDIS_CONTAINER;
    return [
        "--user", `${REDIS_UID}:${REDIS_UID}`, "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,size=64m", "--cap-drop", "ALL",
        "-v", `${hostDirs.conf}:${c.confDir}:ro`, "-v", `${hostDirs.secrets}:${c.secretsDir}:ro`, "-v", `${hostDirs.data}:${c.dataDir}`,
    ];
}

function nodeExporterUnit(p: VmUserDataParams): string {
    return renderContainerUnit({
        unitName: "node-exporter",
        description: `node_exporter for ${p.nodeName}`,
        image: p.nodeExporterImage,
        runArgs: [
            "--pid", "host", "--read-only", "--cap-drop", "ALL", "--user", "65534:65534", "-v", "/:/host:ro,rslave",
            "-v", `${NODE_EXPORTER_TEXTFILE_DIR}:${NODE_EXPORTER_TEXTFILE_DIR}:ro`,
        ],
        command: [
            "--path.rootfs=/host",
            ...(p.nodeExporterFlags ?? [
                `--web.listen-address=${p.privateIp}:${p.nodeExporterPort ?? DEFAULTS.nodeExporterPort}`,
                `--collector.textfile.directory=${NODE_EXPORTER_TEXTFILE_DIR}`,
            ]),
        ],
        healthTimeoutSec: 60,
        stopTimeoutSec: 10,
        timeScale: p.timeScale,
    });
}

function baseFiles(p: VmUserDataParams, role: "redis" | "envoy", dataDiskDevice: string, secrets: SecretFile[], alsoRestart: string[] = []): WriteFile[] {
    const restartUnits = [...(role === "redis" ? ["redis.service", "redis-exporter.service"] : ["envoy.service"]), ...alsoRestart].join(" ");
    // Redis loads re-issued TLS material live (CONFIG SET); Envoy restarts as before.
    const reloadHook = role === "redis" ? `${HOST.libDir}/reload-redis-tls.sh` : "";
    return [
        { path: "/etc/sysctl.d/90-redisforge.conf", content: sysctlConf, owner: "root:root", permissions: "0644" },
        { path: "/etc/docker/daemon.json", content: dockerDaemonJson(), owner: "root:root", permissions: "0644" },
        { path: "/etc/containerd/config.toml", content: CONTAINERD_CONFIG, owner: "root:root", permissions: "0644" },
        { path: HOST.bootEnv, content: bootEnv(p, role, dataDiskDevice), owner: "root:root", permissions: "0644" },
        { path: HOST.secretsList, content: secretsList(secrets), owner: "root:root", permissions: "0644" },
        script("fetch-secrets.sh"),
        script("disable-thp.sh"),
        script("wait-healthy.sh"),
        unitFile("redisforge-thp", renderHostUnit("redisforge-thp")),
        unitFile("redisforge-secrets", renderHostUnit("redisforge-secrets", { nodeName: p.nodeName }, "service", p.timeScale)),
        unitFile("redisforge-secrets-refresh", renderHostUnit("redisforge-secrets-refresh", { nodeName: p.nodeName, restartUnits, reloadHook }, "service", p.timeScale)),
        {
            path: "/etc/systemd/system/redisforge-secrets-refresh.timer",
            content: renderHostUnit("redisforge-secrets-refresh", { nodeName: p.nodeName, randomDelay: SECRET_REFRESH_RANDOM_DELAY }, "timer"),
            owner: "root:root",
            permissions: "0644",
        },
        unitFile("node-exporter", nodeExporterUnit(p)),
    ];
}

function finish(config: CloudConfig, what: string): CloudConfig {
    assertNoSecretContent(renderCloudInit(config), what);
    return config;
}

/** Builds the cloud-config for one Redis node. Throws a TemplateParamError naming every bad parameter. */
export function buildRedisNodeUserData(p: RedisNodeUserDataParams): CloudConfig {
    const pr = new Problems();
    checkCommon(p, pr);
    for (const k of ["redisPort", "busPort", "redisExporterPort"] as const) if (p[k] !== undefined) pr.port(k, p[k]);
    pr.match("dataDiskDevice", p.dataDiskDevice, DEVICE_RE, "must be a /dev path", "use e.g. /dev/nvme1n1 or /dev/disk/by-id/google-redis-data");
    pr.match("redisImage", p.redisImage, IMAGE_BY_DIGEST_RE, "must be pinned by digest", "use the pushed image's repoDigest");
    pr.match("redisExporterImage", p.redisExporterImage, IMAGE_BY_DIGEST_RE, "must be pinned by digest", "use repo/name@sha256:<64 hex>");
    checkFlags("redisExporterFlags", p.redisExporterFlags, pr);
    if (!Number.isInteger(p.maxmemoryBytes) || p.maxmemoryBytes < 64 * 1024 * 1024) {
        pr.add("maxmemoryBytes", "must be an integer of at least 64 MiB", p.maxmemoryBytes, "use maxmemoryFor(instance memory)");
    }
    if (p.redisVersion !== undefined) pr.match("redisVersion", p.redisVersion, /^\d+\.\d+(\.\d+)?$/, "must be a version", "use e.g. 8.4.0");
    checkRefs(p.cloud, p.secrets, REDIS_SECRET_KEYS, pr);
    const remote = checkBackup(p.cloud, p.backup, pr);
    if (p.converge) {
        for (const [field, rule] of checkConvergeParams(p.converge)) pr.add(field, rule, undefined, "see templates/cloud-init/converge.ts");
        pr.match("converge.passwordRef", p.converge.passwordRef, SECRET_REF_RE[p.cloud] ?? /^$/, `must be a ${p.cloud} secret reference, not a value`, SECRET_REF_FIX[p.cloud] ?? "");
    }
    const redisPort = p.redisPort ?? DEFAULTS.redisPort;
    const busPort = p.busPort ?? DEFAULTS.busPort;
    const exporterPort = p.redisExporterPort ?? DEFAULTS.redisExporterPort;
    const nodeExporterPort = p.nodeExporterPort ?? DEFAULTS.nodeExporterPort;
    const ports = { redisPort, busPort, redisExporterPort: exporterPort, nodeExporterPort };
    const seen = new Map<number, string>();
    for (const [k, v] of Object.entries(ports)) {
        if (seen.has(v)) pr.add(k, `collides with ${seen.get(v)}`, v, "give every listener its own port");
        seen.set(v, k);
    }
    const what = `buildRedisNodeUserData(${typeof p.nodeName === "string" && NAME_RE.test(p.nodeName) ? p.nodeName : "?"})`;
    pr.throwIfAny(what);
    // The backup builders validate the rest (bucket name, region, account, client id, calendar) and name the bad value.
    const backup = buildBackupFiles({
        clusterName: p.clusterName,
        nodeName: p.nodeName,
        bucket: p.backup.bucket,
        redisHost: p.privateIp,
        redisPort,
        checkAofImage: p.redisImage,
        remote: remote as RcloneRemoteParams,
        onCalendar: p.backup.onCalendar,
        randomizedDelaySec: p.backup.randomizedDelaySec,
        timeScale: p.timeScale,
    });

    const c = REDIS_CONTAINER;
    const s = HOST.redisSecretsDir;
    const redisConf = renderRedisConf({
        nodeName: p.nodeName,
        zone: p.zone,
        bindAddress: p.privateIp,
        announceIp: p.privateIp,
        port: redisPort,
        busPort,
        dataDir: c.dataDir,
        tlsCertFile: `${c.secretsDir}/tls/node.crt`,
        tlsKeyFile: `${c.secretsDir}/tls/node.key`,
        tlsCaFile: `${c.secretsDir}/tls/ca.crt`,
        aclFile: `${c.secretsDir}/users.acl`,
        secretsFile: `${c.secretsDir}/secrets.conf`,
        maxmemoryBytes: p.maxmemoryBytes,
        clusterNodeTimeoutMs: p.clusterNodeTimeoutMs,
        logFile: "",
        tcpBacklog: 4096,
        serverVersion: p.redisVersion ?? "8.4.0",
    });
    const secrets: SecretFile[] = [
        { dest: `${s}/tls/node.crt`, uid: REDIS_UID, format: "file", ref: p.secrets.tlsCert },
        { dest: `${s}/tls/node.key`, uid: REDIS_UID, format: "file", ref: p.secrets.tlsKey },
        { dest: `${s}/tls/ca.crt`, uid: REDIS_UID, format: "file", ref: p.secrets.tlsCa },
        { dest: `${s}/users.acl`, uid: REDIS_UID, format: "file", ref: p.secrets.usersAcl },
        { dest: `${s}/secrets.conf`, uid: REDIS_UID, format: "file", ref: p.secrets.secretsInclude },
        { dest: "/run/redisforge/exporter/exporter.env", uid: 0, format: "env:REDIS_PASSWORD", ref: p.secrets.exporterPassword },
        { dest: HOST.tlsReloadAuth, uid: 0, format: "env:REDISCLI_AUTH", ref: p.secrets.reloadPassword },
    ];
    const converge = p.converge ? buildConvergeFiles(p.converge, p, { cert: p.secrets.tlsCert, key: p.secrets.tlsKey, ca: p.secrets.tlsCa }, NODE_EXPORTER_TEXTFILE_DIR) : undefined;
    if (converge) secrets.push(...converge.secrets);
    const needs = ["redisforge-secrets.service", "redisforge-data-disk.service"];
    const redisUnit = renderContainerUnit({
        unitName: "redis",
        description: `Redis ${p.nodeName} (zone ${p.zone}) of ${p.clusterName}`,
        image: p.redisImage,
        requires: needs,
        runArgs: redisRunArgs(),
        healthTimeoutSec: 300, // loading a large AOF takes a while
        imageHealthCheck: IMAGE_HEALTHCHECK.redis,
        stopTimeoutSec: 120,
        timeScale: p.timeScale,
    });
    const exporterUnit = renderContainerUnit({
        unitName: "redis-exporter",
        description: `redis_exporter for ${p.nodeName}`,
        image: p.redisExporterImage,
        requires: ["redis.service"],
        runArgs: [
            "--user", `${REDIS_UID}:${REDIS_UID}`, "--read-only", "--cap-drop", "ALL",
            "--env-file", "/run/redisforge/exporter/exporter.env", "-v", `${s}/tls:${c.secretsDir}/tls:ro`,
        ],
        // Default = components/exporter-targets.ts redisExporterFlags(): the exporter ACL user has no
        // CONFIG GET (it would reveal masterauth), hence --config-command=INFO.
        command: p.redisExporterFlags ?? [
            `--redis.addr=rediss://${p.privateIp}:${redisPort}`, "--redis.user=exporter",
            `--tls-ca-cert-file=${c.secretsDir}/tls/ca.crt`, `--tls-client-cert-file=${c.secretsDir}/tls/node.crt`,
            `--tls-client-key-file=${c.secretsDir}/tls/node.key`, `--web.listen-address=${p.privateIp}:${exporterPort}`,
            "--config-command=INFO", "--redis-only-metrics", "--connection-timeout=5s",
        ],
        healthTimeoutSec: 60,
        stopTimeoutSec: 10,
        timeScale: p.timeScale,
    });
    const config: CloudConfig = {
        package_update: true,
        package_upgrade: false,
        packages: [...new Set([...PACKAGES, ...backup.packages])],
        write_files: [
            ...baseFiles(p, "redis", p.dataDiskDevice, secrets, converge ? ["redisforge-converge.service"] : []),
            script("data-disk.sh"),
            script("reload-redis-tls.sh"),
            { path: HOST.tlsReloadEnv, content: tlsReloadEnv(p.privateIp, redisPort), owner: "root:root", permissions: "0644" },
            unitFile("redisforge-data-disk", renderHostUnit("redisforge-data-disk", { dataMount: HOST.dataMount }, "service", p.timeScale)),
            { path: `${HOST.redisConfDir}/redis.conf`, content: redisConf, owner: "root:root", permissions: "0644" },
            unitFile("redis", redisUnit),
            unitFile("redis-exporter", exporterUnit),
            ...(converge ? [...converge.files, unitFile("redisforge-converge", converge.unit)] : []),
            ...backup.files,
        ],
        runcmd: [
            ["sysctl", "--system"],
            ["systemctl", "daemon-reload"],
            // With the converge agent, its group may write its metrics file into the textfile directory.
            converge ? ["install", "-d", "-m", "0775", "-g", String(CONVERGE_UID), NODE_EXPORTER_TEXTFILE_DIR] : ["install", "-d", "-m", "0755", NODE_EXPORTER_TEXTFILE_DIR],
            startUnits(["redisforge-thp.service", "docker.service", "redisforge-data-disk.service", "redisforge-secrets.service", "redisforge-secrets-refresh.timer", "redis.service", "redis-exporter.service", "node-exporter.service", ...(converge ? ["redisforge-converge.service"] : [])]),
            ...backup.runcmd,
        ],
    };
    return finish(config, `user-data of ${p.nodeName}`);
}

/**
 * One `systemctl enable --now` for every unit of the boot: a single systemd transaction starts them in
 * the order the units declare (THP before Docker; secrets and the data disk before Redis; Redis before
 * its exporter) and in parallel where nothing orders them, with one unit-file reload. One `enable` per
 * unit serialised them and reloaded systemd each time (minutes under emulation: VM stack, fifth run).
 * Tried and reverted (VM stack, tenth run): the exporters in a second, `--no-block` call after the
 * serving units. cloud-init ended ~150 s sooner, but the exporters' pulls and starts then ran during the
 * cluster's formation, which took 261 s instead of 17 s: `pulumi up` was slower overall (1 574 s vs 1 473 s).
 */
function startUnits(units: string[]): string[] {
    return ["systemctl", "enable", "--now", ...units];
}

/** Builds the cloud-config for one Envoy VM. Throws a TemplateParamError naming every bad parameter. */
export function buildEnvoyUserData(p: EnvoyUserDataParams): CloudConfig {
    const pr = new Problems();
    checkCommon(p, pr);
    pr.match("envoyImage", p.envoyImage, IMAGE_BY_DIGEST_RE, "must be pinned by digest", "use the pushed image's repoDigest");
    checkRefs(p.cloud, p.secrets, ENVOY_SECRET_KEYS, pr);
    if (typeof p.envoy !== "object" || p.envoy === null) pr.add("envoy", "is required", p.envoy, "pass the seeds and ports");
    pr.throwIfAny(`buildEnvoyUserData(${typeof p.nodeName === "string" && NAME_RE.test(p.nodeName) ? p.nodeName : "?"})`);

    const envoyYaml = renderEnvoyYaml(buildEnvoyConfig({ ...p.envoy, clusterName: p.clusterName, privateIp: p.privateIp }));
    const s = HOST.envoySecretsDir;
    const f = ENVOY_FILES;
    const inContainer = (hostPath: string) => hostPath.replace(s, "/run/secrets/envoy");
    const secrets: SecretFile[] = [
        { dest: `${s}/tls/server.crt`, uid: ENVOY_UID, format: "file", ref: p.secrets.serverCert },
        { dest: `${s}/tls/server.key`, uid: ENVOY_UID, format: "file", ref: p.secrets.serverKey },
        { dest: `${s}/tls/ca.crt`, uid: ENVOY_UID, format: "file", ref: p.secrets.ca },
        { dest: `${s}/tls/client.crt`, uid: ENVOY_UID, format: "file", ref: p.secrets.clientCert },
        { dest: `${s}/tls/client.key`, uid: ENVOY_UID, format: "file", ref: p.secrets.clientKey },
        { dest: `${s}/downstream.password`, uid: ENVOY_UID, format: "file", ref: p.secrets.downstreamPassword },
        { dest: `${s}/upstream.password`, uid: ENVOY_UID, format: "file", ref: p.secrets.upstreamPassword },
    ];
    // The container paths the config names are exactly where the boot script puts the files.
    const expected = [f.serverCertFile, f.serverKeyFile, f.caFile, f.clientCertFile, f.clientKeyFile, f.downstreamPasswordFile, f.upstreamPasswordFile];
    if (secrets.map((x) => inContainer(x.dest)).join() !== expected.join()) throw new Error("envoy secret layout drifted from ENVOY_FILES");

    const envoyUnit = renderContainerUnit({
        unitName: "envoy",
        description: `Envoy redis_proxy ${p.nodeName} (zone ${p.zone}) of ${p.clusterName}`,
        image: p.envoyImage,
        requires: ["redisforge-secrets.service"],
        runArgs: [
            "--user", `${ENVOY_UID}:${ENVOY_UID}`, "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,size=16m", "--cap-drop", "ALL",
            "-v", `${HOST.envoyConfDir}:/etc/envoy:ro`, "-v", `${s}:/run/secrets/envoy:ro`,
            // The image's health check asks the admin interface, which listens on the private IP only.
            "--env", `ENVOY_ADMIN=${p.privateIp}:${p.envoy.adminPort ?? 9901}`,
        ],
        healthTimeoutSec: 120,
        imageHealthCheck: IMAGE_HEALTHCHECK.envoy,
        stopTimeoutSec: 30,
        timeScale: p.timeScale,
    });
    const config: CloudConfig = {
        package_update: true,
        package_upgrade: false,
        packages: PACKAGES.filter((x) => x !== "xfsprogs"),
        write_files: [
            ...baseFiles(p, "envoy", "", secrets),
            { path: `${HOST.envoyConfDir}/${ENVOY_CONFIG_PATH.split("/").pop()}`, content: envoyYaml, owner: "root:root", permissions: "0644" },
            unitFile("envoy", envoyUnit),
        ],
        runcmd: [
            ["sysctl", "--system"],
            ["systemctl", "daemon-reload"],
            ["install", "-d", "-m", "0755", NODE_EXPORTER_TEXTFILE_DIR],
            startUnits(["redisforge-thp.service", "docker.service", "redisforge-secrets.service", "redisforge-secrets-refresh.timer", "envoy.service", "node-exporter.service"]),
        ],
    };
    return finish(config, `user-data of ${p.nodeName}`);
}

/** `#cloud-config` + YAML (the `yaml` library). The result is what goes into the VM's user-data. */
export function renderCloudInit(config: CloudConfig): string {
    // YAML 1.1 quoting: cloud-init parses with PyYAML (YAML 1.1), where plain yes/no/on/off are booleans.
    return `#cloud-config\n${stringify(config, { lineWidth: 0, version: "1.1" })}`;
}

/**
 * The same user-data gzip-compressed and base64-encoded (cloud-init detects gzip by its magic bytes).
 * A Redis node's text form is ~52 KiB (the backup scripts are embedded), above AWS's 16 KiB raw
 * user-data limit and, once base64-encoded, Azure's 64 KiB customData limit, so on AWS
 * (`userDataBase64`) and Azure (`customData`) pass THIS (≈ 14 KiB of gzip; worst case tested
 * < 16 KiB); GCP's `user-data` metadata takes the text (256 KiB limit).
 * Deterministic (gzip mtime 0), so the same inputs never cause a diff.
 */
export function renderCloudInitGzipBase64(config: CloudConfig): string {
    return gzipSync(Buffer.from(renderCloudInit(config), "utf8"), { level: 9 }).toString("base64");
}
