/**
 * One VM = one QEMU process (software emulation: `-accel tcg,tb-size=256`; this machine's /dev/kvm
 * cannot boot a stock kernel) booting the cached base image (scripts/build-vm-image.sh) directly
 * with -kernel/-initrd/-append, inside the stack's network namespace.
 *
 * Devices (the contract the user-data relies on):
 *   /dev/vda                          root: a qcow2 overlay of the image's root.qcow2 (per VM, copy on write)
 *   /dev/disk/by-id/virtio-<serial>   the data disk (virtio-blk with serial=<serial>; DATA_DISK_SERIAL
 *                                     by default, so dataDiskDevice = DATA_DISK_DEVICE) — like the
 *                                     clouds' stable names (google-<name>, azure lun, nvme)
 *   /dev/sr0                          the NoCloud seed ISO (label cidata)
 *   eth0                              virtio-net on tap <tap> (a port of the stack's bridge), MAC from the spec
 *   ttyS0                             serial console -> <dir>/serial.log
 *   org.qemu.guest_agent.0            the guest agent channel -> <dir>/qga.sock (lab/vm/qga.ts)
 *   QMP                               <dir>/qmp.sock (powerdown, quit)
 *   virtio-rng                        entropy early in boot (cloud-init, Docker)
 * QEMU always gets an explicit tap NIC (`-netdev tap`) and `-nodefaults`: it can never add a
 * user-mode NIC with outside access. It daemonizes with a pidfile (<dir>/qemu.pid), so a VM
 * outlives the process that started it (a Pulumi dynamic provider) and is stopped by that PID.
 *
 * Files in <dir> (created by startVm when missing, kept by stopVm, removed by deleteVmFiles):
 *   root.qcow2 (overlay), data.qcow2 (when dataDisk), seed.iso (the caller's, see lab/vm/seed.ts),
 *   serial.log, qemu.pid, qmp.sock, qga.sock
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync } from "fs";
import { join, resolve } from "path";
import { createConnection } from "net";
import { alive, run, sleep } from "./exec";
import { guestReadFile, waitForAgent } from "./qga";
import { carryNiceToSession } from "./session-nice";

/** The data disk's serial: the guest sees it at /dev/disk/by-id/virtio-<serial>. */
export const DATA_DISK_SERIAL = "redis-data";
/** dataDiskDevice for RedisNode user-data on the qemu cloud. */
export const DATA_DISK_DEVICE = `/dev/disk/by-id/virtio-${DATA_DISK_SERIAL}`;

/** The cached base image (the directory scripts/build-vm-image.sh prints). */
export interface VmImage {
    dir: string;
    kernel: string;
    initrd: string;
    root: string;
    cmdline: string;
}

/** Reads the image directory; throws naming what is missing and how to build it. */
export function loadVmImage(dir: string): VmImage {
    const f = (n: string) => join(dir, n);
    const missing = ["vmlinuz", "initrd.img", "root.qcow2", "cmdline", ".complete"].filter((n) => !existsSync(f(n)));
    if (missing.length) throw new Error(`VM image ${dir} lacks ${missing.join(", ")}; build it with: bash scripts/build-vm-image.sh`);
    return { dir, kernel: f("vmlinuz"), initrd: f("initrd.img"), root: f("root.qcow2"), cmdline: readFileSync(f("cmdline"), "utf8").trim() };
}

/** Builds (or reuses) the image with scripts/build-vm-image.sh and loads it. Bounded (20 min). */
export function ensureVmImage(repoRoot: string): VmImage {
    const out = run("bash", [join(repoRoot, "scripts/build-vm-image.sh")], { timeoutMs: 20 * 60 * 1000 }).trim().split("\n");
    return loadVmImage(out[out.length - 1]);
}

export interface VmSpec {
    /** DNS label; used in logs and as QEMU's -name. */
    name: string;
    /** The VM's state directory (absolute; created when missing). Socket paths in it must stay < 100 chars. */
    dir: string;
    image: VmImage;
    /** The stack's namespace (QEMU runs inside it to open the tap). */
    netns: string;
    /** Tap device in that namespace (lab/vm/network.ts addTap). */
    tap: string;
    /** The NIC's MAC (must equal the seed's network-config match). */
    mac: string;
    /** The NoCloud seed ISO (lab/vm/seed.ts buildSeedIso). */
    seedIso: string;
    /** Guest RAM, MiB. Default 512 (Debian + Docker + Redis fit; ~420-530 MB RSS on the host). */
    memoryMiB?: number;
    /** vCPUs. Default 1 (TCG runs one host thread per vCPU; this machine has 2 cores). */
    cpus?: number;
    /** A data disk: created empty (qcow2) on the first start, kept across restarts. */
    dataDisk?: { sizeGiB: number; serial?: string };
}

export interface VmHandle {
    name: string;
    dir: string;
    pid: number;
    serialLog: string;
    qmpSocket: string;
    qgaSocket: string;
}

function paths(dir: string) {
    return {
        overlay: join(dir, "root.qcow2"),
        data: join(dir, "data.qcow2"),
        serialLog: join(dir, "serial.log"),
        pidFile: join(dir, "qemu.pid"),
        qmpSocket: join(dir, "qmp.sock"),
        qgaSocket: join(dir, "qga.sock"),
    };
}

/**
 * TCG translation cache per VM, MiB (REDISFORGE_VM_TB_SIZE_MIB overrides). When the guest's hot code
 * outgrows it, QEMU flushes every translation and translates again. Measured on one VM (boot,
 * Docker enabled, Redis image pulled and started; both runs at nice 19 beside a CI run): 64 MiB
 * flushed 57 times, cloud-init done at 270 s, 749 MiB RSS; 256 MiB flushed 7 times, 245 s, 960 MiB.
 */
export function tbSizeMiB(): number {
    const v = Number(process.env.REDISFORGE_VM_TB_SIZE_MIB ?? 256);
    if (!Number.isInteger(v) || v < 16 || v > 2048) throw new Error(`REDISFORGE_VM_TB_SIZE_MIB=${process.env.REDISFORGE_VM_TB_SIZE_MIB}: must be an integer from 16 to 2048 (MiB)`);
    return v;
}

/**
 * Kernel arguments for software emulation, after the image's own command line. `tsc=reliable`: the
 * guest's clocksource watchdog compares the TSC with the HPET, and with 7 VMs on 2 busy cores a
 * descheduled vCPU looks like TSC skew; the sixth VM run's Envoy VM had switched to `hpet`, where
 * every clock read is an emulated device access. Under TCG the TSC follows the host's clock.
 */
export const TCG_KERNEL_ARGS = "tsc=reliable";

/** The QEMU argument list for a spec (pure; exported for tests and logs). */
export function qemuArgs(s: VmSpec): string[] {
    const p = paths(s.dir);
    const serial = s.dataDisk?.serial ?? DATA_DISK_SERIAL;
    const args = [
        "-name", s.name,
        "-nodefaults",
        "-machine", "pc",
        "-accel", `tcg,tb-size=${tbSizeMiB()}`,
        "-m", String(s.memoryMiB ?? 512),
        "-smp", String(s.cpus ?? 1),
        "-display", "none",
        "-kernel", s.image.kernel,
        "-initrd", s.image.initrd,
        "-append", `${s.image.cmdline} ${TCG_KERNEL_ARGS}`,
        "-drive", `file=${p.overlay},if=none,id=root,format=qcow2,cache=unsafe,discard=unmap`,
        "-device", "virtio-blk-pci,drive=root,addr=0x4",
    ];
    if (s.dataDisk) args.push("-drive", `file=${p.data},if=none,id=data,format=qcow2,cache=writeback`, "-device", `virtio-blk-pci,drive=data,serial=${serial},addr=0x5`);
    args.push(
        "-drive", `file=${s.seedIso},if=none,id=seed,media=cdrom,readonly=on`,
        "-device", "ide-cd,drive=seed",
        "-netdev", `tap,id=net0,ifname=${s.tap},script=no,downscript=no`,
        "-device", `virtio-net-pci,netdev=net0,mac=${s.mac},addr=0x3`,
        "-device", "virtio-rng-pci",
        "-chardev", `socket,id=qga0,path=${p.qgaSocket},server=on,wait=off`,
        "-device", "virtio-serial-pci",
        "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
        "-qmp", `unix:${p.qmpSocket},server=on,wait=off`,
        "-serial", `file:${p.serialLog}`,
        "-pidfile", p.pidFile,
        "-daemonize",
    );
    return args;
}

function checkSpec(s: VmSpec): void {
    const p: string[] = [];
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(s.name ?? "")) p.push(`name must be a lower-case DNS label; got ${JSON.stringify(s.name)}`);
    if (!s.dir || resolve(s.dir) !== s.dir) p.push(`dir must be an absolute path; got ${JSON.stringify(s.dir)}`);
    else if (join(s.dir, "qmp.sock").length > 100) p.push(`dir ${s.dir} is too long for unix sockets (${join(s.dir, "qmp.sock").length} > 100 chars); use a shorter state directory`);
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(s.mac ?? "")) p.push(`mac must look like 52:54:00:12:34:56; got ${JSON.stringify(s.mac)}`);
    if (!s.tap) p.push("tap is required: QEMU never starts without an explicit tap NIC");
    if (!s.seedIso || !existsSync(s.seedIso)) p.push(`seedIso ${s.seedIso} does not exist; build it with buildSeedIso`);
    const m = s.memoryMiB ?? 512;
    if (!Number.isInteger(m) || m < 256 || m > 8192) p.push(`memoryMiB must be 256..8192; got ${m}`);
    if (s.dataDisk && (!Number.isInteger(s.dataDisk.sizeGiB) || s.dataDisk.sizeGiB < 1 || s.dataDisk.sizeGiB > 64)) p.push(`dataDisk.sizeGiB must be 1..64; got ${s.dataDisk.sizeGiB}`);
    if (s.dataDisk?.serial !== undefined && !/^[A-Za-z0-9_-]{1,20}$/.test(s.dataDisk.serial)) p.push(`dataDisk.serial must be 1-20 letters/digits/_/-; got ${s.dataDisk.serial}`);
    if (p.length) throw new Error(`VM ${s.name}: ${p.join("; ")}`);
}

/** The PID in <dir>/qemu.pid when that process is alive and is the QEMU of this dir; else undefined. */
export function runningVmPid(dir: string): number | undefined {
    const pidFile = paths(dir).pidFile;
    if (!existsSync(pidFile)) return undefined;
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 1 || !alive(pid)) return undefined;
    try {
        // A recycled PID is not ours: the command line must name this dir's pidfile.
        const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        return cmd.includes(pidFile) ? pid : undefined;
    } catch {
        return undefined;
    }
}

/**
 * Starts the VM (creating its overlay and data disk on the first start) and returns once QEMU has
 * daemonized. Idempotent: a VM already running from this dir is returned as is.
 */
export function startVm(s: VmSpec): VmHandle {
    checkSpec(s);
    const p = paths(s.dir);
    const handle = (pid: number): VmHandle => ({ name: s.name, dir: s.dir, pid, serialLog: p.serialLog, qmpSocket: p.qmpSocket, qgaSocket: p.qgaSocket });
    const running = runningVmPid(s.dir);
    if (running) return handle(running);
    mkdirSync(s.dir, { recursive: true });
    if (!existsSync(p.overlay)) run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", s.image.root, "-F", "qcow2", p.overlay]);
    if (s.dataDisk && !existsSync(p.data)) run("qemu-img", ["create", "-q", "-f", "qcow2", p.data, `${s.dataDisk.sizeGiB}G`]);
    for (const f of [p.pidFile, p.qmpSocket, p.qgaSocket]) rmSync(f, { force: true });
    run("ip", ["netns", "exec", s.netns, "qemu-system-x86_64", ...qemuArgs(s)], { timeoutMs: 30000 });
    const pid = runningVmPid(s.dir);
    if (!pid) throw new Error(`VM ${s.name}: QEMU daemonized but ${p.pidFile} names no live QEMU; see ${p.serialLog}`);
    carryNiceToSession(pid);
    return handle(pid);
}

/** Sends one QMP command (after the capabilities handshake). Bounded. */
export function qmpCommand(socketPath: string, command: string, timeoutMs = 5000): Promise<unknown> {
    return new Promise((resolvePromise, reject) => {
        const sock = createConnection(socketPath);
        let buf = "";
        let stage = 0;
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error(`QMP ${socketPath}: ${command} got no reply within ${timeoutMs} ms`));
        }, timeoutMs);
        const finish = (err: Error | null, v?: unknown) => {
            clearTimeout(timer);
            sock.destroy();
            if (err) reject(err);
            else resolvePromise(v);
        };
        sock.on("error", (e) => finish(new Error(`QMP ${socketPath}: ${e.message}`)));
        sock.on("data", (d) => {
            buf += d.toString();
            let nl: number;
            while ((nl = buf.indexOf("\n")) >= 0) {
                const msg = JSON.parse(buf.slice(0, nl));
                buf = buf.slice(nl + 1);
                if (msg.event) continue;
                if (stage === 0 && msg.QMP) {
                    stage = 1;
                    sock.write(`${JSON.stringify({ execute: "qmp_capabilities" })}\n`);
                } else if (stage === 1 && "return" in msg) {
                    stage = 2;
                    sock.write(`${JSON.stringify({ execute: command })}\n`);
                } else if (stage === 2) {
                    if (msg.error) return finish(new Error(`QMP ${command}: ${msg.error.desc}`));
                    return finish(null, msg.return);
                }
            }
        });
    });
}

/**
 * Stops the VM started from `dir`: ACPI power-down (the guest shuts down cleanly, data disk
 * flushed), then after `graceMs` SIGTERM and finally SIGKILL — each only to the PID in the
 * pidfile, and only when that PID is this dir's QEMU. Idempotent. Returns how it ended.
 */
export async function stopVm(dir: string, graceMs = 60000): Promise<"not-running" | "powerdown" | "sigterm" | "sigkill"> {
    const pid = runningVmPid(dir);
    if (!pid) return "not-running";
    const gone = async (ms: number) => {
        const deadline = Date.now() + ms;
        while (Date.now() < deadline) {
            if (!alive(pid)) return true;
            await sleep(250);
        }
        return !alive(pid);
    };
    if (graceMs > 0) {
        try {
            await qmpCommand(paths(dir).qmpSocket, "system_powerdown");
            if (await gone(graceMs)) return "powerdown";
        } catch {
            // no QMP: fall through to signals
        }
    }
    if (runningVmPid(dir) !== pid) return "powerdown";
    process.kill(pid, "SIGTERM");
    if (await gone(10000)) return "sigterm";
    if (runningVmPid(dir) === pid) process.kill(pid, "SIGKILL");
    await gone(5000);
    return "sigkill";
}

/** Removes the VM's directory (overlay, data disk, seed, logs). Refuses while the VM runs. */
export function deleteVmFiles(dir: string): void {
    if (runningVmPid(dir)) throw new Error(`VM in ${dir} is still running; stopVm first`);
    rmSync(dir, { recursive: true, force: true });
}

/** Host memory the VM's QEMU uses (VmRSS, bytes), or undefined when it is not running. */
export function vmRssBytes(dir: string): number | undefined {
    const pid = runningVmPid(dir);
    if (!pid) return undefined;
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
}

export interface CloudInitResult {
    /** `cloud-init status` word: done, error, running, ... */
    status: string;
    /** errors from /run/cloud-init/result.json (empty when done without errors). */
    errors: string[];
    /** Seconds from QEMU start to cloud-init's end, measured by the caller's clock. */
    seconds: number;
}

/**
 * Pause between two reads of result.json while cloud-init runs, when the serial console has not
 * announced the end yet. Each read is a few agent calls: at 3 s (with a `cat` process each)
 * qemu-guest-agent had used 65 s of a Redis VM's CPU by the time its Docker was up (sixth VM run),
 * and at 10 s still 91-100 s by cloud-init's end (seventh): the end is now read from the serial log
 * on the host (cloud-final prints "Cloud-init v. X finished at ..." on the console), and the guest
 * is asked only then, or every 60 s as a fallback.
 */
export const CLOUD_INIT_POLL_MS = 60000;
/** How often the host reads the serial log for cloud-init's final line (no guest CPU). */
export const SERIAL_POLL_MS = 3000;
/** cloud-init's final_message on the console (Debian's cloud-final.service logs to journal+console). */
export const CLOUD_INIT_FINISHED_RE = /Cloud-init v\. \S+ finished at /;

/** Whether the serial log (from byte `from`) shows cloud-init's final line; returns the new offset too. */
export function serialShowsFinished(serialLog: string, from = 0): { finished: boolean; offset: number } {
    if (!existsSync(serialLog)) return { finished: false, offset: from };
    const size = statSync(serialLog).size;
    if (size <= from) return { finished: false, offset: size };
    const start = Math.max(0, from - 200); // a line split between two reads
    const fd = openSync(serialLog, "r");
    try {
        const buf = Buffer.alloc(size - start);
        readSync(fd, buf, 0, buf.length, start);
        return { finished: CLOUD_INIT_FINISHED_RE.test(buf.toString("utf8")), offset: size };
    } finally {
        closeSync(fd);
    }
}

/**
 * Waits (bounded) until cloud-init has finished in the VM: the guest agent answers, then
 * /run/cloud-init/result.json exists (written when the final stage ends), read when the serial log
 * announces the end (or every CLOUD_INIT_POLL_MS). Returns status and errors; throws on timeout
 * with the end of the serial log.
 */
export async function waitForCloudInit(vm: VmHandle, timeoutMs: number, startedAt = Date.now()): Promise<CloudInitResult> {
    const deadline = Date.now() + timeoutMs;
    const tail = () => (existsSync(vm.serialLog) ? readFileSync(vm.serialLog, "utf8").split("\n").slice(-25).join("\n") : "(no serial log)");
    try {
        await waitForAgent(vm.qgaSocket, timeoutMs, () => alive(vm.pid));
    } catch (e) {
        throw new Error(`VM ${vm.name}: ${(e as Error).message}\n--- serial log tail ---\n${tail()}`);
    }
    let offset = 0;
    let lastAsk = 0;
    for (let i = 0; Date.now() < deadline && i < 100000; i++) {
        if (!alive(vm.pid)) throw new Error(`VM ${vm.name}: QEMU (pid ${vm.pid}) exited while waiting for cloud-init\n--- serial log tail ---\n${tail()}`);
        const seen = serialShowsFinished(vm.serialLog, offset);
        offset = seen.offset;
        if (seen.finished || Date.now() - lastAsk >= CLOUD_INIT_POLL_MS) {
            lastAsk = Date.now();
            const text = await guestReadFile(vm.qgaSocket, "/run/cloud-init/result.json", 20000).catch(() => undefined);
            if (text !== undefined) {
                // result.json exists once cloud-init has finished, with every stage's errors: that is what
                // `cloud-init status` reports too, without its Python start (over 60 s on a busy emulated
                // guest). The end-to-end test still asks `cloud-init status` itself.
                const errors = (JSON.parse(text).v1?.errors ?? []) as string[];
                return { status: errors.length > 0 ? "error" : "done", errors, seconds: (Date.now() - startedAt) / 1000 };
            }
            // The console said finished but result.json is not readable yet: ask again soon.
            if (seen.finished) lastAsk = Date.now() - CLOUD_INIT_POLL_MS + 5000;
        }
        await sleep(SERIAL_POLL_MS);
    }
    throw new Error(`VM ${vm.name}: cloud-init did not finish within ${timeoutMs / 1000} s\n--- serial log tail ---\n${tail()}`);
}

/** Size of a file in bytes (0 when missing). */
export function fileSize(path: string): number {
    return existsSync(path) ? statSync(path).size : 0;
}
