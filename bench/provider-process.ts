/**
 * The parent side of bench/provider-worker.ts: the cluster provider's executor in its own process,
 * forked once and warm before any stopwatch starts; `converge` sends one request and collects the
 * worker's timed progress events and its memory figures.
 */
import { ChildProcess, fork } from "child_process";
import * as path from "path";
import { labCredentials, labSpec, LabProgress } from "../lab/form";
import type { Lab } from "../lab/lab";
import type { WorkerMemory, WorkerReply, WorkerRequest } from "./provider-worker";

export type ConvergeReply = Extract<WorkerReply, { type: "done" }>;
export type TimedProgress = Array<{ atMs: number; event: LabProgress }>;

/** The provider's process: forked once, warm before any stopwatch starts. */
export class ProviderWorker {
    private child!: ChildProcess;
    private nextId = 1;
    private pending = new Map<number, { resolve: (r: ConvergeReply) => void; progress: TimedProgress }>();
    readyRss = 0;
    loadError?: string;
    lastMemory?: WorkerMemory;

    async start(): Promise<void> {
        this.child = fork(path.join(__dirname, "provider-worker.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
        await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error("the provider worker did not start within 60 s")), 60000);
            this.child.on("message", (m: WorkerReply) => {
                if (m.type === "ready") {
                    clearTimeout(timer);
                    this.readyRss = m.rssBytes;
                    this.loadError = m.loadError;
                    resolve();
                } else if (m.type === "progress") this.pending.get(m.id)?.progress.push({ atMs: m.atMs, event: m.event });
                else if (m.type === "done") {
                    const prev = this.lastMemory;
                    this.lastMemory = prev
                        ? { peakRssBytes: Math.max(prev.peakRssBytes, m.memory.peakRssBytes), peakHeapBytes: Math.max(prev.peakHeapBytes, m.memory.peakHeapBytes), maxRssBytes: Math.max(prev.maxRssBytes, m.memory.maxRssBytes) }
                        : m.memory;
                    this.pending.get(m.id)?.resolve(m);
                    this.pending.delete(m.id);
                }
            });
            this.child.on("exit", (code) => {
                clearTimeout(timer);
                reject(new Error(`the provider worker exited with code ${code}`));
                for (const p of this.pending.values()) p.resolve({ type: "done", id: 0, ms: 0, error: `worker exited with code ${code}`, memory: { peakRssBytes: 0, peakHeapBytes: 0, maxRssBytes: 0 } });
            });
        });
    }

    converge(lab: Lab, indices: number[], shards: number, replicas: number, options: Record<string, unknown>) {
        const id = this.nextId++;
        const progress: TimedProgress = [];
        const done = new Promise<ConvergeReply>((resolve) => this.pending.set(id, { resolve, progress }));
        const req: WorkerRequest = { type: "converge", id, spec: labSpec(lab, indices, shards, replicas), creds: labCredentials(lab), options };
        this.child.send(req);
        return { done, progress };
    }

    stop(): void {
        if (this.child?.connected) this.child.send({ type: "exit" } satisfies WorkerRequest);
        const pid = this.child?.pid;
        setTimeout(() => {
            if (pid && this.child.exitCode === null) this.child.kill("SIGKILL");
        }, 2000).unref();
    }
}
