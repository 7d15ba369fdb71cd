/**
 * The substrate of the qemu cloud, for real (npm run test:vm; not in the default run yet): the
 * cached VM image boots under QEMU/TCG on a tap of the stack's bridge from a NoCloud seed with a
 * minimal user-data, cloud-init finishes without errors, Docker in the VM pulls the hardened Redis
 * image BY DIGEST from the lab registry on the bridge and runs it as uid 999, and a client
 * namespace reaches it through the stack namespace. Then three VMs (one per zone) boot at once:
 * times and host memory per VM, VM-to-VM across zones, and the firewall enforced between real VMs.
 *
 * Prints the phase times (image build, network, registry + push, QEMU start -> guest agent,
 * -> cloud-init done, image pull, container start, first PING) and RSS per VM.
 * Everything runs in a per-run namespace and is stopped by PID in afterAll.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join, resolve } from "path";
import { addExtraNamespace, addressIn, addServiceAddress, addTap, createStackNetwork, deleteStackNetwork, ExtraNamespace, StackNetwork } from "../../lab/vm/network";
import { setFirewall } from "../../lab/vm/firewall";
import { buildSeedIso, macFor } from "../../lab/vm/seed";
import { ensureVmImage, qemuArgs, runningVmPid, startVm, stopVm, VmHandle, VmImage, vmRssBytes, waitForCloudInit, DATA_DISK_DEVICE } from "../../lab/vm/qemu";
import { guestExec, guestSh } from "../../lab/vm/qga";
import { buildContainerImages, pushImage, RegistryHandle, startRegistry, stopRegistry } from "../../lab/vm/registry";
import { runIn } from "../../lab/vm/exec";

const REPO = resolve(__dirname, "..", "..");
// 100-150 s on an idle 2-core machine; far more when other work shares the cores (REDISFORGE_VM_BOOT_TIMEOUT_S overrides).
const BOOT_TIMEOUT_MS = Number(process.env.REDISFORGE_VM_BOOT_TIMEOUT_S ?? 15 * 60) * 1000;
jest.setTimeout(BOOT_TIMEOUT_MS + 10 * 60 * 1000);

let image: VmImage;
let net: StackNetwork;
let client: ExtraNamespace;
let registry: RegistryHandle;
let redisRef: string;
let work: string;
const vmDirs: string[] = [];
const phases: [string, number][] = [];
const zones = ["zone-a", "zone-b", "zone-c"];

const secs = (ms: number) => Math.round(ms / 100) / 10;
function phase<T>(name: string, f: () => T): T {
    const t = Date.now();
    const r = f();
    phases.push([name, secs(Date.now() - t)]);
    return r;
}

/**
 * Minimal user-data in the shape of the real one: package_update + packages (offline: all in the
 * image), daemon.json written like RedisNode's, Docker enabled by runcmd, then pull by digest and a
 * non-root, read-only, cap-less Redis on the VM's address. Timestamps for the phases land in /run.
 * Plaintext on purpose, and no secret anywhere: the TLS path (secrets from the store) is the
 * qemu adapter's end-to-end test; this one proves boot, registry, pull and the non-root runtime.
 */
function userData(ip: string): string {
    const stamp = (n: string) => ["sh", "-c", `date +%s.%N > /run/rf-${n}`];
    return `#cloud-config
package_update: true
package_upgrade: false
packages: [docker.io, curl, jq, xfsprogs, rclone, redis-tools]
write_files:
  - path: /etc/docker/daemon.json
    permissions: "0644"
    content: |
      {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}, "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 100000, "Hard": 100000}}}
runcmd:
  - ${JSON.stringify(stamp("runcmd"))}
  - [systemctl, enable, --now, docker.service]
  - ${JSON.stringify(stamp("docker"))}
  - [docker, pull, --quiet, "${redisRef}"]
  - ${JSON.stringify(stamp("pulled"))}
  - [docker, run, -d, --name, redis, --network, host, --read-only, --cap-drop, ALL, --security-opt, no-new-privileges, --entrypoint, redis-server, "${redisRef}", --bind, "${ip}", --port, "6379", --protected-mode, "no", --save, "", --appendonly, "no"]
  - ${JSON.stringify(stamp("started"))}
`;
}

interface Booted {
    vm: VmHandle;
    ip: string;
    startedAt: number;
}

function bootVm(name: string, zone: string, hostNo: number): Booted {
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    vmDirs.push(dir);
    const ip = addressIn(net.zones[zone], hostNo);
    const mac = macFor(`${net.id}-${name}`);
    const seedIso = buildSeedIso({ instanceId: `${name}-${net.id}`, hostname: name, userData: userData(ip), mac, address: `${ip}/24`, gateway: net.zones[zone].gateway }, join(dir, "seed.iso"));
    const tap = addTap(net, `t-${name}`.slice(0, 13));
    const startedAt = Date.now();
    const vm = startVm({ name, dir, image, netns: net.netns, tap, mac, seedIso, dataDisk: { sizeGiB: 1 } });
    return { vm, ip, startedAt };
}

/** Guest timestamps (host-clock seconds since startedAt), read after cloud-init. */
async function guestPhases(b: Booted): Promise<Record<string, number>> {
    const out = await guestSh(b.vm.qgaSocket, "for f in runcmd docker pulled started; do printf '%s %s\\n' $f $(cat /run/rf-$f); done");
    const r: Record<string, number> = {};
    for (const line of out.trim().split("\n")) {
        const [k, v] = line.split(" ");
        r[k] = Math.round((Number(v) * 1000 - b.startedAt) / 100) / 10;
    }
    return r;
}

function redisPing(ns: string, ip: string): string {
    return runIn(ns, "redis-cli", ["-h", ip, "-p", "6379", "--no-auth-warning", "PING"], { timeoutMs: 10000 }).trim();
}

beforeAll(async () => {
    image = phase("VM image (build or cache)", () => ensureVmImage(REPO));
    const images = phase("container images (build or cache)", () => buildContainerImages());
    // Short state dir: unix socket paths in it must stay under ~100 chars.
    work = mkdtempSync(join(tmpdir(), "rfvm-"));
    net = phase("stack network", () => createStackNetwork({ zones }));
    client = addExtraNamespace(net, "client", 0);
    const t = Date.now();
    registry = await startRegistry({ dir: join(work, "registry"), netns: net.netns, ip: addServiceAddress(net, 2) });
    phases.push(["registry up", secs(Date.now() - t)]);
    redisRef = phase("push redis image", () => pushImage(images.redis, registry.address, "redisforge/redis:8.6.3"));
});

afterAll(async () => {
    await Promise.all(vmDirs.map((d) => stopVm(d, 0).catch(() => undefined)));
    if (work) await stopRegistry(join(work, "registry")).catch(() => undefined);
    if (net) deleteStackNetwork(net);
    if (work && !process.env.REDISFORGE_KEEP_VM_FILES) rmSync(work, { recursive: true, force: true });
    console.log(`phase times (s):\n${phases.map(([n, s]) => `  ${n.padEnd(48)} ${s}`).join("\n")}`);
});

test("QEMU is never started without an explicit tap NIC, and with -nodefaults", () => {
    const args = qemuArgs({ name: "x", dir: "/tmp/x", image: { dir: "/i", kernel: "/i/k", initrd: "/i/r", root: "/i/root.qcow2", cmdline: "c" }, netns: "n", tap: "t0", mac: "52:54:00:00:00:01", seedIso: "/s.iso", dataDisk: { sizeGiB: 1 } });
    expect(args).toContain("-nodefaults");
    expect(args.join(" ")).toMatch(/-netdev tap,id=net0,ifname=t0,script=no,downscript=no/);
    expect(args.join(" ")).not.toMatch(/user|slirp|hostfwd/);
    expect(args.join(" ")).toMatch(/virtio-blk-pci,drive=data,serial=redis-data/);
    expect(() => startVm({ name: "x", dir: "/tmp/x", image, netns: "n", tap: "", mac: "52:54:00:00:00:01", seedIso: "/nope.iso" })).toThrow(/tap is required.*seedIso \/nope.iso does not exist/);
});

test("one VM: cloud-init done without errors, Docker pulls the Redis image by digest from the lab registry and runs it as uid 999", async () => {
    const b = bootVm("rf-one", "zone-a", 10);
    const ci = await waitForCloudInit(b.vm, BOOT_TIMEOUT_MS, b.startedAt);
    const boot = await guestSh(b.vm.qgaSocket, "systemd-analyze || true; cloud-init analyze show 2>/dev/null | grep -E '^Total Time|^Finished stage' || true");
    console.log(`rf-one: cloud-init ${ci.status} after ${ci.seconds} s; errors ${JSON.stringify(ci.errors)}\n${boot}`);
    expect(ci.errors).toEqual([]);
    expect(ci.status).toBe("done");
    const g = await guestPhases(b);
    phases.push(["one VM: QEMU start -> runcmd begins", g.runcmd], ["one VM: docker.service up", g.docker], ["one VM: image pulled", g.pulled], ["one VM: container started", g.started], ["one VM: cloud-init done", ci.seconds]);

    // The data disk has the device path the user-data is given.
    expect((await guestSh(b.vm.qgaSocket, `readlink -f ${DATA_DISK_DEVICE}`)).trim()).toMatch(/^\/dev\/vd[b-z]$/);
    // Pulled from the lab registry, by digest.
    const repoDigests = await guestSh(b.vm.qgaSocket, `docker image inspect --format '{{json .RepoDigests}}' ${redisRef}`);
    expect(JSON.parse(repoDigests)).toContain(redisRef);
    expect(redisRef.startsWith(`${registry.address}/redisforge/redis@sha256:`)).toBe(true);
    // Runs as 999 (the image's USER), not root: the container's config and the live process.
    expect((await guestSh(b.vm.qgaSocket, "docker inspect --format '{{.Config.User}} {{.State.Running}}' redis")).trim()).toBe("999:999 true");
    const pid = (await guestSh(b.vm.qgaSocket, "docker inspect --format '{{.State.Pid}}' redis")).trim();
    expect((await guestSh(b.vm.qgaSocket, `awk '/^Uid:/ {print $2, $3}' /proc/${pid}/status`)).trim()).toBe("999 999");
    // Redis 8.6.3 from the image answers a client in another namespace, routed through the stack namespace.
    const t = Date.now();
    let pong = "";
    for (let i = 0; i < 30 && pong !== "PONG"; i++) {
        try {
            pong = redisPing(client.netns, b.ip);
        } catch {
            await new Promise((r) => setTimeout(r, 1000));
        }
    }
    expect(pong).toBe("PONG");
    phases.push(["one VM: first PING from the client namespace after cloud-init", secs(Date.now() - t)]);
    expect(runIn(client.netns, "redis-cli", ["-h", b.ip, "INFO", "server"])).toMatch(/redis_version:8\.6\.3/);
    const rss = vmRssBytes(b.vm.dir)!;
    console.log(`rf-one: QEMU RSS ${Math.round(rss / 2 ** 20)} MiB`);
    expect(rss).toBeGreaterThan(100 * 2 ** 20);

    const how = await stopVm(b.vm.dir, 180000);
    phases.push(["one VM: ACPI power-down", secs(Date.now() - t)]);
    expect(how).toBe("powerdown");
    expect(runningVmPid(b.vm.dir)).toBeUndefined();
});

test("three VMs at once, one per zone: all finish cloud-init, reach each other across zones, and the firewall is enforced between them", async () => {
    const t0 = Date.now();
    const vms = zones.map((z, i) => bootVm(`rf-${z}`, z, 20 + i));
    const results = await Promise.all(vms.map((b) => waitForCloudInit(b.vm, BOOT_TIMEOUT_MS, b.startedAt)));
    phases.push(["three VMs: all cloud-init done (wall)", secs(Date.now() - t0)]);
    const rss = vms.map((b) => Math.round((vmRssBytes(b.vm.dir) ?? 0) / 2 ** 20));
    console.log(`three VMs: cloud-init ${results.map((r, i) => `${vms[i].vm.name} ${r.status} ${r.seconds} s`).join(", ")}; QEMU RSS MiB ${rss.join(", ")} (total ${rss.reduce((a, b) => a + b, 0)})`);
    for (const [i, r] of results.entries()) {
        expect({ vm: vms[i].vm.name, status: r.status, errors: r.errors }).toEqual({ vm: vms[i].vm.name, status: "done", errors: [] });
        const g = await guestPhases(vms[i]);
        phases.push([`three VMs: ${vms[i].vm.name} pulled / started / done`, g.pulled], [`  started`, g.started], [`  done`, r.seconds]);
    }
    // Across zones, VM to VM (routed through the stack namespace).
    const [a, b, c] = vms;
    const ping = (from: Booted, to: Booted) => guestExec(from.vm.qgaSocket, "/usr/bin/redis-cli", ["-h", to.ip, "-p", "6379", "PING"], 30000);
    expect((await ping(a, b)).stdout.trim()).toBe("PONG");
    expect((await ping(b, c)).stdout.trim()).toBe("PONG");
    // Firewall: only zone-a may reach the others' 6379; the client namespace may reach zone-a's.
    setFirewall(net, [
        { from: net.zones["zone-a"].cidr, to: b.ip, ports: 6379 },
        { from: net.zones["zone-a"].cidr, to: c.ip, ports: 6379 },
        { from: client.ip, to: a.ip, ports: 6379 },
    ]);
    expect((await ping(a, b)).stdout.trim()).toBe("PONG");
    const refused = await ping(b, c);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/Connection refused/);
    expect(redisPing(client.netns, a.ip)).toBe("PONG");
    expect(() => redisPing(client.netns, b.ip)).toThrow(/Connection refused/);
    const t = Date.now();
    expect((await Promise.all(vms.map((v) => stopVm(v.vm.dir, 180000)))).every((h) => h === "powerdown")).toBe(true);
    phases.push(["three VMs: ACPI power-down (wall)", secs(Date.now() - t)]);
    const serial = readFileSync(a.vm.serialLog, "utf8");
    expect(serial.length).toBeGreaterThan(0);
});
