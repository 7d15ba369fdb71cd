/**
 * The converge agent (providers/redis-cluster/agent) on real TLS redis-servers and a real S3 server
 * (versitygw), the agents as their own processes (`tsx providers/redis-cluster/agent/main.ts`):
 *
 * 1. two agents start before any spec: exactly one takes the lease (conditional writes on
 *    lease.json); the deployer publishes spec generation 1 (3 x 1 over zone-a/b/c) and the holder
 *    forms the cluster; status.json reports "converged", the applied generation and the topology;
 * 2. healing: the master of zone-a is SIGKILLed and restarted, the cluster fails it over to its
 *    replica in another zone (masters crowd one zone); the agent re-spreads them by a planned
 *    failover without any deploy, no slot moves, every key reads back;
 * 3. the leader dies mid-migration: generation 2 adds a fourth shard (two more nodes) with keys;
 *    the leader is SIGKILLed while it moves slots; the other agent takes the lease once it has
 *    seen it unchanged for its ttl, finishes the migration, every key reads back;
 * 4. lost capacity (a node down) is reported in `needsDecision`; the node is not forgotten.
 * The agents' store identity may put/get/list, not delete (the S3 server enforces it).
 */
import * as fs from "fs";
import * as path from "path";
import { Lab } from "../../../lab/lab";
import { randomSecret, S3Server } from "../../../lab/object-stores";
import { checkCluster, converge } from "../../../providers/redis-cluster/executor";
import { HEAL_STEP_KINDS } from "../../../providers/redis-cluster/agent/agent";
import { S3Store } from "../../../providers/redis-cluster/agent/s3-store";
import { AgentSpecDoc, AgentStatusDoc, LEASE_KEY, LeaseDoc, SPEC_KEY, STATUS_KEY } from "../../../providers/redis-cluster/agent/store";
import { AgentProcess, startAgentProcess } from "./agent-process";
import { ClusterStatus } from "../../../providers/redis-cluster/types";
import { labCreds, labSpec, loadKeys, slotOwners, startLab, verifyKeys } from "./helpers";

jest.setTimeout(420000);

const KEYS = 30_000;
const TTL_MS = 6000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let lab: Lab;
let s3: S3Server;
let deployer: S3Store; // root: writes the spec
let reader: S3Store;
const agents = new Map<string, AgentProcess>();

function startAgent(name: string): void {
    agents.set(
        name,
        startAgentProcess({
            lab,
            s3,
            name,
            keys: agentKeys,
            prefix: "converge/agent-test",
            config: { leaseTtlMs: TTL_MS, convergeTimeoutMs: 60000, migrateSlotsPerRound: 64, metricsFile: path.join(lab.dir, `agent-${name}`, "redisforge_converge.prom") },
            env: { REDISFORGE_AGENT_FREEZE_AT: "^(migrate-round|atomic-import) ", REDISFORGE_AGENT_FREEZE_NTH: "2", REDISFORGE_AGENT_FREEZE_MARKER: path.join(lab.dir, "froze") },
        }),
    );
}

async function stopAgent(name: string, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const a = agents.get(name);
    if (!a || a.child.exitCode !== null || a.child.signalCode !== null) return;
    const exited = new Promise((r) => a.child.once("exit", r));
    a.child.kill(signal);
    await Promise.race([exited, sleep(10000)]);
    if (a.child.exitCode === null && a.child.signalCode === null) {
        a.child.kill("SIGKILL");
        await Promise.race([exited, sleep(5000)]);
    }
}

const agentKeys = { accessKeyId: "agent-test", secretAccessKey: randomSecret() };

async function status(): Promise<AgentStatusDoc | undefined> {
    const s = await reader.read(STATUS_KEY);
    return s ? (JSON.parse(s.body) as AgentStatusDoc) : undefined;
}

async function lease(): Promise<LeaseDoc | undefined> {
    const s = await reader.read(LEASE_KEY);
    return s ? (JSON.parse(s.body) as LeaseDoc) : undefined;
}

async function waitFor<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: T | undefined;
    for (let i = 0; Date.now() < deadline && i < 10000; i++) {
        last = await get();
        if (ok(last)) return last;
        await sleep(250);
    }
    const logs = [...agents].map(([n, a]) => `--- ${n}:\n${a.log.slice(-15).join("\n")}`).join("\n");
    throw new Error(`agent test: ${what} not reached within ${timeoutMs} ms; last: ${JSON.stringify(last)?.slice(0, 1500)}\n${logs}`);
}

let generation = 0;
async function publish(indexes: number[], shards: number, heal = true): Promise<number> {
    const doc: AgentSpecDoc = { format: 1, generation: ++generation, spec: labSpec(lab, indexes, shards, 1), heal, publishedAt: new Date().toISOString() };
    const r = await deployer.write(SPEC_KEY, JSON.stringify(doc));
    expect(r).not.toBe("conflict");
    return generation;
}

const spec3 = () => labSpec(lab, [0, 1, 2, 3, 4, 5], 3, 1);
const zonesOfMasters = (s: ClusterStatus) => s.masters.map((m) => m.zone).sort();

beforeAll(async () => {
    lab = await startLab("agent", 8);
    s3 = await S3Server.start({ dir: path.join(lab.dir, "s3"), root: { accessKeyId: "root-agent", secretAccessKey: randomSecret() }, bucket: "redisforge-converge", backupUser: agentKeys });
    const root = (s3 as unknown as { root: { accessKeyId: string; secretAccessKey: string } }).root;
    deployer = new S3Store({ endpoint: s3.endpoint, bucket: s3.bucket, prefix: "converge/agent-test", region: "us-east-1", credentials: root });
    reader = deployer;
});
afterAll(async () => {
    for (const n of agents.keys()) await stopAgent(n, "SIGKILL");
    await s3?.stop();
    await lab?.stop({ removeData: true });
});

test("the store's conditional writes hold on the real S3 server: create-only and replace-this-version conflict when someone wrote first", async () => {
    const agentStore = new S3Store({ endpoint: s3.endpoint, bucket: s3.bucket, prefix: "converge/cas-check", region: "us-east-1", credentials: agentKeys });
    const first = await agentStore.write("x.json", "1", { ifAbsent: true });
    expect(first).not.toBe("conflict");
    expect(await agentStore.write("x.json", "2", { ifAbsent: true })).toBe("conflict");
    const second = await agentStore.write("x.json", "3", { ifVersion: (first as { version: string }).version });
    expect(second).not.toBe("conflict");
    expect(await agentStore.write("x.json", "4", { ifVersion: (first as { version: string }).version })).toBe("conflict");
    expect((await agentStore.read("x.json"))!.body).toBe("3");
    expect(await agentStore.read("missing.json")).toBeUndefined();
    const wrongKey = new S3Store({ endpoint: s3.endpoint, bucket: s3.bucket, prefix: "converge/cas-check", region: "us-east-1", credentials: { ...agentKeys, secretAccessKey: "wrong-secret-0123456789" } });
    await expect(wrongKey.read("x.json")).rejects.toThrow(/GET answered 403/);
});

test("two agents: one takes the lease, forms the cluster from the published spec, reports it", async () => {
    startAgent("agent-a");
    startAgent("agent-b");
    const l = await waitFor("a lease holder", lease, (d) => !!d, 30000);
    expect(["agent-a", "agent-b"]).toContain(l!.holder);
    await waitFor("status waiting-for-spec", status, (s) => s?.phase === "waiting-for-spec", 20000);
    const gen = await publish([0, 1, 2, 3, 4, 5], 3);
    const st = await waitFor("generation 1 converged", status, (s) => s?.phase === "converged" && s.appliedGeneration === gen, 120000);
    expect(st!.observed!.state).toBe("ok");
    expect(st!.observed!.slotsCovered).toBe(16384);
    expect(zonesOfMasters(st!.observed!)).toEqual(["zone-a", "zone-b", "zone-c"]);
    const holder = (await lease())!.holder;
    expect(st!.agent).toBe(holder);
    // Exactly one acted: only the holder's log says so.
    const acting = [...agents].filter(([, a]) => a.log.some((x) => /lease: acting as term/.test(x))).map(([n]) => n);
    expect(acting).toEqual([holder]);
    expect((await checkCluster(spec3(), labCreds(lab))).state).toBe("ok");
    // Least privilege on Redis: the agent's user formed the cluster above, and cannot wipe or reset a node nor read data.
    for (const cmd of [["FLUSHALL"], ["CLUSTER", "RESET", "HARD"], ["GET", "k"], ["CONFIG", "REWRITE"], ["SHUTDOWN", "NOSAVE"]]) {
        expect(await lab.cli(0, cmd, "converge").catch((e) => String(e))).toMatch(/NOPERM/);
    }
    // The agents' identity cannot delete the documents (nor anything in the bucket).
    const del = await s3.request("DELETE", `/${s3.bucket}/converge/agent-test/${SPEC_KEY}`, "", agentKeys);
    expect(del.status).toBe(403);
    await loadKeys(lab, 0, KEYS);
});

test("healing: after an automatic failover crowds the masters, the agent re-spreads them without a deploy and without moving a slot", async () => {
    const before = await checkCluster(spec3(), labCreds(lab));
    const ownersBefore = await slotOwners(lab, 0);
    const victimAddr = before.masters.find((m) => m.zone === "zone-a")!.address;
    const victim = lab.nodes.findIndex((n) => `${n.host}:${n.port}` === victimAddr);
    const healedBefore = (await status())!.healed.length;
    await lab.killNode(victim);
    await waitFor("automatic failover", () => checkCluster(spec3(), labCreds(lab), { connectTimeoutMs: 1000 }), (s) => !s.masters.some((m) => m.address === victimAddr) && s.slotsCovered === 16384, 60000);
    const t0 = Date.now();
    await lab.startNode(victim);
    const st = await waitFor("healed layout", status, (s) => !!s && s.healed.length > healedBefore && s.phase === "converged" && !!s.observed && zonesOfMasters(s.observed).join() === "zone-a,zone-b,zone-c", 120000);
    console.log(`agent: masters re-spread ${((Date.now() - t0) / 1000).toFixed(1)} s after the old master restarted; repairs: ${st!.healed.at(-1)!.repairs.join(" | ")}`);
    expect(st!.healed.at(-1)!.repairs.join("\n")).toMatch(/planned CLUSTER FAILOVER/);
    const ownersAfter = await slotOwners(lab, 0);
    let differing = 0;
    for (let s = 0; s < 16384; s++) if (ownersAfter[s] !== ownersBefore[s]) differing++;
    expect(differing).toBe(0);
    expect(await verifyKeys(lab, 0, KEYS)).toEqual([]);
});

test("the leader dies mid-migration: the other agent takes the lease after its ttl and finishes the reshape; every key reads back", async () => {
    const leader = (await lease())!.holder;
    const other = leader === "agent-a" ? "agent-b" : "agent-a";
    const gen = await publish([0, 1, 2, 3, 4, 5, 6, 7], 4);
    // The leader freezes itself before its second slot-migration step (fault injection, as a hung
    // VM would): slots are half moved, the lease is no longer renewed.
    await waitFor("the leader frozen mid-migration", async () => (fs.existsSync(path.join(lab.dir, "froze")) ? fs.readFileSync(path.join(lab.dir, "froze"), "utf8") : ""), (x) => x.length > 0, 90000);
    expect(agents.get(leader)!.log.join("\n")).toMatch(/fault injection: freezing before step '(migrate-round|atomic-import) /);
    await sleep(500);
    expect((await status())!.appliedGeneration).toBeLessThan(gen);
    await stopAgent(leader, "SIGKILL");
    const killedAt = Date.now();
    const l = await waitFor(`${other} holding the lease`, lease, (d) => d?.holder === other, TTL_MS * 4 + 20000);
    const tookOverAfter = Date.now() - killedAt;
    expect(tookOverAfter).toBeGreaterThanOrEqual(TTL_MS / 2); // never before the dead holder's lease could have lapsed
    const st = await waitFor(`generation ${gen} converged by ${other}`, status, (s) => s?.appliedGeneration === gen && s.phase === "converged", 240000);
    console.log(`agent: ${other} took the lease (term ${l!.term}) ${(tookOverAfter / 1000).toFixed(1)} s after ${leader} was killed mid-migration; converged ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
    expect(st!.agent).toBe(other);
    // The new holder had migration work left: it resumed the reshape, it did not start anew.
    expect(agents.get(other)!.log.filter((x) => /reshape plan: .*migrate/.test(x)).length).toBeGreaterThan(0);
    expect(st!.observed!.masters).toHaveLength(4);
    expect(st!.observed!.slotsCovered).toBe(16384);
    expect(st!.observed!.problems).toEqual([]);
    expect(await verifyKeys(lab, 0, KEYS)).toEqual([]);
});

test("lost capacity is reported in needsDecision, not repaired: the dead node is not forgotten", async () => {
    const spec = labSpec(lab, [0, 1, 2, 3, 4, 5, 6, 7], 4, 1);
    const before = await checkCluster(spec, labCreds(lab));
    const replica = before.replicas[0].address;
    const idx = lab.nodes.findIndex((n) => `${n.host}:${n.port}` === replica);
    const nodeId = before.replicas[0].nodeId;
    await lab.killNode(idx);
    const st = await waitFor("needs-decision", status, (s) => s?.phase === "needs-decision" && s.needsDecision.some((l) => /do not answer/.test(l)), 60000);
    console.log(`agent: needsDecision with ${replica} down: ${st!.needsDecision.join(" | ")}`);
    // The holder exports it for RedisForgeConvergeNeedsDecision (node_exporter textfile); the other agent exports nothing.
    const prom = (n: string) => path.join(lab.dir, `agent-${n}`, "redisforge_converge.prom");
    const holder = (await lease())!.holder;
    const text = await waitFor("the holder's metrics file", async () => (fs.existsSync(prom(holder)) ? fs.readFileSync(prom(holder), "utf8") : ""), (t) => /redisforge_converge_needs_decision [1-9]/.test(t), 20000);
    expect(text).toMatch(/^redisforge_converge_leader 1$/m);
    expect(text).toMatch(/^redisforge_converge_failed 0$/m);
    // The agent killed in the takeover test left its file on its (dead) node; restarted, as its unit
    // would be, it removes it: no agent but the holder exports anything.
    for (const [n, a] of agents) if (a.child.exitCode !== null || a.child.signalCode !== null) startAgent(n);
    await waitFor("former holders' metrics files removed", async () => [...agents.keys()].filter((n) => n !== holder && fs.existsSync(prom(n))), (l) => l.length === 0, 20000);
    expect((await lease())!.holder).toBe(holder);
    await sleep(TTL_MS); // several more rounds
    const survivor = lab.nodes.findIndex((n) => `${n.host}:${n.port}` === before.masters[0].address);
    expect(await lab.cli(survivor, ["CLUSTER", "NODES"])).toContain(nodeId);
    await lab.startNode(idx);
    await waitFor("back to converged", status, (s) => s?.phase === "converged" && s.observed?.state === "ok", 60000);
});

test("heal mode's guard: a plan that would move slots or remove nodes is refused before anything changes", async () => {
    await stopAgent("agent-a", "SIGKILL");
    await stopAgent("agent-b", "SIGKILL");
    const owners = await slotOwners(lab, 0);
    // 4 shards -> 3: slot moves and node removals, which only a published spec may ask for.
    await expect(converge(labSpec(lab, [0, 1, 2, 3, 4, 5], 3, 1), labCreds(lab), { onlyStepKinds: HEAL_STEP_KINDS })).rejects.toThrow(/heal: not done without a new spec .*migrate/);
    expect(await slotOwners(lab, 0)).toEqual(owners);
    expect((await checkCluster(labSpec(lab, [0, 1, 2, 3, 4, 5, 6, 7], 4, 1), labCreds(lab))).state).toBe("ok");
});
