/**
 * A progress display for long operations. On a terminal one line is rewritten in place
 * (`\r` + clear line); otherwise (a pipe, CI, `--json`) it degrades to plain lines, at most one
 * every `plainEveryMs`, so logs stay readable.
 */
export interface ProgressSnapshot {
    slotsMoved: number;
    slotsTotal: number;
    keysMoved: number;
    /** Seconds since the migration started. */
    elapsedS: number;
}

/** keys/s and ETA (from the slot rate) of a snapshot; pure, for the display and the tests. */
export function rates(s: ProgressSnapshot): { keysPerSec: number; etaS: number | undefined } {
    const t = Math.max(s.elapsedS, 0.001);
    const slotRate = s.slotsMoved / t;
    return {
        keysPerSec: s.keysMoved / t,
        etaS: s.slotsMoved > 0 && s.slotsTotal > s.slotsMoved ? (s.slotsTotal - s.slotsMoved) / slotRate : s.slotsTotal > 0 && s.slotsMoved >= s.slotsTotal ? 0 : undefined,
    };
}

/** One human line for a snapshot, e.g. `slots 2730/4096 (67 %), 18 000 keys, 2 950 keys/s, ETA 3 s`. */
export function formatProgress(s: ProgressSnapshot): string {
    const { keysPerSec, etaS } = rates(s);
    const pct = s.slotsTotal > 0 ? Math.floor((100 * s.slotsMoved) / s.slotsTotal) : 100;
    const eta = etaS === undefined ? "ETA ?" : `ETA ${Math.ceil(etaS)} s`;
    return `migration: slots ${s.slotsMoved}/${s.slotsTotal} (${pct} %), ${s.keysMoved} keys, ${Math.round(keysPerSec)} keys/s, ${eta}`;
}

export class ProgressLine {
    private lastPlain = 0;
    private shown = false;
    constructor(
        private readonly stream: { write(s: string): boolean; isTTY?: boolean },
        private readonly plainEveryMs = 2000,
    ) {}

    get tty(): boolean {
        return !!this.stream.isTTY;
    }

    update(text: string): void {
        if (this.tty) {
            this.stream.write(`\r\x1b[2K${text}`);
            this.shown = true;
            return;
        }
        const now = Date.now();
        if (now - this.lastPlain >= this.plainEveryMs) {
            this.lastPlain = now;
            this.stream.write(`${text}\n`);
        }
    }

    /** The final state, always printed, on its own line. */
    done(text: string): void {
        if (this.tty && this.shown) this.stream.write(`\r\x1b[2K${text}\n`);
        else this.stream.write(`${text}\n`);
        this.shown = false;
    }
}
