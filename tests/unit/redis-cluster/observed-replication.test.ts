/**
 * The replication the reshape waits for is read from the nodes only once it is settled: right after
 * a planned failover, a replica of the shard may still follow the demoted master (it switches at the
 * next gossip). Recording that pair made the final wait expect a link the cluster was about to drop
 * (chaos CI: "node5 ... is not yet a replica of ...:7102" for 60 s after a repair failover).
 */
import { parseClusterNodes } from "../../../providers/redis-cluster/primitives/protocol";
import { NodeProbe } from "../../../providers/redis-cluster/primitives/probes";
import { observedReplicaOf } from "../../../providers/redis-cluster/primitives/waits";

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
