/**
 * The containerd config every VM's user-data writes (/etc/containerd/config.toml), read by the real
 * containerd the VMs run (Debian bookworm's 1.6.20, the same package the VM image and a cloud VM's
 * `docker.io` install): it parses, the Kubernetes CRI plugin is not loaded, and every plugin Docker
 * drives containers through still is. The same containerd with no config loads CRI, so the check can
 * fail. containerd runs as a process of this test with its own root, state and socket in a temp dir
 * (a unix socket only: no TCP listener) and is stopped by its PID.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildEnvoyUserData, buildRedisNodeUserData, CONTAINERD_CONFIG } from "../../../templates/cloud-init";
import { envoyParams, redisNodeParams } from "../../unit/templates/fixtures";

jest.setTimeout(60000);

const work = fs.mkdtempSync(path.join(os.tmpdir(), "rf-containerd-"));
const running: ChildProcess[] = [];

afterAll(() => {
    for (const p of running) if (p.exitCode === null) p.kill("SIGKILL");
    fs.rmSync(work, { recursive: true, force: true });
});

/** Starts containerd with `config` (undefined: its defaults), waits for its socket, returns the plugin table. */
async function plugins(name: string, config: string | undefined): Promise<Map<string, string>> {
    const d = path.join(work, name);
    fs.mkdirSync(d, { recursive: true });
    const args = ["--root", path.join(d, "root"), "--state", path.join(d, "state"), "--address", path.join(d, "c.sock")];
    // An empty file for "no config": containerd's defaults, not the host's /etc/containerd/config.toml.
    fs.writeFileSync(path.join(d, "config.toml"), config ?? "");
    args.unshift("--config", path.join(d, "config.toml"));
    const log = fs.openSync(path.join(d, "log"), "w");
    const p = spawn("containerd", args, { stdio: ["ignore", log, log] });
    running.push(p);
    try {
        for (let i = 0; i < 100; i++) {
            if (p.exitCode !== null) throw new Error(`containerd exited ${p.exitCode}:\n${fs.readFileSync(path.join(d, "log"), "utf8").slice(-2000)}`);
            if (fs.existsSync(path.join(d, "c.sock"))) {
                try {
                    const out = execFileSync("ctr", ["--address", path.join(d, "c.sock"), "plugins", "ls"], { encoding: "utf8", timeout: 10000 });
                    // TYPE  ID  PLATFORMS  STATUS
                    return new Map(out.trim().split("\n").slice(1).map((l) => l.trim().split(/\s+/)).map((c) => [`${c[0]}.${c[1]}`, c[c.length - 1]]));
                } catch {
                    /* not serving yet */
                }
            }
            await new Promise((r) => setTimeout(r, 200));
        }
        throw new Error(`containerd did not serve ${path.join(d, "c.sock")} within 20 s`);
    } finally {
        p.kill("SIGTERM");
        await new Promise((r) => (p.exitCode !== null ? r(undefined) : p.once("exit", r)));
    }
}

test("every VM's user-data writes the same containerd config", () => {
    for (const config of [buildRedisNodeUserData(redisNodeParams("aws")), buildRedisNodeUserData(redisNodeParams("qemu")), buildEnvoyUserData(envoyParams("gcp"))]) {
        const f = config.write_files.find((w) => w.path === "/etc/containerd/config.toml");
        expect(f?.content).toBe(CONTAINERD_CONFIG);
    }
});

test("the real containerd reads it: no CRI plugin, and the plugins Docker uses are loaded", async () => {
    const without = await plugins("default", undefined);
    expect(without.get("io.containerd.grpc.v1.cri")).toBe("ok"); // the default loads CRI: this check can fail
    const withConfig = await plugins("redisforge", CONTAINERD_CONFIG);
    expect(withConfig.has("io.containerd.grpc.v1.cri")).toBe(false);
    for (const needed of ["io.containerd.runtime.v2.task", "io.containerd.grpc.v1.tasks", "io.containerd.grpc.v1.containers", "io.containerd.grpc.v1.content", "io.containerd.grpc.v1.snapshots", "io.containerd.grpc.v1.leases", "io.containerd.service.v1.tasks-service"]) {
        expect({ plugin: needed, status: withConfig.get(needed) }).toEqual({ plugin: needed, status: "ok" });
    }
    // Nothing else the default loads is lost.
    const lost = [...without.keys()].filter((k) => !withConfig.has(k));
    expect(lost).toEqual(["io.containerd.grpc.v1.cri"]);
});
