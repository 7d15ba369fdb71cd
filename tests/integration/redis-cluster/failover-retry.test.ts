/**
 * A planned failover the server gives up is sent again (providers/redis-cluster/operations/failover.ts).
 * On real redis-server nodes (3x1, TLS): the shard's master is SIGSTOPped while the executor sends
 * CLUSTER FAILOVER, so the replica never gets the master's offset and the server abandons the manual
 * failover after its 5 s timeout; cluster-node-timeout is raised to 30 s so that no automatic failover
 * happens meanwhile. After SIGCONT the executor's re-sent CLUSTER FAILOVER promotes the replica; sent
 * only once, the replica stays a replica until the executor's deadline.
 */
import * as fs from "fs";
import { Lab } from "../../../lab/lab";
import { converge } from "../../../providers/redis-cluster/executor";
import { FAILOVER_RESEND_MS, plannedFailover } from "../../../providers/redis-cluster/operations/failover";
import { Pool } from "../../../providers/redis-cluster/primitives/connections";
import { resolve } from "../../../providers/redis-cluster/primitives/options";
import { parseClusterNodes } from "../../../providers/redis-cluster/primitives/protocol";
import { labCreds, labSpec, startLab } from "./helpers";

jest.setTimeout(120000);

const NODES = [0, 1, 2, 3, 4, 5];
let lab: Lab;

beforeAll(async () => {
    lab = await startLab("failover-retry", 6);
    const st = await converge(labSpec(lab, NODES, 3, 1), labCreds(lab));
    expect(st.state).toBe("ok");
    for (const i of NODES) await lab.cli(i, ["CONFIG", "SET", "cluster-node-timeout", "30000"]);
});
afterAll(async () => {
    await lab?.stop({ removeData: true });
});

test("CLUSTER FAILOVER abandoned by the server (master paused past 5 s) is re-sent and the replica takes over", async () => {
    const nodes = parseClusterNodes(await lab.cli(0, ["CLUSTER", "NODES"]));
    const rep = nodes.find((n) => !n.master && n.masterId)!;
    const mas = nodes.find((n) => n.id === rep.masterId)!;
    const r = lab.nodes.findIndex((n) => n.port === rep.port);
    const m = lab.nodes.findIndex((n) => n.port === mas.port);
    const logs: string[] = [];
    const pool = new Pool(labCreds(lab), {});
    const o = resolve({ convergeTimeoutMs: 40000, log: (l) => logs.push(l) });
    const t = (i: number) => ({ host: lab.nodes[i].host, port: lab.nodes[i].port, label: `node${i}` });
    process.kill(lab.nodes[m].pid, "SIGSTOP");
    let resumed = false;
    try {
        const done = plannedFailover(pool, t(r), t(m), o);
        // Past the server's manual-failover timeout (5 s), before the executor re-sends.
        await new Promise((res) => setTimeout(res, FAILOVER_RESEND_MS - 500));
        const log = fs.readFileSync(lab.nodes[r].logFile, "utf8");
        expect(log).toMatch(/Manual failover timed out/);
        process.kill(lab.nodes[m].pid, "SIGCONT");
        resumed = true;
        await done;
    } finally {
        if (!resumed) process.kill(lab.nodes[m].pid, "SIGCONT");
        await pool.closeAll();
    }
    const after = parseClusterNodes(await lab.cli(r, ["CLUSTER", "NODES"]));
    expect(after.find((n) => n.myself)!.master).toBe(true);
    expect(logs.some((l) => /sending it again/.test(l))).toBe(true);
    expect(logs.some((l) => /failover done: node\d+ is master \(CLUSTER FAILOVER sent [2-9] times\)/.test(l))).toBe(true);
});
