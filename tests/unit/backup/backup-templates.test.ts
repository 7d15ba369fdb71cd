/**
 * The backup templates checked by the real tools: shellcheck on both scripts, rclone 1.60 parses
 * every rendered remote and knows every option in it, systemd-analyze verifies the service and
 * the timer (and the calendar expression), cloud-init schema accepts the write_files bundle, and
 * the scripts refuse bad configuration before touching anything. No credential can be rendered.
 */
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { stringify } from "yaml";
import {
    BACKUP_PATHS,
    buildBackupFiles,
    buildRcloneConfig,
    CREDENTIAL_KEYS,
    RCLONE_REMOTE_NAME,
    RcloneRemoteParams,
    renderBackupEnv,
    renderBackupService,
    renderBackupTimer,
    toIni,
} from "../../../templates/backup";
import { assertNoSecretContent } from "../../../templates/cloud-init/checks";
import { cloudInitSchema, run, shellcheck, tmpDir, writeTmp } from "../templates/tools";

const dir = tmpDir("backup-unit");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const SCRIPTS = ["redisforge-backup.sh", "redisforge-restore.sh"].map((f) => path.resolve(__dirname, "../../../templates/backup", f));

const REMOTES: Record<string, RcloneRemoteParams> = {
    aws: { cloud: "aws", region: "eu-west-1" },
    "aws-kms": { cloud: "aws", region: "us-east-1", serverSideEncryption: "aws:kms", kmsKeyArn: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" },
    gcp: { cloud: "gcp" },
    azure: { cloud: "azure", account: "prodredisbackups" },
    "azure-uami": { cloud: "azure", account: "prodredisbackups", msiClientId: "0a1b2c3d-4e5f-6789-abcd-ef0123456789" },
    qemu: { cloud: "qemu", endpoint: "http://10.210.8.3:9000" },
};

const ENV = { clusterName: "prod-redis", nodeName: "prod-redis-shard0-master", bucket: "prod-redis-backups", redisHost: "10.0.1.10" };

describe("shellcheck", () => {
    it("passes on both scripts", () => {
        const r = shellcheck(SCRIPTS);
        expect(r.out).toBe("");
        expect(r.code).toBe(0);
    });

    it("can fail: an unquoted expansion in a copy of the backup script is reported", () => {
        const src = fs.readFileSync(SCRIPTS[0], "utf8").replace('mkdir -p "$STAGING_DIR"', "mkdir -p $STAGING_DIR");
        const r = shellcheck([writeTmp(dir, "mutated-backup.sh", src)]);
        expect(r.out).toMatch(/SC2086/);
        expect(r.code).not.toBe(0);
    });
});

describe("write, never delete", () => {
    /** The rclone subcommands a script calls (first word after `rclone` and its flag array). */
    const subcommands = (text: string) => [...text.matchAll(/(?:^|\$\(|&&|\|\||;|\bthen|\bif|!)\s*rclone\s+([a-z]+)/gm)].map((m) => m[1]);

    it.each(SCRIPTS.map((s) => [path.basename(s), s]))("%s calls only copying, checking and listing rclone commands", (_name, file) => {
        const text = fs.readFileSync(file, "utf8").split("\n").filter((l) => !/^\s*#/.test(l)).join("\n");
        const used = new Set(subcommands(text));
        expect(used.size).toBeGreaterThan(0);
        expect([...used].filter((c) => !["copy", "copyto", "check", "lsf"].includes(c))).toEqual([]);
        expect(text).not.toMatch(/--(delete|backup-dir|move)|\brclone\b[^\n]*\b(sync|move|moveto|delete|deletefile|purge|rmdir|rmdirs|cleanup)\b/);
    });

    it("the check can fail: a sync in a copy of the script is reported", () => {
        const text = fs.readFileSync(SCRIPTS[0], "utf8").replace('rclone copy "${rclone_flags[@]}"', 'rclone sync "${rclone_flags[@]}"');
        expect(subcommands(text)).toContain("sync");
    });
});

/** Option names of an rclone backend as rclone 1.60 itself lists them. */
function backendOptions(type: string): Set<string> {
    const r = run("rclone", ["help", "backend", type]);
    expect(r.code).toBe(0);
    return new Set([...r.out.matchAll(/^- Config:\s+(\S+)$/gm)].map((m) => m[1]));
}

describe("rclone.conf per cloud", () => {
    it.each(Object.entries(REMOTES))("%s: rclone parses it, knows every option, no credential in it", (name, params) => {
        const text = buildRcloneConfig(params);
        const file = writeTmp(dir, `${name}.rclone.conf`, text);
        const r = run("rclone", ["config", "dump", "--config", file]);
        expect(r.code).toBe(0);
        const dump = JSON.parse(r.out) as Record<string, Record<string, string>>;
        expect(Object.keys(dump)).toEqual([RCLONE_REMOTE_NAME]);
        const remote = dump[RCLONE_REMOTE_NAME];
        const known = backendOptions(remote.type);
        expect(known.size).toBeGreaterThan(5);
        expect(Object.keys(remote).filter((k) => k !== "type" && !known.has(k))).toEqual([]);
        expect(Object.keys(remote).filter((k) => CREDENTIAL_KEYS.includes(k))).toEqual([]);
        expect(() => assertNoSecretContent(text, name)).not.toThrow();
        // identity: what authenticates each cloud
        if (params.cloud === "aws") expect(remote).toMatchObject({ type: "s3", provider: "AWS", env_auth: "true", no_check_bucket: "true" });
        if (params.cloud === "gcp") expect(remote).toMatchObject({ type: "google cloud storage", bucket_policy_only: "true", no_check_bucket: "true" });
        if (params.cloud === "azure") expect(remote).toMatchObject({ type: "azureblob", account: "prodredisbackups", use_msi: "true" });
        // qemu: the metadata service's instance-role keys, the server by IP (bucket in the path)
        if (params.cloud === "qemu") expect(remote).toMatchObject({ type: "s3", provider: "Other", env_auth: "true", endpoint: "http://10.210.8.3:9000", force_path_style: "true", no_check_bucket: "true" });
    });

    it("rclone would reject an option the backend does not have (the check above can fail)", () => {
        const known = backendOptions("azureblob");
        expect(known.has("use_msi")).toBe(true);
        expect(known.has("env_auth")).toBe(false); // azureblob env_auth arrived after 1.60
        expect(backendOptions("google cloud storage").has("env_auth")).toBe(false); // hence ADC for GCS
    });

    it("refuses credential options, multi-line values and bad cloud parameters, naming each", () => {
        expect(() => toIni({ r: [["type", "s3"], ["secret_access_key", "x"]] })).toThrow(/r\.secret_access_key: is a credential option/);
        expect(() => toIni({ r: [["type", "azureblob"], ["key", "abc"]] })).toThrow(/r\.key: is a credential option/);
        expect(() => toIni({ r: [["type", "azureblob"], ["sas_url", "https://x"]] })).toThrow(/sas_url/);
        expect(() => toIni({ r: [["account", "a\n[evil]"]] })).toThrow(/must be one line/);
        expect(() => toIni({ r: [["Bad-Key", "a"]] })).toThrow(/must be an rclone option name/);
        expect(() => buildRcloneConfig({ cloud: "aws", region: "Europe" })).toThrow(/region: must be an AWS region; got "Europe"/);
        expect(() => buildRcloneConfig({ cloud: "aws", region: "us-east-1", serverSideEncryption: "aws:kms" })).toThrow(/kmsKeyArn: must be a KMS key ARN/);
        expect(() => buildRcloneConfig({ cloud: "azure", account: "Has_Upper" })).toThrow(/account: must be a storage account name/);
        expect(() => buildRcloneConfig({ cloud: "azure", account: "ok123", msiClientId: "nope" })).toThrow(/msiClientId: must be a client id/);
        expect(() => buildRcloneConfig({ cloud: "oracle" } as unknown as RcloneRemoteParams)).toThrow(/cloud: must be aws, gcp, azure or qemu/);
    });
});

describe("systemd units", () => {
    function scratchRoot(name: string, service: string, timer: string): { root: string; units: string[] } {
        const root = path.join(dir, name);
        fs.mkdirSync(path.join(root, "usr/lib/systemd"), { recursive: true });
        fs.cpSync("/usr/lib/systemd/system", path.join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
        const files = buildBackupFiles({ ...ENV, remote: REMOTES.aws }).files;
        for (const f of files) writeTmp(root, f.path, f.content);
        fs.chmodSync(path.join(root, BACKUP_PATHS.script), 0o755);
        // stand-in for the redis container unit the backup orders itself after
        writeTmp(root, "/etc/systemd/system/redis.service", "[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/true\n");
        const units = [writeTmp(root, BACKUP_PATHS.service, service), writeTmp(root, BACKUP_PATHS.timer, timer)];
        return { root, units };
    }

    it("service and timer pass systemd-analyze verify", () => {
        const { root, units } = scratchRoot("ok", renderBackupService(ENV), renderBackupTimer(ENV));
        const r = run("systemd-analyze", ["verify", `--root=${root}`, ...units]);
        expect(r.out).toBe("");
        expect(r.code).toBe(0);
    });

    it("the default calendar is every 15 minutes (systemd-analyze calendar) with a random delay", () => {
        const timer = renderBackupTimer(ENV);
        const cal = /^OnCalendar=(.+)$/m.exec(timer)![1];
        const r = run("systemd-analyze", ["calendar", "--iterations=3", cal]);
        expect(r.code).toBe(0);
        expect(r.out).toMatch(/Normalized form: \*-\*-\* \*:00\/15:00/);
        expect(timer).toMatch(/^RandomizedDelaySec=300$/m);
        expect(timer).toMatch(/^Persistent=yes$/m);
    });

    it("the verification can fail: a bad directive and a missing script are reported", () => {
        const service = renderBackupService(ENV).replace("Type=oneshot", "Type=sometimes");
        const { root, units } = scratchRoot("bad", service, renderBackupTimer(ENV));
        fs.rmSync(path.join(root, BACKUP_PATHS.script));
        const r = run("systemd-analyze", ["verify", `--root=${root}`, ...units]);
        expect(r.out).toMatch(/Failed to parse service type/);
        expect(r.out).toMatch(/redisforge-backup\.sh.*(No such file|is not executable)/);
    });

    it("renderers name bad parameters", () => {
        expect(() => renderBackupTimer({ ...ENV, onCalendar: "every\nday" })).toThrow(/onCalendar: must be a systemd calendar expression/);
        expect(() => renderBackupTimer({ ...ENV, randomizedDelaySec: -1 })).toThrow(/randomizedDelaySec/);
        expect(() => renderBackupService({ ...ENV, bucket: "Bad Bucket" })).toThrow(/bucket: must be a bucket/);
        expect(() => renderBackupEnv({ ...ENV, redisHost: "redis.example" })).toThrow(/redisHost: must be an IPv4 address/);
        expect(() => renderBackupEnv({ ...ENV, checkAofImage: "redis:8.4" })).toThrow(/checkAofImage: must be pinned by digest/);
        expect(() => renderBackupEnv({ ...ENV, timeScale: 0 })).toThrow(/timeScale: must be an integer/);
    });
});

describe("backup.env and the cloud-init bundle", () => {
    it("backup.env is shell-sourceable, names the remote and holds no secret", () => {
        const text = renderBackupEnv(ENV);
        expect(() => assertNoSecretContent(text, "backup.env")).not.toThrow();
        const file = writeTmp(dir, "backup.env", text);
        const r = run("bash", ["-c", `set -a; . "${file}"; echo "$BACKUP_REMOTE|$REDISFORGE_NODE|$REDIS_PASSWORD_FILE|$TEXTFILE_DIR|$REDIS_USER"`]);
        expect(r.code).toBe(0);
        expect(r.out.trim()).toBe(`${RCLONE_REMOTE_NAME}:prod-redis-backups|prod-redis-shard0-master|/run/redisforge/exporter/exporter.env|/var/lib/prometheus/node-exporter|exporter`);
    });

    it("the redis-cli bound is 10 s on a cloud and scales with the adapter's timeScale (x12 under emulation: 120 s)", () => {
        const bound = (timeScale?: number) => {
            const file = writeTmp(dir, "backup-scaled.env", renderBackupEnv({ ...ENV, timeScale }));
            return run("bash", ["-c", `set -a; . "${file}"; echo "$REDIS_CLI_TIMEOUT_SEC"`]).out.trim();
        };
        expect([bound(), bound(1), bound(12)]).toEqual(["10", "10", "120"]);
    });

    it.each(Object.entries(REMOTES))("%s: write_files + packages + runcmd pass cloud-init schema", (name, remote) => {
        const b = buildBackupFiles({ ...ENV, remote });
        expect(b.files.map((f) => f.path)).toEqual(Object.values(BACKUP_PATHS));
        expect(b.packages).toEqual(expect.arrayContaining(["rclone", "redis-tools"]));
        const doc = `#cloud-config\n${stringify({ packages: b.packages, write_files: b.files, runcmd: b.runcmd })}`;
        const r = cloudInitSchema(writeTmp(dir, `${name}-user-data.yaml`, doc));
        expect(r.out).toMatch(/Valid cloud-config/);
        expect(r.code).toBe(0);
        for (const f of b.files) expect(() => assertNoSecretContent(f.content, f.path)).not.toThrow();
    });
});

describe("the scripts refuse bad configuration before doing anything", () => {
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir };

    it("backup lists every configuration problem at once (exit 2)", () => {
        const r = run(SCRIPTS[0], [], { env: { ...env, RCLONE_CONFIG: path.join(dir, "missing.conf"), REDIS_DATA_DIR: path.join(dir, "nope"), TEXTFILE_DIR: path.join(dir, "nope") } });
        expect(r.code).toBe(2);
        for (const re of [/REDISFORGE_CLUSTER=''/, /REDISFORGE_NODE=''/, /BACKUP_REMOTE=''/, /RCLONE_CONFIG='.*missing\.conf' does not exist/, /REDIS_DATA_DIR='.*nope' is not a directory/, /TEXTFILE_DIR='.*nope' is not a directory/]) {
            expect(r.out).toMatch(re);
        }
    });

    it("backup refuses a REDIS_CLI_TIMEOUT_SEC that is not a positive number of seconds", () => {
        for (const bad of ["0", "10s", "-1"]) {
            const r = run(SCRIPTS[0], [], { env: { ...env, REDIS_CLI_TIMEOUT_SEC: bad } });
            expect(r.code).toBe(2);
            expect([bad, r.out]).toEqual([bad, expect.stringContaining("REWRITE_WAIT_SEC, SNAPSHOT_ATTEMPTS and REDIS_CLI_TIMEOUT_SEC must be positive integers")]);
        }
    });

    it("backup bounds each redis-cli call by REDIS_CLI_TIMEOUT_SEC: a server that accepts and never answers fails the run naming the bound", async () => {
        // A listener that never replies (the kernel completes the handshake; nobody reads).
        const held: net.Socket[] = [];
        const server = net.createServer((sock) => held.push(sock));
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        try {
            const port = (server.address() as net.AddressInfo).port;
            fs.mkdirSync(path.join(dir, "bound-data"), { recursive: true });
            fs.mkdirSync(path.join(dir, "bound-textfile"), { recursive: true });
            const conf = writeTmp(dir, "bound-rclone.conf", "[redisforge]\ntype = local\n");
            const pw = writeTmp(dir, "bound-password", "REDIS_PASSWORD=not-a-real-one\n");
            const started = Date.now();
            const r = run(SCRIPTS[0], [], {
                env: { ...env, REDISFORGE_CLUSTER: "c1", REDISFORGE_NODE: "n1", BACKUP_REMOTE: "redisforge:bucket", RCLONE_CONFIG: conf, REDIS_DATA_DIR: path.join(dir, "bound-data"), TEXTFILE_DIR: path.join(dir, "bound-textfile"), REDIS_HOST: "127.0.0.1", REDIS_PORT: String(port), REDIS_PASSWORD_FILE: pw, REDIS_CLI_TIMEOUT_SEC: "2" },
            });
            const secs = (Date.now() - started) / 1000;
            expect(r.code).toBe(1);
            expect(r.out).toMatch(new RegExp(`redis at 127\\.0\\.0\\.1:${port} did not answer INFO \\w+ as user exporter within 2s: no output`));
            // One call, bounded by the 2 s asked for, not the 10 s default.
            expect(secs).toBeLessThan(9);
        } finally {
            for (const sock of held) sock.destroy();
            server.close();
        }
    });

    it("restore refuses bad arguments (exit 2) and an unknown flag", () => {
        const r = run(SCRIPTS[1], ["--cluster", "Prod", "--node", "n1", "--timestamp", "yesterday", "--owner", "redis"], { env: { ...env, RCLONE_CONFIG: path.join(dir, "missing.conf") } });
        expect(r.code).toBe(2);
        for (const re of [/--cluster 'Prod' must be a lower-case DNS label/, /--timestamp 'yesterday' must be 'latest' or a UTC timestamp/, /BACKUP_REMOTE='' must be/, /--owner 'redis' must be <uid>:<gid>/]) {
            expect(r.out).toMatch(re);
        }
        const u = run(SCRIPTS[1], ["--bogus"], { env });
        expect(u.code).toBe(2);
        expect(u.out).toMatch(/unknown argument --bogus/);
    });
});

test("the scripts the VMs get differ from templates/backup only by the comment lines after `set -euo pipefail` (the --help header stays)", () => {
    for (const src of SCRIPTS) {
        const full = fs.readFileSync(src, "utf8").split("\n");
        const shipped = buildBackupFiles({ ...ENV, remote: Object.values(REMOTES)[0] }).files.find((f) => f.path.endsWith(path.basename(src)))!.content.split("\n");
        const start = full.findIndex((l) => l.startsWith("set -euo pipefail"));
        expect(shipped.slice(0, start + 1)).toEqual(full.slice(0, start + 1));
        expect(shipped).toEqual(full.filter((l, i) => i <= start || /^\s*# shellcheck /.test(l) || !/^\s*#/.test(l)));
        expect(shipped.length).toBeLessThan(full.length);
    }
});
