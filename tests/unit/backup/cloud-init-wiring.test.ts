/**
 * The backup bundle as buildRedisNodeUserData wires it into every Redis node's user-data: the
 * user-data is valid for `cloud-init schema`, every unit (redis + backup) passes
 * `systemd-analyze verify` together, the bundle is there exactly once with the timer enabled after
 * redis, and the paths backup.env reads by default are exactly where the user-data puts them: the
 * exporter env file and TLS files come from secrets.list, the data mount and the textfile dir from
 * the host layout.
 */
import * as fs from "fs";
import * as path from "path";
import { BACKUP_PACKAGES, BACKUP_PATHS, buildBackupFiles } from "../../../templates/backup";
import { buildRedisNodeUserData, CLOUD_KINDS, CloudConfig, CloudKind, HOST, NODE_EXPORTER_TEXTFILE_DIR, renderCloudInit } from "../../../templates/cloud-init";
import { BACKUP, IMAGES, redisNodeParams } from "../templates/fixtures";
import { cloudInitSchema, run, tmpDir, writeTmp } from "../templates/tools";

const dir = tmpDir("backup-wiring");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const REMOTE = {
    aws: { cloud: "aws", region: BACKUP.aws.region! },
    gcp: { cloud: "gcp" },
    azure: { cloud: "azure", account: BACKUP.azure.storageAccount!, msiClientId: BACKUP.azure.msiClientId },
    qemu: { cloud: "qemu", endpoint: BACKUP.qemu.endpoint! },
} as const;

function wired(cloud: CloudKind): CloudConfig {
    return buildRedisNodeUserData(redisNodeParams(cloud));
}

describe.each(CLOUD_KINDS)("%s", (cloud) => {
    const config = wired(cloud);

    it("holds the backup bundle exactly once, as the backup builder renders it, enabled after redis", () => {
        const p = redisNodeParams(cloud);
        const expected = buildBackupFiles({
            clusterName: p.clusterName, nodeName: p.nodeName, bucket: BACKUP[cloud].bucket, redisHost: p.privateIp,
            redisPort: p.redisPort ?? 6379, checkAofImage: IMAGES.redis, remote: REMOTE[cloud],
        });
        for (const f of expected.files) {
            const got = config.write_files.filter((w) => w.path === f.path);
            expect(got).toEqual([f]);
        }
        for (const k of Object.values(BACKUP_PATHS)) expect(config.write_files.filter((w) => w.path === k)).toHaveLength(1);
        expect(config.packages).toEqual(expect.arrayContaining([...BACKUP_PACKAGES]));
        expect(new Set(config.packages).size).toBe(config.packages.length);
        const cmds = config.runcmd.map((c) => c.join(" "));
        const timer = cmds.indexOf("systemctl enable --now redisforge-backup.timer");
        expect(timer).toBeGreaterThan(cmds.findIndex((c) => c.includes("redis.service")));
        expect(cmds.filter((c) => c.includes("redisforge-backup"))).toHaveLength(1);
    });

    it("the merged user-data passes cloud-init schema", () => {
        const r = cloudInitSchema(writeTmp(dir, `${cloud}.yaml`, renderCloudInit(config)));
        expect(r.out).toMatch(/Valid cloud-config/);
        expect(r.code).toBe(0);
    });

    it("redis and backup units pass systemd-analyze verify together", () => {
        const root = path.join(dir, `root-${cloud}`);
        fs.mkdirSync(path.join(root, "usr/lib/systemd"), { recursive: true });
        fs.cpSync("/usr/lib/systemd/system", path.join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
        for (const w of config.write_files) {
            const f = writeTmp(root, w.path, w.content);
            fs.chmodSync(f, parseInt(w.permissions ?? "0644", 8));
        }
        for (const b of ["docker", "dockerd"]) writeTmp(root, `/usr/bin/${b}`, "#!/bin/sh\nexit 0\n");
        for (const b of ["docker", "dockerd"]) fs.chmodSync(path.join(root, "usr/bin", b), 0o755);
        writeTmp(root, "/etc/systemd/system/docker.service", "[Unit]\nDescription=stand-in for the docker.io package unit\n[Service]\nExecStart=/usr/bin/dockerd\n");
        const units = config.write_files.filter((w) => w.path.startsWith("/etc/systemd/system/")).map((w) => path.join(root, w.path));
        expect(units.map((u) => path.basename(u))).toEqual(expect.arrayContaining(["redis.service", "redisforge-backup.service", "redisforge-backup.timer"]));
        const r = run("systemd-analyze", ["verify", `--root=${root}`, ...units]);
        expect(r.out).toBe("");
        expect(r.code).toBe(0);
    });

    it("backup.env's default paths are where the user-data puts things", () => {
        const env = Object.fromEntries(
            config.write_files
                .find((w) => w.path === "/etc/redisforge/backup.env")!
                .content.split("\n")
                .filter((l) => /^[A-Z_]+=/.test(l))
                .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
        );
        const secrets = config.write_files.find((w) => w.path === HOST.secretsList)!.content;
        const dests = secrets.split("\n").filter((l) => l.startsWith("/")).map((l) => l.split(" "));
        expect(dests).toContainEqual(expect.arrayContaining([env.REDIS_PASSWORD_FILE, "env:REDIS_PASSWORD"]));
        for (const k of ["REDIS_TLS_CA", "REDIS_TLS_CERT", "REDIS_TLS_KEY"]) expect(dests.map((d) => d[0])).toContain(env[k]);
        expect(env.REDIS_DATA_DIR).toBe(HOST.dataMount);
        expect(env.TEXTFILE_DIR).toBe(NODE_EXPORTER_TEXTFILE_DIR);
        expect(env.REDIS_HOST).toBe(redisNodeParams(cloud).privateIp);
        expect(env.REDIS_PORT).toBe(String(redisNodeParams(cloud).redisPort ?? 6379));
        // the redis.conf the user-data ships uses the AOF names the backup copies
        const conf = config.write_files.find((w) => w.path === `${HOST.redisConfDir}/redis.conf`)!.content;
        expect(conf).toMatch(new RegExp(`^appenddirname "${env.REDIS_AOF_DIRNAME}"$`, "m"));
        expect(conf).toMatch(new RegExp(`^appendfilename "${env.REDIS_AOF_FILENAME}"$`, "m"));
        expect(conf).toMatch(/^cluster-config-file \/data\/nodes\.conf$/m);
    });
});
