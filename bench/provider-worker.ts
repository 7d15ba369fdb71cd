/**
 * The cluster provider's executor in its own Node.js process, driven by bench/run.ts over IPC, so
 * that (1) its peak memory is the executor's alone and (2) module loading is done before any
 * stopwatch starts (the engine's provider process is warm too). Runs `converge` on request and
 * reports its progress events with timestamps, its duration and memory figures.
 */
import { loadConverge, LabClusterCredentials, LabClusterSpec, LabProgress } from "../lab/form";

export type WorkerRequest = { type: "converge"; id: number; spec: LabClusterSpec; creds: LabClusterCredentials; options: Record<string, unknown> } | { type: "exit" };

export type WorkerReply =
    | { type: "ready"; rssBytes: number; loadError?: string }
    | { type: "progress"; id: number; atMs: number; event: LabProgress }
    | { type: "done"; id: number; ms: number; error?: string; result?: unknown; memory: WorkerMemory };

export interface WorkerMemory {
    /** Highest RSS sampled (every 10 ms) during this converge, bytes. */
    peakRssBytes: number;
    /** Highest heapUsed sampled during this converge, bytes. */
    peakHeapBytes: number;
    /** Kernel's max resident set size of this process over its whole life, bytes. */
    maxRssBytes: number;
}

const send = (m: WorkerReply) => process.send?.(m);

let converge: ReturnType<typeof loadConverge> | undefined;
let loadError: string | undefined;
try {
    converge = loadConverge();
} catch (e) {
    loadError = (e as Error).message;
}
send({ type: "ready", rssBytes: process.memoryUsage().rss, loadError });

process.on("message", async (msg: WorkerRequest) => {
    if (msg.type === "exit") {
        process.disconnect?.();
        process.exit(0);
    }
    if (msg.type !== "converge") return;
    let peakRss = 0;
    let peakHeap = 0;
    const sample = () => {
        const m = process.memoryUsage();
        peakRss = Math.max(peakRss, m.rss);
        peakHeap = Math.max(peakHeap, m.heapUsed);
    };
    sample();
    const timer = setInterval(sample, 10);
    const start = performance.now();
    let error: string | undefined;
    let result: unknown;
    try {
        if (!converge) throw new Error(loadError ?? "converge not loaded");
        result = await converge(msg.spec, msg.creds, {
            ...msg.options,
            onProgress: (event: LabProgress) => send({ type: "progress", id: msg.id, atMs: performance.now() - start, event }),
            // Log lines travel as progress events of phase "log" (bench --verbose prints them with times).
            log: (message: string) => send({ type: "progress", id: msg.id, atMs: performance.now() - start, event: { phase: "log", message } }),
        });
    } catch (e) {
        error = (e as Error).message;
    }
    const ms = performance.now() - start;
    clearInterval(timer);
    sample();
    let plain: unknown;
    try {
        plain = JSON.parse(JSON.stringify(result ?? null));
    } catch {
        plain = undefined;
    }
    send({ type: "done", id: msg.id, ms, error, result: plain, memory: { peakRssBytes: peakRss, peakHeapBytes: peakHeap, maxRssBytes: process.resourceUsage().maxRSS * 1024 } });
});
