/**
 * The lab for humans: a TLS Redis Cluster on this machine in one command.
 *
 *   npm run lab -- up [--nodes 6] [--replicas 1] [--dir .lab/dev] [--former provider|redis-cli] [--timeout 120] [--redis system|8.6|<dir>]
 *   npm run lab -- status [--dir .lab/dev]
 *   npm run lab -- down [--dir .lab/dev]
 *
 * `up` starts real redis-server processes from the project's templates (lab/lab.ts), forms the
 * cluster with the project's cluster provider (zone-aware), waits until every node agrees and every
 * replica is linked, and prints how to connect. Passwords are never printed: they stay in the 0600
 * secrets file. `down` stops exactly the PIDs `up` recorded and removes the lab's directory.
 * `status` prints the topology; it exits 0 when the cluster is healthy, 1 when not, 2 when there is
 * no lab.
 */
import * as fs from "fs";
import * as path from "path";
import { judge, NodeReport } from "./cluster-view";
import { convergeLab, LabProgress, labObserver } from "./form";
import { Lab, pidAlive } from "./lab";
import { redisCliCreate } from "./redis-cli-cluster";
import { redisRuntime } from "./redis-runtime";

const DEFAULT_DIR = ".lab/dev";
/** Written next to lab.json: what `up` was asked for, so that `status` can judge the cluster. */
const CLI_STATE = "lab-cli.json";

interface CliState {
    shards: number;
    replicasPerShard: number;
    former: "provider" | "redis-cli";
    nodes: number;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): { command: string; flags: Map<string, string> } {
    const [command = "", ...rest] = argv;
    const flags = new Map<string, string>();
    for (let i = 0; i < rest.length; i++) {
        const a = rest[i];
        if (!a.startsWith("--")) throw new UsageError(`unexpected argument "${a}"; flags look like --nodes 6`);
        const eq = a.indexOf("=");
        if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
        else {
            const v = rest[i + 1];
            if (v === undefined || v.startsWith("--")) throw new UsageError(`flag ${a} needs a value, e.g. ${a} 6`);
            flags.set(a.slice(2), v);
            i++;
        }
    }
    return { command, flags };
}

function intFlag(flags: Map<string, string>, name: string, def: number, min: number): number {
    const raw = flags.get(name);
    if (raw === undefined) return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}; got "${raw}"`);
    return n;
}

function checkFlags(flags: Map<string, string>, allowed: string[]): void {
    for (const k of flags.keys()) if (!allowed.includes(k)) throw new UsageError(`unknown flag --${k}; allowed: ${allowed.map((a) => `--${a}`).join(" ")}`);
}

const out = (line = "") => process.stdout.write(line + "\n");

function formatProgress(e: LabProgress): string {
    const extra: string[] = [];
    if (e.slotsTotal) extra.push(`${e.slotsMoved ?? 0}/${e.slotsTotal} slots`);
    if (e.keysMoved !== undefined) extra.push(`${e.keysMoved} keys`);
    if (e.keysPerSec !== undefined) extra.push(`${Math.round(e.keysPerSec)} keys/s`);
    return `  [${e.phase}] ${e.message}${extra.length ? ` (${extra.join(", ")})` : ""}`;
}

function ranges(slots: Array<[number, number]>): string {
    return slots.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(",");
}

/** Human topology from one healthy-looking report, with zones and names from the lab. */
function printTopology(lab: Lab, reports: NodeReport[]): void {
    const source = reports.find((r) => !r.error && r.nodes.length);
    if (!source) {
        out("  no node answered; the cluster view is unknown");
        return;
    }
    const byAddress = new Map(lab.nodes.map((n) => [`${n.host}:${n.port}`, n]));
    const keysByAddress = new Map(reports.map((r) => [r.address, r.keys]));
    const linkByAddress = new Map(reports.map((r) => [r.address, r.masterLinkStatus]));
    const label = (address: string) => {
        const n = byAddress.get(address);
        return n ? `${n.name.padEnd(7)} ${address.padEnd(16)} ${n.zone}` : `${"?".padEnd(7)} ${address.padEnd(16)} (not in this lab)`;
    };
    const masters = source.nodes.filter((n) => n.role === "master").sort((a, b) => (a.slots[0]?.[0] ?? 1e9) - (b.slots[0]?.[0] ?? 1e9));
    for (const m of masters) {
        const count = m.slots.reduce((s, [a, b]) => s + b - a + 1, 0);
        out(`  master  ${label(m.address)}  slots ${ranges(m.slots) || "-"} (${count})  keys ${keysByAddress.get(m.address) ?? "?"}`);
        for (const r of source.nodes.filter((x) => x.role === "replica" && x.masterId === m.id)) {
            const sameZone = byAddress.get(r.address)?.zone === byAddress.get(m.address)?.zone;
            out(`    replica ${label(r.address)}  link ${linkByAddress.get(r.address) || "?"}${sameZone ? "  WARNING: same zone as its master" : ""}`);
        }
    }
    const inView = new Set(source.nodes.map((n) => n.address));
    for (const n of lab.nodes) if (!inView.has(`${n.host}:${n.port}`)) out(`  spare   ${label(`${n.host}:${n.port}`)}  (not in the cluster)`);
}

function printConnect(lab: Lab): void {
    const n = lab.nodes[0];
    const rel = (p: string) => path.relative(process.cwd(), p) || p;
    out("Connect (mTLS + ACL; -c follows cluster redirects):");
    out(`  redis-cli --tls --cacert ${rel(lab.tls.caFile)} --cert ${rel(lab.tls.clientCertFile)} --key ${rel(lab.tls.clientKeyFile)} -c -h ${n.host} -p ${n.port} --user app --askpass`);
    out(`Passwords of the ACL users (admin, app, readonly, replication, exporter) are in ${rel(path.join(lab.dir, "secrets.json"))} (mode 0600); they are not printed.`);
    out(`Every node: ${lab.nodes.map((x) => `${x.host}:${x.port}`).join(" ")}`);
    out(`Stop and remove: npm run lab -- down${path.resolve(lab.dir) === path.resolve(DEFAULT_DIR) ? "" : ` --dir ${rel(lab.dir)}`}`);
}

async function up(flags: Map<string, string>): Promise<number> {
    checkFlags(flags, ["nodes", "replicas", "dir", "former", "timeout", "redis"]);
    const nodes = intFlag(flags, "nodes", 6, 1);
    const replicas = intFlag(flags, "replicas", 1, 0);
    const timeoutSec = intFlag(flags, "timeout", 120, 1);
    const dir = path.resolve(flags.get("dir") ?? DEFAULT_DIR);
    const former = (flags.get("former") ?? "provider") as CliState["former"];
    if (former !== "provider" && former !== "redis-cli") throw new UsageError(`--former must be "provider" or "redis-cli"; got "${former}"`);
    if (nodes % (replicas + 1) !== 0) {
        throw new UsageError(`--nodes ${nodes} is not a multiple of 1 + --replicas (${replicas + 1}); use e.g. --nodes ${(replicas + 1) * 3}`);
    }
    const shards = nodes / (replicas + 1);
    let runtime: ReturnType<typeof redisRuntime>;
    try {
        runtime = redisRuntime(flags.get("redis") ?? process.env.REDISFORGE_REDIS ?? "system");
    } catch (e) {
        throw new UsageError(`--redis: ${(e as Error).message}`);
    }
    if (shards < 3) throw new UsageError(`--nodes ${nodes} with --replicas ${replicas} gives ${shards} masters; a Redis Cluster needs at least 3: use --nodes ${(replicas + 1) * 3}`);
    if (fs.existsSync(path.join(dir, "lab.json"))) {
        const old = Lab.load(dir);
        if (old.nodes.some((n) => pidAlive(n.pid))) {
            out(`A lab is already running in ${dir}. Stop it first: npm run lab -- down${flags.has("dir") ? ` --dir ${flags.get("dir")}` : ""}`);
            return 1;
        }
        fs.rmSync(dir, { recursive: true, force: true }); // leftovers of a lab whose processes are gone
    }

    out(`Starting ${nodes} TLS redis-server ${runtime.version} nodes in ${dir} ...`);
    let lab: Lab;
    try {
        lab = await Lab.start({ dir, count: nodes, redisServer: runtime.server });
    } catch (e) {
        // Stop whatever did start (by the PIDs recorded so far) so that a failed `up` leaves nothing.
        if (fs.existsSync(path.join(dir, "lab.json"))) await Lab.load(dir).stop({ removeData: true });
        out(`Starting the nodes failed: ${(e as Error).message}`);
        return 1;
    }
    const state: CliState = { shards, replicasPerShard: replicas, former, nodes };
    fs.writeFileSync(path.join(dir, CLI_STATE), JSON.stringify(state, null, 2), { mode: 0o600 });
    for (const n of lab.nodes) out(`  ${n.name} ${n.host}:${n.port} (bus ${n.busPort}) ${n.zone} pid ${n.pid}`);
    const observer = labObserver(lab);
    try {
        const started = performance.now();
        out(`Forming a ${shards}x${replicas} cluster with ${former === "provider" ? "the RedisForge cluster provider (zone-aware)" : "redis-cli --cluster create"} ...`);
        const indices = lab.nodes.map((n) => n.index);
        if (former === "provider") await convergeLab(lab, indices, shards, replicas, { onProgress: (e) => out(formatProgress(e)), log: (m) => out(`  ${m}`) });
        else await redisCliCreate(lab, indices, replicas, timeoutSec * 1000);
        const { ms, reports } = await observer.waitHealthy({ masters: shards, replicas: shards * replicas }, { timeoutMs: timeoutSec * 1000, startedAt: started });
        out(`Cluster healthy after ${(ms / 1000).toFixed(2)} s: cluster_state:ok on every node, all agree on the slots, every replica linked.`);
        printTopology(lab, reports);
        out();
        printConnect(lab);
        return 0;
    } catch (e) {
        out(`Forming the cluster failed: ${(e as Error).message}`);
        out(`Stopping the ${nodes} nodes and removing ${dir} ...`);
        observer.close();
        await lab.stop({ removeData: true });
        return 1;
    } finally {
        observer.close();
    }
}

async function status(flags: Map<string, string>): Promise<number> {
    checkFlags(flags, ["dir"]);
    const dir = path.resolve(flags.get("dir") ?? DEFAULT_DIR);
    if (!fs.existsSync(path.join(dir, "lab.json"))) {
        out(`No lab in ${dir}. Start one: npm run lab -- up`);
        return 2;
    }
    const lab = Lab.load(dir);
    const cli: CliState | undefined = fs.existsSync(path.join(dir, CLI_STATE)) ? JSON.parse(fs.readFileSync(path.join(dir, CLI_STATE), "utf8")) : undefined;
    const alive = lab.nodes.filter((n) => pidAlive(n.pid));
    out(`Lab ${dir}: ${alive.length}/${lab.nodes.length} redis-server processes running (redis ${lab.state.serverVersion})`);
    for (const n of lab.nodes) if (!pidAlive(n.pid)) out(`  ${n.name} ${n.host}:${n.port} ${n.zone}: NOT RUNNING`);
    if (!alive.length) return 1;
    const observer = labObserver(lab, alive.map((n) => n.index));
    try {
        const reports = await observer.poll();
        const states = [...new Set(reports.map((r) => r.error ? "unreachable" : r.clusterState))];
        out(`cluster_state: ${states.join(", ")}`);
        printTopology(lab, reports);
        const expect = cli ? { masters: cli.shards, replicas: cli.shards * cli.replicasPerShard } : undefined;
        if (!expect) {
            out("(no lab-cli.json: the expected shape is unknown; not judging health)");
            return states.length === 1 && states[0] === "ok" ? 0 : 1;
        }
        const verdict = judge(reports, expect);
        const missing = lab.nodes.length - alive.length;
        if (verdict.healthy && !missing) {
            out(`healthy: ${expect.masters} masters, ${expect.replicas} replicas, 16384 slots covered, every node agrees, every replica linked`);
            return 0;
        }
        out("NOT healthy:");
        for (const p of verdict.problems) out(`  - ${p}`);
        if (missing) out(`  - ${missing} node(s) not running`);
        return 1;
    } finally {
        observer.close();
    }
}

async function down(flags: Map<string, string>): Promise<number> {
    checkFlags(flags, ["dir"]);
    const dir = path.resolve(flags.get("dir") ?? DEFAULT_DIR);
    if (!fs.existsSync(path.join(dir, "lab.json"))) {
        out(`No lab in ${dir}; nothing to stop.`);
        return 0;
    }
    const lab = Lab.load(dir);
    const pids = lab.nodes.filter((n) => pidAlive(n.pid)).map((n) => n.pid);
    await lab.stop({ removeData: true });
    const left = pids.filter((p) => pidAlive(p));
    if (left.length) {
        out(`Could not stop PIDs ${left.join(" ")}; ${dir} was removed.`);
        return 1;
    }
    out(`Stopped ${pids.length} redis-server process(es)${pids.length ? ` (PIDs ${pids.join(" ")})` : ""} and removed ${dir}.`);
    return 0;
}

const USAGE = `usage:
  npm run lab -- up [--nodes 6] [--replicas 1] [--dir ${DEFAULT_DIR}] [--former provider|redis-cli] [--timeout 120] [--redis system|8.6|<dir>]
  npm run lab -- status [--dir ${DEFAULT_DIR}]
  npm run lab -- down [--dir ${DEFAULT_DIR}]`;

async function main(argv: string[]): Promise<number> {
    const { command, flags } = parseArgs(argv);
    switch (command) {
        case "up":
            return up(flags);
        case "status":
            return status(flags);
        case "down":
            return down(flags);
        default:
            out(USAGE);
            return command === "" || command === "help" || command === "--help" ? 0 : 64;
    }
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
        if (e instanceof UsageError) {
            process.stderr.write(`${e.message}\n${USAGE}\n`);
            process.exit(64);
        }
        process.stderr.write(`lab: ${(e as Error).stack ?? e}\n`);
        process.exit(1);
    },
);
