/**
 * Formation `agent` on the VM stack (issue 13 item 4), on real VMs: `npm run test:vm -- agent-stack`
 * (not in `npm test`: the VM stack is not in `.ci/run`).
 *
 * Deploys with `REDISFORGE_VM_FORMATION=agent bash scripts/vm-up.sh` (reuses a stack that is up),
 * then, with the deploying machine (this host, on the stack's host link) reaching the nodes only
 * through the emulated cloud API (the S3 service):
 *   1. connections from this machine to every node's Redis port fail; the S3 API answers;
 *   2. the agents formed the cluster: status.json converged, 3 masters in 3 zones;
 *   3. healing without `pulumi up`: a hand-made CLUSTER FAILOVER (two masters in one zone) is
 *      repaired by the agents (time printed);
 *   4. a config change reshapes it with data: 30 000 keys written, `redisforge:shards` 3 -> 4 and
 *      `pulumi up` (two new VMs, the agents move a quarter of the slots); the lease holder's VM is
 *      SIGKILLed (QEMU) while the slots move, started again later with the same command line (a
 *      cloud's instance recovery); another agent takes the lease and the `up` ends with the declared
 *      shape; every key reads back.
 * The admin password (to write and read the keys) comes from the stack's secret store on this host
 * (the metadata service's files, as an operator reads a secret manager) and reaches the guest on a
 * command's stdin only. With REDISFORGE_VM_KEEP unset, afterAll destroys the stack.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { runningVmPid } from "../../lab/vm/qemu";
import type { AgentStatusDoc, LeaseDoc } from "../../providers/redis-cluster/agent/store";

import { NodeOut, pulumi as pulumiCli, pulumiEnv, REPO, sh, STACK, STATE } from "./stack";

jest.setTimeout(3 * 60 * 60 * 1000);
const CFG = path.join(REPO, ".vm-stack", `Pulumi.${STACK}.yaml`);
const KEYS = 30000;

/** The deployer's environment: vm-up.sh's Pulumi environment plus the stack's administrator S3 key (deployer-keys.ts). */
function env(): NodeJS.ProcessEnv {
    const base = pulumiEnv();
    const exports = execFileSync("npx", ["tsx", "providers/qemu/deployer-keys.ts", path.join(STATE, "s3-keys", "stack.json")], { cwd: REPO, env: base, encoding: "utf8" });
    for (const m of exports.matchAll(/^export (\w+)=(.*)$/gm)) base[m[1]] = m[2].replace(/^'(.*)'$/, "$1");
    return base;
}

let nodes: NodeOut[];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A file under the S3 service's data directory (the posix backend keeps objects as files). */
function s3Doc<T>(name: string): T | undefined {
    const found: string[] = [];
    const walk = (d: string) => {
        for (const e of fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }) : []) {
            if (e.isDirectory()) walk(path.join(d, e.name));
            else if (e.name === name) found.push(path.join(d, e.name));
        }
    };
    walk(path.join(STATE, "s3"));
    if (found.length > 1) throw new Error(`more than one ${name} under ${STATE}/s3: ${found.join(", ")}`);
    return found.length ? (JSON.parse(fs.readFileSync(found[0], "utf8")) as T) : undefined;
}
const status = () => s3Doc<AgentStatusDoc>("status.json");
const lease = () => s3Doc<LeaseDoc>("lease.json");

function adminPassword(): string {
    const dir = path.join(STATE, "metadata", "secrets");
    const f = fs.readdirSync(dir).find((n) => n.endsWith("admin-password"));
    if (!f) throw new Error(`no admin-password in ${dir}`);
    return `${fs.readFileSync(path.join(dir, f), "utf8").trim()}\n`;
}
/** A guest script's first line: the admin password from the script's stdin into redis-cli's environment. */
const AUTH_FROM_STDIN = 'read -r P; export REDISCLI_AUTH="$P"; unset P;';
/** redis-cli in a Redis VM as `admin` against `ip` (cluster mode); the script must begin with AUTH_FROM_STDIN. */
function adminCli(ip: string): string {
    return `redis-cli --no-auth-warning --tls --cacert /run/redisforge/redis/tls/ca.crt --cert /run/redisforge/redis/tls/node.crt --key /run/redisforge/redis/tls/node.key -h ${ip} -p 6379 --user admin -c`;
}
/** Masters and replicas from a node's nodes.conf: [address, role, master id, id]. */
async function layout(host: string): Promise<{ masters: string[]; zonesOfMasters: string[]; sameZone: string[] }> {
    const lines = (await sh(host, "cat /var/lib/redisforge/data/nodes.conf")).trim().split("\n").map((l) => l.split(" ")).filter((l) => l.length >= 8);
    const zoneOf = new Map(nodes.map((n) => [n.privateIp, n.zone]));
    const ip = (l: string[]) => l[1].split(":")[0];
    const masters = lines.filter((l) => l[2].includes("master") && l.length > 8);
    const byId = new Map(lines.map((l) => [l[0], l]));
    const sameZone = lines.filter((l) => l[2].includes("slave") && byId.get(l[3]) && zoneOf.get(ip(l)) === zoneOf.get(ip(byId.get(l[3])!))).map((l) => ip(l));
    return { masters: masters.map(ip), zonesOfMasters: masters.map((m) => zoneOf.get(ip(m)) ?? "?").sort(), sameZone };
}
function tcpFromHost(host: string, port: number): string {
    try {
        execFileSync("timeout", ["3", "bash", "-c", `exec 3<>/dev/tcp/${host}/${port}`], { stdio: "pipe", timeout: 6000 });
        return "open";
    } catch (e) {
        return /refused/i.test(String((e as { stderr?: Buffer }).stderr ?? "")) ? "refused" : "timeout";
    }
}

beforeAll(() => {
    const t = Date.now();
    execFileSync("bash", [path.join(REPO, "scripts/vm-up.sh"), STACK], { cwd: REPO, stdio: "inherit", timeout: 90 * 60 * 1000, env: { ...process.env, REDISFORGE_VM_FORMATION: "agent" } });
    nodes = JSON.parse(pulumiCli(["stack", "output", "nodes", "--json"], env())) as NodeOut[];
    console.log(`vm-up (formation agent; to a formed cluster, or a no-op when up): ${Math.round((Date.now() - t) / 1000)} s`);
});

afterAll(() => {
    if (process.env.REDISFORGE_VM_KEEP) return;
    execFileSync("bash", [path.join(REPO, "scripts/vm-down.sh"), STACK], { cwd: REPO, stdio: "inherit", timeout: 20 * 60 * 1000, env: { ...process.env, REDISFORGE_VM_FORMATION: "agent" } });
});

test("the deploying machine reaches no node (only the S3 API): every connection to a Redis port fails", () => {
    const cfg = parse(fs.readFileSync(CFG, "utf8")).config as Record<string, unknown>;
    expect(cfg["redisforge:formation"]).toBe("agent");
    const got = nodes.map((n) => `${n.name} ${tcpFromHost(n.privateIp, 6379)}`);
    expect(got.filter((g) => g.endsWith(" open"))).toEqual([]);
    const s3 = String(cfg["redisforge:redisImage"]).split("/")[0].replace(/\.2:5000$/, ".3");
    expect(tcpFromHost(s3, 9000)).toBe("open");
});

test("the agents formed the cluster: status converged, 3 masters in 3 zones, no replica in its master's zone", async () => {
    const st = status();
    expect(st?.phase).toBe("converged");
    expect(st!.appliedGeneration).toBeGreaterThanOrEqual(1);
    const l = await layout(nodes[0].name);
    expect(l.zonesOfMasters).toEqual(["vm-a", "vm-b", "vm-c"]);
    expect(l.sameZone).toEqual([]);
});

test("healing without pulumi up: a hand-made failover that crowds a zone is undone by the agents", async () => {
    const before = await layout(nodes[0].name);
    // A replica whose zone already has a master: promoting it puts two masters in that zone.
    const replica = nodes.find((n) => !before.masters.includes(n.privateIp) && before.zonesOfMasters.includes(n.zone))!;
    const healedBefore = status()?.healed.length ?? 0;
    const t0 = Date.now();
    await sh(replica.name, `${AUTH_FROM_STDIN} ${adminCli(replica.privateIp)} CLUSTER FAILOVER`, 120000, adminPassword());
    let crowded = false;
    let healedAt = 0;
    for (let i = 0; i < 240 && !healedAt; i++) {
        await sleep(5000);
        const l = await layout(nodes[0].name).catch(() => undefined);
        if (!l) continue;
        if (new Set(l.zonesOfMasters).size < 3) crowded = true;
        else if (crowded && l.sameZone.length === 0 && (status()?.healed.length ?? 0) > healedBefore) healedAt = Date.now();
    }
    console.log(`heal: CLUSTER FAILOVER on ${replica.name} (zone ${replica.zone}); crowded seen ${crowded}; masters one per zone again ${healedAt ? `${Math.round((healedAt - t0) / 1000)} s` : "never (20 min)"} after it; repairs: ${JSON.stringify(status()?.healed.slice(-1))}`);
    expect(crowded).toBe(true);
    expect(healedAt).toBeGreaterThan(0);
});

test("shards 3 -> 4 with 30 000 keys: the agents reshape it, the lease holder's VM killed mid-migration; every key reads back", async () => {
    const pw = adminPassword();
    const via = nodes[0];
    // 60 hash tags of 500 keys each, in tag order: redis-cli -c opens a new TLS connection at every
    // redirect, which under emulation held a first attempt (one key at a time, 2 of 3 redirected) to
    // ~4 keys/s; in tag order it redirects at most once per tag. ~15 of the 60 slots move in 3 -> 4.
    const load = await sh(via.name, `${AUTH_FROM_STDIN} seq 0 ${KEYS - 1} | awk '{print "SET rk:{t" int($1/500) "}:"$1" v:"$1}' | ${adminCli(via.privateIp)} | grep -c '^OK$'`, 20 * 60 * 1000, pw);
    expect(Number(load.trim())).toBe(KEYS);

    // The config change, as an operator makes it: the stack file vm-up.sh generated, shards 4.
    const cfgText = fs.readFileSync(CFG, "utf8");
    fs.writeFileSync(CFG, cfgText.replace(/^( {2}redisforge:shards: )"3"$/m, '$1"4"'));
    expect(fs.readFileSync(CFG, "utf8")).toMatch(/^ {2}redisforge:shards: "4"$/m);
    const generationBefore = status()!.appliedGeneration;
    const t0 = Date.now();
    const upLog: string[] = [];
    const up: ChildProcess = spawn("pulumi", ["up", "--stack", STACK, "--config-file", CFG, "--yes", "--skip-preview"], { cwd: REPO, env: env(), stdio: ["ignore", "pipe", "pipe"] });
    up.stdout!.on("data", (d) => upLog.push(String(d)));
    up.stderr!.on("data", (d) => upLog.push(String(d)));
    const upDone = new Promise<number>((r) => up.on("exit", (code) => r(code ?? 1)));

    // Wait (bounded) for the agents to move slots under the new generation, then kill the holder's VM.
    let victim: { host: string; argv: string[]; at: number; term: number } | undefined;
    let exited: number | undefined;
    void upDone.then((c) => (exited = c));
    for (let i = 0; i < 1800 && !victim && exited === undefined; i++) {
        await sleep(2000);
        const st = status();
        const ls = lease();
        if (!st || !ls || st.generation <= generationBefore || st.phase !== "converging" || st.progress?.phase !== "migrate") continue;
        const host = nodes.find((n) => ls.holder.includes(n.name))?.name;
        const pid = host ? runningVmPid(path.join(STATE, "vms", host)) : undefined;
        if (!host || !pid) throw new Error(`lease holder ${ls.holder}: no VM of that name with a running QEMU`);
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
        process.kill(pid, "SIGKILL");
        victim = { host, argv, at: Date.now(), term: ls.term };
        console.log(`reshape: ${Math.round((victim.at - t0) / 1000)} s after pulumi up began, ${st.progress?.message ?? "migrating"}: SIGKILL QEMU of ${host} (lease holder, term ${ls.term})`);
    }
    expect(victim).toBeDefined();

    // Another agent takes the lease (bounded); then the killed VM comes back with the same command line.
    let tookOver = 0;
    for (let i = 0; i < 120 && !tookOver; i++) {
        await sleep(5000);
        const ls = lease();
        if (ls && ls.term > victim!.term && !ls.holder.includes(victim!.host)) tookOver = Date.now();
    }
    console.log(`reshape: another agent took the lease ${tookOver ? `${Math.round((tookOver - victim!.at) / 1000)} s after the kill (${lease()?.holder}, term ${lease()?.term})` : "not within 10 min"}`);
    expect(tookOver).toBeGreaterThan(0);
    execFileSync(victim!.argv[0], victim!.argv.slice(1), { stdio: "ignore", timeout: 60000 });
    const restartedAt = Date.now();

    let code = await Promise.race([upDone, sleep(90 * 60 * 1000).then(() => -1)]);
    if (code !== 0) {
        // The up's bounded wait may end while the killed VM boots again: an operator runs it again.
        console.log(`reshape: the first pulumi up exited ${code} after ${Math.round((Date.now() - t0) / 1000)} s; its end:\n${upLog.join("").split("\n").slice(-30).join("\n")}`);
        if (code === -1) up.kill("SIGTERM");
        code = await new Promise<number>((r) => spawn("pulumi", ["up", "--stack", STACK, "--config-file", CFG, "--yes", "--skip-preview", "--refresh"], { cwd: REPO, env: env(), stdio: "inherit" }).on("exit", (c) => r(c ?? 1)));
    }
    nodes = JSON.parse(pulumiCli(["stack", "output", "nodes", "--json"], env())) as NodeOut[];
    expect(nodes).toHaveLength(8);
    const st = status()!;
    console.log(`reshape 3 -> 4 shards (formation agent): pulumi up ${Math.round((Date.now() - t0) / 1000)} s; the killed VM restarted ${Math.round((restartedAt - victim!.at) / 1000)} s after the kill; status ${st.phase}, generation ${st.appliedGeneration}, by ${st.agent} (term ${st.term})`);
    expect(code).toBe(0);
    expect(st.phase).toBe("converged");
    expect(st.agent).not.toContain(victim!.host);
    const l = await layout(via.name);
    expect(l.masters).toHaveLength(4);
    expect(l.sameZone).toEqual([]);
    const read = await sh(via.name, `${AUTH_FROM_STDIN} seq 0 ${KEYS - 1} | awk '{print "GET rk:{t" int($1/500) "}:"$1}' | ${adminCli(via.privateIp)} | awk -v n=0 '/^v:[0-9]+$/ { if (seen[$0]++ == 0) n++ } END { print n }'`, 20 * 60 * 1000, pw);
    expect(Number(read.trim())).toBe(KEYS);
});
