/**
 * The chaos suite's scenario runner: a writer during each fault, then the checks every scenario
 * shares (acknowledged writes read back, slots covered, zone invariant after converge).
 */
import { pidAlive } from "../../lab/lab";
import { ClusterStatus } from "../../providers/redis-cluster/types";
import { ChaosCluster, formatResult, ScenarioResult, TimedWriter, waitFor } from "./harness";

export interface Fault {
    /** When the fault began (ms epoch). */
    faultAt: number;
    /** When the fault ended (node restarted, zone healed, SIGCONT). */
    endedAt: number;
    gapMs: number;
    note?: string;
    /**
     * Every node was killed at `faultAt`: writes acknowledged in the last AOF_EVERYSEC_WINDOW_MS
     * before it may be lost (everysec postpones the AOF write behind a slow background fsync and
     * replies anyway; tests/integration/lab/aof-durability.test.ts). Older ones may not.
     */
    crashedAll?: boolean;
}

/** everysec's postponement bound (2 s) plus slack: the same window as aof-durability.test.ts. */
export const AOF_EVERYSEC_WINDOW_MS = 2500;

/** The runner's functions over the suite's cluster (`cluster()` is read when a scenario runs). */
export function scenarioRunner(cluster: () => ChaosCluster) {
    /**
     * Healthy = converge ran and checkCluster says ok twice in a row (a cluster that is ok once and
     * degraded at the next look, e.g. a replica re-linking after a fault on 8.6.3, has not healed yet);
     * retried (bounded) while restarted nodes load and rejoin. Returns the second ok status.
     */
    async function waitHealthy(ms = 60000): Promise<ClusterStatus> {
        let streak = 0;
        let last: ClusterStatus | undefined;
        await waitFor("converge + checkCluster state ok twice in a row", ms, async () => {
            const st = await cluster().convergeAndCheck();
            if (st.state !== "ok") {
                streak = 0;
                throw new Error(`${st.state}: ${st.problems.join("; ")}`);
            }
            last = st;
            return ++streak >= 2;
        }, 500);
        return last!;
    }

    /** Runs one scenario with a writer, then asserts: acked writes read back, slots covered, zone invariant. */
    async function scenario(name: string, body: (w: TimedWriter) => Promise<Fault>, extra?: (w: TimedWriter, r: ScenarioResult) => void): Promise<void> {
        await waitHealthy(); // precondition: the previous scenario left a healthy cluster
        const w = cluster().newWriter();
        try {
            await w.start();
            await waitFor("the writer's first 200 acknowledged writes", 20000, async () => w.acked.size >= 200);
            const f = await body(w);
            const st = await waitHealthy();
            const healMs = Date.now() - f.endedAt;
            await w.stop();
            const allLost = await w.lost();
            const inWindow = (l: string) => f.crashedAll === true && w.ackedAt.get(l.split("=")[0])! >= f.faultAt - AOF_EVERYSEC_WINDOW_MS;
            const lost = allLost.filter((l) => !inWindow(l)).map((l) => `${l}, acknowledged ${f.faultAt - w.ackedAt.get(l.split("=")[0])!} ms before the fault`);
            const r: ScenarioResult = { name, acked: w.acked.size, lost: allLost.length, gapMs: f.gapMs, healMs, note: f.note ?? "" };
            extra?.(w, r);
            if (f.crashedAll) r.note += `; ${allLost.length - lost.length} acknowledged in the last ${AOF_EVERYSEC_WINDOW_MS} ms lost (everysec window)`;
            cluster().results.push(r);
            process.stdout.write(formatResult(r));

            expect(lost).toEqual([]);
            expect(w.acked.size).toBeGreaterThan(200);
            expect(st.state).toBe("ok");
            expect(st.slotsCovered).toBe(16384);
            expect(st.masters).toHaveLength(3);
            for (const rep of st.replicas) {
                const m = st.masters.find((x) => x.address === rep.master);
                expect(m).toBeDefined();
                expect(rep.zone).not.toBe(m!.zone);
            }
        } finally {
            await w.stop();
            w.close();
        }
    }

    /** A node in another zone than `i`, to watch the cluster from. */
    function watcherFor(zones: number[]): number {
        return cluster().lab.nodes.find((n) => !zones.includes(cluster().zoneOf(n.index)) && pidAlive(n.pid))!.index;
    }

    async function role(i: number): Promise<string> {
        return (await cluster().lab.cli(i, ["ROLE"])).split("\n")[0].trim();
    }
    return { scenario, waitHealthy, watcherFor, role };
}
