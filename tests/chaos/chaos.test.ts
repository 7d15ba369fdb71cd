/**
 * Chaos suite: faults on a real 3-zone cluster (3 shards x 2 replicas; each zone a network
 * namespace holding one copy of every shard), TLS everywhere, cluster-node-timeout 5000 ms from
 * the template. During every scenario a cluster client (ACL user app) writes with SET + WAIT 1;
 * afterwards every acknowledged write must read back, and after the provider's converge the
 * cluster must be healthy: state ok, 16384 slots, no replica in its master's zone.
 *
 * Needs root (network namespaces, nftables). Each scenario prints one line; the suite prints a
 * table at the end. Addresses exist only inside the namespaces and bridge made for this run.
 */
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { DelayProxyHandle, startDelayProxy } from "../../lab/delay-proxy";
import { pidAlive } from "../../lab/lab";
import { FAILOVER_RESEND_MS, plannedFailover, settleReplication } from "../../providers/redis-cluster/operations/failover";
import { Pool } from "../../providers/redis-cluster/primitives/connections";
import { resolve } from "../../providers/redis-cluster/primitives/options";
import { specTarget } from "../../providers/redis-cluster/primitives/probes";
import { versionAtLeast } from "../../providers/redis-cluster/primitives/protocol";
import { labCreds } from "../integration/redis-cluster/helpers";
import { ChaosCluster, formatTable, sleep, waitFor } from "./harness";
import { checkAofCopy, freeBytes, zoneProbes } from "./probes";
import { scenarioRunner } from "./scenario";

jest.setTimeout(180000);

const NODE_TIMEOUT_MS = 5000;
let c: ChaosCluster;
const suiteStart = Date.now();

beforeAll(async () => {
    c = await ChaosCluster.start();
}, 120000);

afterAll(async () => {
    if (c) {
        process.stdout.write("\n" + formatTable(c.results, Date.now() - suiteStart, c.lab.state.serverVersion));
        await c.stop();
    }
}, 60000);

const { scenario, watcherFor, role } = scenarioRunner(() => c);

test("SIGKILL a master: its replica takes over, the node returns as a replica", async () => {
    await scenario("sigkill-master", async (w) => {
        const m = (await c.masters())[0];
        const via = watcherFor([c.zoneOf(m)]);
        const slots = await c.slotsOf([m], via);
        const faultAt = Date.now();
        await c.lab.killNode(m);
        await c.waitFailover(m, via);
        const gapMs = await w.waitResumed(faultAt, slots);
        const endedAt = Date.now();
        await c.lab.startNode(m);
        await waitFor(`node${m} to rejoin as a replica`, 30000, async () => (await role(m)) === "slave");
        return { faultAt, endedAt, gapMs };
    });
});

test("SIGKILL a replica: writes keep being acknowledged by the shard's other replica", async () => {
    await scenario("sigkill-replica", async (w) => {
        const masters = await c.masters();
        const nodes = await c.nodesSeenBy(masters[0]);
        const rep = nodes.find((n) => !n.master && n.masterId)!;
        const r = c.indexOf(rep);
        const master = c.indexOf(nodes.find((n) => n.id === rep.masterId)!);
        const via = watcherFor([c.zoneOf(r)]);
        const slots = await c.slotsOf([master], via);
        const faultAt = Date.now();
        await c.lab.killNode(r);
        // Hold until the cluster has marked it failed (node-timeout), so the fault is seen by everyone.
        await waitFor(`node${r} flagged fail by node${via}`, 30000, async () => (await c.nodesSeenBy(via)).some((n) => c.indexOf(n) === r && n.flags.includes("fail")));
        const gapMs = await w.waitResumed(faultAt, slots);
        const endedAt = Date.now();
        await c.lab.startNode(r);
        return { faultAt, endedAt, gapMs };
    });
});

test("partition one zone from the others, then heal: its master fails over, returns as a replica", async () => {
    await scenario("partition-zone", async (w) => {
        const m = (await c.masters())[0];
        const z = c.zoneOf(m);
        const zoneMasters = (await c.masters()).filter((i) => c.zoneOf(i) === z);
        const via = watcherFor([z]);
        const slots = await c.slotsOf(zoneMasters, via);
        const faultAt = Date.now();
        c.net.partition(z);
        try {
            for (const zm of zoneMasters) await c.waitFailover(zm, via);
            // The minority master stops taking writes (its replicas left with the majority): none is acknowledged there.
            const gapMs = await w.waitResumed(faultAt, slots);
            const endedAt = Date.now();
            c.net.clearFaults(z);
            for (const zm of zoneMasters) await waitFor(`node${zm} to rejoin as a replica after heal`, 30000, async () => (await role(zm)) === "slave");
            return { faultAt, endedAt, gapMs, note: `zone ${c.zoneNames[z]} held ${zoneMasters.length} master(s)` };
        } finally {
            c.net.clearFaults(z);
        }
    });
});

test("lose a whole zone (every node in it SIGKILLed), then bring it back", async () => {
    await scenario("lose-zone", async (w) => {
        const m = (await c.masters())[0];
        const z = c.zoneOf(m);
        const zoneMasters = (await c.masters()).filter((i) => c.zoneOf(i) === z);
        const via = watcherFor([z]);
        const slots = await c.slotsOf(zoneMasters, via);
        const victims = c.zoneNodes(z);
        const faultAt = Date.now();
        for (const i of victims) process.kill(c.lab.nodes[i].pid, "SIGKILL");
        for (const i of victims) await c.lab.killNode(i); // waits for the exit, records pid 0
        for (const zm of zoneMasters) await c.waitFailover(zm, via);
        const gapMs = await w.waitResumed(faultAt, slots);
        const endedAt = Date.now();
        for (const i of victims) await c.lab.startNode(i);
        return { faultAt, endedAt, gapMs, note: `${victims.length} nodes, ${zoneMasters.length} master(s)` };
    });
});

test("SIGSTOP a master longer than node-timeout, then SIGCONT: it comes back as a replica", async () => {
    await scenario("sigstop-master", async (w) => {
        const m = (await c.masters())[0];
        const pid = c.lab.nodes[m].pid;
        const via = watcherFor([c.zoneOf(m)]);
        const slots = await c.slotsOf([m], via);
        const faultAt = Date.now();
        process.kill(pid, "SIGSTOP");
        try {
            // A failover needs node-timeout to pass first: when it is seen, the stop lasted longer.
            const failedOverAt = await c.waitFailover(m, via);
            expect(failedOverAt - faultAt).toBeGreaterThanOrEqual(NODE_TIMEOUT_MS);
            // Writes resume while the node is still stopped (its TCP connections stay open and
            // silent: the client must time out on them and take the new map from another node).
            const gapMs = await w.waitResumed(faultAt, slots);
            process.kill(pid, "SIGCONT");
            const endedAt = Date.now();
            await waitFor(`node${m} to come back as a replica after SIGCONT`, 30000, async () => (await role(m)) === "slave");
            return { faultAt, endedAt, gapMs, note: `stopped ${((endedAt - faultAt) / 1000).toFixed(1)} s; writer errors ${JSON.stringify(w.errors)}` };
        } finally {
            if (pidAlive(pid)) process.kill(pid, "SIGCONT");
        }
    });
});

test("cold restart of every node at once (SIGKILL all, start all): no write acknowledged before the everysec window lost", async () => {
    let faultAt = 0;
    await scenario(
        "cold-restart",
        async (w) => {
            const all = c.lab.nodes.map((n) => n.index);
            faultAt = Date.now();
            for (const i of all) process.kill(c.lab.nodes[i].pid, "SIGKILL");
            for (const i of all) await c.lab.killNode(i);
            const endedAt = Date.now();
            await Promise.all(all.map((i) => c.lab.startNode(i, 30)));
            const gapMs = await w.waitResumed(faultAt, null, 60000);
            return { faultAt, endedAt, gapMs, crashedAll: true };
        },
        // A process crash: the page cache survives, and Redis write(2)s the AOF buffer before it
        // replies, except while a background fsync runs: then everysec postpones the write for up
        // to 2 s and replies anyway (a CI run lost one write so; aof-durability.test.ts shows it
        // with a disk hog). Writes acknowledged before that window must all read back.
        (w, r) => {
            const lastSecond = w.ackedIssuedBetween(faultAt - 1000, faultAt).length;
            r.note = `${lastSecond} acked in the last second before the crash`;
        },
    );
});

test("100 ms latency + 5 % loss between zones for 60 s: no failover, no flapping", async () => {
    const DELAY_MS = 100;
    let epochBefore = "";
    let mastersBefore: number[] = [];
    let maxPauseMs = 0;
    let pingBefore = -1;
    let pingDuring = -1;
    let steadyAt = 0;
    await scenario(
        "latency-100ms-loss-5pct-60s",
        async (w) => {
            pingBefore = zonePingMs(1, c.zoneNodes(0)[0]);
            mastersBefore = (await c.masters()).sort();
            epochBefore = /cluster_current_epoch:(\d+)/.exec(await c.lab.cli(0, ["CLUSTER", "INFO"]))![1];
            const proxies: DelayProxyHandle[] = [];
            const faultAt = Date.now();
            try {
                // Every zone: a delay proxy in front of its nodes' client and bus ports for traffic
                // from the other zones (replication and the cluster bus), plus 5 % loss outbound.
                for (let z = 0; z < c.net.zones; z++) {
                    const maps = c.zoneNodes(z).flatMap((i) => [c.lab.nodes[i].port, c.lab.nodes[i].busPort].map((p) => ({ listen: p + 20000, upstream: p })));
                    proxies.push(await startDelayProxy(c.net.ns(z), { host: c.net.zoneIp(z), delayMs: DELAY_MS, maps }));
                    c.net.delayFromOtherZones(z, maps.map((m) => ({ port: m.upstream, proxyPort: m.listen })), 5);
                }
                // NAT applies to new connections: cut the established inter-zone ones so that the
                // cluster bus links and replication reconnect through the proxies.
                for (let z = 0; z < c.net.zones; z++) {
                    for (let o = 0; o < c.net.zones; o++) if (o !== z) execFileSync("ip", ["netns", "exec", c.net.ns(z), "ss", "-K", "dst", c.net.zoneIp(o)], { stdio: "ignore", timeout: 10000 });
                }
                // The forced reconnect is this test's artefact (real latency slows open links): the
                // fault's steady state starts once every master has its replicas online again.
                // Steady once every shard acknowledged a write (WAIT 1: a replica link is back) issued after the cut.
                const cutAt = Date.now();
                const shards = await Promise.all((await c.masters()).map((m) => c.slotsOf([m], m)));
                await waitFor("a write acknowledged on every shard through the proxies", 90000, async () => shards.every((sl) => w.gapAfter(cutAt, sl) >= 0), 250);
                steadyAt = Date.now();
                // Proof that the delay is on the path: a PING round trip from zone 1 to a node of zone 0.
                pingDuring = zonePingMs(1, c.zoneNodes(0)[0]);
                await sleep(60000); // the fault's duration, not an assertion
            } finally {
                for (let z = 0; z < c.net.zones; z++) c.net.clearFaults(z);
                for (const p of proxies) await p.stop();
            }
            const endedAt = Date.now();
            const acks = [...w.ackedAt.values()].filter((t) => t >= steadyAt && t <= endedAt).sort((a, b) => a - b);
            for (let k = 1; k < acks.length; k++) maxPauseMs = Math.max(maxPauseMs, acks[k] - acks[k - 1]);
            const reconnect = ((steadyAt - faultAt) / 1000).toFixed(1);
            return { faultAt, endedAt, gapMs: maxPauseMs, note: `${acks.length} acked in ${((endedAt - steadyAt) / 1000).toFixed(0)} s of steady fault (after ${reconnect} s of forced reconnect), zone-to-zone PING ${pingBefore} ms before, ${pingDuring} ms during; write gap = longest pause between acks` };
        },
    );
    expect(pingDuring).toBeGreaterThanOrEqual(2 * DELAY_MS);
    expect(pingBefore).toBeLessThan(pingDuring);
    expect((await c.masters()).sort()).toEqual(mastersBefore);
    expect(/cluster_current_epoch:(\d+)/.exec(await c.lab.cli(0, ["CLUSTER", "INFO"]))![1]).toBe(epochBefore);
    expect(maxPauseMs).toBeLessThan(NODE_TIMEOUT_MS);
});

const { zonePingMs, persistence } = zoneProbes(() => c);

test("a replica left following its demoted master (a chain the server does not fold): converge re-points it", async () => {
    // The order seen in CI on 8.6.3 that leaves a chain for good: r2 hears from m itself that m
    // now replicates r1 (the server moves m's slots to r1 in r2's view: "A failover occurred in
    // shard ...") before any other claim, so r1's later claims change nothing in r2's view and the
    // server's own repair ("I'm a sub-replica!") never runs: it runs only when some claim changes
    // r2's slot map, e.g. the next failover anywhere. Staged in that order: r2 stopped (it sends
    // nothing, so nobody answers it with an UPDATE) and cut off from r1's zone during the
    // failover; m's pings after its demotion wait in r2's socket and are read first at SIGCONT.
    // The masters are balanced first (a failover out of r1's zone), so after the staging converge
    // has no re-spread to do (whose failover would let the server fold the chain itself).
    await scenario("chained-replica", async (w) => {
        const m = (await c.masters())[0];
        const seen = await c.nodesSeenBy(m);
        const mId = seen.find((n) => n.myself)!.id;
        const [r1, r2] = seen.filter((n) => n.masterId === mId && !n.failed).map((n) => c.indexOf(n));
        expect(r2).toBeDefined();
        const other = (await c.masters()).find((i) => c.zoneOf(i) === c.zoneOf(r1))!;
        const otherSeen = await c.nodesSeenBy(other);
        const otherId = otherSeen.find((n) => n.myself)!.id;
        const taker = c.indexOf(otherSeen.find((n) => n.masterId === otherId && c.zoneOf(c.indexOf(n)) === c.zoneOf(m))!);
        // The provider's planned failover (it re-sends CLUSTER FAILOVER when the server gave it up,
        // e.g. masters that voted in this shard within 2 x node-timeout refuse their votes).
        const pool = new Pool(labCreds(c.lab), {});
        const target = (i: number) => specTarget(c.spec.nodes[i]);
        const failover = (replica: number, master: number) => plannedFailover(pool, target(replica), target(master), resolve({ convergeTimeoutMs: 40000 }));
        try {
            await failover(taker, other);
            await waitFor(`every node to see node${taker} own its slots`, 30000, async () => {
                for (const n of c.lab.nodes) if (!(await c.nodesSeenBy(n.index)).some((x) => c.indexOf(x) === taker && x.master && x.slots.length > 0)) return false;
                return true;
            });
            const slots = await c.slotsOf([m], r2);
            const faultAt = Date.now();
            const pid2 = c.lab.nodes[r2].pid;
            c.net.cut(c.zoneOf(r1), c.zoneOf(r2));
            process.kill(pid2, "SIGSTOP");
            try {
                await failover(r1, m); // returns once m reports itself a replica
                // m pings r2 again within node-timeout (a new ping, or a new link when the old one
                // gave no pong for node-timeout/2): by then its news waits in r2's socket.
                await sleep(NODE_TIMEOUT_MS + 1500);
                process.kill(pid2, "SIGCONT");
                await waitFor(`node${r2} to see node${m} as a replica`, 30000, async () => (await c.nodesSeenBy(r2)).some((n) => c.indexOf(n) === m && !n.master));
            } finally {
                process.kill(pid2, "SIGCONT");
                c.net.clearFaults(c.zoneOf(r1));
            }
            const endedAt = Date.now();
            await waitFor(`node${r2} to see node${r1} own the shard's slots`, 30000, async () => (await c.nodesSeenBy(r2)).some((n) => c.indexOf(n) === r1 && n.master && n.slots.length > 0));
            await sleep(3000); // gossip rounds in which the server could fold the chain itself (it does not)
            const r2Master = (await c.nodesSeenBy(r2)).find((n) => n.myself)!.masterId;
            const chained = r2Master === mId ? `node${r2} still followed node${m} (a replica of node${r1}) 3 s after the heal` : `node${r2} followed ${r2Master} (the server folded the chain)`;
            const version = c.lab.state.serverVersion;
            // Before 7.2 m's news only drops m's slots from r2's view, so r1's claim usually changes
            // r2's map and the server folds the chain itself ("I'm a sub-replica!"): staged on 7.2+.
            const staged = /still followed/.test(chained);
            if (versionAtLeast(version, 7, 2)) {
                if (!staged) process.stdout.write(`node${r2} log:\n${fs.readFileSync(c.lab.nodes[r2].logFile, "utf8").split("\n").slice(-40).join("\n")}\n`);
                expect(chained).toMatch(/still followed/); // the staging worked: there is a chain to repair
            }
            // The wait that ends every reshape (where CI met such a chain, left by the reshape's own
            // failover) folds it instead of waiting for the server (which would be 15 s and a throw here).
            const logs: string[] = [];
            const replicaOf = await settleReplication(pool, c.spec.nodes.map(specTarget), resolve({ convergeTimeoutMs: 15000, log: (m) => logs.push(m) }));
            const addr = (i: number) => `${c.lab.nodes[i].host}:${c.lab.nodes[i].port}`;
            if (staged) {
                expect(replicaOf.get(addr(r2))).toBe(addr(r1));
                expect(logs.join("\n")).toMatch(/a chain the server does not fold\): REPLICATE node/);
            }
            const gapMs = await w.waitResumed(faultAt, slots);
            return { faultAt, endedAt, gapMs, note: staged ? `${chained}; folded by the reshape's final wait: ${logs.filter((l) => /REPLICATE/.test(l)).join(" | ")}` : `not staged on ${version}: ${chained}` };
        } finally {
            await pool.closeAll();
        }
    });
});

test("a master's data disk full, then freed: it refuses writes (MISCONF) instead of losing them, then resumes", async () => {
    // The disk: a 64 MiB tmpfs mounted over one replica's data directory (moved there while the
    // node is down); in the scenario that replica is promoted by a planned failover, so the full
    // disk is a master's. The next converge re-spreads the masters as usual.
    const masters = await c.masters();
    const rep = (await c.nodesSeenBy(masters[0])).find((n) => !n.master && n.masterId)!;
    const r = c.indexOf(rep);
    const dir = c.lab.nodes[r].dataDir;
    const stash = fs.mkdtempSync(path.join(path.dirname(dir), "stash-"));
    const fill = path.join(dir, "fill.bin");
    let mounted = false;
    const moveOnto = async (mount: boolean) => {
        await c.lab.killNode(r);
        fs.cpSync(dir, stash, { recursive: true });
        if (mount) execFileSync("mount", ["-t", "tmpfs", "-o", "size=64m,mode=0700", "rf-chaos-full", dir], { timeout: 10000 });
        else execFileSync("umount", [dir], { timeout: 10000 });
        mounted = mount;
        fs.cpSync(stash, dir, { recursive: true });
        fs.rmSync(stash, { recursive: true, force: true });
        fs.mkdirSync(stash);
        await c.lab.startNode(r, 30);
        await waitFor(`node${r} back as a synced replica`, 30000, async () => /master_link_status:up/.test(await c.lab.cli(r, ["INFO", "replication"])));
    };
    try {
        await moveOnto(true);
        await scenario("disk-full-master", async (w) => {
            await c.lab.cli(r, ["CLUSTER", "FAILOVER"]);
            await waitFor(`node${r} promoted by a planned failover`, 30000, async () => (await role(r)) === "master");
            const slots = await c.slotsOf([r], r);
            const faultAt = Date.now();
            execFileSync("fallocate", ["-l", String(freeBytes(dir)), fill], { timeout: 10000 });
            // The server notices at its next AOF write: it flags the error and refuses writes.
            await waitFor(`node${r} to report the AOF write error`, 20000, async () => (await persistence(r, "aof_last_write_status")) === "err");
            await sleep(5000); // the outage's duration, not an assertion
            expect(await persistence(r, "aof_last_write_status")).toBe("err");
            expect(w.errors.MISCONF ?? 0).toBeGreaterThan(0);
            fs.rmSync(fill);
            const endedAt = Date.now();
            // No failover: the master still answers on the bus, it only refuses writes.
            expect(await role(r)).toBe("master");
            const gapMs = await w.waitResumed(endedAt, slots);
            await waitFor(`node${r} AOF writes ok again`, 20000, async () => (await persistence(r, "aof_last_write_status")) === "ok");
            // The runbook's last step (monitoring/README.md, RedisAofWriteFailing): rewrite the AOF.
            // Without it the node may not restart: a short write into an incr file that came from
            // a rewrite leaves a hole of NUL bytes (7.0.15 and 8.6.3), "Bad file format" at the next
            // load. The restart off the tmpfs after this scenario proves the rewritten AOF loads.
            const aofCheck = checkAofCopy(path.join(dir, "appendonlydir"));
            const rewrites = Number(await persistence(r, "aof_rewrites"));
            await c.lab.cli(r, ["BGREWRITEAOF"]);
            await waitFor(`node${r} AOF rewrite done`, 20000, async () => Number(await persistence(r, "aof_rewrites")) > rewrites && (await persistence(r, "aof_rewrite_in_progress")) === "0");
            expect(await persistence(r, "aof_last_bgrewrite_status")).toBe("ok");
            const fullMs = endedAt - faultAt;
            return { faultAt, endedAt, gapMs: fullMs + gapMs, note: `full ${(fullMs / 1000).toFixed(1)} s, ${w.errors.MISCONF} writes refused with MISCONF, first ack ${(gapMs / 1000).toFixed(2)} s after it was freed; AOF before the rewrite: ${aofCheck}` };
        });
    } finally {
        fs.rmSync(fill, { force: true });
        // Off the tmpfs again: if still a master, hand its slots to a replica first (planned).
        if ((await role(r).catch(() => "")) === "master") {
            const seen = await c.nodesSeenBy(r);
            const mine = seen.find((n) => n.myself)!.id;
            const rr = seen.find((n) => n.masterId === mine && !n.failed);
            if (rr) {
                const ri = c.indexOf(rr);
                await c.lab.cli(ri, ["CLUSTER", "FAILOVER"]);
                await waitFor(`node${ri} takes over from node${r}`, 30000, async () => (await role(r)) === "slave");
            }
        }
        if (mounted) await moveOnto(false);
        fs.rmSync(stash, { recursive: true, force: true });
    }
});

test("the provider SIGKILLed during a planned failover (masters re-spread): the next converge finishes the repair", async () => {
    let note = "";
    await scenario("provider-killed-failover", async (w) => {
        // Crowd the masters as an automatic failover would: every zone holds one master, so
        // promoting any replica puts two masters in its zone.
        const nodes = await c.nodesSeenBy((await c.masters())[0]);
        const x = c.indexOf(nodes.find((n) => !n.master && n.masterId)!);
        // The server abandons a manual failover it cannot finish within 5 s (CI: right after the
        // previous scenario the votes did not come): re-sent every FAILOVER_RESEND_MS, as the provider does.
        let sentAt = 0;
        await waitFor(`node${x} promoted`, 30000, async () => {
            if ((await role(x)) === "master") return true;
            if (Date.now() - sentAt >= FAILOVER_RESEND_MS) {
                sentAt = Date.now();
                await c.lab.cli(x, ["CLUSTER", "FAILOVER"]);
            }
            return false;
        });
        await waitFor("every node to see the crowded layout", 30000, async () => {
            const perZone = (await c.masters(x)).map((m) => c.zoneOf(m));
            return Math.max(...[0, 1, 2].map((z) => perZone.filter((v) => v === z).length)) === 2;
        });
        // The provider in its own process: SIGKILL it the moment a replica accepted its CLUSTER FAILOVER.
        const logLen = c.lab.nodes.map((n) => fs.statSync(n.logFile).size);
        const child = spawn(path.join(__dirname, "..", "..", "node_modules", ".bin", "tsx"), [path.join(__dirname, "converge-child.ts")], { stdio: ["pipe", "pipe", "pipe"] });
        let out = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (out += d));
        const exited = new Promise<NodeJS.Signals | number | null>((r) => child.on("exit", (code, sig) => r(sig ?? code)));
        child.stdin.end(JSON.stringify({ spec: c.spec, creds: labCreds(c.lab) }));
        let accepted = -1;
        try {
            const failedEarly = exited.then((how) => {
                throw new Error(`the provider exited (${how}) before any replica accepted its CLUSTER FAILOVER: ${out.slice(-800)}`);
            });
            failedEarly.catch(() => undefined);
            accepted = await Promise.race([
                waitFor(() => `a replica to accept the provider's CLUSTER FAILOVER (provider output: ${out.slice(-500)})`, 60000, async () => {
                    const i = c.lab.nodes.findIndex((n, k) => fs.readFileSync(n.logFile, "utf8").slice(logLen[k]).includes("Manual failover user request accepted"));
                    return i >= 0 ? i + 1 : false;
                }, 20).then((i) => i - 1),
                failedEarly,
            ]);
        } finally {
            child.kill("SIGKILL");
        }
        const faultAt = Date.now();
        expect(await exited).toBe("SIGKILL");
        const sawDone = /failover done/.test(out);
        // The shard being handed over: the accepting node's slots if the failover already finished,
        // else its master's (a manual failover can also time out on the servers; converge redoes it).
        // Read until the view names them: on 8.6.3 the promoted node's first view can show it a master
        // with no slots yet.
        let me = (await c.nodesSeenBy(accepted)).find((n) => n.myself)!;
        let shardMaster = -1;
        const slots = await waitFor(`the slots of node${accepted}'s shard in its own view`, 10000, async () => {
            const seen = await c.nodesSeenBy(accepted);
            me = seen.find((n) => n.myself)!;
            shardMaster = me.master ? accepted : c.indexOf(seen.find((n) => n.id === me.masterId)!);
            const sl = await c.slotsOf([shardMaster], accepted);
            return sl.size > 0 ? sl : false;
        }, 50);
        const gapMs = await w.waitResumed(faultAt, slots).catch(async (e) => {
            // What the shard looked like when no write came back: its nodes' roles and links.
            const view = await c.lab.cli(accepted, ["CLUSTER", "NODES"]).catch((x) => String(x));
            const repl = await Promise.all(c.lab.nodes.map((n, i) => c.lab.cli(i, ["INFO", "replication"]).then((r) => `node${i}: ${r.split(/\r?\n/).filter((l) => /^(role|master_host|master_port|master_link_status|connected_slaves|slave\d)/.test(l)).join(" ")}`, (x) => `node${i}: ${x}`)));
            throw new Error(`${(e as Error).message}\nshard master node${shardMaster} (accepted node${accepted}, myself ${me.master ? "master" : "replica"}); provider output: ${out.slice(-1500)}\nCLUSTER NODES via node${accepted}:\n${view}\n${repl.join("\n")}`);
        });
        note = `provider killed after node${accepted} accepted CLUSTER FAILOVER (${sawDone ? "after" : "before"} the provider saw it done)`;
        return { faultAt, endedAt: faultAt, gapMs, note };
    });
    // The converge after the kill finished the repair: one master per zone again.
    const perZone = (await c.masters()).map((m) => c.zoneOf(m)).sort();
    expect(perZone).toEqual([0, 1, 2]);
});

test("torn AOF tail on a replica (crash mid-write): it loads the intact prefix and rejoins", async () => {
    await scenario("torn-aof-tail", async (w) => {
        const masters = await c.masters();
        const nodes = await c.nodesSeenBy(masters[0]);
        const rep = nodes.find((n) => !n.master && n.masterId)!;
        const r = c.indexOf(rep);
        const master = c.indexOf(nodes.find((n) => n.id === rep.masterId)!);
        const slots = await c.slotsOf([master], master);
        const faultAt = Date.now();
        await c.lab.killNode(r);
        // The manifest's last incr file is the one being appended to (and the last one loaded, the
        // only one whose torn tail aof-load-truncated forgives); cut its last command in half.
        const aofDir = path.join(c.lab.nodes[r].dataDir, "appendonlydir");
        const manifest = fs.readFileSync(path.join(aofDir, fs.readdirSync(aofDir).find((f) => f.endsWith(".manifest"))!), "utf8");
        const incr = [...manifest.matchAll(/^file (\S+) seq \d+ type i\b/gm)].map((m) => m[1]).pop()!;
        expect(incr).toMatch(/\.incr\.aof$/);
        const file = path.join(aofDir, incr);
        const body = fs.readFileSync(file);
        const lastCmd = body.lastIndexOf("\r\n*") + 2; // start of the last RESP array in the file
        expect(body.length).toBeGreaterThan(100);
        expect(lastCmd).toBeGreaterThan(1);
        const cut = lastCmd + Math.max(1, Math.floor((body.length - lastCmd) / 2));
        fs.truncateSync(file, cut);
        const logBefore = fs.readFileSync(c.lab.nodes[r].logFile, "utf8").length;
        const gapMs = await w.waitResumed(faultAt, slots);
        const endedAt = Date.now();
        await c.lab.startNode(r, 30);
        // The server saw the torn tail and loaded the prefix (aof-load-truncated yes). It answers
        // (LOADING) before the incr file is read: wait (bounded) for the end of the load in its log.
        const torn = new RegExp(`short read while loading the AOF file ${incr.replace(/\./g, "\\.")}[\\s\\S]*loaded anyway because aof-load-truncated is enabled`);
        const readLog = () => fs.readFileSync(c.lab.nodes[r].logFile, "utf8").slice(logBefore);
        await waitFor(`node${r} to finish loading its AOF`, 30000, async () => torn.test(readLog()) || /Ready to accept connections|DB loaded from append only file/.test(readLog())).catch(() => undefined);
        const log = readLog();
        if (!torn.test(log)) throw new Error(`node${r} did not report the torn tail of ${incr} (cut at ${cut} of ${body.length} bytes; manifest:\n${manifest}); its log since the restart:\n${log.split("\n").filter((l) => !/Memory overcommit/.test(l)).join("\n")}`);
        await waitFor(`node${r} to rejoin as a replica`, 30000, async () => (await role(r)) === "slave");
        return { faultAt, endedAt, gapMs, note: `${incr} cut at ${cut} of ${body.length} bytes` };
    });
});

test("a replica's data directory wiped (disk replaced): converge forgets the old id everywhere and re-adds the node", async () => {
    let r = -1;
    let oldId = "";
    await scenario("wiped-data-dir", async (w) => {
        const masters = await c.masters();
        const nodes = await c.nodesSeenBy(masters[0]);
        const rep = nodes.find((n) => !n.master && n.masterId)!;
        r = c.indexOf(rep);
        oldId = rep.id;
        const master = c.indexOf(nodes.find((n) => n.id === rep.masterId)!);
        const slots = await c.slotsOf([master], master);
        const faultAt = Date.now();
        await c.lab.killNode(r);
        // A new disk: no nodes.conf, no AOF. The rendered config (redis.conf, ACL, secrets) is provisioning's, so it stays.
        const dir = c.lab.nodes[r].dataDir;
        const keep = new Set(["redis.conf", "users.acl", "secrets.conf", "redis.log"]);
        for (const f of fs.readdirSync(dir)) if (!keep.has(f)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
        const gapMs = await w.waitResumed(faultAt, slots);
        const endedAt = Date.now();
        await c.lab.startNode(r);
        return { faultAt, endedAt, gapMs };
    });
    const newId = (await c.nodesSeenBy(r)).find((n) => n.myself)!.id;
    expect(newId).not.toBe(oldId);
    expect(await role(r)).toBe("slave");
    for (const n of c.lab.nodes) expect(await c.lab.cli(n.index, ["CLUSTER", "NODES"])).not.toContain(oldId);
});
