/**
 * A redis_exporter process beside one local node (Debian `prometheus-redis-exporter`), started and
 * stopped by the engine like the node itself. Flags come from components/exporter-targets.ts (the
 * same as on the clouds: TLS with a client certificate, ACL user `exporter`, listener on the node's
 * loopback address); the password is a secret input passed only in the process environment
 * (REDIS_PASSWORD), never in argv or state.
 *
 * Self-contained provider (serialised into the state by the engine): it requires what it needs inside
 * its methods. Only a PID whose command line is the exporter binary and whose working directory is
 * this exporter's dir is ever signalled; waits are bounded.
 */
import * as pulumi from "@pulumi/pulumi";
import { tcpAccepts } from "./tcp-probe";
import { alive } from "./alive";

export interface ExporterProcessArgs {
    nodeName: pulumi.Input<string>;
    /** Loopback address the HTTP listener binds. */
    host: pulumi.Input<string>;
    port: pulumi.Input<number>;
    /** Working dir (created 0700, removed on delete), inside the node's data dir. */
    workDir: pulumi.Input<string>;
    binary: pulumi.Input<string>;
    /** Flags (no secrets). */
    args: pulumi.Input<pulumi.Input<string>[]>;
    /** Name of the environment variable that carries the password, and the password (secret). */
    passwordEnv: pulumi.Input<string>;
    password: pulumi.Input<string>;
}

interface Inputs {
    nodeName: string;
    host: string;
    port: number;
    workDir: string;
    binary: string;
    args: string[];
    passwordEnv: string;
    password: string;
}

interface Outputs {
    nodeName: string;
    host: string;
    port: number;
    workDir: string;
    binary: string;
    args: string[];
    pid: number;
    passwordDigest: string;
}


function owns(pid: number, workDir: string, binary: string): boolean {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const path = require("path") as typeof import("path");
    try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
        const cwd = fs.readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, "");
        return path.basename(cmd) === path.basename(binary) && cwd === workDir;
    } catch {
        return false;
    }
}

function digest(s: string): string {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const crypto = require("crypto") as typeof import("crypto");
    return crypto.createHash("sha256").update(s).digest("hex");
}

async function start(i: Inputs): Promise<number> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const path = require("path") as typeof import("path");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cp = require("child_process") as typeof import("child_process");
    if (await tcpAccepts(i.host, Number(i.port))) {
        throw new Error(`${i.nodeName} exporter: ${i.host}:${i.port} is already in use by another process; stop it or choose another redisforge:redisExporterPort`);
    }
    fs.mkdirSync(i.workDir, { recursive: true, mode: 0o700 });
    const log = fs.openSync(path.join(i.workDir, "exporter.log"), "a", 0o600);
    const child = cp.spawn(i.binary, i.args, { cwd: i.workDir, detached: true, stdio: ["ignore", log, log], env: { PATH: process.env.PATH ?? "/usr/bin:/bin", [i.passwordEnv]: i.password } });
    fs.closeSync(log);
    child.unref();
    const pid = child.pid ?? 0;
    if (!pid) throw new Error(`${i.nodeName} exporter: could not start ${i.binary} (Debian: apt-get install prometheus-redis-exporter)`);
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline && alive(pid)) {
        if ((await tcpAccepts(i.host, Number(i.port))) && owns(pid, i.workDir, i.binary)) return pid;
        await new Promise((r) => setTimeout(r, 100));
    }
    const tail = fs.existsSync(path.join(i.workDir, "exporter.log")) ? fs.readFileSync(path.join(i.workDir, "exporter.log"), "utf8").split("\n").slice(-10).join("\n") : "";
    if (alive(pid) && owns(pid, i.workDir, i.binary)) process.kill(pid, "SIGKILL");
    throw new Error(`${i.nodeName} exporter did not listen on ${i.host}:${i.port} within 15 s:\n${tail}`);
}

async function stop(o: Outputs): Promise<void> {
    if (!alive(o.pid) || !owns(o.pid, o.workDir, o.binary)) return;
    process.kill(o.pid, "SIGTERM");
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && alive(o.pid)) await new Promise((r) => setTimeout(r, 50));
    if (alive(o.pid) && owns(o.pid, o.workDir, o.binary)) process.kill(o.pid, "SIGKILL");
}

function outputsOf(i: Inputs, pid: number): Outputs {
    return { nodeName: i.nodeName, host: i.host, port: Number(i.port), workDir: i.workDir, binary: i.binary, args: i.args, pid, passwordDigest: digest(i.password) };
}

const exporterProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: Outputs, news: Inputs) {
        const running = alive(olds.pid) && owns(olds.pid, olds.workDir, olds.binary);
        const replaces = olds.workDir !== news.workDir ? ["workDir"] : [];
        const changed = !running || replaces.length > 0 || olds.host !== news.host || Number(olds.port) !== Number(news.port) || olds.binary !== news.binary || JSON.stringify(olds.args) !== JSON.stringify(news.args) || olds.passwordDigest !== digest(news.password);
        return { changes: changed, replaces, deleteBeforeReplace: true };
    },
    async create(inputs: Inputs) {
        const pid = await start(inputs);
        return { id: `${inputs.host}:${inputs.port}`, outs: outputsOf(inputs, pid) };
    },
    async read(id: string, props: Outputs) {
        const running = alive(props.pid) && owns(props.pid, props.workDir, props.binary);
        return { id, props: { ...props, pid: running ? props.pid : 0 } };
    },
    async update(_id: string, olds: Outputs, news: Inputs) {
        await stop(olds);
        const pid = await start(news);
        return { outs: outputsOf(news, pid) };
    },
    async delete(_id: string, props: Outputs) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const fs = require("fs") as typeof import("fs");
        await stop(props);
        fs.rmSync(props.workDir, { recursive: true, force: true });
    },
};

export class ExporterProcess extends pulumi.dynamic.Resource {
    declare public readonly host: pulumi.Output<string>;
    declare public readonly port: pulumi.Output<number>;
    declare public readonly pid: pulumi.Output<number>;

    constructor(name: string, args: ExporterProcessArgs, opts?: pulumi.CustomResourceOptions) {
        super(exporterProvider, name, { ...args, password: pulumi.secret(args.password), pid: undefined, passwordDigest: undefined }, opts, "local", "ExporterProcess");
    }
}
