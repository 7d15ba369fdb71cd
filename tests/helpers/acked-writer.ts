/**
 * A cluster client for upgrade/failover tests: workers write unique keys and acknowledge each with
 * `WAIT 1` on the same master (the write reached a replica); `lost()` reads every acknowledged key
 * back. Counts what the client saw: unacknowledged writes, MOVED followed, errors by kind,
 * CLUSTERDOWN replies (also those ioredis retried internally).
 */
import type { ConnectionOptions } from "tls";
import { Cluster } from "ioredis";

/** Waits for `p` at most `ms` (and leaves no timer behind). */
async function within<T>(p: Promise<T>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
}

/** A cluster client (TLS, an ACL user) that writes unique keys and acknowledges each with WAIT 1 on the same node. */
let writers = 0;

export class AckedWriter {
    readonly acked = new Map<string, string>();
    /** Key prefix of this writer: two writers of one test never write the same key (a lost write then reads back as missing, not as an older writer's value). */
    private readonly tag = `upg${writers++}`;
    issued = 0;
    unacked = 0;
    /** MOVED/ASK replies to a pipeline, followed by re-sending it. */
    redirects = 0;
    errors: Record<string, number> = {};
    clusterDownSeen = 0;
    /** Connection errors ioredis reported on a node connection (it reconnects by itself). */
    nodeErrors = 0;
    private stopping = false;
    private loops: Promise<void>[] = [];
    private readonly cluster: Cluster;

    constructor(seeds: { host: string; port: number }[], auth: { username: string; password: string; tls: ConnectionOptions }, private readonly workers = 4) {
        this.cluster = new Cluster(seeds, {
            lazyConnect: true,
            slotsRefreshTimeout: 5000,
            clusterRetryStrategy: (times) => (times > 20 ? null : 200),
            // The app user may not run INFO (the ready check): skip it.
            redisOptions: { username: auth.username, password: auth.password, tls: auth.tls, connectTimeout: 5000, commandTimeout: 8000, enableReadyCheck: false },
        });
        this.cluster.on("error", () => undefined);
        this.cluster.on("node error", () => void this.nodeErrors++);
        // Redirections and CLUSTERDOWN replies are retried inside ioredis; count what it saw.
        const original = this.cluster.handleError.bind(this.cluster);
        this.cluster.handleError = (error, ttl, handlers) => {
            if (/CLUSTERDOWN/.test(error.message)) this.clusterDownSeen++;
            original(error, ttl, handlers);
        };
    }

    async start(): Promise<void> {
        await this.cluster.connect();
        this.loops = Array.from({ length: this.workers }, (_, w) => this.loop(w));
    }

    private async loop(w: number): Promise<void> {
        for (let seq = 0; !this.stopping; seq++) {
            const key = `${this.tag}:{w${w}s${seq % 997}}:${seq}`;
            const value = `${w}:${seq}:${Date.now()}`;
            this.issued++;
            try {
                // One pipeline = one node: WAIT runs on the master that took the SET. ioredis does
                // not re-send a pipeline whose other command succeeded, so a MOVED (the slot's
                // master changed in a failover) is followed here, as an application would.
                let replicas = 0;
                for (let attempt = 0; ; attempt++) {
                    const res = await this.cluster.pipeline().set(key, value).call("WAIT", "1", "2000").exec();
                    const [setErr] = res![0];
                    const [waitErr, n] = res![1];
                    if (setErr && /^MOVED|^ASK/.test(setErr.message) && attempt < 5) {
                        this.redirects++;
                        await within(new Promise<void>((r) => this.cluster.refreshSlotsCache(() => r())), 2000);
                        continue;
                    }
                    if (setErr || waitErr) throw setErr ?? waitErr;
                    replicas = Number(n);
                    break;
                }
                if (replicas >= 1) this.acked.set(key, value);
                else this.unacked++;
            } catch (e) {
                const m = (e as Error).message;
                const kind = /CLUSTERDOWN/.test(m) ? "CLUSTERDOWN" : m.split(/[ :]/)[0] || "error";
                this.errors[kind] = (this.errors[kind] ?? 0) + 1;
                if (kind === "CLUSTERDOWN") this.clusterDownSeen++;
                await new Promise((r) => setTimeout(r, 50));
            }
        }
    }

    async stop(): Promise<void> {
        this.stopping = true;
        await within(Promise.all(this.loops), 30000);
    }

    /** Reads back every acknowledged key; returns those missing or different. */
    async lost(): Promise<string[]> {
        const keys = [...this.acked.keys()];
        const bad: string[] = [];
        for (let i = 0; i < keys.length; i += 500) {
            const chunk = keys.slice(i, i + 500);
            const vals = await Promise.all(chunk.map((k) => this.cluster.get(k)));
            chunk.forEach((k, j) => {
                if (vals[j] !== this.acked.get(k)) bad.push(`${k}=${vals[j]} (acked ${this.acked.get(k)})`);
            });
        }
        return bad;
    }

    close(): void {
        // ioredis 5.9.2 re-arms its slotsRefreshInterval timer from the callback of a refresh that
        // was in flight when disconnect() cleared it, and a disconnected cluster's refresh calls
        // back at once: the timer then runs every interval forever and keeps the test process
        // alive (seen: jest idle 10+ min after its run with one such Timeout). A refresh after
        // close does nothing and never calls back, so the chain ends.
        const c = this.cluster as unknown as { refreshSlotsCache: (cb?: () => void) => void; clearNodesRefreshInterval?: () => void };
        this.cluster.disconnect();
        c.refreshSlotsCache = () => undefined;
        c.clearNodesRefreshInterval?.();
    }
}

