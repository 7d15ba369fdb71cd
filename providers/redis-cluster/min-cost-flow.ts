/**
 * Min-cost flow with LEXICOGRAPHIC cost vectors and separable convex (quadratic) arcs. Pure.
 *
 * Why vectors: the placement objective is a strict priority list (replicas in their master's
 * zone, then replicas sharing a zone, then the spread). Encoding it in one number needs weights
 * that overflow doubles at large sizes; vectors compared component by component are an ordered
 * group, so the usual min-cost-flow theory holds unchanged.
 *
 * Why convex arcs: "as even as possible" is min sum of x^2 over the zones. An arc whose cost is
 * x^2 on one component is the classic expansion into unit arcs of marginal cost 1, 3, 5, ...:
 * the k-th unit costs 2k-1. Successive shortest paths (Bellman-Ford/SPFA on the residual graph,
 * one unit per augmentation when a convex arc is on the path) stay exact because marginal
 * costs only grow.
 *
 * Sizes here are tiny graphs (two nodes per zone) with up to a few tens of thousands of units.
 */

export interface ArcSpec {
    from: number;
    to: number;
    cap: number;
    /** Cost per unit, one entry per component (length K). */
    cost: number[];
    /** When >= 0: the arc also costs x^2 on this component (the k-th unit adds 2k-1). */
    square?: number;
}

interface Arc {
    to: number;
    cap: number;
    flow: number;
    cost: number[];
    square: number;
    /** Index of the paired residual arc. */
    rev: number;
    forward: boolean;
}

// No field initializers or parameter properties: the dynamic provider is serialised with
// pulumi.runtime.serializeFunction, which rebuilds a class from its constructor text and loses
// ES2022 class fields (tests/integration/redis-cluster/provider-serialize.test.ts).
export class LexMinCostFlow {
    declare private readonly arcs: Arc[];
    declare private readonly out: number[][];
    declare private readonly n: number;
    declare private readonly K: number;

    constructor(n: number, K: number) {
        this.arcs = [];
        this.n = n;
        this.K = K;
        this.out = Array.from({ length: n }, () => []);
    }

    /** Adds an arc; returns its id (for `flowOn`). */
    add(a: ArcSpec): number {
        if (a.cost.length !== this.K) throw new Error(`min-cost-flow: cost vector of length ${a.cost.length}, expected ${this.K}`);
        const id = this.arcs.length;
        this.arcs.push({ to: a.to, cap: a.cap, flow: 0, cost: a.cost, square: a.square ?? -1, rev: id + 1, forward: true });
        this.arcs.push({ to: a.from, cap: 0, flow: 0, cost: a.cost.map((x) => -x), square: a.square ?? -1, rev: id, forward: false });
        this.out[a.from].push(id);
        this.out[a.to].push(id + 1);
        return id;
    }

    flowOn(id: number): number {
        return this.arcs[id].flow;
    }

    /** Residual capacity and the marginal cost of one more unit along arc `id` (written to `into`). */
    private residual(id: number, into: Float64Array, at: number): number {
        const a = this.arcs[id];
        if (a.forward) {
            const left = a.cap - a.flow;
            if (left <= 0) return 0;
            for (let i = 0; i < this.K; i++) into[at + i] = a.cost[i];
            if (a.square >= 0) into[at + a.square] += 2 * a.flow + 1;
            return left;
        }
        const f = this.arcs[a.rev];
        if (f.flow <= 0) return 0;
        for (let i = 0; i < this.K; i++) into[at + i] = a.cost[i];
        if (a.square >= 0) into[at + a.square] -= 2 * (f.flow - 1) + 1;
        return f.flow;
    }

    /**
     * Sends up to `amount` units from `s` to `t` at minimum lexicographic cost.
     * Returns the amount sent (less than asked when the network cannot carry more).
     */
    run(s: number, t: number, amount: number): number {
        const K = this.K;
        const dist = new Float64Array(this.n * K);
        const reached = new Uint8Array(this.n);
        const inQueue = new Uint8Array(this.n);
        const via = new Int32Array(this.n);
        const c = new Float64Array(K);
        let sent = 0;
        // dist[v] + c < dist[w], lexicographically.
        const better = (v: number, w: number): boolean => {
            for (let i = 0; i < K; i++) {
                const x = dist[v * K + i] + c[i];
                const y = dist[w * K + i];
                if (x < y) return true;
                if (x > y) return false;
            }
            return false;
        };
        while (sent < amount) {
            reached.fill(0);
            reached[s] = 1;
            for (let i = 0; i < K; i++) dist[s * K + i] = 0;
            const queue: number[] = [s];
            inQueue.fill(0);
            inQueue[s] = 1;
            for (let qi = 0; qi < queue.length; qi++) {
                const v = queue[qi];
                inQueue[v] = 0;
                for (const id of this.out[v]) {
                    if (this.residual(id, c, 0) <= 0) continue;
                    const w = this.arcs[id].to;
                    if (!reached[w] || better(v, w)) {
                        reached[w] = 1;
                        for (let i = 0; i < K; i++) dist[w * K + i] = dist[v * K + i] + c[i];
                        via[w] = id;
                        if (!inQueue[w]) {
                            inQueue[w] = 1;
                            queue.push(w);
                        }
                    }
                }
            }
            if (!reached[t]) break;
            // Bottleneck; a convex arc on the path changes its marginal cost after one unit.
            let push = amount - sent;
            for (let v = t; v !== s; ) {
                const id = via[v];
                push = Math.min(push, this.residual(id, c, 0));
                if (this.arcs[id].square >= 0) push = Math.min(push, 1);
                v = this.arcs[this.arcs[id].rev].to;
            }
            for (let v = t; v !== s; ) {
                const id = via[v];
                const a = this.arcs[id];
                if (a.forward) a.flow += push;
                else this.arcs[a.rev].flow -= push;
                v = this.arcs[a.rev].to;
            }
            sent += push;
        }
        return sent;
    }
}
