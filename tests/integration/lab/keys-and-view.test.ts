/**
 * The benchmark's own instruments, checked against the real server so that the figures it prints
 * can be trusted: the CRC16 key slot (vs CLUSTER KEYSLOT), the slot-aware loader (every key lands
 * on the master that owns it, none lost), and the observer's judgement (table of unhealthy views).
 */
import * as fs from "fs";
import fc from "fast-check";
import * as os from "os";
import * as path from "path";
import { benchKey, crc16, keySlot, loadKeys } from "../../../bench/keys";
import { judge, NodeReport, parseClusterNodes } from "../../../lab/cluster-view";
import { labObserver, labViewAuth } from "../../../lab/form";
import { Lab } from "../../../lab/lab";
import { redisCliCreate } from "../../../lab/redis-cli-cluster";

describe("key slots", () => {
    test("CRC16/XMODEM reference vector from the Redis Cluster spec", () => {
        expect(crc16(Buffer.from("123456789"))).toBe(0x31c3);
    });
    test("hash tags: only the first non-empty {...} is hashed", () => {
        expect(keySlot("{user1000}.following")).toBe(keySlot("user1000"));
        expect(keySlot("foo{}{bar}")).toBe(keySlot("foo{}{bar}"));
        expect(keySlot("foo{}{bar}")).not.toBe(keySlot("bar"));
        expect(keySlot("foo{{bar}}zap")).toBe(keySlot("{bar"));
    });
});

describe("against real redis-server nodes", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redisforge-bench-keys-"));
    let lab: Lab;

    beforeAll(async () => {
        lab = await Lab.start({ dir, count: 3 });
    }, 60000);
    afterAll(async () => {
        await lab?.stop({ removeData: true });
        fs.rmSync(dir, { recursive: true, force: true });
    });

    test("keySlot agrees with CLUSTER KEYSLOT for arbitrary keys", async () => {
        const keys = fc.sample(fc.string({ minLength: 1, maxLength: 24 }).filter((k) => !/[\s"'\\]/.test(k)), { numRuns: 60, seed: 42 });
        keys.push(benchKey(0), benchKey(499999), "{tag}a", "a{tag}", "{}x", "é漢字");
        for (const k of keys) {
            const server = Number((await lab.cli(0, ["CLUSTER", "KEYSLOT", k])).trim());
            expect({ k, slot: keySlot(k) }).toEqual({ k, slot: server });
        }
    });

    test("the loader puts every key on the master that owns its slot, and the observer judges the cluster", async () => {
        const obs = labObserver(lab);
        try {
            await obs.connect();
            // Before forming: every node fails (no slots), judged unhealthy with a reason.
            const before = judge(await obs.poll(), { masters: 3, replicas: 0 });
            expect(before.healthy).toBe(false);
            expect(before.problems.join("\n")).toMatch(/cluster_state:fail/);

            await redisCliCreate(lab, [0, 1, 2], 0);
            const { reports } = await obs.waitHealthy({ masters: 3, replicas: 0 }, { timeoutMs: 60000 });
            // A wrong expectation is not healthy.
            expect(judge(reports, { masters: 3, replicas: 1 }).problems).toContain("0 replicas, expected 1");

            const n0 = lab.nodes[0];
            await loadKeys({ host: n0.host, port: n0.port }, labViewAuth(lab), { keys: 3000, batch: 7, keysPerCommand: 3 });
            const after = await obs.poll();
            expect(after.reduce((s, r) => s + r.keys, 0)).toBe(3000);
            // Every key is where its slot says (a wrong slot would have been refused with MOVED).
            for (const r of after) expect(r.keys).toBeGreaterThan(800);
        } finally {
            obs.close();
        }
    }, 90000);
});

describe("judge (pure)", () => {
    const line = (id: string, port: number, flags: string, master: string, slots: string) => `${id} 127.0.0.1:${port}@${port + 10000} ${flags} ${master} 0 0 1 connected ${slots}`;
    const a = "a".repeat(40);
    const b = "b".repeat(40);
    const c = "c".repeat(40);
    const text = (me: string) =>
        [
            line(a, 1, me === a ? "myself,master" : "master", "-", "0-8000"),
            line(b, 2, me === b ? "myself,master" : "master", "-", "8001-16383"),
            line(c, 3, me === c ? "myself,slave" : "slave", a, ""),
        ].join("\n");
    const report = (id: string, port: number, over: Partial<NodeReport> = {}): NodeReport => ({
        address: `127.0.0.1:${port}`,
        clusterState: "ok",
        knownNodes: 3,
        ...parseClusterNodes(text(id)),
        role: id === c ? "slave" : "master",
        masterLinkStatus: id === c ? "up" : "",
        keys: 0,
        ...over,
    });
    const healthy = () => [report(a, 1), report(b, 2), report(c, 3)];

    test("a consistent, covered, linked cluster is healthy", () => {
        expect(judge(healthy(), { masters: 2, replicas: 1 })).toEqual({ healthy: true, problems: [] });
    });
    test.each([
        ["a node in fail state", (r: NodeReport[]) => (r[1].clusterState = "fail"), /cluster_state:fail/],
        ["a replica not linked", (r: NodeReport[]) => (r[2].masterLinkStatus = "down"), /master_link_status:down/],
        ["an unreachable node", (r: NodeReport[]) => (r[0].error = "connect ECONNREFUSED"), /ECONNREFUSED/],
        ["disagreeing slot maps", (r: NodeReport[]) => (r[1].nodes = parseClusterNodes(text(b).replace("8001-16383", "8002-16383")).nodes), /disagree/],
        ["a node seen in handshake", (r: NodeReport[]) => r[0].nodes[1].badFlags.push("handshake"), /handshake/],
        ["uncovered slots", (r: NodeReport[]) => r.forEach((x) => (x.nodes = parseClusterNodes(text(x.myId).replace("8001-16383", "8001-16000")).nodes)), /383 slots uncovered/],
    ])("%s is not healthy", (_name, spoil, why) => {
        const r = healthy();
        spoil(r);
        const v = judge(r, { masters: 2, replicas: 1 });
        expect(v.healthy).toBe(false);
        expect(v.problems.join("\n")).toMatch(why);
    });
});
