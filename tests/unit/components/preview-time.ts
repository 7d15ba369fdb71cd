/**
 * Prints the mocked `pulumi preview` time of each registered cloud's stack file (for the lead's
 * note). Run: `npx tsx tests/unit/components/preview-time.ts [rounds] [--only aws,gcp] [--profile]`.
 * Each round runs every cloud once; the first round includes loading the cloud's SDK modules, so
 * the minimum over rounds is reported too. Wall time is what the goal (< 3 s) is about; CPU time
 * of this process is printed next to it because on a shared machine wall time mostly measures
 * the other processes.
 *
 * `--profile` records a V8 CPU profile of each cloud's last round and prints where the time went
 * (inclusive time per file or package, top 12); `REDISFORGE_STACK_TRACES=full` runs the program
 * with Node's default stack traces (the "before" of infra/promise-stacks.ts).
 */
import * as inspector from "inspector";
import { adapters, loadedAdapters } from "../../../providers/registry";
import { runProgram, stackFixture, STACK_FILES } from "./program";

interface ProfileNode {
    id: number;
    callFrame: { url: string; functionName: string };
    children?: number[];
}

/** Inclusive microseconds per file/package of a V8 CPU profile (a frame counts once per sample). */
export function timeByOrigin(profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }): [string, number][] {
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const origin = (url: string) => {
        if (url === "") return "(native / gc / idle)";
        if (url.startsWith("node:")) return "node internals";
        const nm = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url);
        return nm ? nm[1] : url.replace(/^.*?\/(infra|components|providers|templates|tests|lab|monitoring)\//, "$1/");
    };
    const out = new Map<string, number>();
    profile.samples.forEach((id, i) => {
        const seen = new Set<string>();
        for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
            const o = origin(nodes.get(cur)!.callFrame.url);
            if (seen.has(o)) continue;
            seen.add(o);
            out.set(o, (out.get(o) ?? 0) + (profile.timeDeltas[i] ?? 0));
        }
    });
    return [...out].sort((a, b) => b[1] - a[1]);
}

async function profiled<T>(fn: () => Promise<T>): Promise<{ value: T; byOrigin: [string, number][] }> {
    const s = new inspector.Session();
    s.connect();
    const post = <R>(m: string, p: object = {}) => new Promise<R>((res, rej) => s.post(m, p, (e, r) => (e ? rej(e) : res(r as R))));
    await post("Profiler.enable");
    await post("Profiler.start");
    try {
        const value = await fn();
        const { profile } = await post<{ profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] } }>("Profiler.stop");
        return { value, byOrigin: timeByOrigin(profile) };
    } finally {
        s.disconnect();
    }
}

async function main(): Promise<void> {
    const args = process.argv.slice(2);
    const rounds = Math.max(1, Math.min(5, Number(args.find((a) => /^\d+$/.test(a)) ?? 2)));
    const onlyAt = args.indexOf("--only");
    const kinds = onlyAt >= 0 ? args[onlyAt + 1].split(",") : Object.keys(adapters);
    const profile = args.includes("--profile");
    const times: Record<string, { wall: number; cpu: number }[]> = {};
    for (let r = 0; r < rounds; r++) {
        for (const kind of kinds) {
            const cpu0 = process.cpuUsage();
            const go = () => runProgram(stackFixture(kind), { stack: "prod", preview: kind !== "local" });
            const last = profile && r === rounds - 1;
            const p = last ? await profiled(go) : { value: await go(), byOrigin: [] as [string, number][] };
            const run = p.value;
            const c = process.cpuUsage(cpu0);
            if (run.error) throw run.error;
            const cpu = (c.user + c.system) / 1000;
            (times[kind] ??= []).push({ wall: run.ms, cpu });
            console.log(`round ${r + 1} ${kind} (${STACK_FILES[kind]}): ${run.ms.toFixed(0)} ms wall, ${cpu.toFixed(0)} ms CPU, ${run.engine.resources.length} resources; adapters loaded: ${loadedAdapters().join(", ")}`);
            if (last) {
                console.log(`  profile of ${kind} (inclusive ms per file or package; the first line is every sample, idle included):`);
                for (const [o, t] of p.byOrigin.slice(0, 12)) console.log(`    ${(t / 1000).toFixed(0).padStart(6)}  ${o}`);
            }
        }
    }
    console.log(`stack traces: ${process.env.REDISFORGE_STACK_TRACES ? `REDISFORGE_STACK_TRACES=${process.env.REDISFORGE_STACK_TRACES}` : "program default (infra/promise-stacks.ts)"}`);
    for (const [kind, xs] of Object.entries(times)) {
        console.log(`${kind}: min ${Math.min(...xs.map((x) => x.wall)).toFixed(0)} ms wall, min ${Math.min(...xs.map((x) => x.cpu)).toFixed(0)} ms CPU over ${xs.length} round(s)`);
    }
    process.exit(0);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
