/**
 * The executor's pure helpers: CLUSTER NODES parsing (open slots, noaddr members, replicas) and the
 * server-version gate for atomic slot migration (8.4+ only).
 */
import { parseClusterNodes, versionAtLeast } from "../../../providers/redis-cluster/executor";

const NODES = [
    "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected",
    "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922",
    "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383 [93->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]",
    "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 7000 [7001-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]",
    "bc4e9f49a29780406bfc79f6dc8ccd223adb1350 :0@0 master,fail,noaddr - 1795756886536 1795756884000 3 disconnected",
    "",
].join("\n");

describe("parseClusterNodes", () => {
    const nodes = parseClusterNodes(NODES);
    it("reads every member", () => {
        expect(nodes).toHaveLength(5);
    });
    it("reads myself, slots, single slots and open slots", () => {
        const me = nodes.find((n) => n.myself)!;
        expect(me).toMatchObject({ id: "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca", host: "127.0.0.1", port: 30001, busPort: 31001, master: true, configEpoch: 1 });
        expect(me.slots).toEqual([{ start: 0, end: 5460 }, { start: 7000, end: 7000 }]);
        expect(me.importing).toEqual([{ slot: 7001, from: "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f" }]);
        const n3 = nodes.find((n) => n.port === 30003)!;
        expect(n3.migrating).toEqual([{ slot: 93, to: "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1" }]);
        expect(n3.slots).toEqual([{ start: 10923, end: 16383 }]);
    });
    it("reads replicas and failed, address-less members", () => {
        const r = nodes.find((n) => n.port === 30004)!;
        expect(r).toMatchObject({ master: false, masterId: "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca", failed: false, connected: true });
        const gone = nodes.find((n) => n.flags.includes("noaddr"))!;
        expect(gone).toMatchObject({ failed: true, connected: false, host: "", port: 0 });
    });
});

describe("versionAtLeast (the CLUSTER MIGRATION gate needs 8.4 on every node)", () => {
    it.each([
        ["7.0.15", false],
        ["8.2.3", false],
        ["8.4.0", true],
        ["8.10.1", true],
        ["9.0.0", true],
    ])("%s >= 8.4 is %s", (v, want) => {
        expect(versionAtLeast(v, 8, 4)).toBe(want);
    });
});
