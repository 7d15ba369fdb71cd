/** Connections: one ioredis client per address (TLS + ACL), bounded, closed in `finally` by the caller. */
import type { Redis as RedisClient, RedisOptions } from "ioredis";
import * as tls from "tls";
import { ClusterCredentials, nodeAddress } from "../types";
import { ClusterExecError, EXECUTOR_DEFAULTS, ExecutorOptions } from "./options";

export interface Target {
    host: string;
    port: number;
    /** Name used in messages: spec id + address. */
    label: string;
}

/** Opens and remembers one client per address; closeAll() in `finally`. */
export class Pool {
    declare private clients: Map<string, RedisClient>;
    declare private creds: ClusterCredentials;
    declare private opts: ExecutorOptions;
    constructor(creds: ClusterCredentials, opts: ExecutorOptions) {
        this.clients = new Map();
        this.creds = creds;
        this.opts = opts;
    }

    async get(t: Target): Promise<RedisClient> {
        const addr = nodeAddress(t);
        const existing = this.clients.get(addr);
        if (existing && existing.status === "ready") return existing;
        if (existing) existing.disconnect();
        // Required here, not at module top: serializeFunction captures this module's functions.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const Redis = require("ioredis");
        const options: RedisOptions = {
            host: t.host,
            port: t.port,
            username: this.creds.username,
            password: this.creds.password,
            tls: {
                ca: this.creds.tls.ca,
                cert: this.creds.tls.cert,
                key: this.creds.tls.key,
                servername: this.creds.tls.servername,
                rejectUnauthorized: true,
            },
            lazyConnect: true,
            connectTimeout: this.opts.connectTimeoutMs ?? EXECUTOR_DEFAULTS.connectTimeoutMs,
            maxRetriesPerRequest: 0,
            retryStrategy: () => null,
            enableOfflineQueue: false,
            enableReadyCheck: true, // connect() resolves only after AUTH and INFO succeeded
            commandTimeout: Math.max(30000, (this.opts.migrateTimeoutMs ?? EXECUTOR_DEFAULTS.migrateTimeoutMs) * 3),
        };
        const client: RedisClient = new Redis(options);
        // ioredis rejects connect() with a bare "Connection is closed." on TLS/auth failures; the
        // cause arrives as an 'error' event, so keep the last one for the message.
        let lastError: Error | undefined;
        client.on("error", (e: Error) => (lastError = e));
        this.clients.set(addr, client);
        try {
            await client.connect();
        } catch (e) {
            this.clients.delete(addr);
            client.disconnect();
            const cause = lastError && /Connection is closed/.test((e as Error)?.message ?? "") ? lastError : e;
            throw ClusterExecError(`${t.label}: cannot connect as ACL user "${this.creds.username}": ${explainConnectError(cause, this.connectTimeoutMs())}`, addr, "connect");
        }
        return client;
    }

    username(): string {
        return this.creds.username;
    }

    connectTimeoutMs(): number {
        return this.opts.connectTimeoutMs ?? EXECUTOR_DEFAULTS.connectTimeoutMs;
    }

    /** Forgets (and disconnects) the client of one address, e.g. after it stopped answering. */
    drop(t: Target): void {
        const addr = nodeAddress(t);
        const c = this.clients.get(addr);
        this.clients.delete(addr);
        c?.disconnect();
    }

    async closeAll(): Promise<void> {
        const all = [...this.clients.values()];
        this.clients.clear();
        await Promise.all(
            all.map(async (c) => {
                let timer: NodeJS.Timeout | undefined;
                try {
                    await Promise.race([c.quit(), new Promise((r) => (timer = setTimeout(r, 1000)))]);
                } catch {
                    /* already gone */
                } finally {
                    clearTimeout(timer);
                }
                c.disconnect();
            }),
        );
    }
}

/** The cause of a failed connection in words an operator acts on; `boundMs` names the connection bound a timeout hit. */
export function explainConnectError(e: unknown, boundMs?: number): string {
    const msg = (e as Error)?.message ?? String(e);
    if (/WRONGPASS|NOAUTH|invalid username-password/i.test(msg)) return `${msg} (wrong admin password or user; check the admin credentials)`;
    if (/certificate|self.signed|unable to verify|SSL|TLS|alert/i.test(msg)) return `TLS handshake failed: ${msg} (check the CA certificate and the client certificate/key)`;
    if (/ECONNREFUSED/.test(msg)) return `${msg} (nothing listens on that port: is redis-server running there?)`;
    if (/ETIMEDOUT|timeout/i.test(msg)) return `${msg}${boundMs ? ` after ${boundMs} ms` : ""} (no answer: firewall or wrong address?)`;
    return msg;
}

/** Rejects after `ms` (and clears its timer when `p` settles first). */
export async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
        return await Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]);
    } finally {
        clearTimeout(timer);
    }
}
