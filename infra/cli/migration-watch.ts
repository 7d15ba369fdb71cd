/**
 * Follows a slot migration from the outside while `pulumi up` runs it (the cluster provider runs
 * inside the engine's provider process): every `everyMs` it asks each migration target for the
 * slots it owns (its own CLUSTER NODES line) and its DBSIZE, and turns that into slots and keys
 * moved, keys/s and ETA. Bounded: stops when told, or after `maxPolls`.
 */
import { parseClusterNodes } from "../../providers/redis-cluster/executor";
import { expandRanges } from "../../providers/redis-cluster/slots";
import type { ReshapePlan } from "../../providers/redis-cluster/types";
import { NodeCreds, withNode } from "../check/connect";
import { formatProgress, ProgressLine, ProgressSnapshot } from "./progress";

interface Target {
    host: string;
    port: number;
    /** Slots this target receives. */
    slots: Set<number>;
    keysAtStart?: number;
}

export class MigrationWatch {
    private readonly targets: Target[];
    private readonly slotsTotal: number;
    private timer: NodeJS.Timeout | undefined;
    private polls = 0;
    private t0 = 0;
    private busy = false;
    last: ProgressSnapshot | undefined;

    constructor(
        plan: ReshapePlan,
        private readonly creds: NodeCreds,
        private readonly line: ProgressLine,
        private readonly everyMs = 1000,
        private readonly maxPolls = 3600,
    ) {
        const byAddr = new Map<string, Target>();
        for (const s of plan.steps) {
            if (s.kind !== "migrate") continue;
            const [host, port] = [s.to.slice(0, s.to.lastIndexOf(":")), Number(s.to.slice(s.to.lastIndexOf(":") + 1))];
            const t = byAddr.get(s.to) ?? { host, port, slots: new Set<number>() };
            for (const slot of expandRanges(s.slots)) t.slots.add(slot);
            byAddr.set(s.to, t);
        }
        this.targets = [...byAddr.values()];
        this.slotsTotal = this.targets.reduce((a, t) => a + t.slots.size, 0);
    }

    /** True when the plan moves slots (otherwise there is nothing to show). */
    get moves(): boolean {
        return this.slotsTotal > 0;
    }

    async start(): Promise<void> {
        if (!this.moves) return;
        this.t0 = Date.now();
        for (const t of this.targets) t.keysAtStart = await this.dbsize(t).catch(() => 0);
        this.timer = setInterval(() => void this.poll(), this.everyMs);
    }

    private async dbsize(t: Target): Promise<number> {
        return withNode(t.host, t.port, this.creds, async (c) => Number(await c.dbsize()), 2000);
    }

    /** One reading of every target (a target that is not up yet counts 0). */
    async poll(): Promise<ProgressSnapshot | undefined> {
        if (this.busy || ++this.polls > this.maxPolls) return this.last;
        this.busy = true;
        try {
            let slotsMoved = 0;
            let keysMoved = 0;
            for (const t of this.targets) {
                try {
                    const [nodes, keys] = await withNode(t.host, t.port, this.creds, async (c) => [String(await c.call("CLUSTER", "NODES")), Number(await c.dbsize())] as const, 2000);
                    const me = parseClusterNodes(nodes).find((n) => n.myself);
                    if (me) slotsMoved += expandRanges(me.slots).filter((s) => t.slots.has(s)).length;
                    keysMoved += Math.max(0, keys - (t.keysAtStart ?? 0));
                } catch {
                    // not up yet, or busy: counts 0 this round
                }
            }
            this.last = { slotsMoved, slotsTotal: this.slotsTotal, keysMoved, elapsedS: (Date.now() - this.t0) / 1000 };
            this.line.update(formatProgress(this.last));
            return this.last;
        } finally {
            this.busy = false;
        }
    }

    /** Stops polling and prints the final reading. */
    async stop(): Promise<ProgressSnapshot | undefined> {
        if (this.timer) clearInterval(this.timer);
        this.timer = undefined;
        if (!this.moves) return undefined;
        while (this.busy) await new Promise((r) => setTimeout(r, 50));
        this.polls = 0;
        const s = await this.poll();
        if (s) this.line.done(formatProgress(s));
        return s;
    }
}
