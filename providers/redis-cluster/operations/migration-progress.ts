/** Progress of a slot migration: slots and keys moved, keys/s. */
import { Resolved } from "../primitives/options";

export class MigrationProgress {
    declare slotsMoved: number;
    declare keysMoved: number;
    declare slotsTotal: number;
    declare private t0: number;
    declare private lastReport: number;
    declare private o: Resolved;
    /** Rates count from the first slot operation, not from the MEET/wait before it. */
    start(): void {
        if (!this.started) {
            this.started = true;
            this.t0 = Date.now();
        }
    }
    declare private started: boolean;
    constructor(slotsTotal: number, o: Resolved) {
        this.started = false;
        this.slotsMoved = 0;
        this.keysMoved = 0;
        this.t0 = Date.now();
        this.lastReport = 0;
        this.slotsTotal = slotsTotal;
        this.o = o;
    }
    /** Counts moved slots and keys; reports at most every 250 ms, and always when the last slot moved. */
    add(slots: number, keys: number): void {
        this.slotsMoved += slots;
        this.keysMoved += keys;
        const now = Date.now();
        if (now - this.lastReport > 250 || this.slotsMoved >= this.slotsTotal) {
            this.lastReport = now;
            this.emit(`slots ${this.slotsMoved}/${this.slotsTotal}, ${this.keysMoved} keys, ${Math.round(this.keysMoved / this.secs())} keys/s`);
        }
    }
    /**
     * Reports an event of the migration (an atomic task started, failed and is retried by the
     * server) with the counters so far; not throttled (such events are few).
     */
    note(message: string): void {
        this.emit(`${message} (slots ${this.slotsMoved}/${this.slotsTotal}, ${this.keysMoved} keys)`);
    }
    private secs(): number {
        return Math.max(0.001, (Date.now() - this.t0) / 1000);
    }
    private emit(message: string): void {
        this.o.progress({
            phase: "migrate",
            message,
            slotsMoved: this.slotsMoved,
            slotsTotal: this.slotsTotal,
            keysMoved: this.keysMoved,
            keysPerSec: this.keysMoved / this.secs(),
        });
    }
}
