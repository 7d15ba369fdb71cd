/**
 * Starts a converge agent as its own process (providers/redis-cluster/agent/main.ts) against a Lab
 * and a store (an S3Server by default), the way a node's unit would: a config file, the store keys and the `converge`
 * user's password in 0600 files. `node --import tsx` (not the tsx wrapper, whose child would
 * outlive a SIGKILL), so the PID a test signals is the agent itself.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Lab } from "../../../lab/lab";
import { S3Server } from "../../../lab/object-stores";
import { AgentConfig } from "../../../providers/redis-cluster/agent/main";
import { AgentStoreSettings } from "../../../providers/redis-cluster/agent/stores";
import { CONVERGE_UID } from "../../../templates/cloud-init/converge";

const MAIN = path.resolve(__dirname, "../../../providers/redis-cluster/agent/main.ts");

export interface AgentProcess {
    child: ChildProcess;
    /** stdout + stderr lines. */
    log: string[];
    /** The agent's own directory (config, secrets, metrics file). */
    dir: string;
}

export function startAgentProcess(o: {
    lab: Lab;
    name: string;
    prefix: string;
    /** An S3 store (versitygw) and its keys, or any store's settings and credential document. */
    s3?: S3Server;
    keys?: { accessKeyId: string; secretAccessKey: string };
    store?: AgentStoreSettings;
    credentialsDoc?: unknown;
    /** Use the VM-identity path (a metadata service at this endpoint) instead of a credentials file. */
    instance?: { endpoint: string; clientId?: string };
    /** Run this bundled agent (scripts/build-converge-agent.sh) with plain node instead of the sources through tsx. */
    bundle?: string;
    /**
     * Run the agent's image instead (podman, the converge unit's run flags: uid 10001, read-only root,
     * no capabilities; the host network, where the lab and the store listen on loopback). The agent's
     * directory, with copies of the TLS files, is owned by 10001 and mounted read-only at its own path.
     */
    image?: { ref: string; name: string; env: NodeJS.ProcessEnv };
    config?: Partial<AgentConfig>;
    env?: Record<string, string>;
}): AgentProcess {
    const dir = path.join(o.lab.dir, `agent-${o.name}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const store: AgentStoreSettings = o.store ?? { kind: "s3", endpoint: o.s3!.endpoint, bucket: o.s3!.bucket, prefix: o.prefix, region: "us-east-1" };
    if (!o.instance) fs.writeFileSync(path.join(dir, "store.json"), JSON.stringify(o.credentialsDoc ?? o.keys), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, "password"), o.lab.password("converge"), { mode: 0o600 });
    const cfg: AgentConfig = {
        holder: o.name,
        store,
        storeCredentials: o.instance ? { instance: o.instance } : { file: path.join(dir, "store.json") },
        redis: { username: "converge", passwordFile: path.join(dir, "password"), caFile: o.lab.tls.caFile, certFile: o.lab.tls.clientCertFile, keyFile: o.lab.tls.clientKeyFile },
        intervalMs: 1000,
        leaseTtlMs: 6000,
        ...o.config,
    };
    if (o.image) {
        fs.mkdirSync(path.join(dir, "tls"), { mode: 0o700 });
        for (const [k, f] of [["caFile", "ca.crt"], ["certFile", "node.crt"], ["keyFile", "node.key"]] as const) {
            fs.copyFileSync(cfg.redis[k]!, path.join(dir, "tls", f));
            cfg.redis[k] = path.join(dir, "tls", f);
        }
    }
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(cfg));
    const child = o.image ? spawnImage(o.image, dir) : spawn(process.execPath, [...(o.bundle ? [o.bundle] : ["--import", "tsx", MAIN]), path.join(dir, "config.json")], {
        stdio: ["ignore", "pipe", "pipe"],
        cwd: path.resolve(__dirname, "../../.."),
        env: { ...process.env, ...o.env },
    });
    const log: string[] = [];
    const take = (b: Buffer) => log.push(...b.toString().split("\n").filter(Boolean));
    child.stdout!.on("data", take);
    child.stderr!.on("data", take);
    return { child, log, dir };
}

function spawnImage(image: { ref: string; name: string; env: NodeJS.ProcessEnv }, dir: string): ChildProcess {
    execFileSync("chown", ["-R", `${CONVERGE_UID}:${CONVERGE_UID}`, dir]);
    const args = ["run", "--rm", "--name", image.name, "--network", "host", "--user", `${CONVERGE_UID}:${CONVERGE_UID}`, "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "-v", `${dir}:${dir}:ro`, image.ref, path.join(dir, "config.json")];
    return spawn("podman", args, { stdio: ["ignore", "pipe", "pipe"], env: image.env });
}
