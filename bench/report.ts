/** Small figures helpers shared by the bench scenarios and the runner (printing is the CLI's). */

export const out = (line = ""): void => {
    process.stdout.write(line + "\n");
};

export function median(xs: number[]): number {
    if (!xs.length) return NaN;
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(xs: ArrayLike<number>, p: number): number {
    if (!xs.length) return NaN;
    const s = Float64Array.from(xs).sort();
    const rank = Math.ceil((p / 100) * s.length);
    return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

export const fmtMs = (ms: number): string => `${(ms / 1000).toFixed(3)} s`;
export const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;
export const fmtLatency = (ms: number): string => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : "n/a");
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
