/**
 * The replication the reshape waits for is read from the nodes only once it is settled: right after
 * a planned failover, a replica of the shard may still follow the demoted master (it switches at the
 * next gossip). Recording that pair made the final wait expect a link the cluster was about to drop
 * (chaos CI: "node5 ... is not yet a replica of ...:7102" for 60 s after a repair failover), and a
 * snapshot taken once settled went stale when the server moved a replica itself (replica migration):
 * the final wait now reads the replication again at each look.
 */
import { parseClusterNodes } from "../../../providers/redis-cluster/primitives/protocol";
import { NodeProbe } from "../../../providers/redis-cluster/primitives/probes";
import { convergeProblem, observedReplicaOf } from "../../../providers/redis-cluster/primitives/waits";

const A = "a".repeat(40); // new master (was the replica that took over)
const B = "b".repeat(40); // old master, demoted
const C = "c".repeat(40); // the shard's other replica

function probe(port: number, myId: string, line: string): NodeProbe {
    const view = parseClusterNodes(`${myId} 127.0.0.1:${port}@${port + 10000} myself,${line}\n`);
    return { target: { host: "127.0.0.1", port, label: `node${port}` }, addr: `127.0.0.1:${port}`, ok: true, myId, view, me: view[0] };
}

describe("observedReplicaOf", () => {
    it("maps each replica to the address of the master it follows", () => {
        const r = observedReplicaOf([probe(7000, A, "master - 0 0 3 connected 0-16383"), probe(7001, B, `slave ${A} 0 0 3 connected`), probe(7002, C, `slave ${A} 0 0 3 connected`)]);
        expect(r.unsettled).toBeNull();
        expect([...r.replicaOf]).toEqual([
            ["127.0.0.1:7001", "127.0.0.1:7000"],
            ["127.0.0.1:7002", "127.0.0.1:7000"],
        ]);
    });
    it("refuses a replica that still follows a master which reports itself a replica", () => {
        const r = observedReplicaOf([probe(7000, A, "master - 0 0 3 connected 0-16383"), probe(7001, B, `slave ${A} 0 0 3 connected`), probe(7002, C, `slave ${B} 0 0 2 connected`)]);
        expect(r.unsettled).toBe("node7002 still follows node7001, which is a replica now");
        expect(r.chain?.replica.addr).toBe("127.0.0.1:7002");
        expect(r.chain?.via.addr).toBe("127.0.0.1:7001");
        expect(r.chain?.top.myId).toBe(A);
    });
    it("names no chain to fold while the top of it is not a master in its own view (or not probed)", () => {
        const notYet = observedReplicaOf([probe(7000, A, `slave ${B} 0 0 3 connected`), probe(7001, B, `slave ${A} 0 0 3 connected`), probe(7002, C, `slave ${B} 0 0 2 connected`)]);
        expect(notYet.unsettled).toMatch(/still follows/);
        expect(notYet.chain).toBeUndefined();
        const unprobed = observedReplicaOf([probe(7001, B, `slave ${A} 0 0 3 connected`), probe(7002, C, `slave ${B} 0 0 2 connected`)]);
        expect(unprobed.chain).toBeUndefined();
    });
    it("ignores nodes that did not answer and masters outside the probed set", () => {
        const down: NodeProbe = { target: { host: "127.0.0.1", port: 7003, label: "node7003" }, addr: "127.0.0.1:7003", ok: false, error: "refused" };
        const r = observedReplicaOf([probe(7002, C, `slave ${B} 0 0 2 connected`), down]);
        expect(r.unsettled).toBeNull();
        expect(r.replicaOf.size).toBe(0);
    });
});

describe("convergeProblem with the replication the nodes report (a reshape's final wait)", () => {
    const D = "d".repeat(40); // a second master
    // Every node sees the same 4 members; `roles` gives each node's own line (after "myself,").
    const lines: Record<string, string> = {
        [A]: "127.0.0.1:7000@17000 master - 0 0 3 connected 0-8191",
        [D]: "127.0.0.1:7003@17003 master - 0 0 4 connected 8192-16383",
    };
    function cluster(replicas: Record<string, string>, link = "up"): NodeProbe[] {
        const all: Record<string, string> = {
            ...lines,
            [B]: `127.0.0.1:7001@17001 slave ${replicas[B]} 0 0 3 connected`,
            [C]: `127.0.0.1:7002@17002 slave ${replicas[C]} 0 0 3 connected`,
        };
        const ports: Record<string, number> = { [A]: 7000, [B]: 7001, [C]: 7002, [D]: 7003 };
        return Object.keys(all).map((id) => {
            const text = Object.entries(all)
                .map(([other, l]) => `${other} ${other === id ? l.replace(/^(\S+) /, "$1 myself,") : l}`)
                .join("\n");
            const view = parseClusterNodes(text + "\n");
            const me = view.find((n) => n.id === id)!;
            const port = ports[id];
            return {
                target: { host: "127.0.0.1", port, label: `node${port}` },
                addr: `127.0.0.1:${port}`,
                ok: true,
                myId: id,
                view,
                me,
                clusterInfo: { cluster_state: "ok" },
                replication: (me.master ? { role: "master" } : { role: "slave", master_link_status: link }) as Record<string, string>,
            };
        });
    }
    const members = [7000, 7001, 7002, 7003].map((port) => ({ id: `node${port}`, host: "127.0.0.1", port, zone: "z" }));

    it("accepts a replica the server moved to another master after the reshape looked", () => {
        // The reshape saw B and C under A; replica migration then moved C to D (an orphaned master).
        const now = cluster({ [B]: A, [C]: D });
        const snapshot = new Map([["127.0.0.1:7001", "127.0.0.1:7000"], ["127.0.0.1:7002", "127.0.0.1:7000"]]);
        expect(convergeProblem(now, { members, replicaOf: snapshot, fullCoverage: true })).toBe("node7002 is not yet a replica of 127.0.0.1:7000");
        expect(convergeProblem(now, { members, replicaOf: "observed", fullCoverage: true })).toBeNull();
    });
    it("still waits for a link that is not up, and for a replica that follows a replica", () => {
        expect(convergeProblem(cluster({ [B]: A, [C]: D }, "down"), { members, replicaOf: "observed", fullCoverage: true })).toBe("node7001 master_link_status:down");
        expect(convergeProblem(cluster({ [B]: A, [C]: B }), { members, replicaOf: "observed", fullCoverage: true })).toBe("node7002 still follows node7001, which is a replica now");
    });
});
