/**
 * Forming clusters on real TLS redis-server nodes (the lab): 3x1 and 4x2, create twice (the
 * second run changes nothing), and create after a crash in the middle (aborted through the
 * executor's beforeStep hook, then run again).
 */
import { Lab } from "../../../lab/lab";
import { converge, parseClusterNodes } from "../../../providers/redis-cluster/executor";
import { ClusterSpec } from "../../../providers/redis-cluster/types";
import { clusterInfo, labCreds, startLab, labSpec, resetNodes } from "./helpers";

jest.setTimeout(120000);

let lab: Lab;
beforeAll(async () => {
    lab = await startLab("create", 12);
});
afterAll(async () => {
    await lab?.stop({ removeData: true });
});

/** Checks the live cluster on every node with redis-cli (not with the executor's own reader). */
async function assertHealthy(spec: ClusterSpec, idx: number[]): Promise<void> {
    const zoneOf = new Map(idx.map((i) => [`${lab.nodes[i].host}:${lab.nodes[i].port}`, lab.nodes[i].zone]));
    for (const i of idx) {
        const info = await clusterInfo(lab, i);
        expect(info.cluster_state).toBe("ok");
        expect(Number(info.cluster_known_nodes)).toBe(spec.shards * (1 + spec.replicasPerShard));
        expect(Number(info.cluster_size)).toBe(spec.shards);
    }
    // A replica's new role reaches the other nodes by gossip: read idx[0]'s view until it names
    // `shards` masters (bounded: 10 s), then assert on it.
    let view = parseClusterNodes(await lab.cli(idx[0], ["CLUSTER", "NODES"]));
    for (let i = 0; i < 40 && view.filter((n) => n.master).length !== spec.shards; i++) {
        await new Promise((r) => setTimeout(r, 250));
        view = parseClusterNodes(await lab.cli(idx[0], ["CLUSTER", "NODES"]));
    }
    const masters = view.filter((n) => n.master);
    expect(masters).toHaveLength(spec.shards);
    const sizes = masters.map((m) => m.slots.reduce((a, r) => a + r.end - r.start + 1, 0));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(16384);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    // Masters spread over the zones; no replica in its master's zone; every replica linked.
    const mz = masters.map((m) => zoneOf.get(`${m.host}:${m.port}`));
    expect(new Set(mz).size).toBe(Math.min(3, spec.shards));
    for (const m of masters) {
        const reps = view.filter((n) => n.masterId === m.id);
        expect(reps).toHaveLength(spec.replicasPerShard);
        for (const r of reps) {
            expect(zoneOf.get(`${r.host}:${r.port}`)).not.toBe(zoneOf.get(`${m.host}:${m.port}`));
            const ri = idx.find((i) => lab.nodes[i].port === r.port)!;
            expect(await lab.cli(ri, ["INFO", "replication"])).toMatch(/master_link_status:up/);
        }
    }
}

describe("RedisCluster executor: create", () => {
    const six = [0, 1, 2, 3, 4, 5];

    it("forms 3x1 on 6 fresh nodes, and a second run is a no-op", async () => {
        const spec = labSpec(lab, six, 3, 1);
        const log: string[] = [];
        const t0 = Date.now();
        const status = await converge(spec, labCreds(lab), { log: (m) => log.push(m) });
        const formMs = Date.now() - t0;
        expect(status.state).toBe("ok");
        expect(status.problems).toEqual([]);
        expect(status.slotsCovered).toBe(16384);
        expect(log.filter((l) => l.startsWith("ADDSLOTSRANGE"))).toHaveLength(3);
        await assertHealthy(spec, six);
        process.stdout.write(`3x1 formed in ${formMs} ms\n`);

        const before = await lab.cli(0, ["CLUSTER", "NODES"]);
        const epochBefore = (await clusterInfo(lab, 0)).cluster_current_epoch;
        const log2: string[] = [];
        const status2 = await converge(spec, labCreds(lab), { log: (m) => log2.push(m) });
        expect(status2.state).toBe("ok");
        // Nothing was sent that changes the cluster: no slots, epochs, meets or replicate.
        expect(log2.filter((l) => /^(ADDSLOTSRANGE|SET-CONFIG-EPOCH|MEET|REPLICATE)/.test(l))).toEqual([]);
        expect((await clusterInfo(lab, 0)).cluster_current_epoch).toBe(epochBefore);
        const roles = (t: string) => parseClusterNodes(t).map((n) => `${n.id} ${n.master} ${n.masterId ?? "-"} ${JSON.stringify(n.slots)}`).sort();
        expect(roles(await lab.cli(0, ["CLUSTER", "NODES"]))).toEqual(roles(before));
    });

    it("forms 4x2 on 12 nodes with each shard across three zones", async () => {
        await resetNodes(lab, six);
        const all = [...Array(12).keys()];
        const spec = labSpec(lab, all, 4, 2);
        const status = await converge(spec, labCreds(lab));
        expect(status.state).toBe("ok");
        expect(status.masters).toHaveLength(4);
        expect(status.replicas).toHaveLength(8);
        await assertHealthy(spec, all);
        const view = parseClusterNodes(await lab.cli(0, ["CLUSTER", "NODES"]));
        const zoneOfPort = new Map(lab.nodes.map((n) => [n.port, n.zone]));
        for (const m of view.filter((n) => n.master)) {
            const zs = [m, ...view.filter((r) => r.masterId === m.id)].map((n) => zoneOfPort.get(n.port));
            expect(new Set(zs).size).toBe(3);
        }
    });

    it("adds a replica to every shard (3x1 -> 3x2), then removes it again (3x2 -> 3x1)", async () => {
        await resetNodes(lab, [...Array(12).keys()]);
        const creds = labCreds(lab);
        expect((await converge(labSpec(lab, six, 3, 1), creds)).state).toBe("ok");
        const nine = [...Array(9).keys()];
        const log: string[] = [];
        const up = await converge(labSpec(lab, nine, 3, 2), creds, { log: (m) => log.push(m) });
        expect(up.state).toBe("ok");
        expect(up.problems).toEqual([]);
        expect(log.filter((l) => /^REPLICATE/.test(l))).toHaveLength(3);
        await assertHealthy(labSpec(lab, nine, 3, 2), nine);
        const down = await converge(labSpec(lab, six, 3, 1), creds);
        expect(down.state).toBe("ok");
        expect(down.problems).toEqual([]);
        await assertHealthy(labSpec(lab, six, 3, 1), six);
        for (const i of [6, 7, 8]) expect((await clusterInfo(lab, i)).cluster_known_nodes).toBe("1");
    });

    it.each(["addslots", "meet", "replicate", "wait-converged"])("finishes a create that crashed at step %s", async (crashAt) => {
        await resetNodes(lab, [...Array(12).keys()]);
        const spec = labSpec(lab, six, 3, 1);
        await expect(
            converge(spec, labCreds(lab), {
                beforeStep: (s) => {
                    if (s === crashAt) throw new Error(`simulated crash before ${s}`);
                },
            }),
        ).rejects.toThrow(/simulated crash/);
        const status = await converge(spec, labCreds(lab));
        expect(status.state).toBe("ok");
        await assertHealthy(spec, six);
    });
});
