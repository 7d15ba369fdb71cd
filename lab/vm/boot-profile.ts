/**
 * Where a VM's boot went: the phases of one booted VM (seconds since its kernel started) and the CPU
 * each systemd unit used, read through the guest agent from systemd's own records and the cgroup
 * tree (no Python in the guest: a `cloud-init` start alone costs a minute under emulation).
 *
 * `bootProfile(qgaSocket)` returns the phases in the order they happened; `formatProfile` renders
 * one line per VM for scripts/vm-up.sh and the VM end-to-end test.
 */
import { guestSh } from "./qga";

/** The phases a RedisForge VM goes through, with the unit and the systemd timestamp that marks each. */
export const PHASES = [
    { phase: "kernel+initrd", unit: "", prop: "" },
    { phase: "cloud-init local start", unit: "cloud-init-local.service", prop: "InactiveExitTimestampMonotonic" },
    { phase: "network stage done", unit: "cloud-init.service", prop: "ActiveEnterTimestampMonotonic" },
    { phase: "config stage done", unit: "cloud-config.service", prop: "ActiveEnterTimestampMonotonic" },
    { phase: "final stage start", unit: "cloud-final.service", prop: "InactiveExitTimestampMonotonic" },
    { phase: "data disk ready", unit: "redisforge-data-disk.service", prop: "ActiveEnterTimestampMonotonic" },
    { phase: "secrets fetched", unit: "redisforge-secrets.service", prop: "ActiveEnterTimestampMonotonic" },
    { phase: "docker up", unit: "docker.service", prop: "ActiveEnterTimestampMonotonic" },
    { phase: "redis healthy", unit: "redis.service", prop: "ActiveEnterTimestampMonotonic" },
    { phase: "envoy healthy", unit: "envoy.service", prop: "ActiveEnterTimestampMonotonic" },
    { phase: "redis-exporter healthy", unit: "redis-exporter.service", prop: "ActiveEnterTimestampMonotonic" },
    { phase: "node-exporter healthy", unit: "node-exporter.service", prop: "ActiveEnterTimestampMonotonic" },
    { phase: "cloud-init done", unit: "cloud-final.service", prop: "ActiveEnterTimestampMonotonic" },
] as const;

export interface BootProfile {
    /** Seconds since the kernel started, per phase reached (a unit absent or not yet there is left out). */
    phases: { phase: string; at: number }[];
    /** CPU seconds per cgroup under system.slice (docker containers are docker-<id>.scope), the biggest first. */
    cpu: { unit: string; seconds: number }[];
    /** CPU seconds of the whole guest (all cgroups) and its uptime: busy / uptime is its CPU share. */
    totalCpuSeconds: number;
    uptimeSeconds: number;
    /** The kernel's clocksource (tsc, hpet, acpi_pm, ...). */
    clocksource: string;
}

/** The guest script: one `key value` line per fact (systemctl show, cgroup cpu.stat, /proc/uptime). */
export function profileScript(): string {
    const units = [...new Set(PHASES.filter((p) => p.unit).map((p) => p.unit))];
    return [
        "set -u",
        "echo uptime $(cut -d' ' -f1 /proc/uptime)",
        // hpet/acpi_pm instead of tsc makes every clock read an emulated device access (no vDSO).
        "echo clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)",
        // systemd's own split of the boot: firmware/loader are 0 with -kernel; initrd end = userspace start.
        "echo initrd_end_us $(systemctl show -p InitRDTimestampMonotonic --value) $(systemctl show -p UserspaceTimestampMonotonic --value)",
        `for u in ${units.join(" ")}; do echo "unit $u $(systemctl show -p InactiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic -p LoadState "$u" | tr '\\n' ' ')"; done`,
        "echo total_cpu_usec $(awk '/^usage_usec/{print $2}' /sys/fs/cgroup/cpu.stat 2>/dev/null || echo 0)",
        "for d in /sys/fs/cgroup/system.slice/*/; do [ -f \"$d/cpu.stat\" ] && echo \"cg $(basename \"$d\") $(awk '/^usage_usec/{print $2}' \"$d/cpu.stat\")\"; done",
        // docker-<id>.scope -> the container's name (one docker CLI call; none when Docker is not up).
        "command -v docker >/dev/null && timeout 60 docker ps --no-trunc --format 'ctr {{.ID}} {{.Names}}' 2>/dev/null",
        "echo \"cg init.scope $(awk '/^usage_usec/{print $2}' /sys/fs/cgroup/init.scope/cpu.stat 2>/dev/null || echo 0)\"",
        "true",
    ].join("\n");
}

/** Parses what profileScript printed. Throws naming the line when the output is not what it prints. */
export function parseProfile(out: string): BootProfile {
    let uptime = NaN;
    let userspaceUs = NaN;
    let total = 0;
    let clocksource = "unknown";
    const units = new Map<string, Record<string, string>>();
    const cpu: { unit: string; seconds: number }[] = [];
    const containers = new Map<string, string>();
    for (const line of out.split("\n").filter((l) => l.trim())) {
        const [key, ...rest] = line.trim().split(/\s+/);
        if (key === "uptime") uptime = Number(rest[0]);
        else if (key === "initrd_end_us") userspaceUs = Number(rest[rest.length - 1]);
        else if (key === "clocksource") clocksource = rest[0] ?? "unknown";
        else if (key === "total_cpu_usec") total = Number(rest[0]) / 1e6;
        else if (key === "unit") units.set(rest[0], Object.fromEntries(rest.slice(1).map((kv) => kv.split("=", 2) as [string, string])));
        else if (key === "cg" && rest.length === 2 && /^\d+$/.test(rest[1])) cpu.push({ unit: rest[0], seconds: Number(rest[1]) / 1e6 });
        else if (key === "ctr" && rest.length === 2) containers.set(`docker-${rest[0]}.scope`, `container ${rest[1]}`);
        else if (key !== "cg") throw new Error(`boot profile: unexpected line ${JSON.stringify(line)}`);
    }
    if (!Number.isFinite(uptime)) throw new Error(`boot profile: no uptime line in ${JSON.stringify(out.slice(0, 200))}`);
    const phases: { phase: string; at: number }[] = [];
    for (const p of PHASES) {
        if (!p.unit) {
            if (Number.isFinite(userspaceUs) && userspaceUs > 0) phases.push({ phase: p.phase, at: userspaceUs / 1e6 });
            continue;
        }
        const u = units.get(p.unit);
        const us = Number(u?.[p.prop] ?? 0);
        if (u?.LoadState === "loaded" && us > 0) phases.push({ phase: p.phase, at: us / 1e6 });
    }
    phases.sort((a, b) => a.at - b.at);
    for (const c of cpu) c.unit = containers.get(c.unit) ?? c.unit;
    cpu.sort((a, b) => b.seconds - a.seconds);
    return { phases, cpu, totalCpuSeconds: total, uptimeSeconds: uptime, clocksource };
}

/** Reads the profile of the VM behind a guest-agent socket. */
export async function bootProfile(qgaSocket: string, timeoutMs = 120000): Promise<BootProfile> {
    return parseProfile(await guestSh(qgaSocket, profileScript(), timeoutMs));
}

/** `name: phase 12 s, phase 40 s, ...; cpu 300 s of 900 s up: docker.service 80 s, ...` */
export function formatProfile(name: string, p: BootProfile, topCpu = 6): string {
    const phases = p.phases.map((x) => `${x.phase} ${Math.round(x.at)} s`).join(", ");
    const cpu = p.cpu.slice(0, topCpu).map((x) => `${x.unit} ${Math.round(x.seconds)} s`).join(", ");
    return `${name}: ${phases}; guest CPU ${Math.round(p.totalCpuSeconds)} s in ${Math.round(p.uptimeSeconds)} s up (${cpu}); clocksource ${p.clocksource}`;
}

/** CLI: `tsx lab/vm/boot-profile.ts <stack state dir>`: one line per VM under <dir>/vms (used by scripts/vm-up.sh). */
async function main(stateDir: string): Promise<void> {
    const { existsSync, readdirSync } = await import("fs");
    const { join } = await import("path");
    const vms = join(stateDir, "vms");
    if (!existsSync(vms)) throw new Error(`${vms} does not exist: is the VM stack up? (bash scripts/vm-up.sh)`);
    const results = await Promise.all(
        readdirSync(vms).sort().map(async (host) => {
            try {
                return formatProfile(host, await bootProfile(join(vms, host, "qga.sock")));
            } catch (e) {
                return `${host}: no profile (${(e as Error).message.split("\n")[0]})`;
            }
        }),
    );
    for (const line of results) console.log(line);
}

if (require.main === module) {
    main(process.argv[2] ?? "").catch((e) => {
        console.error(`boot-profile: ${(e as Error).message}`);
        process.exit(1);
    });
}
