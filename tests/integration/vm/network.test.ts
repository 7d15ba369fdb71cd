/**
 * lab/vm/network.ts + lab/vm/firewall.ts against the real kernel: a stack namespace with its
 * bridge, extra namespaces attached as isolated bridge ports, TCP servers inside them, and
 * connection attempts that must succeed or be refused exactly as the allow-list says. No VMs
 * (tests/vm boots those); the endpoints are namespaces, which the bridge treats like taps.
 */
import { ChildProcess, spawn } from "child_process";
import { existsSync } from "fs";
import { addExtraNamespace, addServiceAddress, addTap, createStackNetwork, deleteStackNetwork, deleteTap, describeStackNetwork, ExtraNamespace, StackNetwork, stackNetworkExists } from "../../../lab/vm/network";
import { checkFirewallSyntax, clearFirewall, renderFirewall, setFirewall, showFirewall } from "../../../lab/vm/firewall";
import { alive, run, runIn, sleep } from "../../../lab/vm/exec";
import { runningDaemonPid, startNetnsDaemon, stopNetnsDaemon } from "../../../lab/vm/netns-daemon";
import { sessionNice } from "../../../lab/vm/session-nice";
import { mkdtempSync, rmSync } from "fs";
import { getPriority, setPriority, tmpdir } from "os";
import { join } from "path";

let net: StackNetwork;
let client: ExtraNamespace;
let monitoring: ExtraNamespace;
let internet: ExtraNamespace;
const servers: ChildProcess[] = [];

/** A TCP server (node) in namespace ns on ip:port that answers "ok <port>\n" to every connection. */
async function serve(ns: string, ip: string, port: number): Promise<void> {
    // A client that hangs up first (a readiness probe) must not crash the server: ECONNRESET is ignored.
    const code = `require("net").createServer((s) => { s.on("error", () => {}); s.end("ok ${port}\\n"); }).listen(${port}, "${ip}", () => console.log("up"))`;
    const p = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
    servers.push(p);
    await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`server ${ip}:${port} in ${ns} did not start in 10 s`)), 10000);
        p.stdout!.once("data", () => {
            clearTimeout(t);
            resolve();
        });
    });
}

/** "open" when a TCP connect from namespace `from` (or the host) reads the server's greeting, else "refused"/"timeout". */
function probe(from: string | undefined, ip: string, port: number): string {
    const code = `const s=require("net").connect(${port},"${ip}");s.setTimeout(3000,()=>{console.log("timeout");process.exit(0)});s.on("data",(d)=>{console.log(String(d).startsWith("ok")?"open":"garbage");process.exit(0)});s.on("error",(e)=>{console.log(e.code==="ECONNREFUSED"?"refused":e.code);process.exit(0)})`;
    const out = from ? runIn(from, process.execPath, ["-e", code]) : run(process.execPath, ["-e", code]);
    return out.trim();
}

beforeAll(async () => {
    net = createStackNetwork({ zones: ["zone-a", "zone-b", "zone-c"] });
    client = addExtraNamespace(net, "client", 0);
    monitoring = addExtraNamespace(net, "monitoring", 1);
    internet = addExtraNamespace(net, "internet", 2);
    await serve(client.netns, client.ip, 7001);
    await serve(client.netns, client.ip, 7002);
    await serve(monitoring.netns, monitoring.ip, 9100);
    const svc = addServiceAddress(net, 2);
    await serve(net.netns, svc, 5000);
});

afterAll(async () => {
    for (const p of servers) if (p.pid && p.exitCode === null) p.kill("SIGTERM");
    await sleep(200);
    if (net) deleteStackNetwork(net);
});

test("the address plan: zones, services, extra namespaces and the host link in the stack's /20", () => {
    const d = describeStackNetwork("ab12", 3, ["a", "b", "c"]);
    expect(d.cidr).toBe("10.210.48.0/20");
    expect(d.zones.c).toEqual({ cidr: "10.210.50.0/24", gateway: "10.210.50.1", prefixLen: 24 });
    expect(d.services.gateway).toBe("10.210.56.1");
    expect(d.hostLink).toEqual({ hostIfname: "rfvmab12h", hostIp: "10.210.63.2", nsIp: "10.210.63.1" });
    expect(() => describeStackNetwork("Bad_Id", 16, [])).toThrow(/id must be 1-6 lowercase.*slot must be an integer 0..15.*zones must list 1..8/);
    expect(() => describeStackNetwork("ok", 0, ["a", "a"])).toThrow(/zone labels must be unique/);
});

test("without a firewall every endpoint reaches every other, and the host reaches them over the host link", () => {
    expect(stackNetworkExists(net)).toBe(true);
    expect(probe(internet.netns, client.ip, 7001)).toBe("open");
    expect(probe(monitoring.netns, client.ip, 7002)).toBe("open");
    expect(probe(client.netns, monitoring.ip, 9100)).toBe("open");
    expect(probe(undefined, client.ip, 7001)).toBe("open");
    // The namespace has no route out: an address outside the stack is unreachable from inside.
    const outside = probe(client.netns, "192.0.2.1", 80);
    expect(["EHOSTUNREACH", "ENETUNREACH", "timeout"]).toContain(outside);
});

test("the allow-list: allowed ports open, everything else refused at once, replies pass, services guarded too", () => {
    setFirewall(net, [
        { from: internet.segment.cidr, to: client.ip, ports: 7001, comment: "internet -> client 7001" },
        { from: monitoring.ip, to: client.ip, ports: [7001, 7002], comment: "monitoring scrape" },
        { from: client.segment.cidr, to: `${net.services.gateway.replace(/\.1$/, ".2")}`, ports: 5000, comment: "client -> registry" },
    ]);
    expect(probe(internet.netns, client.ip, 7001)).toBe("open");
    expect(probe(internet.netns, client.ip, 7002)).toBe("refused");
    expect(probe(monitoring.netns, client.ip, 7002)).toBe("open");
    expect(probe(client.netns, monitoring.ip, 9100)).toBe("refused");
    expect(probe(undefined, client.ip, 7001)).toBe("refused"); // the host link is not in the list
    expect(probe(client.netns, "10.210.".concat(String(16 * net.slot + 8), ".2"), 5000)).toBe("open");
    expect(probe(internet.netns, "10.210.".concat(String(16 * net.slot + 8), ".2"), 5000)).toBe("refused");
    expect(showFirewall(net)).toContain('comment "monitoring scrape"');
    // Replacing the list is atomic and complete: the old rules are gone.
    setFirewall(net, [{ from: "0.0.0.0/0", to: client.ip, ports: 7002 }]);
    expect(probe(internet.netns, client.ip, 7001)).toBe("refused");
    expect(probe(internet.netns, client.ip, 7002)).toBe("open");
    clearFirewall(net);
    clearFirewall(net);
    expect(showFirewall(net)).toBe("");
    expect(probe(internet.netns, client.ip, 7001)).toBe("open");
});

test("two endpoints on the SAME segment are filtered too: isolated ports force their traffic through the forward chain", async () => {
    // A second endpoint on the client's segment, wired like addExtraNamespace does (isolated port).
    const ns2 = `${net.netns}-peer`;
    run("ip", ["netns", "add", ns2]);
    try {
        runIn(net.netns, "ip", ["link", "add", "x-peer", "type", "veth", "peer", "name", "eth0", "netns", ns2]);
        runIn(net.netns, "ip", ["link", "set", "x-peer", "master", net.bridge]);
        runIn(net.netns, "bridge", ["link", "set", "dev", "x-peer", "isolated", "on"]);
        runIn(net.netns, "ip", ["link", "set", "x-peer", "up"]);
        const peerIp = client.ip.replace(/\.2$/, ".3");
        runIn(ns2, "ip", ["addr", "add", `${peerIp}/24`, "dev", "eth0"]);
        runIn(ns2, "ip", ["link", "set", "eth0", "up"]);
        runIn(ns2, "ip", ["link", "set", "lo", "up"]);
        await sleep(500);
        expect(probe(ns2, client.ip, 7001)).toBe("open");
        setFirewall(net, [{ from: peerIp, to: client.ip, ports: 7002 }]);
        expect(probe(ns2, client.ip, 7001)).toBe("refused");
        expect(probe(ns2, client.ip, 7002)).toBe("open");
    } finally {
        clearFirewall(net);
        run("ip", ["netns", "del", ns2]);
    }
});

test("a daemon in a namespace: started detached, ready when it accepts TCP inside the namespace, stopped by its PID only", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rfvm-daemon-"));
    try {
        const code = `require("net").createServer((s) => { s.on("error", () => {}); s.end("ok 7100\\n"); }).listen(7100, "${client.ip}")`;
        const spec = { dir, name: "probe", netns: client.netns, cmd: process.execPath, args: ["-e", code], ready: { ip: client.ip, port: 7100 } };
        const pid = await startNetnsDaemon(spec);
        expect(await startNetnsDaemon(spec)).toBe(pid); // idempotent
        const seen = probe(internet.netns, client.ip, 7100);
        if (seen !== "open") {
            // What the kernel had when the probe was not answered (a CI run saw "refused" once).
            const sh = (ns: string, cmd: string) => { try { return runIn(ns, "bash", ["-c", cmd]); } catch (e) { return String(e); } };
            throw new Error(`probe internet -> ${client.ip}:7100 gave ${seen}; daemon ${pid} alive ${alive(pid)}; again now: ${probe(internet.netns, client.ip, 7100)}; from inside: ${probe(client.netns, client.ip, 7100)}\n` +
                `client listeners:\n${sh(client.netns, "ss -ltnp")}\nstack ruleset:\n${sh(net.netns, "nft list ruleset")}\nstack neigh:\n${sh(net.netns, "ip neigh")}\ninternet neigh:\n${sh(internet.netns, "ip neigh; ip route")}\nclient addr:\n${sh(client.netns, "ip -o addr")}`);
        }
        await stopNetnsDaemon(dir, "probe");
        // Gone when stop returns, not a zombie of this (its parent) process still in /proc.
        expect(existsSync(`/proc/${pid}`)).toBe(false);
        await stopNetnsDaemon(dir, "probe");
        expect(alive(pid)).toBe(false);
        expect(runningDaemonPid(dir, "probe")).toBeUndefined();
        await expect(startNetnsDaemon({ ...spec, name: "never", args: ["-e", "setTimeout(() => {}, 60000)"], ready: { ip: client.ip, port: 7101, timeoutMs: 1500 } })).rejects.toThrow(/did not accept TCP on .*:7101 within 1.5 s/);
        expect(runningDaemonPid(dir, "never")).toBeUndefined();
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});

test("a daemon started at nice 19 keeps it against other sessions (its session's autogroup), where a plain detached process does not", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rfvm-nice-"));
    const spec = { dir, name: "niced", netns: client.netns, cmd: process.execPath, args: ["-e", "setTimeout(() => {}, 60000)"] };
    let plain: ChildProcess | undefined;
    try {
        setPriority(19);
        let pid: number;
        try {
            plain = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { detached: true, stdio: "ignore" });
            pid = await startNetnsDaemon(spec);
        } finally {
            setPriority(0); // root: back to this process's nice
        }
        // The kernel groups by session here: without the autogroup's nice, nice 19 weighs only inside the session.
        expect(sessionNice(plain.pid!)).toBe(0);
        expect(getPriority(plain.pid!)).toBe(19);
        expect(sessionNice(pid)).toBe(19);
        expect(getPriority(pid)).toBe(19);
        await stopNetnsDaemon(dir, "niced");
        const atZero = await startNetnsDaemon(spec);
        expect(sessionNice(atZero)).toBe(0);
        await stopNetnsDaemon(dir, "niced");
    } finally {
        if (plain?.pid && alive(plain.pid)) process.kill(plain.pid, "SIGKILL");
        rmSync(dir, { recursive: true, force: true });
    }
});

test("bad rules are rejected naming the rule and the fix; the rendered table passes nft -c", () => {
    expect(() => renderFirewall([{ from: "10.0.0.300", to: "x", ports: 70000 }, { from: "0.0.0.0/0", to: "10.0.0.1", ports: [20, 10] }])).toThrow(
        /rules\[0\]\.from must be an IPv4 address or CIDR.*rules\[0\]\.to.*rules\[0\]\.ports must be a port 1..65535.*rules\[1\]\.ports range 20-10 is reversed/,
    );
    expect(() => checkFirewallSyntax([{ from: "10.210.0.0/24", to: "10.210.1.10", proto: "udp", ports: [1000, 2000], comment: "x;y" }, { from: "0.0.0.0/0", to: "10.210.1.10", proto: "icmp" }])).not.toThrow();
});

test("taps are isolated bridge ports and are created and deleted idempotently", () => {
    addTap(net, "vm-test0");
    addTap(net, "vm-test0");
    const link = runIn(net.netns, "bridge", ["-d", "link", "show", "dev", "vm-test0"]);
    expect(link).toMatch(/master br0/);
    expect(link).toMatch(/isolated on/);
    deleteTap(net, "vm-test0");
    deleteTap(net, "vm-test0");
    expect(runIn(net.netns, "ip", ["-o", "link", "show"])).not.toContain("vm-test0");
});

test("deleteStackNetwork removes the namespaces, the host link and the route, and is idempotent", () => {
    const other = createStackNetwork({ zones: ["a"] });
    addExtraNamespace(other, "client", 0);
    expect(other.slot).not.toBe(net.slot);
    deleteStackNetwork(other);
    deleteStackNetwork(other);
    expect(stackNetworkExists(other)).toBe(false);
    expect(existsSync(`/run/netns/${other.netns}-client`)).toBe(false);
    expect(run("ip", ["-4", "route", "show"])).not.toContain(other.cidr);
});
