/**
 * The qemu cloud's buckets for real, without VMs: a stack namespace (lab/vm/network.ts) with the
 * adapter's firewall plan, the metadata service and the stack's S3 service started by the qemu
 * resources' own providers from the adapter's own specs; the backup bucket and the converge store
 * bucket made, and the grants written, by the QemuS3Bucket / QemuBucketGrant providers from this
 * (the deploying) machine over the host link; and a "Redis VM" that is a namespace on the bridge
 * whose source address is a Redis VM's (the metadata service's identity). From there:
 * - the real rclone, with the exact rclone.conf a qemu Redis VM renders (env_auth: keys from the
 *   metadata service over the EC2 instance-role protocol), writes, reads and lists backups, and
 *   may not delete;
 * - the converge agent's own store code (openStore with the VM identity, converge-store-probe.ts)
 *   reads the spec the deployer published, writes status and lease, and is refused writing the
 *   spec, any other key, and deleting; removing one identity's grant keeps another's; removing the
 *   last one revokes the access.
 * An Envoy's address gets nothing. Then destroy leaves no process and no directory.
 */
import { spawn, spawnSync } from "child_process";
import { connect as netConnect } from "net";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { addExtraNamespace, addServiceAddress, createStackNetwork, deleteStackNetwork, ExtraNamespace, StackNetwork } from "../../../lab/vm/network";
import { setFirewall } from "../../../lab/vm/firewall";
import { alive, runIn } from "../../../lab/vm/exec";
import { backupStatements, convergeStatements, s3AdminCall } from "../../../providers/object-store/s3-admin";
import { metadataServiceSpec, s3GrantsDirOf, s3KeysFileOf, s3ServiceSpec, settings, storeDirOf } from "../../../providers/qemu/index";
import { addressFor, firewallPlan, METADATA_IP, s3Endpoint, SERVICE_HOSTS } from "../../../providers/qemu/plan";
import { qemuBucketGrantProvider, QemuBucketGrantInputs, qemuS3BucketProvider, QemuS3BucketInputs } from "../../../providers/qemu/resources/bucket";
import { qemuServiceProvider, QemuServiceInputs } from "../../../providers/qemu/resources/service";
import { BucketKeys, qemuBucketKeysProvider, qemuIdentityProvider } from "../../../providers/qemu/resources/store";
import { QEMU_S3_REGION } from "../../../providers/qemu/s3-grants";
import { AGENT_DOC_ACCESS } from "../../../providers/redis-cluster/agent/store";
import { buildRcloneConfig, RCLONE_REMOTE_NAME } from "../../../templates/backup";
import { processesUsing } from "../../helpers/processes";

jest.setTimeout(120000);

const BUCKET = "bk-backups-bucket";
const CONVERGE = "bk-converge";
const PREFIX = "converge/bk";
const root = fs.mkdtempSync(path.join(os.tmpdir(), "rf-qemu-bucket-"));
const stateDir = path.join(root, "state");
let net: StackNetwork;
let metadata: { inputs: QemuServiceInputs; outs: Record<string, unknown> } | undefined;
let s3: { inputs: QemuServiceInputs; outs: Record<string, unknown> } | undefined;
let keysFile = "";
let keysDigest = "";
let node: ExtraNamespace;
let envoy: ExtraNamespace;
let conf = "";
const buckets: QemuS3BucketInputs[] = [];
const grants: QemuBucketGrantInputs[] = [];

/** Gives namespace x the address `ip` and makes it the source of everything x sends (a VM with that address). */
function becomeVm(x: ExtraNamespace, ip: string): void {
    runIn(x.netns, "ip", ["addr", "add", `${ip}/32`, "dev", "eth0"]);
    runIn(x.netns, "ip", ["route", "replace", "default", "via", x.segment.gateway, "src", ip]);
}

/** rclone in namespace `ns` with the rendered rclone.conf; no credential in its environment (env_auth finds the metadata service). */
function rclone(ns: string, args: string[], input?: string): { code: number; out: string } {
    const home = path.join(root, "home");
    fs.mkdirSync(home, { recursive: true });
    const r = spawnSync("ip", ["netns", "exec", ns, "rclone", "--config", conf, "--retries", "1", "--low-level-retries", "1", "--contimeout", "5s", "--timeout", "15s", ...args], {
        input,
        encoding: "utf8",
        timeout: 60000,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home },
    });
    return { code: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

beforeAll(async () => {
    net = createStackNetwork({ zones: ["vm-a", "vm-b", "vm-c"] });
    // What QemuNetwork adds: the metadata address and the service addresses on the bridge.
    runIn(net.netns, "ip", ["addr", "add", `${METADATA_IP}/32`, "dev", net.bridge]);
    for (const n of Object.values(SERVICE_HOSTS)) addServiceAddress(net, n);
    // The adapter's firewall with no component rules: its own VM -> metadata / registry / S3 rules.
    setFirewall(net, firewallPlan({ slot: net.slot, zoneCount: 3, rules: [], redisPort: 6379 }));
    node = addExtraNamespace(net, "node0", 0);
    becomeVm(node, addressFor(net.slot, 0, "redis", "bk-node0"));
    envoy = addExtraNamespace(net, "envoy0", 1);
    becomeVm(envoy, addressFor(net.slot, 1, "envoy", "bk-envoy0"));

    const storeDir = storeDirOf(stateDir);
    const m = { ...metadataServiceSpec(stateDir), netns: net.netns };
    metadata = { inputs: m, outs: (await qemuServiceProvider.create!(m)).outs };
    const keys = await qemuBucketKeysProvider.create!({ file: s3KeysFileOf(stateDir) });
    keysFile = keys.outs.file;
    keysDigest = keys.outs.digest;
    const s = { ...s3ServiceSpec({ stateDir, slot: net.slot, keysFile, keysDigest }), netns: net.netns };
    s3 = { inputs: s, outs: (await qemuServiceProvider.create!(s)).outs };
    // What createBucket and createIdentity make, from this machine over the host link: the two
    // buckets, and the grants of two Redis identities (the same statements: one VM principal).
    for (const bucket of [BUCKET, CONVERGE]) {
        const b = { endpoint: s3Endpoint(net.slot), keysFile, keysDigest, bucket };
        await qemuS3BucketProvider.create!(b);
        buckets.push(b);
    }
    for (const identity of ["bk-node0-identity", "bk-node1-identity"]) {
        const base = { endpoint: s3Endpoint(net.slot), keysFile, keysDigest, grantsDir: s3GrantsDirOf(stateDir), identity };
        grants.push({ ...base, bucket: BUCKET, statements: backupStatements(`arn:aws:s3:::${BUCKET}`) });
        grants.push({ ...base, bucket: CONVERGE, statements: convergeStatements(`arn:aws:s3:::${CONVERGE}`, { prefix: PREFIX, ...AGENT_DOC_ACCESS }) });
    }
    await Promise.all(grants.map((g) => qemuBucketGrantProvider.create!(g)));
    // What createIdentity + QemuVm write: the node's identity has grants, the Envoy's has none.
    await qemuIdentityProvider.create!({ storeDir, name: "bk-node0-identity", secrets: [], s3Keys: { file: keysFile, digest: keysDigest } });
    await qemuIdentityProvider.create!({ storeDir, name: "bk-envoy-identity", secrets: [] });
    fs.mkdirSync(path.join(storeDir, "members"), { recursive: true });
    fs.writeFileSync(path.join(storeDir, "members", addressFor(net.slot, 0, "redis", "bk-node0")), "bk-node0-identity\n");
    fs.writeFileSync(path.join(storeDir, "members", addressFor(net.slot, 1, "envoy", "bk-envoy0")), "bk-envoy-identity\n");

    conf = path.join(root, "rclone.conf");
    fs.writeFileSync(conf, buildRcloneConfig({ cloud: "qemu", endpoint: s3Endpoint(net.slot) }));
});

afterAll(async () => {
    for (const svc of [s3, metadata]) if (svc) await qemuServiceProvider.delete!("id", svc.outs).catch(() => undefined);
    // A failed destroy test may leave a process this test started (its command line names our temp dir).
    for (const pid of processesUsing(stateDir)) process.kill(pid, "SIGKILL");
    if (net) deleteStackNetwork(net);
    fs.rmSync(root, { recursive: true, force: true });
});

const remote = (p = "") => `${RCLONE_REMOTE_NAME}:${BUCKET}${p}`;

test("keys: generated by the provider, 0600 in the state dir, in no state and no log", () => {
    const keys = JSON.parse(fs.readFileSync(keysFile, "utf8")) as BucketKeys;
    expect(fs.statSync(keysFile).mode & 0o777).toBe(0o600);
    const secrets = [keys.root.secretAccessKey, keys.vm.secretAccessKey];
    const state = JSON.stringify([metadata!.outs, s3!.outs, keysDigest, buckets, grants]);
    const logs = ["service.log", "versitygw.log"].map((f) => fs.readFileSync(path.join(s3!.inputs.dir, f), "utf8")).join("\n");
    for (const k of secrets) {
        expect(state).not.toContain(k);
        expect(logs).not.toContain(k);
    }
    // Only the identity with grants has the VM principal's key (the root key is in none).
    const ids = path.join(storeDirOf(stateDir), "identities");
    expect(JSON.parse(fs.readFileSync(path.join(ids, "bk-node0-identity.json"), "utf8")).s3).toEqual({ accessKey: keys.vm.accessKeyId, secretKey: keys.vm.secretAccessKey });
    expect(JSON.parse(fs.readFileSync(path.join(ids, "bk-envoy-identity.json"), "utf8")).s3).toBeUndefined();
    expect(fs.readFileSync(path.join(ids, "bk-node0-identity.json"), "utf8")).not.toContain(keys.root.secretAccessKey);
});

test("a Redis VM's rclone (rendered rclone.conf, env_auth via the metadata service) writes, reads and lists; delete is refused", () => {
    const put = rclone(node.netns, ["rcat", remote("/bk-node0/20260101T000000Z/nodes.conf")], "backup bytes\n");
    expect(put).toEqual({ code: 0, out: "" });
    expect(rclone(node.netns, ["cat", remote("/bk-node0/20260101T000000Z/nodes.conf")])).toEqual({ code: 0, out: "backup bytes\n" });
    const ls = rclone(node.netns, ["lsf", "-R", remote("/bk-node0")]);
    expect({ code: ls.code, lines: ls.out.split("\n").filter(Boolean).sort() }).toEqual({ code: 0, lines: ["20260101T000000Z/", "20260101T000000Z/nodes.conf"] });
    const del = rclone(node.netns, ["deletefile", remote("/bk-node0/20260101T000000Z/nodes.conf")]);
    expect(del.code).not.toBe(0);
    expect(del.out).toMatch(/AccessDenied/);
    // Still there.
    expect(rclone(node.netns, ["cat", remote("/bk-node0/20260101T000000Z/nodes.conf")])).toEqual({ code: 0, out: "backup bytes\n" });
    // The keys came from the metadata service, asked from the node's own address.
    const asked = fs.readFileSync(path.join(metadata!.inputs.dir, "service.log"), "utf8");
    expect(asked).toContain(`GET /latest/meta-data/iam/security-credentials/bk-node0-identity from ${addressFor(net.slot, 0, "redis", "bk-node0")}: 200`);
});

test("with the backup script's own retry flags, rclone gets its IMDSv2 token on the first PUT (one token request per call, not a retry storm)", () => {
    // The flags redisforge-backup.sh gives every rclone call (read from the script, so they stay in step).
    const script = fs.readFileSync(path.join(__dirname, "../../../templates/backup/redisforge-backup.sh"), "utf8");
    const flags = /^rclone_flags=\(([^)]*)\)$/m.exec(script)![1].split(/\s+/).filter(Boolean);
    expect(flags).toEqual(expect.arrayContaining(["--low-level-retries", "10"]));
    const log = path.join(metadata!.inputs.dir, "service.log");
    const from = addressFor(net.slot, 0, "redis", "bk-node0");
    const puts = () => fs.readFileSync(log, "utf8").split("\n").filter((l) => l.includes(`PUT /latest/api/token from ${from}:`));
    const before = puts().length;
    const ls = rclone(node.netns, [...flags, "lsf", remote("/bk-node0")]);
    expect(ls).toEqual({ code: 0, out: "20260101T000000Z/\n" });
    // The AWS SDK in rclone rejects a token response without the TTL header and asks again with
    // back-off (11 PUTs and ~60 s per call under emulation before this was fixed).
    expect(puts().slice(before)).toEqual([expect.stringMatching(/: 200$/)]);
});

test("an Envoy's address gets no keys and no way to the S3 server", () => {
    const r = rclone(envoy.netns, ["lsf", remote()]);
    expect(r.code).not.toBe(0);
    // Reached the S3 port at all? The firewall resets the connection first.
    const tcp = spawnSync("ip", ["netns", "exec", envoy.netns, "timeout", "3", "bash", "-c", `exec 3<>/dev/tcp/${s3!.inputs.probe.host}/${s3!.inputs.probe.port}`]);
    expect(tcp.status).not.toBe(0);
});

/** The agent's store code in namespace `ns` (the VM's address): one outcome per step. */
function probe(ns: string, steps: string[]): Record<string, string> {
    const settingsJson = JSON.stringify({ kind: "s3", endpoint: s3Endpoint(net.slot), bucket: CONVERGE, prefix: PREFIX, region: QEMU_S3_REGION });
    const r = spawnSync("ip", ["netns", "exec", ns, process.execPath, settings().tsx, path.join(__dirname, "converge-store-probe.ts"), settingsJson, ...steps], {
        encoding: "utf8",
        timeout: 60000,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: path.join(root, "home") },
    });
    if (r.status !== 0) throw new Error(`probe exited ${r.status}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, string>;
}

const deployer = () => ({ endpoint: s3Endpoint(net.slot), region: QEMU_S3_REGION, root: (JSON.parse(fs.readFileSync(keysFile, "utf8")) as BucketKeys).root });

test("converge store: the deployer publishes the spec over the host link; the agent's code on a Redis VM reads it, writes status and lease, and nothing else", async () => {
    // The deployer (this process, the host link's address) writes the spec with the administrator's key.
    const put = await s3AdminCall(deployer(), "PUT", `/${CONVERGE}/${PREFIX}/spec.json`, '{"generation":1}');
    expect(put.status).toBe(200);
    const r = probe(node.netns, ["read:spec.json", "read:lease.json", "create:lease.json", "create:lease.json", "write:status.json", "read:status.json", "write:spec.json", "write:other.json", "read:other.json"]);
    expect(r).toEqual({
        "read:spec.json": 'ok {"generation":1}',
        "read:lease.json": "absent", // 404, not 403: the agent tells "no lease yet" from "refused"
        "create:lease.json": "conflict", // the second create-only write of the same key
        "write:status.json": "ok",
        "read:status.json": 'ok {"by":"probe","key":"status.json"}',
        "write:spec.json": expect.stringMatching(/PUT answered 403 AccessDenied/),
        "write:other.json": expect.stringMatching(/PUT answered 403 AccessDenied/),
        "read:other.json": expect.stringMatching(/GET answered 403 AccessDenied/),
    });
    // The first create of the lease won (the steps above ran in order: the first one wrote it).
    expect((await s3AdminCall(deployer(), "GET", `/${CONVERGE}/${PREFIX}/lease.json`)).body).toBe('{"by":"probe","key":"lease.json"}');
    // Delete is denied outright, with the VM's own key (the rclone remote of the same identity).
    const del = rclone(node.netns, ["deletefile", `${RCLONE_REMOTE_NAME}:${CONVERGE}/${PREFIX}/status.json`]);
    expect(del.code).not.toBe(0);
    expect(del.out).toMatch(/AccessDenied/);
    // The Envoy's address: no keys from the metadata service, and the firewall resets the S3 port.
    expect(probe(envoy.netns, ["read:spec.json"])["read:spec.json"]).toMatch(/security-credentials\/ answered 404|ECONNREFUSED|ECONNRESET/);
});

test("grants: removing one identity's keeps the other's (same principal); removing the last revokes the converge store, not the backups", async () => {
    const conv = grants.filter((g) => g.bucket === CONVERGE);
    await qemuBucketGrantProvider.delete!("id", conv[1]);
    expect(probe(node.netns, ["read:spec.json"])).toEqual({ "read:spec.json": 'ok {"generation":1}' });
    await qemuBucketGrantProvider.delete!("id", conv[0]);
    expect(probe(node.netns, ["read:spec.json", "write:status.json"])).toEqual({
        "read:spec.json": expect.stringMatching(/GET answered 403 AccessDenied/),
        "write:status.json": expect.stringMatching(/PUT answered 403 AccessDenied/),
    });
    expect(fs.existsSync(path.join(s3GrantsDirOf(stateDir), CONVERGE))).toBe(false); // its last grant went
    // The backup bucket's grants are untouched.
    expect(rclone(node.netns, ["cat", remote("/bk-node0/20260101T000000Z/nodes.conf")])).toEqual({ code: 0, out: "backup bytes\n" });
    // Granted again (the next `up`): the agent reads the spec again.
    await qemuBucketGrantProvider.create!(conv[0]);
    expect(probe(node.netns, ["read:spec.json"])).toEqual({ "read:spec.json": 'ok {"generation":1}' });
});

/** Whether this machine (the deployer, over the host link) opens a TCP connection to host:port within 3 s. */
function connects(host: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const c = netConnect({ host, port, timeout: 3000 }, () => (c.destroy(), resolve(true)));
        c.on("error", () => resolve(false));
        c.on("timeout", () => (c.destroy(), resolve(false)));
    });
}

test("formation agent's firewall: the deploying machine reaches the S3 API and no node (direct: the Redis port too)", async () => {
    const ip = addressFor(net.slot, 0, "redis", "bk-node0");
    // What redis-server would be on the node: a listener on its TLS port, in the node's namespace.
    const listener = spawn("ip", ["netns", "exec", node.netns, "python3", "-c", `import socket,time\ns=socket.socket()\ns.bind(("${ip}",6379))\ns.listen()\ntime.sleep(60)`], { stdio: "ignore" });
    try {
        let up = false;
        for (let i = 0; i < 50 && !up; i++) {
            up = await connects(ip, 6379);
            if (!up) await new Promise((r) => setTimeout(r, 100));
        }
        expect({ direct: up }).toEqual({ direct: true }); // the plan loaded in beforeAll: formation direct
        setFirewall(net, firewallPlan({ slot: net.slot, zoneCount: 3, rules: [], redisPort: 6379, deployerReachesNodes: false }));
        expect({ agent: await connects(ip, 6379) }).toEqual({ agent: false });
        expect((await s3AdminCall(deployer(), "GET", `/${CONVERGE}?list-type=2`)).status).toBe(200);
    } finally {
        listener.kill("SIGKILL");
        setFirewall(net, firewallPlan({ slot: net.slot, zoneCount: 3, rules: [], redisPort: 6379 }));
    }
});

test("a restart (update with the same keys) serves the same bucket, user and objects", async () => {
    const before = s3!.outs.pid as number;
    s3 = { inputs: s3!.inputs, outs: (await qemuServiceProvider.update!("id", s3!.outs, s3!.inputs)).outs };
    expect(s3.outs.pid).not.toBe(before);
    expect(alive(before)).toBe(false);
    expect(rclone(node.netns, ["cat", remote("/bk-node0/20260101T000000Z/nodes.conf")])).toEqual({ code: 0, out: "backup bytes\n" });
});

test("destroy: no process and no directory left", async () => {
    const pids = [s3!.outs.pid as number, metadata!.outs.pid as number];
    const versitygw = Number(fs.readFileSync(path.join(s3!.inputs.dir, "ready"), "utf8"));
    expect(alive(versitygw)).toBe(true);
    // The engine's order: grants, then buckets (a bucket with objects is kept: it goes with the data), then the service.
    await Promise.all(grants.filter((g) => g.bucket === BUCKET).map((g) => qemuBucketGrantProvider.delete!("id", g)));
    await qemuBucketGrantProvider.delete!("id", grants.filter((g) => g.bucket === CONVERGE)[0]);
    const empty = { ...buckets[0], bucket: "bk-empty" };
    await qemuS3BucketProvider.create!(empty);
    await qemuS3BucketProvider.delete!("id", empty);
    expect(fs.existsSync(path.join(s3!.inputs.dir, "data", "bk-empty"))).toBe(false);
    expect(fs.readdirSync(s3GrantsDirOf(stateDir))).toEqual([]);
    for (const b of buckets) await qemuS3BucketProvider.delete!("id", b);
    expect(fs.existsSync(path.join(s3!.inputs.dir, "data", BUCKET))).toBe(true);
    await qemuServiceProvider.delete!("id", s3!.outs);
    await qemuBucketKeysProvider.delete!("id", { file: keysFile });
    await qemuServiceProvider.delete!("id", metadata!.outs);
    for (const p of [...pids, versitygw]) expect({ pid: p, alive: alive(p) }).toEqual({ pid: p, alive: false });
    expect(processesUsing(stateDir)).toEqual([]);
    expect(fs.existsSync(s3!.inputs.dir)).toBe(false);
    expect(fs.existsSync(metadata!.inputs.dir)).toBe(false);
    expect(fs.existsSync(keysFile)).toBe(false);
    s3 = undefined;
    metadata = undefined;
});
