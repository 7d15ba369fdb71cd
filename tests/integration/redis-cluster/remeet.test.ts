/**
 * Regression (sixth VM run): while the provider waited for a new cluster to converge, one node had
 * dropped another (its MEET handshake did not finish within the node timeout on a loaded emulated
 * bus) and gossip never brought it back: the wait ran out after 12 minutes. The wait now MEETs such a
 * pair again, directly.
 *
 * Reproduced on real redis-servers: node0 FORGETs node1, which also bans node1 from node0's gossip
 * for 60 s, so nothing but a MEET brings it back within the 20 s the wait is given.
 */
import { Lab } from "../../../lab/lab";
import { converge } from "../../../providers/redis-cluster/executor";
import { Pool } from "../../../providers/redis-cluster/primitives/connections";
import { resolve } from "../../../providers/redis-cluster/primitives/options";
import { probeAll } from "../../../providers/redis-cluster/primitives/probes";
import { parseClusterNodes, versionAtLeast } from "../../../providers/redis-cluster/primitives/protocol";
import { unknownPairs, waitConverged } from "../../../providers/redis-cluster/primitives/waits";
import { replicateAll } from "../../../providers/redis-cluster/operations/create";
import { preflight } from "../../../providers/redis-cluster/operations/converge";
import { labCreds, labNodes, labSpec, startLab } from "./helpers";

jest.setTimeout(120000);

const NODES = [0, 1, 2];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let lab: Lab;

beforeAll(async () => {
    lab = await startLab("remeet", 4);
    expect((await converge(labSpec(lab, NODES, 3, 0), labCreds(lab))).state).toBe("ok");
});
afterAll(async () => {
    await lab?.stop({ removeData: true });
});

// Staging a one-sided loss with CLUSTER FORGET works only where FORGET stays on the node: from Redis 7.2
// a FORGET is gossiped to the whole cluster with its 60 s ban (fresh-clone CI on 8.6.3: node2 forgot
// node1 too and kept re-forgetting it), so no MEET can bring the node back before the ban ends. On
// 8.x the REPLICATE and preflight cases below still run.
const forgetIsLocal = () => !versionAtLeast(lab.state.serverVersion, 7, 2);

test("a member that lost another one is introduced again by the converge wait (MEET), within the wait's bound", async () => {
    if (!forgetIsLocal()) {
        console.log(`remeet: converge-wait case not staged on Redis ${lab.state.serverVersion} (CLUSTER FORGET is cluster-wide there)`);
        return;
    }
    const id1 = parseClusterNodes(await lab.cli(1, ["CLUSTER", "NODES"])).find((n) => n.myself)!.id;
    expect(await lab.cli(0, ["CLUSTER", "FORGET", id1])).toMatch(/OK/);
    const pool = new Pool(labCreds(lab), {});
    const logs: string[] = [];
    try {
        const probes = await probeAll(pool, labNodes(lab, NODES));
        expect(unknownPairs(probes).map(({ from, to }) => [from.target.label, to.target.label])).toEqual([[probes[0].target.label, probes[1].target.label]]);
        const t0 = Date.now();
        await waitConverged(pool, { members: labNodes(lab, NODES), replicaOf: new Map(), fullCoverage: true }, labCreds(lab), resolve({ convergeTimeoutMs: 20000, pollIntervalMs: 200, log: (l) => logs.push(l) }), "test");
        console.log(`remeet: converged again ${Date.now() - t0} ms after node0 forgot node1; log: ${logs.join(" | ")}`);
    } finally {
        await pool.closeAll();
    }
    expect(logs.some((l) => /does not know .*MEET again/.test(l))).toBe(true);
    expect(parseClusterNodes(await lab.cli(0, ["CLUSTER", "NODES"])).some((n) => n.id === id1 && !n.handshake)).toBe(true);
});

test("a replica that lost its master before REPLICATE meets it again and replicates, within the wait's bound", async () => {
    // node3 joins empty (MEET), then forgets node0: the pair the VM run's create was stuck on.
    await lab.cli(3, ["CLUSTER", "MEET", lab.nodes[1].host, String(lab.nodes[1].port), String(lab.nodes[1].busPort)]);
    const id0 = parseClusterNodes(await lab.cli(0, ["CLUSTER", "NODES"])).find((n) => n.myself)!.id;
    for (let i = 0; i < 100 && !parseClusterNodes(await lab.cli(3, ["CLUSTER", "NODES"])).some((n) => n.id === id0 && !n.handshake); i++) await sleep(200);
    expect(await lab.cli(3, ["CLUSTER", "FORGET", id0])).toMatch(/OK/);
    const pool = new Pool(labCreds(lab), {});
    const logs: string[] = [];
    try {
        const probes = await probeAll(pool, labNodes(lab, [0, 1, 2, 3]));
        const t0 = Date.now();
        await replicateAll(pool, new Map([[probes[3].addr, probes[0].addr]]), probes, resolve({ convergeTimeoutMs: 20000, pollIntervalMs: 200, log: (l) => logs.push(l) }));
        console.log(`remeet: node3 replicates node0 ${Date.now() - t0} ms after forgetting it; log: ${logs.join(" | ")}`);
    } finally {
        await pool.closeAll();
    }
    expect(logs.some((l) => /replicate: .* does not know .*MEET again/.test(l))).toBe(true);
    expect(parseClusterNodes(await lab.cli(3, ["CLUSTER", "NODES"])).find((n) => n.myself)!.masterId).toBe(id0);
});

test("preflight: a node that the others dropped but that still knows them is the same cluster, not a second one", async () => {
    // After the replicate test node3 is node0's replica; nodes 0-2 now forget it (one-sided, as after a
    // dropped handshake). The sixth VM run's retried create was refused as "two different clusters".
    const id3 = parseClusterNodes(await lab.cli(3, ["CLUSTER", "NODES"])).find((n) => n.myself)!.id;
    // From 7.2 a FORGET is gossiped: a node may have forgotten id3 already ("Unknown node").
    for (const i of [0, 1, 2]) expect(await lab.cli(i, ["CLUSTER", "FORGET", id3]).catch((e: Error) => e.message)).toMatch(/^OK|Unknown node/);
    const pool = new Pool(labCreds(lab), {});
    try {
        const probes = await probeAll(pool, labNodes(lab, [0, 1, 2, 3]));
        expect(probes.filter((p) => p.view!.some((n) => n.id === id3 && !n.myself)).length).toBe(0);
        expect(() => preflight(labSpec(lab, [0, 1, 2, 3], 2, 1), probes, resolve({}))).not.toThrow();
    } finally {
        await pool.closeAll();
    }
});
