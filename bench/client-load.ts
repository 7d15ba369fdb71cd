/**
 * An application's view of a resharding: an ioredis Cluster client (TLS with the lab's CA and
 * client certificate, ACL user `app`) that writes and reads continuously at a paced rate, and
 * records what every command cost and what the cluster answered on the way.
 *
 * Workload, per worker (each worker owns its keys, so it always knows what a read must return):
 *   SET impact:w<w>:k<i> (i cycles over `keysPerWorker` keys) -> GET one of its keys written
 *   before -> every 4th round: MSET of two keys sharing a hash tag, then MGET of them (multi-key
 *   commands are what a classic migration answers with TRYAGAIN while a slot is split).
 *
 * What is counted (each event carries its time, so a report covers any window):
 *   - replies the client library handled itself, seen through a wrapper of Cluster#handleError
 *     (ioredis routes every error reply and every connection error of a cluster command through
 *     it): MOVED and ASK redirects followed, TRYAGAIN and CLUSTERDOWN retried, connection errors;
 *   - failed commands, i.e. the ones the application got an error for, by kind: TRYAGAIN or
 *     CLUSTERDOWN still failing after ioredis's retries, command timeouts, redirect loops ("Too
 *     many Cluster redirections"), closed connections, anything else;
 *   - wrong reads: a GET/MGET that returned neither the last acknowledged value nor a value of a
 *     write whose outcome is unknown (failed or timed out: it may or may not have been applied);
 *   - the latency of every command (send to reply, retries included).
 * `verify()` reads back every key the client wrote once the load stopped: a key whose value is
 * not one of its possible values (last acknowledged, or an unacknowledged later write) is lost.
 */
import { Cluster } from "ioredis";
import type { Endpoint, ViewAuth } from "../lab/cluster-view";
import { percentile, sleep } from "./report";

export interface ClientLoadOptions {
    /** Seed nodes (any members of the cluster). */
    seeds: Endpoint[];
    /** Credentials of the application user (ACL `app`) and the TLS material. */
    auth: ViewAuth;
    /** Concurrent workers, each one command at a time. Default 8. */
    workers?: number;
    /** Target commands per second over all workers (paced, never bursting to catch up). Default 1000. */
    opsPerSec?: number;
    /** Keys each worker cycles its writes over. Default 250. */
    keysPerWorker?: number;
    /** ioredis commandTimeout, ms: a command without a reply by then fails as a timeout. Default 2000. */
    commandTimeoutMs?: number;
    /** Bound on the client becoming ready (slots fetched), ms. Default 15000. */
    readyTimeoutMs?: number;
}

export const CLIENT_LOAD_DEFAULTS = { workers: 8, opsPerSec: 1000, keysPerWorker: 250, commandTimeoutMs: 2000, readyTimeoutMs: 15000 };

/** Error replies / errors the client library handled (followed or retried), by kind. */
export const SEEN_KINDS = ["moved", "ask", "tryagain", "clusterdown", "connection", "timeout", "other"] as const;
export type SeenKind = (typeof SEEN_KINDS)[number];

/** Why a command failed for the application. */
export const FAILURE_KINDS = ["tryagain", "clusterdown", "timeout", "redirect-loop", "connection", "other"] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

export interface LatencySummary {
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    samples: number;
}

/** What the client saw in one window of time (commands started in it, events that happened in it). */
export interface ClientWindowReport {
    durationMs: number;
    commands: number;
    ok: number;
    failed: number;
    /** Commands per second completed in the window. */
    opsPerSec: number;
    writes: { issued: number; acked: number; failed: number };
    /** Error replies/errors the library handled by itself (MOVED/ASK followed, TRYAGAIN/CLUSTERDOWN retried). */
    seen: Record<SeenKind, number>;
    /** Failed commands by kind; their sum is `failed`. */
    failures: Record<FailureKind, number>;
    /** Reads that returned a value the client never wrote or had overwritten with an acknowledged write. */
    wrongReads: number;
    latency: LatencySummary;
    /** A few messages of failed commands and wrong reads (for the printed report). */
    samples: string[];
}

export interface ClientVerifyReport {
    /** Keys written by the client (acknowledged or not) that were read back. */
    keysChecked: number;
    /** Keys with at least one acknowledged write. */
    keysAcked: number;
    /** Keys whose value is none of its possible values (an acknowledged write is missing). */
    lost: number;
    lostSamples: string[];
}

type Value = string | null;

export function classifySeen(e: Error): SeenKind {
    const m = e.message;
    if (m.startsWith("MOVED ")) return "moved";
    if (m.startsWith("ASK ")) return "ask";
    if (m.startsWith("TRYAGAIN")) return "tryagain";
    if (m.startsWith("CLUSTERDOWN")) return "clusterdown";
    if (/timed out/i.test(m)) return "timeout";
    if (/Connection is closed|ECONNRESET|ECONNREFUSED|EPIPE|socket/i.test(m)) return "connection";
    return "other";
}

export function classifyFailure(e: Error): FailureKind {
    const m = e.message;
    // ioredis gives up after maxRedirections handled errors and names the last one.
    const last = /^Too many Cluster redirections\. Last error: (?:\w*Error: )?(.*)$/s.exec(m);
    const inner = last ? last[1] : m;
    if (inner.startsWith("TRYAGAIN")) return "tryagain";
    if (inner.startsWith("CLUSTERDOWN")) return "clusterdown";
    if (/timed out/i.test(inner)) return "timeout";
    if (last) return "redirect-loop";
    if (/Connection is closed|ECONNRESET|ECONNREFUSED|EPIPE|Cluster is (ended|disconnect)/i.test(inner)) return "connection";
    return "other";
}

/** `p`'s value, or undefined when it has not settled within `ms` (the timer never outlives the call). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
        return await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
    } finally {
        clearTimeout(timer);
    }
}

const zero = <K extends string>(keys: readonly K[]): Record<K, number> => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

export class ClientLoad {
    private readonly o: Required<Omit<ClientLoadOptions, "seeds" | "auth">> & Pick<ClientLoadOptions, "seeds" | "auth">;
    private readonly cluster: Cluster;
    /** Per command: start time, latency, failure kind (null when it succeeded), whether it was a write. */
    private readonly cmdStart: number[] = [];
    private readonly cmdMs: number[] = [];
    private readonly cmdFail: Array<FailureKind | null> = [];
    private readonly cmdWrite: boolean[] = [];
    private readonly seenEvents: Array<{ at: number; kind: SeenKind }> = [];
    private readonly wrongReadAt: number[] = [];
    private readonly messages: Array<{ at: number; text: string }> = [];
    /** Values a key may hold now: the last acknowledged one (or null) plus unacknowledged later writes. */
    private readonly possible = new Map<string, Value[]>();
    private readonly acked = new Set<string>();
    private stopping = false;
    private running: Promise<void>[] = [];

    constructor(opts: ClientLoadOptions) {
        this.o = { ...CLIENT_LOAD_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as typeof this.o;
        this.cluster = new Cluster(
            this.o.seeds.map((s) => ({ host: s.host, port: s.port })),
            {
                lazyConnect: true,
                slotsRefreshTimeout: 5000,
                clusterRetryStrategy: (times) => (times > 20 ? null : 200),
                redisOptions: {
                    username: this.o.auth.username,
                    password: this.o.auth.password,
                    tls: { ...this.o.auth.tls },
                    connectTimeout: 5000,
                    commandTimeout: this.o.commandTimeoutMs,
                    // The ready check runs INFO, which the app user may not (-@dangerous).
                    enableReadyCheck: false,
                },
            },
        );
        // Connection trouble reaches commands through handleError as well; the events themselves
        // must not crash the process.
        this.cluster.on("error", () => undefined);
        this.cluster.on("node error", () => undefined);
        const original = this.cluster.handleError.bind(this.cluster);
        this.cluster.handleError = (error, ttl, handlers) => {
            this.seenEvents.push({ at: performance.now(), kind: classifySeen(error) });
            original(error, ttl, handlers);
        };
    }

    /** Connects (bounded) and starts the workers. */
    async start(): Promise<void> {
        const ready = await within(this.cluster.connect().then(() => true), this.o.readyTimeoutMs);
        if (!ready) throw new Error(`the cluster client (user ${this.o.auth.username}) was not ready within ${this.o.readyTimeoutMs} ms`);
        this.running = Array.from({ length: this.o.workers }, (_, w) => this.worker(w));
    }

    /** Stops the workers after their current command (bounded by the command timeout and retries). */
    async stop(): Promise<void> {
        this.stopping = true;
        await within(Promise.all(this.running), this.o.commandTimeoutMs * 20 + 5000);
    }

    /** Reads back every key the client wrote; call after stop(). */
    async verify(): Promise<ClientVerifyReport> {
        const keys = [...this.possible.keys()];
        let lost = 0;
        const lostSamples: string[] = [];
        for (let i = 0; i < keys.length; i += 200) {
            const chunk = keys.slice(i, i + 200);
            const values = await Promise.all(chunk.map((k) => this.cluster.get(k)));
            chunk.forEach((k, j) => {
                if (!this.possible.get(k)!.includes(values[j])) {
                    lost++;
                    if (lostSamples.length < 5) lostSamples.push(`${k}=${values[j]} (expected one of ${JSON.stringify(this.possible.get(k))})`);
                }
            });
        }
        return { keysChecked: keys.length, keysAcked: this.acked.size, lost, lostSamples };
    }

    close(): void {
        this.cluster.disconnect();
    }

    /** What the client saw between `from` and `to` (performance.now() times). */
    window(from: number, to: number): ClientWindowReport {
        const lat: number[] = [];
        const failures = zero(FAILURE_KINDS);
        const writes = { issued: 0, acked: 0, failed: 0 };
        let commands = 0;
        let failed = 0;
        for (let i = 0; i < this.cmdStart.length; i++) {
            const t = this.cmdStart[i];
            if (t < from || t >= to) continue;
            commands++;
            lat.push(this.cmdMs[i]);
            const f = this.cmdFail[i];
            if (f) {
                failed++;
                failures[f]++;
            }
            if (this.cmdWrite[i]) {
                writes.issued++;
                if (f) writes.failed++;
                else writes.acked++;
            }
        }
        const seen = zero(SEEN_KINDS);
        for (const e of this.seenEvents) if (e.at >= from && e.at < to) seen[e.kind]++;
        const durationMs = to - from;
        return {
            durationMs,
            commands,
            ok: commands - failed,
            failed,
            opsPerSec: durationMs > 0 ? commands / (durationMs / 1000) : 0,
            writes,
            seen,
            failures,
            wrongReads: this.wrongReadAt.filter((t) => t >= from && t < to).length,
            latency: { p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), maxMs: lat.length ? lat.reduce((m, x) => (x > m ? x : m), 0) : NaN, samples: lat.length },
            samples: this.messages.filter((m) => m.at >= from && m.at < to).slice(0, 5).map((m) => m.text),
        };
    }

    private async worker(w: number): Promise<void> {
        const interval = (this.o.workers / this.o.opsPerSec) * 1000;
        let next = performance.now() + Math.random() * interval;
        const pace = async () => {
            const now = performance.now();
            // Behind by more than a second (a stall): start afresh instead of bursting.
            if (now - next > 1000) next = now;
            if (next > now) await sleep(next - now);
            next += interval;
        };
        for (let seq = 0; !this.stopping; seq++) {
            const i = seq % this.o.keysPerWorker;
            const key = `impact:w${w}:k${i}`;
            await pace();
            await this.write([key], `${w}:${seq}`, (v) => this.cluster.set(key, v));
            if (this.stopping) break;
            const r = `impact:w${w}:k${Math.floor(Math.random() * Math.min(seq + 1, this.o.keysPerWorker))}`;
            await pace();
            await this.read([r], async () => [await this.cluster.get(r)]);
            if (seq % 4 !== 3 || this.stopping) continue;
            const tag = `{impact:w${w}:p${(seq >> 2) % this.o.keysPerWorker}}`;
            const pair = [`${tag}:a`, `${tag}:b`];
            await pace();
            await this.write(pair, `${w}:${seq}`, (v) => this.cluster.mset(pair[0], v, pair[1], v));
            if (this.stopping) break;
            await pace();
            await this.read(pair, () => this.cluster.mget(pair[0], pair[1]));
        }
    }

    private async timed<T>(isWrite: boolean, fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
        const t = performance.now();
        try {
            const value = await fn();
            this.record(t, isWrite, null);
            return { ok: true, value };
        } catch (e) {
            const kind = classifyFailure(e as Error);
            this.record(t, isWrite, kind);
            this.messages.push({ at: t, text: `${kind}: ${(e as Error).message.slice(0, 160)}` });
            return { ok: false };
        }
    }

    private record(start: number, isWrite: boolean, fail: FailureKind | null): void {
        this.cmdStart.push(start);
        this.cmdMs.push(performance.now() - start);
        this.cmdFail.push(fail);
        this.cmdWrite.push(isWrite);
    }

    private async write(keys: string[], value: string, fn: (v: string) => Promise<unknown>): Promise<void> {
        const r = await this.timed(true, () => fn(value));
        for (const k of keys) {
            if (r.ok) {
                this.possible.set(k, [value]);
                this.acked.add(k);
            } else this.possible.set(k, [...(this.possible.get(k) ?? [null]), value]);
        }
    }

    private async read(keys: string[], fn: () => Promise<Value[]>): Promise<void> {
        const r = await this.timed(false, fn);
        if (!r.ok) return;
        keys.forEach((k, j) => {
            const allowed = this.possible.get(k) ?? [null];
            if (!allowed.includes(r.value[j])) {
                const at = performance.now();
                this.wrongReadAt.push(at);
                this.messages.push({ at, text: `wrong read: ${k}=${r.value[j]}, expected one of ${JSON.stringify(allowed)}` });
            }
        });
    }
}
