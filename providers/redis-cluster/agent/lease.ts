/**
 * Exactly one acting agent: a lease object in the CasStore, taken and renewed by conditional
 * writes. No clock is compared across machines:
 *
 * - the holder renews every `ttlMs / 3` (a new `seq`, so a new version) and considers the lease
 *   LOST when it has had no successful renewal for `ttlMs / 2` by its own clock (it must stop
 *   acting then: the agent exits, which also stops an operation in flight);
 * - a contender takes the lease only after it has seen the SAME version for a full `ttlMs` by its
 *   own clock, with a write conditioned on that version (two contenders: one wins, the other gets
 *   a conflict);
 * - so a live holder's renewals keep contenders out, and a contender can take over no earlier
 *   than `ttlMs / 2` after a crashed or cut-off holder stopped acting.
 */
import { CasStore, LEASE_KEY, LeaseDoc, parseDoc } from "./store";

export interface LeaseOptions {
    /** Who this agent is (host name + pid); written into the lease and the status. */
    holder: string;
    /** Default 30000. */
    ttlMs?: number;
    /** Monotonic clock, ms (tests may pass another). */
    now?: () => number;
}

export type LeaseState = { held: true; term: number } | { held: false; holder?: string; term?: number; why: string };

export class Lease {
    readonly holder: string;
    readonly ttlMs: number;
    private readonly now: () => number;
    private version?: string;
    private term = 0;
    private seq = 0;
    private lastRenewOk = -Infinity;
    /** The other holder's version we are watching, and since when (our clock). */
    private watched?: { version: string; since: number };

    constructor(private readonly store: CasStore, o: LeaseOptions) {
        if (!o.holder) throw new Error("Lease: holder is required");
        this.holder = o.holder;
        this.ttlMs = o.ttlMs ?? 30000;
        if (!Number.isInteger(this.ttlMs) || this.ttlMs < 1000) throw new Error(`Lease: ttlMs must be an integer >= 1000; got ${o.ttlMs}`);
        this.now = o.now ?? (() => performance.now());
    }

    /** Renew every this many ms while holding. */
    get renewEveryMs(): number {
        return Math.floor(this.ttlMs / 3);
    }

    /** Held, and renewed recently enough to act. */
    get held(): boolean {
        return this.version !== undefined && this.now() - this.lastRenewOk < this.ttlMs / 2;
    }

    get currentTerm(): number {
        return this.term;
    }

    private doc(term: number): string {
        const d: LeaseDoc = { format: 1, holder: this.holder, term, seq: ++this.seq, ttlMs: this.ttlMs, renewedAt: new Date().toISOString() };
        return JSON.stringify(d);
    }

    /**
     * One step: renew when holding, else try to take the lease (when absent, or unchanged for a
     * full ttl). Store errors while holding do not throw: `held` turns false once renewals have
     * failed for ttl/2. Store errors while not holding throw (nothing to protect).
     */
    async tick(): Promise<LeaseState> {
        if (this.version !== undefined) {
            const t = this.now();
            try {
                const r = await this.store.write(LEASE_KEY, this.doc(this.term), { ifVersion: this.version });
                if (r === "conflict") {
                    this.version = undefined;
                    return { held: false, why: `lease taken over (our term ${this.term}): another agent wrote ${this.store.where}/${LEASE_KEY}` };
                }
                this.version = r.version;
                this.lastRenewOk = t;
                return { held: true, term: this.term };
            } catch (e) {
                if (this.held) return { held: true, term: this.term };
                this.version = undefined;
                return { held: false, why: `lease lost: no successful renewal for ${Math.round(this.now() - this.lastRenewOk)} ms (${(e as Error).message})` };
            }
        }
        const cur = await this.store.read(LEASE_KEY);
        const t = this.now();
        if (!cur) {
            return this.take(1, { ifAbsent: true }, t, "no lease yet");
        }
        const doc = parseDoc<LeaseDoc>(cur, `${this.store.where}/${LEASE_KEY}`)!;
        if (doc.holder === this.holder) {
            // Our own lease from before a restart of this process (same holder name): take it back.
            return this.take(doc.term, { ifVersion: cur.version }, t, "our own lease");
        }
        if (!this.watched || this.watched.version !== cur.version) {
            this.watched = { version: cur.version, since: t };
            return { held: false, holder: doc.holder, term: doc.term, why: `held by ${doc.holder} (term ${doc.term})` };
        }
        if (t - this.watched.since < this.ttlMs) {
            return { held: false, holder: doc.holder, term: doc.term, why: `held by ${doc.holder} (term ${doc.term}), unchanged for ${Math.round(t - this.watched.since)} of ${this.ttlMs} ms` };
        }
        return this.take(doc.term + 1, { ifVersion: cur.version }, t, `${doc.holder}'s lease (term ${doc.term}) expired: unchanged for ${Math.round(t - this.watched.since)} ms`);
    }

    private async take(term: number, cond: { ifAbsent?: boolean; ifVersion?: string }, t: number, why: string): Promise<LeaseState> {
        const r = await this.store.write(LEASE_KEY, this.doc(term), cond);
        if (r === "conflict") {
            this.watched = undefined;
            return { held: false, why: `${why}, but another agent wrote the lease first` };
        }
        this.version = r.version;
        this.term = term;
        this.lastRenewOk = t;
        this.watched = undefined;
        return { held: true, term };
    }
}
