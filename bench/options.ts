/** The bench's command line (documented in the header of bench/run.ts). */
import * as path from "path";

/** One client-impact path: a Redis runtime and how the slots are moved. */
export interface ImpactPath {
    /** Runtime name for lab/redis-runtime.ts: "system" (7.0) or "8.6" (or a directory). */
    runtime: string;
    /** atomic / classic: the provider's converge with atomicMigration true / false; redis-cli: add-node + rebalance. */
    mover: "atomic" | "classic" | "redis-cli";
}

export const DEFAULT_IMPACT_PATHS = "7.0:classic,8.6:atomic,8.6:classic,8.6:redis-cli";

export interface Options {
    keys: number;
    repeat: number;
    reshardRepeat: number;
    dir: string;
    only?: "provider" | "redis-cli";
    skipFormation: boolean;
    skipReshard: boolean;
    skipImpact: boolean;
    /** Runtime of the formation and resharding ratios (a) and (b). */
    ratiosRedis: string;
    /** Client-impact scenario (c): paths, repetitions, keys, client load. */
    impactPaths: ImpactPath[];
    impactRepeat: number;
    impactKeys: number;
    clientWorkers: number;
    clientOpsPerSec: number;
    /** The client runs this long before the move starts (baseline latency) and after the cluster is healthy again. */
    clientWarmupMs: number;
    clientTailMs: number;
    converge: Record<string, unknown>;
    /** CONFIG SET applied to every fresh node of both tools before a trial (what-if for the templates). */
    nodeConfig: Array<[string, string]>;
    /** Print the provider's log and progress lines with their times. */
    verbose: boolean;
    /** Wait after starting fresh nodes, before a trial. */
    settleMs: number;
    timeoutMs: number;
    /** Write the figures as JSON here too. */
    json?: string;
}

export function parseImpactPaths(spec: string): ImpactPath[] {
    return spec
        .split(",")
        .filter(Boolean)
        .map((p) => {
            const [runtime, mover] = p.split(":");
            if (!runtime || (mover !== "atomic" && mover !== "classic" && mover !== "redis-cli")) {
                throw new Error(`--impact-paths wants runtime:mover[,...] with mover atomic|classic|redis-cli (e.g. ${DEFAULT_IMPACT_PATHS}); got "${p}"`);
            }
            return { runtime: runtime === "7.0" ? "system" : runtime, mover };
        });
}

export function parseOptions(argv: string[]): Options {
    const o: Options = {
        keys: 500000,
        repeat: 5,
        reshardRepeat: 3,
        dir: path.resolve(".lab", `bench-${process.pid}`),
        skipFormation: false,
        skipReshard: false,
        skipImpact: false,
        ratiosRedis: process.env.REDISFORGE_REDIS || "system",
        impactPaths: parseImpactPaths(DEFAULT_IMPACT_PATHS),
        impactRepeat: 0,
        impactKeys: 0,
        clientWorkers: 8,
        clientOpsPerSec: 1000,
        clientWarmupMs: 1000,
        clientTailMs: 1000,
        converge: {},
        nodeConfig: [],
        settleMs: 2500,
        verbose: false,
        timeoutMs: 600000,
    };
    let reshardRepeatSet = false;
    const int = (flag: string, v: string | undefined, min: number) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min}; got "${v}"`);
        return n;
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const v = () => argv[++i];
        if (a === "--keys") o.keys = int(a, v(), 1);
        else if (a === "--repeat") o.repeat = int(a, v(), 1);
        else if (a === "--reshard-repeat") {
            o.reshardRepeat = int(a, v(), 1);
            reshardRepeatSet = true;
        } else if (a === "--dir") o.dir = path.resolve(v());
        else if (a === "--settle-ms") o.settleMs = int(a, v(), 0);
        else if (a === "--timeout") o.timeoutMs = int(a, v(), 1) * 1000;
        else if (a === "--only") {
            const w = v();
            if (w !== "provider" && w !== "redis-cli") throw new Error(`--only must be provider or redis-cli; got "${w}"`);
            o.only = w;
        } else if (a === "--skip-formation") o.skipFormation = true;
        else if (a === "--skip-reshard") o.skipReshard = true;
        else if (a === "--skip-impact") o.skipImpact = true;
        else if (a === "--impact-only") {
            o.skipFormation = true;
            o.skipReshard = true;
        } else if (a === "--ratios-redis") o.ratiosRedis = v() ?? "";
        else if (a === "--impact-paths") o.impactPaths = parseImpactPaths(v() ?? "");
        else if (a === "--impact-repeat") o.impactRepeat = int(a, v(), 1);
        else if (a === "--impact-keys") o.impactKeys = int(a, v(), 1);
        else if (a === "--client-workers") o.clientWorkers = int(a, v(), 1);
        else if (a === "--client-rate") o.clientOpsPerSec = int(a, v(), 1);
        else if (a === "--client-warmup-ms") o.clientWarmupMs = int(a, v(), 0);
        else if (a === "--client-tail-ms") o.clientTailMs = int(a, v(), 0);
        else if (a === "--json") o.json = path.resolve(v() ?? "");
        else if (a === "--verbose") o.verbose = true;
        else if (a === "--opt") {
            const kv = v() ?? "";
            const eq = kv.indexOf("=");
            if (eq <= 0) throw new Error(`--opt needs name=value (e.g. --opt migrateBatchKeys=1000); got "${kv}"`);
            const raw = kv.slice(eq + 1);
            o.converge[kv.slice(0, eq)] = raw === "true" ? true : raw === "false" ? false : Number.isFinite(Number(raw)) ? Number(raw) : raw;
        } else if (a === "--node-config") {
            const kv = v() ?? "";
            const eq = kv.indexOf("=");
            if (eq <= 0) throw new Error(`--node-config needs name=value (e.g. --node-config repl-diskless-sync-max-replicas=1); got "${kv}"`);
            o.nodeConfig.push([kv.slice(0, eq), kv.slice(eq + 1)]);
        } else throw new Error(`unknown argument "${a}"; see the header of bench/run.ts`);
    }
    // Quick mode (--repeat 1) means one trial of everything unless a count is given explicitly.
    if (!reshardRepeatSet) o.reshardRepeat = Math.min(o.reshardRepeat, o.repeat);
    if (!o.impactRepeat) o.impactRepeat = Math.min(3, o.repeat);
    if (!o.impactKeys) o.impactKeys = o.keys;
    return o;
}
