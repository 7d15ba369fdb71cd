/**
 * Bad inputs against real nodes: each gives a clear error naming the node, the rule and the fix,
 * and changes nothing (the fresh nodes stay fresh). Also: a cluster that cannot converge times
 * out with a diagnosis instead of waiting forever.
 */
import * as net from "net";
import * as path from "path";
import * as fs from "fs";
import { Lab } from "../../../lab/lab";
import { ensureLabTls } from "../../../lab/tls";
import { converge } from "../../../providers/redis-cluster/executor";
import { ClusterSpec } from "../../../providers/redis-cluster/types";
import { clusterInfo, labCreds, startLab, labNodes, labSpec, resetNodes } from "./helpers";

jest.setTimeout(120000);

let lab: Lab;
const FRESH = [0, 1, 2, 3, 4, 5];
beforeAll(async () => {
    lab = await startLab("bad", 9);
});
afterAll(async () => {
    await lab?.stop({ removeData: true });
});

/** Nothing changed: every fresh node still knows only itself and owns no slot. */
async function assertUntouched(idx = FRESH): Promise<void> {
    for (const i of idx) {
        const info = await clusterInfo(lab, i);
        expect(info.cluster_known_nodes).toBe("1");
        expect(info.cluster_slots_assigned).toBe("0");
    }
}

function closedPort(): Promise<number> {
    return new Promise((resolve) => {
        const s = net.createServer().listen(0, "127.0.0.1", () => {
            const port = (s.address() as net.AddressInfo).port;
            s.close(() => resolve(port));
        });
    });
}

describe("RedisCluster executor: bad inputs change nothing", () => {
    it("too few nodes: fails before any I/O, naming the numbers", async () => {
        const spec = labSpec(lab, [0, 1, 2, 3], 3, 1);
        await expect(converge(spec, labCreds(lab))).rejects.toThrow(/3 shards x \(1 master \+ 1 replicas\) needs at least 6 nodes; got 4/);
        await assertUntouched();
    });

    it("an unreachable node", async () => {
        const port = await closedPort();
        const spec: ClusterSpec = { nodes: [...labNodes(lab, [0, 1, 2]), { id: "ghost", host: "127.0.0.1", port, zone: "zone-a" }], shards: 3, replicasPerShard: 0 };
        await expect(converge(spec, labCreds(lab))).rejects.toThrow(new RegExp(`preflight failed, nothing was changed:[\\s\\S]*ghost 127\\.0\\.0\\.1:${port}: cannot connect.*ECONNREFUSED.*is redis-server running`));
        await assertUntouched();
    });

    it("a node already in another cluster", async () => {
        const other = await converge(labSpec(lab, [6, 7, 8], 3, 0), labCreds(lab));
        expect(other.state).toBe("ok");
        const spec = labSpec(lab, [0, 1, 6], 3, 0);
        await expect(converge(spec, labCreds(lab))).rejects.toThrow(/node6 127\.0\.0\.1:\d+: is already in another cluster \(it knows 127\.0\.0\.1:\d+.*not in this spec\)/);
        await assertUntouched();
        expect((await clusterInfo(lab, 6)).cluster_known_nodes).toBe("3");
    });

    it("a node that holds data", async () => {
        // Give node2 a key, then take its slots away again: data, no slots, no peers.
        await lab.cli(2, ["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
        // Right after ADDSLOTSRANGE the node may still say CLUSTERDOWN: retry (bounded) until stored.
        for (let i = 0; i < 50 && (await lab.cli(2, ["SET", "precious", "yes"])).trim() !== "OK"; i++) await new Promise((r) => setTimeout(r, 100));
        expect((await lab.cli(2, ["DBSIZE"])).trim()).toBe("1");
        await lab.cli(2, ["CLUSTER", "DELSLOTSRANGE", "0", "16383"]);
        try {
            await expect(converge(labSpec(lab, [0, 1, 2], 3, 0), labCreds(lab))).rejects.toThrow(/node2 127\.0\.0\.1:\d+: holds 1 keys but is not a member of this cluster.*FLUSHALL/);
            await assertUntouched();
            expect((await lab.cli(2, ["DBSIZE"])).trim()).toBe("1");
        } finally {
            await lab.cli(2, ["FLUSHALL"]);
        }
    });

    it("a wrong password", async () => {
        const creds = { ...labCreds(lab), password: "not-the-password-not-the-password" };
        await expect(converge(labSpec(lab, FRESH, 3, 1), creds)).rejects.toThrow(/node0 127\.0\.0\.1:\d+: cannot connect as ACL user "admin": WRONGPASS.*wrong admin password/);
        await assertUntouched();
    });

    it("a wrong CA", async () => {
        const other = ensureLabTls(path.join(lab.dir, "other-ca"));
        const creds = { ...labCreds(lab), tls: { ...labCreds(lab).tls, ca: fs.readFileSync(other.caFile, "utf8") } };
        await expect(converge(labSpec(lab, FRESH, 3, 1), creds)).rejects.toThrow(/node0 127\.0\.0\.1:\d+: cannot connect.*TLS handshake failed.*check the CA certificate/);
        await assertUntouched();
    });

    it("a node that stops answering mid-create: bounded wait, then a diagnosis naming it", async () => {
        const victim = lab.nodes[5];
        let stopped = false;
        try {
            await expect(
                converge(labSpec(lab, FRESH, 3, 1), labCreds(lab), {
                    convergeTimeoutMs: 3000,
                    connectTimeoutMs: 1000,
                    beforeStep: (s) => {
                        if (s === "wait-converged") {
                            process.kill(victim.pid, "SIGSTOP");
                            stopped = true;
                        }
                    },
                }),
            ).rejects.toThrow(/did not converge within 3 s[\s\S]*Diagnosis:[\s\S]*node5 127\.0\.0\.1:\d+: (unreachable|cannot connect)/);
        } finally {
            if (stopped) process.kill(victim.pid, "SIGCONT");
        }
        await resetNodes(lab, FRESH);
    });
});
