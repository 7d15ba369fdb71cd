/**
 * One bounded ioredis connection to one node, as a given ACL user over TLS with the stack's CA
 * and client certificate. Used by `check` and the CLI's migration watcher; the cluster logic
 * itself stays in providers/redis-cluster.
 */
import Redis from "ioredis";

export interface NodeCreds {
    username: string;
    password: string;
    ca: string;
    cert?: string;
    key?: string;
}

/** Connects (AUTH included) within `timeoutMs`, or throws naming the node and the cause. */
export async function connectNode(host: string, port: number, creds: NodeCreds, timeoutMs = 3000): Promise<Redis> {
    let lastError: Error | undefined;
    const c = new Redis({
        host,
        port,
        username: creds.username,
        password: creds.password,
        tls: { ca: creds.ca, cert: creds.cert, key: creds.key, rejectUnauthorized: true },
        lazyConnect: true,
        connectTimeout: timeoutMs,
        commandTimeout: Math.max(timeoutMs, 5000),
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        enableOfflineQueue: false,
        // The app user may not run INFO (the ready check's command).
        enableReadyCheck: false,
    });
    c.on("error", (e: Error) => (lastError = e));
    let timer: NodeJS.Timeout | undefined;
    try {
        await Promise.race([
            c.connect(),
            new Promise((_, rej) => {
                timer = setTimeout(() => rej(new Error(`no answer within ${timeoutMs} ms (process stopped or overloaded?)`)), timeoutMs);
            }),
        ]);
        return c;
    } catch (e) {
        c.disconnect();
        const cause = lastError && /Connection is closed|no answer/.test(String((e as Error).message)) ? lastError : (e as Error);
        throw new Error(`${host}:${port} as ${creds.username}: ${cause.message}`);
    } finally {
        clearTimeout(timer);
    }
}

/** Runs `fn` on a fresh connection and closes it whatever happens. */
export async function withNode<T>(host: string, port: number, creds: NodeCreds, fn: (c: Redis) => Promise<T>, timeoutMs = 3000): Promise<T> {
    const c = await connectNode(host, port, creds, timeoutMs);
    try {
        return await fn(c);
    } finally {
        c.disconnect();
    }
}
