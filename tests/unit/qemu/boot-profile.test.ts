/**
 * lab/vm/boot-profile.ts parses what its guest script printed on a real Redis VM of the VM stack
 * (fixtures/boot-profile-vm-node0.txt: vm-node0 of the sixth VM run, 2026-11-30, read through the
 * guest agent after its cluster had formed).
 */
import * as fs from "fs";
import * as path from "path";
import { formatProfile, parseProfile, PHASES, profileScript } from "../../../lab/vm/boot-profile";

const raw = fs.readFileSync(path.join(__dirname, "fixtures", "boot-profile-vm-node0.txt"), "utf8");

test("phases of a real Redis VM in boot order, from systemd's monotonic timestamps", () => {
    const p = parseProfile(raw);
    expect(p.phases.map((x) => x.phase)).toEqual([
        "kernel+initrd", "cloud-init local start", "network stage done", "config stage done", "final stage start",
        "data disk ready", "secrets fetched", "docker up", "node-exporter healthy", "redis healthy", "redis-exporter healthy", "cloud-init done",
    ]);
    const at = Object.fromEntries(p.phases.map((x) => [x.phase, Math.round(x.at)]));
    expect(at).toMatchObject({ "kernel+initrd": 44, "docker up": 609, "redis healthy": 1115, "cloud-init done": 1377 });
    expect(p.phases.some((x) => x.phase === "envoy healthy")).toBe(false); // not-found unit: left out
    expect(p.clocksource).toBe("tsc");
    expect(Math.round(p.uptimeSeconds)).toBe(3011);
});

test("CPU per cgroup, biggest first, containers named", () => {
    const p = parseProfile(raw);
    expect(p.cpu.length).toBeGreaterThan(5);
    for (let i = 1; i < p.cpu.length; i++) expect(p.cpu[i - 1].seconds).toBeGreaterThanOrEqual(p.cpu[i].seconds);
    expect(p.cpu.map((c) => c.unit)).toEqual(expect.arrayContaining(["container redis", "docker.service", "containerd.service", "init.scope"]));
    expect(p.cpu.some((c) => /^docker-[0-9a-f]{64}\.scope$/.test(c.unit))).toBe(false);
    expect(p.totalCpuSeconds).toBeGreaterThan(p.cpu[0].seconds);
    expect(formatProfile("vm-node0", p, 2)).toMatch(/^vm-node0: kernel\+initrd 44 s, .* cloud-init done 1377 s; guest CPU \d+ s in 3011 s up \(\S.* \d+ s, \S.* \d+ s\); clocksource tsc$/);
});

test("the guest script asks for every phase's unit; output it did not print is refused naming the line", () => {
    const script = profileScript();
    for (const ph of PHASES.filter((x) => x.unit)) expect(script).toContain(ph.unit);
    expect(() => parseProfile("uptime 12\nsomething else 1\n")).toThrow(/unexpected line "something else 1"/);
    expect(() => parseProfile("clocksource tsc\n")).toThrow(/no uptime line/);
});
