/**
 * QemuService: one long-running host-side process inside the stack's network namespace (the
 * metadata service, the registry, the S3 server, the load balancer): its config files written
 * into its own directory, started detached with a pidfile, ready when its TCP port accepts, and
 * stopped only by that PID (checked against /proc/<pid>/cmdline naming the service directory).
 *
 * A change of argv or files restarts it; refresh reports a dead process (the next `up` restarts
 * it); delete stops it (SIGTERM, bounded wait, SIGKILL) and removes its directory unless
 * `keepDir` (a registry's blob store, for instance, is a cache owned by someone else).
 */
import * as pulumi from "@pulumi/pulumi";

export interface QemuServiceInputs {
    /** Short name for messages, e.g. `metadata`. */
    name: string;
    netns: string;
    /** Absolute directory of the service (config files, pidfile, log). */
    dir: string;
    /** argv; the literal `{dir}` is replaced by `dir` (so the cmdline names the dir: PID ownership). */
    argv: string[];
    /** Files written into `dir` before start: relative name -> content (0600). */
    files: Record<string, string>;
    /** Address and TCP port that accept once the service is up (probed from inside the namespace). */
    probe: { host: string; port: number };
    /**
     * A file (relative to `dir`) the service writes once it is fully set up, beyond accepting TCP
     * (the S3 service: bucket, user and policy made). Removed before each start; ready = probe
     * accepts AND the file exists. Absent = the probe alone.
     */
    readyFile?: string;
    /** Seconds to wait for the probe. Default 30. */
    startTimeoutSec?: number;
    /** Keep `dir` on delete. */
    keepDir?: boolean;
}

export interface QemuServiceOutputs extends QemuServiceInputs {
    pid: number;
    /** SHA-256 over argv and files. */
    digest: string;
}

function digestOf(i: QemuServiceInputs): string {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const crypto = require("crypto") as typeof import("crypto");
    return crypto.createHash("sha256").update(JSON.stringify([i.argv, i.files])).digest("hex");
}

function pidOf(dir: string): number {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    try {
        const pid = Number(fs.readFileSync(`${dir}/service.pid`, "utf8").trim());
        if (!Number.isInteger(pid) || pid <= 1) return 0;
        process.kill(pid, 0);
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir) ? pid : 0;
    } catch {
        return 0;
    }
}

/** One TCP connect from inside the namespace (bash /dev/tcp under `timeout`), true when accepted. */
function accepts(netns: string, host: string, port: number): boolean {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cp = require("child_process") as typeof import("child_process");
    const r = cp.spawnSync("ip", ["netns", "exec", netns, "timeout", "2", "bash", "-c", `exec 3<>/dev/tcp/${host}/${port}`], { stdio: "ignore", timeout: 5000 });
    return r.status === 0;
}

async function start(i: QemuServiceInputs): Promise<number> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cp = require("child_process") as typeof import("child_process");
    fs.mkdirSync(i.dir, { recursive: true, mode: 0o700 });
    for (const [rel, content] of Object.entries(i.files)) {
        const p = `${i.dir}/${rel}`;
        fs.writeFileSync(`${p}.tmp`, content, { mode: 0o600 });
        fs.renameSync(`${p}.tmp`, p);
    }
    const argv = i.argv.map((a) => a.split("{dir}").join(i.dir));
    const ready = () => !i.readyFile || fs.existsSync(`${i.dir}/${i.readyFile}`);
    if (i.readyFile) fs.rmSync(`${i.dir}/${i.readyFile}`, { force: true });
    const log = fs.openSync(`${i.dir}/service.log`, "a");
    const child = cp.spawn("ip", ["netns", "exec", i.netns, ...argv], { detached: true, stdio: ["ignore", log, log] });
    fs.closeSync(log);
    child.unref();
    const pid = child.pid ?? 0;
    if (!pid) throw new Error(`qemu service ${i.name}: could not start ${argv[0]}`);
    // `ip netns exec` execs the command: the PID is the service's own.
    fs.writeFileSync(`${i.dir}/service.pid`, `${pid}\n`, { mode: 0o600 });
    const deadline = Date.now() + (i.startTimeoutSec ?? 30) * 1000;
    while (Date.now() < deadline) {
        try {
            process.kill(pid, 0);
        } catch {
            break;
        }
        if (accepts(i.netns, i.probe.host, i.probe.port) && ready()) return pid;
        await new Promise((r) => setTimeout(r, 250));
    }
    const tail = fs.existsSync(`${i.dir}/service.log`) ? fs.readFileSync(`${i.dir}/service.log`, "utf8").split("\n").slice(-15).join("\n") : "";
    if (pidOf(i.dir)) process.kill(pid, "SIGKILL");
    throw new Error(`qemu service ${i.name}: ${argv[0]} did not accept on ${i.probe.host}:${i.probe.port}${i.readyFile ? ` (and write ${i.readyFile})` : ""} in ${i.netns} within ${i.startTimeoutSec ?? 30} s; log:\n${tail}`);
}

async function stop(dir: string): Promise<void> {
    const pid = pidOf(dir);
    if (!pid) return;
    process.kill(pid, "SIGTERM");
    for (let n = 0; n < 100 && pidOf(dir); n++) await new Promise((r) => setTimeout(r, 100));
    if (pidOf(dir) === pid) process.kill(pid, "SIGKILL");
    for (let n = 0; n < 50 && pidOf(dir); n++) await new Promise((r) => setTimeout(r, 100));
}

export const qemuServiceProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: QemuServiceOutputs, news: QemuServiceInputs) {
        const replaces = (["dir", "netns"] as const).filter((k) => olds[k] !== news[k]);
        const changed = replaces.length > 0 || olds.digest !== digestOf(news) || !pidOf(olds.dir) || JSON.stringify(olds.probe) !== JSON.stringify(news.probe) || olds.readyFile !== news.readyFile;
        return { changes: changed, replaces, deleteBeforeReplace: true };
    },
    async create(i: QemuServiceInputs) {
        await stop(i.dir); // a leftover of an interrupted run, if it is ours
        const pid = await start(i);
        return { id: `${i.netns}/${i.name}`, outs: { ...i, pid, digest: digestOf(i) } };
    },
    async read(id: string, props: QemuServiceOutputs) {
        return { id, props: { ...props, pid: pidOf(props.dir) } };
    },
    async update(_id: string, olds: QemuServiceOutputs, news: QemuServiceInputs) {
        await stop(olds.dir);
        const pid = await start(news);
        return { outs: { ...news, pid, digest: digestOf(news) } };
    },
    async delete(_id: string, props: QemuServiceOutputs) {
        await stop(props.dir);
        if (pidOf(props.dir)) throw new Error(`qemu service ${props.name}: pid ${pidOf(props.dir)} did not stop; ${props.dir} kept`);
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        if (!props.keepDir) (require("fs") as typeof import("fs")).rmSync(props.dir, { recursive: true, force: true });
    },
};

export class QemuService extends pulumi.dynamic.Resource {
    declare public readonly pid: pulumi.Output<number>;
    declare public readonly probe: pulumi.Output<{ host: string; port: number }>;
    constructor(name: string, args: { [K in keyof QemuServiceInputs]: pulumi.Input<QemuServiceInputs[K]> }, opts?: pulumi.CustomResourceOptions) {
        super(qemuServiceProvider, name, { ...args, pid: undefined, digest: undefined }, opts, "qemu", "Service");
    }
}
