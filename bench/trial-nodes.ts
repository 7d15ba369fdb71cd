/** Fresh lab nodes for one trial, and their disposal; the provider's timeline helpers. */
import * as fs from "fs";
import type { Lab } from "../lab/lab";
import type { Options } from "./options";
import type { TimedProgress } from "./provider-process";
import { out, sleep } from "./report";

/** Starts `count` fresh nodes for one trial and applies --node-config to them (same for both tools). */
export async function freshNodes(lab: Lab, count: number, o: Options): Promise<number[]> {
    const idx = (await lab.addNodes(count)).map((n) => n.index);
    for (const i of idx) for (const [k, val] of o.nodeConfig) await lab.cli(i, ["CONFIG", "SET", k, val]);
    // A master refuses to report cluster_state:ok in its first 2 s of life (CLUSTER_WRITABLE_DELAY
    // in cluster.c). Real nodes boot long before they are formed; let these settle like them.
    // --settle-ms 0 measures on just-started nodes instead (not what a deploy sees).
    await sleep(o.settleMs);
    return idx;
}

/** Kills the nodes of a finished trial and removes their data (they are never reused). */
export async function discard(lab: Lab, indices: number[]): Promise<void> {
    for (const i of indices) {
        await lab.killNode(i);
        fs.rmSync(lab.nodes[i].dataDir, { recursive: true, force: true });
    }
}

export function printTimeline(title: string, progress: TimedProgress, o: Options): void {
    if (!o.verbose) return;
    out(`    timeline of ${title}:`);
    for (const p of progress) out(`      ${p.atMs.toFixed(0).padStart(6)} ms  [${p.event.phase}] ${p.event.message}`);
}

/** Where the executor's time went: first and last progress event of each phase. */
export function phaseBreakdown(progress: TimedProgress): string {
    const phases = new Map<string, { first: number; last: number; n: number }>();
    for (const p of progress) {
        if (p.event.phase === "log") continue;
        const cur = phases.get(p.event.phase);
        if (!cur) phases.set(p.event.phase, { first: p.atMs, last: p.atMs, n: 1 });
        else Object.assign(cur, { last: p.atMs, n: cur.n + 1 });
    }
    return [...phases.entries()].map(([k, v]) => `${k} ${v.first.toFixed(0)}-${v.last.toFixed(0)} ms (${v.n})`).join(", ");
}
