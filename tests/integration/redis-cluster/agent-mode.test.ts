/**
 * The RedisCluster resource in `agent` formation mode, through the dynamic provider's own CRUD
 * functions, against real TLS redis-servers, a real S3 server (versitygw) and two converge agents
 * running as processes (providers/redis-cluster/agent/main.ts) as the `converge` ACL user.
 *
 * The deployer side is given a WRONG admin password and no client certificate: had it connected to
 * a node, it would have failed authentication. Everything it knows comes from the store.
 *   create   -> spec published, the agent forms 3 x 1, outputs from the agent's observation
 *   update   -> a spec the nodes cannot satisfy (a node that does not answer) fails the update with
 *               the agent's own diagnosis; a good one (4 shards) reshapes with the data
 *   read     -> after an automatic failover (heal off) shows the crowded masters; diff asks for an
 *               update with no input changed; update re-spreads them
 */
import { ChildProcess } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { Lab, freePort } from "../../../lab/lab";
import { randomSecret, S3Server } from "../../../lab/object-stores";
import { startAgentProcess } from "./agent-process";
import { storeOf } from "../../../providers/redis-cluster/agent/deployer";
import { checkCluster } from "../../../providers/redis-cluster/executor";
import { RedisClusterInputs, redisClusterProvider } from "../../../providers/redis-cluster/provider";
import { labCreds, labNodes, labSpec, loadKeys, startLab, verifyKeys } from "./helpers";

jest.setTimeout(300000);

const KEYS = 20_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PREFIX = "converge/agent-mode";
const agentKeys = { accessKeyId: "agent-mode", secretAccessKey: randomSecret() };
const deployerKeys = { accessKeyId: "root-agent-mode", secretAccessKey: randomSecret() };

let lab: Lab;
let s3: S3Server;
const children: ChildProcess[] = [];
const logs = new Map<string, string[]>();

function startAgent(name: string): void {
    const a = startAgentProcess({ lab, s3, name, keys: agentKeys, prefix: PREFIX, config: { convergeTimeoutMs: 30000 } });
    logs.set(name, a.log);
    children.push(a.child);
}

function inputs(indexes: number[], shards: number, extra: Partial<RedisClusterInputs> = {}): RedisClusterInputs {
    return {
        nodes: labNodes(lab, indexes),
        shards,
        replicasPerShard: 1,
        adminUsername: "admin",
        adminPassword: "not-the-admin-password-the-deployer-never-connects",
        caCert: fs.readFileSync(lab.tls.caFile, "utf8"),
        deleteAction: "keep",
        formation: "agent",
        agentStore: { kind: "s3", endpoint: s3.endpoint, bucket: s3.bucket, prefix: PREFIX, region: "us-east-1" },
        agentStoreCredentials: JSON.stringify(deployerKeys),
        heal: false,
        agentWaitTimeoutSec: 180,
        convergeTimeoutSec: 30,
        ...extra,
    };
}

beforeAll(async () => {
    lab = await startLab("agentmode", 8);
    s3 = await S3Server.start({ dir: path.join(lab.dir, "s3"), root: deployerKeys, bucket: "redisforge-converge", backupUser: agentKeys });
    startAgent("node-a");
    startAgent("node-b");
});
afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await sleep(200);
    await s3?.stop();
    await lab?.stop({ removeData: true });
});

test("check: agent mode names what it needs and refuses what it cannot do from outside the network", async () => {
    const bad = await redisClusterProvider.check!({}, { ...inputs([0, 1, 2, 3, 4, 5], 3), agentStore: undefined, agentStoreCredentials: "nope", deleteAction: "reset" } as unknown as Record<string, unknown>);
    const reasons = bad.failures!.map((f) => `${f.property}: ${f.reason}`).join("\n");
    expect(reasons).toMatch(/agentStore: agent mode needs agentStore/);
    expect(reasons).toMatch(/agentStoreCredentials: agentStoreCredentials must be JSON/);
    expect(reasons).toMatch(/deleteAction: deleteAction "reset" runs on the nodes from the deployer/);
    expect(reasons).not.toContain(deployerKeys.secretAccessKey);
    const good = await redisClusterProvider.check!({}, inputs([0, 1, 2, 3, 4, 5], 3) as unknown as Record<string, unknown>);
    expect(good.failures).toEqual([]);
});

test("create: the agent forms the cluster; the outputs are what it observed", async () => {
    const r = await redisClusterProvider.create!(inputs([0, 1, 2, 3, 4, 5], 3) as unknown as Record<string, unknown>);
    const outs = r.outs as Record<string, unknown>;
    expect(outs.state).toBe("ok");
    expect((outs.zonesOfMasters as string[]).slice().sort()).toEqual(["zone-a", "zone-b", "zone-c"]);
    expect(outs.slotsCovered).toBe(16384);
    expect(outs.pendingRepairs).toEqual([]);
    expect((await checkCluster(labSpec(lab, [0, 1, 2, 3, 4, 5], 3, 1), labCreds(lab))).state).toBe("ok");
    await loadKeys(lab, 0, KEYS);
});

test("update: a spec the nodes cannot satisfy fails with the agent's own diagnosis; a good one reshapes with the data", async () => {
    const dead = { id: "ghost", host: "127.0.0.1", port: await freePort("127.0.0.1"), zone: "zone-a" };
    const bad = { ...inputs([0, 1, 2, 3, 4, 5], 3), nodes: [...labNodes(lab, [0, 1, 2, 3, 4, 5]), dead] };
    await expect(redisClusterProvider.update!("id", {}, bad as unknown as Record<string, unknown>)).rejects.toThrow(/the converge agent node-[ab] failed generation \d+: RedisCluster preflight failed, nothing was changed:[\s\S]*ghost/);
    const r = await redisClusterProvider.update!("id", {}, inputs([0, 1, 2, 3, 4, 5, 6, 7], 4) as unknown as Record<string, unknown>);
    const outs = r.outs as Record<string, unknown>;
    expect(outs.state).toBe("ok");
    expect(outs.masters as unknown[]).toHaveLength(4);
    expect(await verifyKeys(lab, 0, KEYS)).toEqual([]);
});

test("the deployer's connection bound reaches the agent through the spec (a node that accepts TCP and never answers)", async () => {
    // A slow substrate (the qemu cloud) scales connectTimeoutSec; the agent must use it, not its 5 s default.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    try {
        const ghost = { id: "silent", host: "127.0.0.1", port: (silent.address() as net.AddressInfo).port, zone: "zone-a" };
        const bad = { ...inputs([0, 1, 2, 3, 4, 5, 6, 7], 4), nodes: [...labNodes(lab, [0, 1, 2, 3, 4, 5, 6, 7]), ghost], connectTimeoutSec: 2 };
        await expect(redisClusterProvider.update!("id", {}, bad as unknown as Record<string, unknown>)).rejects.toThrow(/silent 127\.0\.0\.1:\d+: cannot connect as ACL user "converge": connect ETIMEDOUT after 2000 ms/);
        const spec = JSON.parse((await storeOf(inputs([], 3).agentStore!, deployerKeys).read("spec.json"))!.body);
        expect(spec.connectTimeoutMs).toBe(2000);
    } finally {
        silent.close();
    }
    // The good spec again: the next steps start from a converged generation.
    expect(((await redisClusterProvider.update!("id", {}, inputs([0, 1, 2, 3, 4, 5, 6, 7], 4) as unknown as Record<string, unknown>)).outs as { state: string }).state).toBe("ok");
});

test("refresh shows drift after a failover (heal off), diff asks for an update, update re-spreads the masters", async () => {
    const spec = labSpec(lab, [0, 1, 2, 3, 4, 5, 6, 7], 4, 1);
    const i = inputs([0, 1, 2, 3, 4, 5, 6, 7], 4);
    const before = await checkCluster(spec, labCreds(lab));
    // A master alone in its zone: its failover leaves that zone without a master (4 masters over 3 zones).
    const count = (z?: string) => before.masters.filter((m) => m.zone === z).length;
    const victimAddr = before.masters.find((m) => count(m.zone) === 1)!.address;
    const victim = lab.nodes.findIndex((n) => `${n.host}:${n.port}` === victimAddr);
    await lab.killNode(victim);
    const heir = before.replicas.find((r) => r.master === victimAddr)!.address;
    const promoted = async () => {
        const st = await checkCluster(spec, labCreds(lab), { connectTimeoutMs: 1000 });
        return st.masters.some((m) => m.address === heir) && st.slotsCovered === 16384;
    };
    for (let k = 0; k < 240 && !(await promoted()); k++) await sleep(250);
    expect(await promoted()).toBe(true);
    await lab.startNode(victim);
    // The agent (heal off) only observes: wait until its status shows the crowding.
    let props: Record<string, unknown> = {};
    for (let k = 0; k < 120; k++) {
        props = (await redisClusterProvider.read!("id", { ...i } as unknown as Record<string, unknown>)).props as Record<string, unknown>;
        if ((props.problems as string[]).some((p) => /masters are crowded/.test(p))) break;
        await sleep(500);
    }
    if (!(props.problems as string[]).some((p) => /masters are crowded/.test(p))) {
        const raw = await storeOf(i.agentStore!, deployerKeys).read("status.json");
        throw new Error(`no crowding reported; outputs ${JSON.stringify({ zones: props.zonesOfMasters, problems: props.problems })}; live ${JSON.stringify((await checkCluster(spec, labCreds(lab))).problems)}; status.json ${raw?.body.slice(0, 600)}; agents:\n${[...logs].map(([n, l]) => `--- ${n}\n${l.slice(-12).join("\n")}`).join("\n")}`);
    }
    const d = await redisClusterProvider.diff!("id", { ...i, ...props } as unknown as Record<string, unknown>, i as unknown as Record<string, unknown>);
    expect(d.changes).toBe(true);
    const r = await redisClusterProvider.update!("id", props, i as unknown as Record<string, unknown>);
    const outs = r.outs as Record<string, unknown>;
    expect(outs.problems).toEqual([]);
    expect(new Set(outs.zonesOfMasters as string[]).size).toBe(3);
    expect(await verifyKeys(lab, 0, KEYS)).toEqual([]);
    // Nobody used the deployer's wrong admin password: no node logged a failed AUTH for admin.
    for (const n of lab.nodes) {
        const acl = await lab.cli(n.index, ["ACL", "LOG"]);
        expect(acl).not.toMatch(/admin/);
    }
});
