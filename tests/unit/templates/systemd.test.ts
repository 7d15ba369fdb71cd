/**
 * The systemd units in every rendered user-data pass the real `systemd-analyze verify`, run
 * against a scratch root that holds exactly the files the user-data writes (plus stand-ins for
 * the docker binary and docker.service, which the distro package provides on the VM).
 */
import * as fs from "fs";
import * as path from "path";
import { buildEnvoyUserData, buildRedisNodeUserData, CLOUD_KINDS, CloudConfig } from "../../../templates/cloud-init";
import { renderContainerUnit } from "../../../templates/systemd";
import { nodeExporterFlags } from "../../../components/exporter-targets";
import { envoyParams, IMAGES, redisNodeParams } from "./fixtures";
import { run, systemdScratchRoot, tmpDir } from "./tools";

const dir = tmpDir("systemd");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function scratchRoot(name: string, config: CloudConfig): { root: string; units: string[] } {
    return systemdScratchRoot(path.join(dir, name), config.write_files);
}

function verify(root: string, units: string[]) {
    return run("systemd-analyze", ["verify", `--root=${root}`, ...units]);
}

describe.each(CLOUD_KINDS)("%s", (cloud) => {
    it.each([
        ["redis", () => buildRedisNodeUserData(redisNodeParams(cloud)), 10], // + redisforge-backup.service/.timer
        ["envoy", () => buildEnvoyUserData(envoyParams(cloud)), 6],
    ] as const)("%s node units pass systemd-analyze verify", (role, build, count) => {
        const { root, units } = scratchRoot(`${cloud}-${role}`, build());
        expect(units.length).toBe(count);
        const r = verify(root, units);
        expect(r.out).toBe("");
        expect(r.code).toBe(0);
    });
});

it("units carrying the monitoring contract's exporter flags (regex with $, |, ^) pass systemd-analyze verify", () => {
    const { root, units } = scratchRoot(
        "exporter-flags",
        buildRedisNodeUserData({ ...redisNodeParams("gcp"), nodeExporterFlags: nodeExporterFlags({ listenAddress: "10.0.1.10:9100" }) }),
    );
    const ne = fs.readFileSync(units.find((u) => u.endsWith("node-exporter.service"))!, "utf8");
    expect(ne).toContain("tmpfs)$$");
    const r = verify(root, units);
    expect(r.out).toBe("");
    expect(r.code).toBe(0);
});

it("the daily secret refresh: timer spread over 12 h, restarts only the units that use the secrets", () => {
    for (const [c, units] of [[buildRedisNodeUserData(redisNodeParams("aws")), "redis.service redis-exporter.service"], [buildEnvoyUserData(envoyParams("aws")), "envoy.service"]] as const) {
        const timer = c.write_files.find((w) => w.path === "/etc/systemd/system/redisforge-secrets-refresh.timer")!.content;
        expect(timer).toMatch(/^OnCalendar=daily$/m);
        expect(timer).toMatch(/^RandomizedDelaySec=12h$/m);
        expect(timer).toMatch(/^Persistent=true$/m);
        const svc = c.write_files.find((w) => w.path === "/etc/systemd/system/redisforge-secrets-refresh.service")!.content;
        expect(svc).toContain(`Environment="RESTART_UNITS=${units}"`);
        expect(c.runcmd.some((cmd) => cmd.slice(0, 3).join(" ") === "systemctl enable --now" && cmd.includes("redisforge-secrets-refresh.timer"))).toBe(true);
    }
});

describe("timeScale (a slower substrate: the qemu adapter's software emulation)", () => {
    const unit = (c: CloudConfig, name: string) => c.write_files.find((w) => w.path === `/etc/systemd/system/${name}`)!.content;
    const directive = (text: string, key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => m[1]);

    it("multiplies every start timeout and health wait, and overrides only the health checks the images have", () => {
        const plain = buildRedisNodeUserData(redisNodeParams("qemu"));
        const slow = buildRedisNodeUserData({ ...redisNodeParams("qemu"), timeScale: 12 });
        for (const name of ["redis.service", "redis-exporter.service", "node-exporter.service", "redisforge-data-disk.service", "redisforge-secrets.service", "redisforge-secrets-refresh.service"]) {
            const [before] = directive(unit(plain, name), "TimeoutStartSec").map(Number);
            expect([name, directive(unit(slow, name), "TimeoutStartSec").map(Number)]).toEqual([name, [before * 12]]);
        }
        expect(unit(plain, "redis.service")).toMatch(/wait-healthy\.sh redis 300$/m);
        expect(unit(slow, "redis.service")).toMatch(/wait-healthy\.sh redis 3600$/m);
        expect(unit(plain, "redis.service")).not.toContain("--health-");
        // The Redis image's 5 s probe timeout x12; its 10 s pause x12 capped at 30 s (the first probe
        // runs one pause after start); exporters have no image health check to override.
        expect(unit(slow, "redis.service")).toContain(" --health-timeout=60s --health-interval=30s ");
        expect(unit(buildRedisNodeUserData({ ...redisNodeParams("qemu"), timeScale: 2 }), "redis.service")).toContain(" --health-timeout=10s --health-interval=20s ");
        // wait-healthy.sh's pause between two Engine API requests: 2 s on a cloud, x12 capped at 15 s
        expect(directive(unit(plain, "redis.service"), "Environment")).toEqual(["POLL_SECONDS=2"]);
        expect(directive(unit(slow, "redis.service"), "Environment")).toEqual(["POLL_SECONDS=15"]);
        expect(directive(unit(buildRedisNodeUserData({ ...redisNodeParams("qemu"), timeScale: 3 }), "redis.service"), "Environment")).toEqual(["POLL_SECONDS=6"]);
        expect(unit(slow, "redis-exporter.service")).not.toContain("--health-");
        expect(unit(slow, "node-exporter.service")).not.toContain("--health-");
        const envoy = buildEnvoyUserData({ ...envoyParams("qemu"), timeScale: 12 });
        expect(unit(envoy, "envoy.service")).toContain(" --health-timeout=36s --health-interval=30s ");
        const { root, units } = scratchRoot("time-scale", slow);
        const r = verify(root, units);
        expect(r.out).toBe("");
        expect(r.code).toBe(0);
    });

    it("refuses a scale that is not a whole number from 1 to 60, naming the fix", () => {
        for (const bad of [0, 1.5, 61, -2]) {
            expect(() => buildRedisNodeUserData({ ...redisNodeParams("qemu"), timeScale: bad })).toThrow(/timeScale: must be an integer from 1 to 60[\s\S]*use 1 on a cloud/);
            expect(() => renderContainerUnit({ unitName: "x", description: "x", image: IMAGES.redis, runArgs: [], timeScale: bad })).toThrow(/timeScale: must be an integer from 1 to 60/);
        }
    });
});

describe("the verification can fail", () => {
    it("reports a bad directive value and a missing command", () => {
        const config = buildRedisNodeUserData(redisNodeParams("aws"));
        const unit = config.write_files.find((w) => w.path === "/etc/systemd/system/redis.service")!;
        unit.content = unit.content.replace("Restart=always", "Restart=sometimes").replace("/usr/local/lib/redisforge/wait-healthy.sh", "/usr/local/lib/redisforge/missing.sh");
        const { root } = scratchRoot("broken", config);
        const r = verify(root, [path.join(root, "etc/systemd/system/redis.service")]);
        expect(r.out).toMatch(/Failed to parse service restart specifier/);
        expect(r.out).toMatch(/missing\.sh is not executable/);
    });

    it("renderContainerUnit refuses unsafe arguments and unpinned images", () => {
        const base = { unitName: "x", description: "x", image: IMAGES.redis, runArgs: [] as string[] };
        expect(() => renderContainerUnit({ ...base, runArgs: ["-e", "A='x'"] })).toThrow(/args\[1\]: must be one word/);
        expect(() => renderContainerUnit({ ...base, runArgs: ["-e A=1"] })).toThrow(/must be one word/);
        expect(() => renderContainerUnit({ ...base, command: [";", "rm"] })).toThrow(/must be one word/);
        expect(() => renderContainerUnit({ ...base, command: ["a\\b"] })).toThrow(/must be one word/);
        expect(renderContainerUnit({ ...base, command: ["--x=50%", "--y=$HOME"] })).toMatch(/ --x=50%% --y=\$\$HOME$/m);
        expect(() => renderContainerUnit({ ...base, image: "redis:8.4" })).toThrow(/image: must be pinned by digest/);
    });
});
