/**
 * Online scale-out / scale-in of a stack with the Automation API: the library behind the operator
 * CLI's commands (infra/cli: `npm run forge -- <command>`, alias `npm run scale -- <command>`):
 *
 *   status         --stack <name>
 *   add-shard      --stack <name> [--yes] [--json]
 *   remove-shard   --stack <name> [--yes] [--json]
 *   add-replica    --stack <name> [--yes] [--json]
 *   remove-replica --stack <name> [--yes] [--json]
 *
 * A change command: sets the stack config (`redisforge:shards` / `redisforge:replicasPerShard`),
 * runs a preview and prints the engine's diff plus the slot-move plan of the cluster planner,
 * asks for confirmation unless `--yes`, runs `up` with the engine's output streamed, then verifies
 * the live cluster (16384 slots covered by the expected masters, every replica linked). If the
 * preview is declined or fails, the config is put back. Engine errors are printed in full and the
 * script exits non-zero.
 *
 * Live status, the slot plan and the verification read the cluster through its nodes, so they work
 * where the nodes are reachable: the `local` stack (its nodes are on this machine). For cloud stacks
 * the config change, preview and up work; status/plan/verify say why they cannot run.
 *
 * The environment is the project's (scripts/env.sh: .tools/bin on PATH, file backend, passphrase).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as readline from "readline";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import { checkCluster, readTopology } from "../providers/redis-cluster/executor";
import { planReshape } from "../providers/redis-cluster/planner";
import type { ClusterCredentials, ClusterSpec, ClusterStatus, ReshapePlan } from "../providers/redis-cluster/types";
import { CLUSTER_SLOTS } from "../providers/redis-cluster/types";
import { planLocalNodes } from "./local/stack";

export const PROJECT_DIR = path.resolve(__dirname, "..");
export const COMMANDS = ["status", "add-shard", "remove-shard", "add-replica", "remove-replica"] as const;
export type ScaleCommand = (typeof COMMANDS)[number];

/** Minimum shards of a Redis Cluster majority; see infra/config.ts. */
const MIN_SHARDS = 3;

export interface ScaleArgs {
    command: ScaleCommand;
    stack: string;
    yes: boolean;
}

export function parseArgs(argv: string[]): ScaleArgs {
    const usage = `usage: npm run scale -- <${COMMANDS.join("|")}> --stack <name> [--yes]`;
    const command = argv.find((a) => !a.startsWith("-") && argv[argv.indexOf(a) - 1] !== "--stack");
    if (!command || !(COMMANDS as readonly string[]).includes(command)) throw new Error(`${usage}\n(got command ${JSON.stringify(command ?? "")})`);
    const i = argv.indexOf("--stack");
    const stack = i >= 0 ? argv[i + 1] : undefined;
    if (!stack || stack.startsWith("-")) throw new Error(`${usage}\n(--stack <name> is required)`);
    return { command: command as ScaleCommand, stack, yes: argv.includes("--yes") || argv.includes("-y") };
}

/** The project environment, as scripts/env.sh sets it (one source of truth). */
export function projectEnv(base: NodeJS.ProcessEnv = process.env): Record<string, string> {
    const out = execFileSync("bash", ["-c", 'source scripts/env.sh && env -0'], { cwd: PROJECT_DIR, env: base as Record<string, string> });
    const env: Record<string, string> = {};
    for (const kv of out.toString("utf8").split("\0")) {
        const i = kv.indexOf("=");
        if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    return env;
}

interface LocalView {
    spec: ClusterSpec;
    creds: ClusterCredentials;
    zones: string[];
}

type Outputs = Record<string, { value: unknown; secret: boolean }>;

/** What the stack outputs say about a local stack's cluster (spec + admin credentials). */
function localView(outputs: Outputs, shards?: number, replicas?: number): LocalView | string {
    if (outputs.cloud?.value !== "local") return `live status needs reachable nodes; stack cloud is ${JSON.stringify(outputs.cloud?.value ?? "unknown")}, whose nodes are private (run this from inside the network)`;
    const nodes = outputs.nodes?.value as { name: string; host: string; port: number; busPort: number; zone: string; dataDir: string }[] | undefined;
    const clientDir = outputs.clientDir?.value as string | undefined;
    const password = outputs.adminPassword?.value as string | undefined;
    if (!nodes || !clientDir || !password) return "the stack has no nodes/clientDir/adminPassword outputs yet; run `pulumi up` first";
    const zones = [...new Set(nodes.map((n) => n.zone))];
    const S = shards ?? Number(outputs.shards?.value);
    const R = replicas ?? Number(outputs.replicasPerShard?.value);
    let specNodes = nodes.map((n) => ({ id: n.name, host: n.host, port: n.port, zone: n.zone }));
    if (shards !== undefined || replicas !== undefined) {
        // The desired node list: the same ordinal rule as infra/local/stack.ts.
        const n0 = nodes[0];
        const clusterName = n0.name.replace(/-node0$/, "");
        const planned = planLocalNodes({ clusterName, zones, shards: S, replicasPerShard: R, host: n0.host, basePort: n0.port, baseBusPort: n0.busPort, stateDir: path.dirname(path.dirname(n0.dataDir)) });
        specNodes = planned.map((n) => ({ id: n.name, host: n.host, port: n.port, zone: n.zone }));
    }
    const read = (f: string) => fs.readFileSync(path.join(clientDir, f), "utf8");
    return {
        spec: { nodes: specNodes, shards: S, replicasPerShard: R },
        creds: { username: "admin", password, tls: { ca: read("ca.crt"), cert: read("client.crt"), key: read("client.key") } },
        zones,
    };
}

export function formatStatus(s: ClusterStatus): string {
    const lines: string[] = [];
    lines.push(`cluster state: ${s.state}; slots covered: ${s.slotsCovered}/${CLUSTER_SLOTS}; server version: ${s.serverVersion ?? "?"}`);
    lines.push(`shards (masters): ${s.masters.length}; replicas: ${s.replicas.length}`);
    for (const m of [...s.masters].sort((a, b) => a.address.localeCompare(b.address))) {
        lines.push(`  master ${m.address.padEnd(21)} zone ${String(m.zone ?? "?").padEnd(10)} slots ${String(m.slots).padStart(5)}  (${m.id})`);
        for (const r of s.replicas.filter((x) => x.master === m.nodeId || x.master === m.address || x.master === m.id)) {
            lines.push(`    replica ${r.address.padEnd(20)} zone ${String(r.zone ?? "?").padEnd(10)} link ${r.linkUp ? "up" : "DOWN"}  (${r.id})`);
        }
    }
    const orphans = s.replicas.filter((r) => !s.masters.some((m) => r.master === m.nodeId || r.master === m.address || r.master === m.id));
    for (const r of orphans) lines.push(`  replica ${r.address} of ${r.master} (master not listed) link ${r.linkUp ? "up" : "DOWN"}`);
    if (s.problems.length) lines.push(`problems:\n  - ${s.problems.join("\n  - ")}`);
    return lines.join("\n");
}

export function formatPlan(p: ReshapePlan): string {
    if (p.steps.length === 0) return "slot-move plan: nothing to do";
    const lines = [`slot-move plan: ${p.steps.length} steps, ${p.slotsMoved} slots moved; masters after: ${p.masters.join(", ")}`];
    for (const s of p.steps) {
        switch (s.kind) {
            case "migrate":
                lines.push(`  migrate ${String(s.count).padStart(5)} slots ${s.from} -> ${s.to}`);
                break;
            case "meet":
                lines.push(`  meet      ${s.node}`);
                break;
            case "replicate":
                lines.push(`  replicate ${s.node} -> master ${s.master}`);
                break;
            case "remove":
            case "forget":
                lines.push(`  ${s.kind.padEnd(9)} ${s.node} (${s.reason})`);
                break;
            case "failover":
                lines.push(`  failover  ${s.node} (master ${s.master}: ${s.reason})`);
                break;
            case "fix-open-slot":
                lines.push(`  fix slot  ${s.slot} ${s.from} -> ${s.to}`);
                break;
        }
    }
    for (const d of p.degradations) lines.push(`  degradation: ${d}`);
    return lines.join("\n");
}

/** Checks the live cluster against the spec; returns the problems (empty = verified). */
export function verifyStatus(s: ClusterStatus, spec: ClusterSpec): string[] {
    const problems = [...s.problems];
    if (s.state !== "ok") problems.push(`cluster_state is ${s.state}, expected ok`);
    if (s.slotsCovered !== CLUSTER_SLOTS) problems.push(`${s.slotsCovered}/${CLUSTER_SLOTS} slots covered`);
    if (s.masters.length !== spec.shards) problems.push(`${s.masters.length} masters own slots, expected ${spec.shards}`);
    const expectedReplicas = spec.shards * spec.replicasPerShard;
    if (s.replicas.length !== expectedReplicas) problems.push(`${s.replicas.length} replicas, expected ${expectedReplicas}`);
    for (const r of s.replicas) if (!r.linkUp) problems.push(`replica ${r.address} is not linked to its master`);
    const specAddrs = new Set(spec.nodes.map((n) => `${n.host}:${n.port}`));
    for (const m of s.masters) if (!specAddrs.has(m.address)) problems.push(`master ${m.address} is not in the desired node list`);
    return problems;
}

async function confirm(question: string): Promise<boolean> {
    if (!process.stdin.isTTY) return false;
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
    try {
        const answer = await new Promise<string>((resolve) => rl.question(`${question} [y/N] `, resolve));
        return /^y(es)?$/i.test(answer.trim());
    } finally {
        rl.close();
    }
}

function engineError(e: unknown): string {
    const err = e as { message?: string; stderr?: string; stdout?: string };
    return [err.message ?? String(e), err.stderr ? `stderr:\n${err.stderr}` : ""].filter(Boolean).join("\n");
}

async function readConfigInt(stack: Stack, key: string, fallback: number): Promise<number> {
    try {
        const v = await stack.getConfig(`redisforge:${key}`);
        const n = Number(v.value);
        return Number.isInteger(n) ? n : fallback;
    } catch {
        return fallback;
    }
}

export async function status(stack: Stack, out: (s: string) => void): Promise<ClusterStatus | undefined> {
    const outputs = (await stack.outputs()) as Outputs;
    const view = localView(outputs);
    if (typeof view === "string") {
        out(`status: ${view}`);
        return undefined;
    }
    const s = await checkCluster(view.spec, view.creds);
    out(`stack ${stack.name}: config shards=${view.spec.shards} replicasPerShard=${view.spec.replicasPerShard}; zones ${view.zones.join(", ")}`);
    out(formatStatus(s));
    return s;
}

/** What a change did (the CLI's `--json` result). */
export interface ChangeResult {
    command: ScaleCommand;
    stack: string;
    key: "shards" | "replicasPerShard";
    before: number;
    after: number;
    applied: boolean;
    changeSummary?: Record<string, number>;
    plan?: ReshapePlan;
    upResult?: string;
    verified?: ClusterStatus;
}

/** Optional hooks of `change` (the CLI streams the engine's output its own way and follows the migration). */
export interface ChangeHooks {
    /** Engine output as it comes (default: stdout). */
    raw?: (s: string) => void;
    /** Called right before `up` with the slot plan and admin credentials; its `stop` right after. */
    duringUp?: (plan: ReshapePlan, creds: ClusterCredentials) => Promise<{ stop(): Promise<unknown> }>;
}

export async function change(stack: Stack, command: Exclude<ScaleCommand, "status">, yes: boolean, out: (s: string) => void, hooks: ChangeHooks = {}): Promise<ChangeResult> {
    const raw = hooks.raw ?? ((x: string) => void process.stdout.write(x));
    const outputs = (await stack.outputs()) as Outputs;
    const shards = await readConfigInt(stack, "shards", Number(outputs.shards?.value ?? 3));
    const replicas = await readConfigInt(stack, "replicasPerShard", Number(outputs.replicasPerShard?.value ?? 1));
    let nextShards = shards;
    let nextReplicas = replicas;
    if (command === "add-shard") nextShards++;
    if (command === "remove-shard") nextShards--;
    if (command === "add-replica") nextReplicas++;
    if (command === "remove-replica") nextReplicas--;
    if (nextShards < MIN_SHARDS) throw new Error(`remove-shard: redisforge:shards would become ${nextShards}; a Redis Cluster needs at least ${MIN_SHARDS} masters. Nothing was changed.`);
    if (nextReplicas < 0) throw new Error(`remove-replica: redisforge:replicasPerShard is already 0. Nothing was changed.`);

    const key = nextShards !== shards ? "shards" : "replicasPerShard";
    const before = key === "shards" ? shards : replicas;
    const after = key === "shards" ? nextShards : nextReplicas;
    out(`${command}: redisforge:${key} ${before} -> ${after} (stack ${stack.name})`);
    const result: ChangeResult = { command, stack: stack.name, key, before, after, applied: false };

    const view = localView(outputs, nextShards, nextReplicas);

    await stack.setConfig(`redisforge:${key}`, { value: String(after) });
    const restore = async () => {
        await stack.setConfig(`redisforge:${key}`, { value: String(before) });
        out(`config restored: redisforge:${key}=${before}`);
    };

    // 1. Preview: the engine's diff.
    out("\n=== preview ===");
    let preview;
    try {
        preview = await stack.preview({ onOutput: raw, diff: true });
    } catch (e) {
        out(`preview failed:\n${engineError(e)}`);
        await restore();
        throw new Error(`${command}: preview failed; nothing was changed`);
    }
    out(`\nchange summary: ${JSON.stringify(preview.changeSummary)}`);
    result.changeSummary = preview.changeSummary as Record<string, number>;

    // 2. The cluster planner's slot-move plan, from the live cluster to the new spec.
    if (typeof view === "string") {
        out(`slot-move plan: ${view}`);
    } else {
        const current = localView(outputs) as LocalView;
        const knownNodes = [...current.spec.nodes, ...view.spec.nodes.filter((n) => !current.spec.nodes.some((c) => c.id === n.id))];
        const live = await readTopology(knownNodes, view.creds);
        result.plan = planReshape(live, view.spec);
        out(formatPlan(result.plan));
    }

    // 3. Confirm.
    if (!yes && !(await confirm(`apply ${command} to stack ${stack.name}?`))) {
        await restore();
        out("not applied (answer was not yes, or no terminal; pass --yes to skip the question)");
        return result;
    }

    // 4. Up, streamed.
    out("\n=== up ===");
    try {
        const watch = result.plan && typeof view !== "string" && hooks.duringUp ? await hooks.duringUp(result.plan, view.creds) : undefined;
        let res;
        try {
            res = await stack.up({ onOutput: raw });
        } finally {
            await watch?.stop();
        }
        result.applied = true;
        result.upResult = res.summary.result;
        out(`\nup: ${res.summary.result}; ${JSON.stringify(res.summary.resourceChanges ?? {})}`);
    } catch (e) {
        out(`up failed:\n${engineError(e)}`);
        throw new Error(`${command}: pulumi up failed (the config keeps redisforge:${key}=${after}; fix the error and run \`pulumi up --stack ${stack.name}\`, or run the opposite command)`);
    }

    // 5. Verify live.
    if (typeof view === "string") {
        out(`verify: ${view}`);
        return result;
    }
    const s = await checkCluster(view.spec, view.creds);
    result.verified = s;
    out("\n=== verify ===");
    out(formatStatus(s));
    const problems = verifyStatus(s, view.spec);
    if (problems.length) throw new Error(`${command}: verification failed:\n  - ${problems.join("\n  - ")}`);
    out(`verified: ${s.slotsCovered}/${CLUSTER_SLOTS} slots on ${s.masters.length} masters, ${s.replicas.length} replicas linked`);
    return result;
}

export async function openStack(stackName: string): Promise<Stack> {
    const env = projectEnv();
    for (const [k, v] of Object.entries(env)) process.env[k] = v;
    return LocalWorkspace.selectStack({ stackName, workDir: PROJECT_DIR }, { envVars: env });
}

/** `tsx infra/scale.ts <command> ...` is kept as an alias of the operator CLI (infra/cli). */
if (require.main === module) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require("./cli/index") as typeof import("./cli/index")).runCli(process.argv);
}
