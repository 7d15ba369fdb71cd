/**
 * Benchmark: the RedisForge cluster provider (its executor's `converge`) against the reference
 * tool, `redis-cli --cluster`, in ONE run on fresh nodes (same machine, same redis-server, same
 * TLS + ACL configuration rendered from the project's templates), plus the client impact of a
 * resharding on Redis 7.0 and 8.6. Figures and ratios are printed (RATIO / GOAL lines, MET or
 * MISSED); nothing is asserted about them.
 *
 *   npm run bench -- [--keys 500000] [--repeat 5] [--reshard-repeat 3] [--settle-ms 2500]
 *                    [--only provider|redis-cli] [--skip-formation] [--skip-reshard] [--verbose]
 *                    [--opt name=value ...] [--node-config name=value ...] [--dir DIR] [--json FILE]
 *                    [--ratios-redis system|8.6] [--skip-impact | --impact-only]
 *                    [--impact-paths 7.0:classic,8.6:atomic,8.6:classic,8.6:redis-cli]
 *                    [--impact-repeat min(3, repeat)] [--impact-keys KEYS] [--client-workers 8]
 *                    [--client-rate 1000] [--client-warmup-ms 1000] [--client-tail-ms 1000]
 *
 * Quick mode: `npm run bench -- --keys 5000 --repeat 1` (one trial of everything). The full
 * default takes tens of minutes: redis-cli's rebalance on 8.6 alone moves ~30 slots/s here.
 *
 * (a) Formation and (b) resharding run on --ratios-redis (default $REDISFORGE_REDIS, else the
 *     system's 7.0); bench/formation-reshard.ts:
 * (a) Formation: 6 fresh nodes per trial and tool, 3 masters x 1 replica. The stopwatch starts when
 *     the tool is asked to form the cluster and stops at the first poll where every node reports
 *     cluster_state:ok, all nodes agree on the slots and roles, and every replica has
 *     master_link_status:up. Both tools are judged by the same polling code (lab/cluster-view.ts,
 *     25 ms interval, persistent connections opened before the stopwatch starts).
 * (b) Resharding: a 3-master cluster (formed by the tool under test) with N keys, plus a 4th fresh
 *     empty node. The provider converges to 4 shards; redis-cli runs `--cluster add-node` then
 *     `--cluster rebalance --cluster-use-empty-masters`. The stopwatch runs until the tool has
 *     finished and the cluster is healthy with 4 masters; keys/s = keys now on the new master /
 *     elapsed seconds. Every key is accounted for afterwards (sum of DBSIZE over masters = N).
 * (c) Client impact (bench/client-impact.ts, bench/client-load.ts): a loaded 3x1 cluster gets a
 *     4th shard (3x1 -> 4x1) while an ioredis Cluster client (TLS, ACL user app) writes and reads
 *     at --client-rate; per path (runtime:mover) it reports end-to-end keys/s, the client's MOVED/
 *     ASK redirects followed, TRYAGAIN/CLUSTERDOWN replies, failed commands by kind (timeouts
 *     ...), wrong reads, p50/p99 latency during the move, and keys lost (every acknowledged write
 *     and every loaded key read back). GOAL lines on the runtime with an atomic path (8.6):
 *     atomic keys/s >= 1.5x classic and >= 10x redis-cli rebalance of the same runtime, zero
 *     client-visible errors during atomic moves, zero keys lost anywhere. A runtime that is not
 *     installed is reported as NOT MEASURED.
 *
 * Fresh nodes are started, then left idle for --settle-ms (2.5 s), as real nodes are before a deploy
 * forms them. Two server-side floors then apply to ANY tool with the rendered config: a master
 * that was alone (no slots, "minority") reports cluster_state:ok only min(cluster-node-timeout,
 * 5 s) after it stops being alone (rejoin delay in clusterUpdateState), and a master delays the
 * first replica sync by repl-diskless-sync-delay (5 s). `--verbose` and the "last wait" column show
 * which one a trial waited on.
 *
 * The provider runs in its own process (bench/provider-worker.ts) so that its peak memory is its
 * own. Figures are printed; nothing is asserted about them (this is not a timed test).
 * `--opt name=value` passes tuning knobs to converge (e.g. --opt migrateBatchKeys=1000).
 * `--verbose` prints the provider's log lines with their times (where the time goes).
 * `--node-config name=value` CONFIG SETs every fresh node of BOTH tools before a trial: a what-if
 * for template changes (e.g. repl-diskless-sync-max-replicas=1), printed in the settings line.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Lab } from "../lab/lab";
import { redisRuntime } from "../lab/redis-runtime";
import { clientImpactTrial, ImpactTrialResult, printImpactTrial } from "./client-impact";
import { FormationResult, formationTrial, ReshardResult, reshardTrial } from "./formation-reshard";
import { ImpactPath, Options, parseOptions } from "./options";
import { ProviderWorker } from "./provider-process";
import { fmtMs, median, mib, out } from "./report";

const verdict = (met: boolean) => (met ? "MET" : "MISSED");

/** One lab per Redis runtime, under the bench's dir, started on first use. */
class Labs {
    private readonly labs = new Map<string, Lab>();
    constructor(private readonly dir: string) {}

    async get(runtime: string): Promise<Lab> {
        let lab = this.labs.get(runtime);
        if (!lab) {
            const rt = redisRuntime(runtime);
            lab = await Lab.start({ dir: path.join(this.dir, runtime.replace(/[^A-Za-z0-9.]+/g, "_")), count: 0, redisServer: rt.server });
            this.labs.set(runtime, lab);
        }
        return lab;
    }

    async stopAll(): Promise<void> {
        for (const lab of this.labs.values()) await lab.stop({ removeData: true });
        this.labs.clear();
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

/** Server version of a runtime, or why it cannot run here. */
function runtimeVersion(runtime: string): { version?: string; error?: string } {
    try {
        return { version: redisRuntime(runtime).version };
    } catch (e) {
        return { error: (e as Error).message };
    }
}

interface Goal {
    name: string;
    value: string;
    target: string;
    met: boolean | undefined;
}

/** The client-impact goals of every runtime that has an atomic path, from the trials of this run. */
function impactGoals(results: ImpactTrialResult[]): Goal[] {
    const goals: Goal[] = [];
    const ok = (rt: string, mover: string) => results.filter((r) => r.runtime === rt && r.mover === mover && !r.error);
    const med = (rs: ImpactTrialResult[]) => median(rs.map((r) => r.keysPerSec!));
    for (const rt of [...new Set(results.filter((r) => r.mover === "atomic").map((r) => r.runtime))]) {
        const version = results.find((r) => r.runtime === rt)!.serverVersion;
        const atomic = ok(rt, "atomic");
        for (const [ref, target] of [["classic", 1.5], ["redis-cli", 10]] as const) {
            const refs = ok(rt, ref);
            const name = `${version} atomic/${ref === "redis-cli" ? "redis-cli rebalance" : "classic path"} end-to-end keys/s`;
            if (!atomic.length || !refs.length) {
                if (results.some((r) => r.runtime === rt && r.mover === ref)) goals.push({ name, value: "not measured (a path failed)", target: `>= ${target.toFixed(2)}`, met: false });
                continue;
            }
            const ratio = med(atomic) / med(refs);
            goals.push({ name, value: `${ratio.toFixed(2)} (${Math.round(med(atomic))} vs ${Math.round(med(refs))})`, target: `>= ${target.toFixed(2)}`, met: ratio >= target });
        }
        const all = results.filter((r) => r.runtime === rt && r.mover === "atomic");
        const errors = atomic.reduce((s, r) => s + r.clientVisibleErrors!, 0);
        goals.push({
            name: `${version} atomic client-visible errors (sum over ${atomic.length} moves)`,
            value: atomic.length ? String(errors) : "not measured (every atomic trial failed)",
            target: "0",
            met: atomic.length === all.length && errors === 0,
        });
    }
    const measured = results.filter((r) => !r.error);
    if (measured.length) {
        const lost = measured.reduce((s, r) => s + r.keysLost!.total, 0);
        goals.push({ name: `keys lost over every client-impact trial (${measured.length})`, value: String(lost), target: "0", met: lost === 0 });
    }
    return goals;
}

function summarizeImpact(results: ImpactTrialResult[], paths: ImpactPath[]): void {
    for (const p of paths) {
        const all = results.filter((r) => r.runtime === p.runtime && r.mover === p.mover);
        const rs = all.filter((r) => !r.error);
        if (!all.length) continue;
        const label = `client impact ${all[0].serverVersion} ${p.mover}`;
        if (!rs.length) {
            out(`${label}: every trial failed (${all[0].error})`);
            continue;
        }
        const sum = (f: (r: ImpactTrialResult) => number) => rs.reduce((s, r) => s + f(r), 0);
        const c = (f: (r: ImpactTrialResult) => number) => String(sum(f));
        out(
            `${label}: median ${Math.round(median(rs.map((r) => r.keysPerSec!)))} keys/s end to end over ${rs.length} runs${all.length > rs.length ? ` (${all.length - rs.length} failed)` : ""} ` +
                `(migration alone ${Math.round(median(rs.filter((r) => r.migrationOnlyKeysPerSec).map((r) => r.migrationOnlyKeysPerSec!)))} keys/s); ` +
                `p50 ${median(rs.map((r) => r.moveLatency!.p50Ms)).toFixed(1)} ms, p99 ${median(rs.map((r) => r.moveLatency!.p99Ms)).toFixed(1)} ms during the move (medians); ` +
                `errors by kind (sums): MOVED ${c((r) => r.client!.seen.moved)}, ASK ${c((r) => r.client!.seen.ask)}, TRYAGAIN ${c((r) => r.client!.seen.tryagain)}, CLUSTERDOWN ${c((r) => r.client!.seen.clusterdown)}, ` +
                `timeouts ${c((r) => r.client!.failures.timeout)}, failed commands ${c((r) => r.client!.failed)}, wrong reads ${c((r) => r.client!.wrongReads)}; keys lost ${c((r) => r.keysLost!.total)}`,
        );
    }
}

async function main(): Promise<number> {
    const o = parseOptions(process.argv.slice(2));
    const tools = (["provider", "redis-cli"] as const).filter((t) => !o.only || o.only === t);
    const ratiosVersion = runtimeVersion(o.ratiosRedis);
    if (!ratiosVersion.version && !(o.skipFormation && o.skipReshard)) throw new Error(ratiosVersion.error);
    const impactPaths = o.skipImpact ? [] : o.impactPaths.filter((p) => p.mover === "redis-cli" ? tools.includes("redis-cli") : tools.includes("provider"));
    let worker: ProviderWorker | undefined;
    if (tools.includes("provider")) {
        worker = new ProviderWorker();
        await worker.start();
        if (worker.loadError) {
            worker.stop();
            throw new Error(`the provider cannot be benchmarked: ${worker.loadError}`);
        }
    }
    fs.rmSync(o.dir, { recursive: true, force: true });
    const labs = new Labs(o.dir);
    const stopAll = async () => {
        worker?.stop();
        await labs.stopAll();
    };
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => void stopAll().then(() => process.exit(130)));
    let failures = 0;
    const report: Record<string, unknown> = {};
    try {
        const versions = [...new Set([o.ratiosRedis, ...impactPaths.map((p) => p.runtime)])].map((rt) => {
            const v = runtimeVersion(rt);
            return `${rt === "system" ? "system" : rt}=${v.version ?? "not installed"}`;
        });
        out(`RedisForge bench: redis-server ${versions.join(", ")}; ${os.cpus().length} CPUs, node ${process.version}, lab ${o.dir}`);
        out(
            `settings: (a)+(b) on ${o.ratiosRedis} ${ratiosVersion.version ?? ""}: formation repeat ${o.repeat}, resharding ${o.keys} keys x ${o.reshardRepeat}; ` +
                `(c) client impact: ${impactPaths.map((p) => `${p.runtime}:${p.mover}`).join(" ") || "skipped"}, ${o.impactKeys} keys x ${o.impactRepeat}, client ${o.clientWorkers} workers at ${o.clientOpsPerSec} cmds/s; ` +
                `converge options ${JSON.stringify(o.converge)}, settle ${o.settleMs} ms, node config ${o.nodeConfig.length ? o.nodeConfig.map(([k, v]) => `${k}=${v}`).join(" ") : "as rendered by templates/redis"}`,
        );
        const formation: Record<string, FormationResult[]> = { provider: [], "redis-cli": [] };
        const reshard: Record<string, ReshardResult[]> = { provider: [], "redis-cli": [] };
        if (!o.skipFormation || !o.skipReshard) {
            const lab = await labs.get(o.ratiosRedis);
            if (!o.skipFormation) {
                out(`(a) formation 3x1 on 6 fresh nodes (redis-server ${lab.state.serverVersion}): time until every node ok, agreeing, every replica linked`);
                for (let r = 0; r < o.repeat; r++) {
                    // Alternate which tool goes first so that neither always gets the warmer machine.
                    const order = r % 2 === 0 ? tools : [...tools].reverse();
                    for (const tool of order) {
                        const res = await formationTrial(lab, tool, worker, o);
                        formation[tool].push(res);
                        out(`  formation ${tool} #${r + 1}: ${fmtMs(res.ms)} (tool returned after ${fmtMs(res.toolMs)})${res.breakdown ? `; phases: ${res.breakdown}` : ""}; last wait: ${res.waitedOn}`);
                    }
                }
                for (const tool of tools) out(`formation ${tool}: median ${fmtMs(median(formation[tool].map((x) => x.ms)))} over ${formation[tool].length} runs`);
            }
            if (!o.skipReshard) {
                out(`(b) resharding (redis-server ${lab.state.serverVersion}): 3 masters with ${o.keys} keys, add a 4th empty master and move slots to it`);
                for (let r = 0; r < o.reshardRepeat; r++) {
                    const order = r % 2 === 0 ? tools : [...tools].reverse();
                    for (const tool of order) {
                        const res = await reshardTrial(lab, tool, worker, o);
                        reshard[tool].push(res);
                        out(`  resharding ${tool} #${r + 1}: ${res.keysMoved} keys moved in ${fmtMs(res.ms)} = ${Math.round(res.keysPerSec)} keys/s; slots per master ${res.slotsPerMaster.join("/")}${res.breakdown ? `; ${res.breakdown}` : ""}`);
                    }
                }
                for (const tool of tools) out(`resharding ${tool}: median ${Math.round(median(reshard[tool].map((x) => x.keysPerSec)))} keys/s over ${reshard[tool].length} runs`);
            }
            report.formation = formation;
            report.reshard = reshard;
        }
        const impact: ImpactTrialResult[] = [];
        const skippedRuntimes: Record<string, string> = {};
        if (impactPaths.length) {
            out(`(c) client impact: a client (ioredis Cluster, TLS, ACL user app) writes and reads at ${o.clientOpsPerSec} cmds/s while a loaded 3x1 cluster (${o.impactKeys} keys) gets a 4th shard (3x1 -> 4x1)`);
            const runnable = impactPaths.filter((p) => {
                const v = runtimeVersion(p.runtime);
                if (v.error && !skippedRuntimes[p.runtime]) {
                    skippedRuntimes[p.runtime] = v.error;
                    out(`  runtime ${p.runtime} skipped: ${v.error}`);
                }
                return !v.error;
            });
            for (let r = 0; r < o.impactRepeat; r++) {
                const order = r % 2 === 0 ? runnable : [...runnable].reverse();
                for (const p of order) {
                    const res = await clientImpactTrial(await labs.get(p.runtime), p, worker, o);
                    impact.push(res);
                    if (res.error) failures++;
                    printImpactTrial(res, r + 1);
                }
            }
            summarizeImpact(impact, runnable);
            report.impact = impact;
        }

        out("RESULTS");
        const ratios: Goal[] = [];
        if (tools.length === 2 && !o.skipFormation) {
            const ratio = median(formation.provider.map((x) => x.ms)) / median(formation["redis-cli"].map((x) => x.ms));
            out(`RATIO formation time provider/redis-cli = ${ratio.toFixed(2)} (target <= 0.50: ${verdict(ratio <= 0.5)})`);
            ratios.push({ name: `${ratiosVersion.version} formation time provider/redis-cli`, value: ratio.toFixed(2), target: "<= 0.50", met: ratio <= 0.5 });
        }
        if (tools.length === 2 && !o.skipReshard) {
            const ratio = median(reshard.provider.map((x) => x.keysPerSec)) / median(reshard["redis-cli"].map((x) => x.keysPerSec));
            out(`RATIO resharding keys/s provider/redis-cli = ${ratio.toFixed(2)} (target >= 3.00: ${verdict(ratio >= 3)})`);
            ratios.push({ name: `${ratiosVersion.version} resharding keys/s provider/redis-cli`, value: ratio.toFixed(2), target: ">= 3.00", met: ratio >= 3 });
            const mo = (t: string) => reshard[t].map((x) => x.migrationOnlyKeysPerSec).filter((x): x is number => x !== undefined);
            if (mo("provider").length && mo("redis-cli").length) {
                const r2 = median(mo("provider")) / median(mo("redis-cli"));
                out(`(migration only: provider between its first and last migrate progress events ${Math.round(median(mo("provider")))} keys/s vs redis-cli rebalance command ${Math.round(median(mo("redis-cli")))} keys/s = ${r2.toFixed(2)}x; the RATIO above is end to end: add node, join, move, healthy)`);
            }
        }
        const goals = impactGoals(impact);
        for (const g of goals) out(`GOAL ${g.name} = ${g.value} (target ${g.target}: ${verdict(!!g.met)})`);
        for (const [rt, why] of Object.entries(skippedRuntimes)) out(`GOAL client impact on ${rt}: NOT MEASURED (${why})`);
        if (worker?.lastMemory) {
            const m = worker.lastMemory;
            out(`MEMORY provider process: peak RSS ${mib(m.maxRssBytes)} (kernel maxrss over the whole bench), sampled during converge: peak RSS ${mib(m.peakRssBytes)}, peak heap ${mib(m.peakHeapBytes)}, RSS when idle ${mib(worker.readyRss)}`);
        }
        if (failures) out(`${failures} client-impact trial(s) FAILED (see above)`);
        if (o.json) {
            Object.assign(report, { versions, options: { ...o, converge: o.converge }, ratios, goals, skippedRuntimes });
            fs.writeFileSync(o.json, JSON.stringify(report, null, 2));
        }
        return failures ? 1 : 0;
    } finally {
        await stopAll();
    }
}

main().then(
    (code) => process.exit(code),
    (e) => {
        process.stderr.write(`bench failed: ${(e as Error).message}\n`);
        process.exit(1);
    },
);
