/**
 * Latency between zones without netem (this kernel has none): a userspace TCP proxy that holds
 * every chunk for a fixed delay in each direction, run inside a zone's network namespace behind an
 * nftables `redirect` of the traffic that comes from the other zones (lab/netns.ts `delayFromOtherZones`).
 * A connection from zone A to a node in zone B is accepted by B's proxy and forwarded to the node;
 * A→B bytes wait `delayMs`, B→A bytes wait `delayMs`: the round trip grows by 2 × delayMs, as with
 * netem delay on both zones' egress. Order is kept (timers of equal delay fire in insertion order).
 *
 * Run as a process: `ip netns exec <ns> node --import tsx lab/delay-proxy.ts '<json>'` with
 * `{ "host": "10.250.N.10", "delayMs": 100, "maps": [{ "listen": 27100, "upstream": 7100 }] }`;
 * prints `ready` once every listener is bound, runs until SIGTERM/SIGKILL. `startDelayProxy` does
 * that and returns the PID-owning handle.
 */
import { spawn } from "child_process";
import * as net from "net";
import * as path from "path";

export interface DelayProxyConfig {
    /** Address the listeners bind and the upstreams live on (the zone's address). */
    host: string;
    delayMs: number;
    maps: { listen: number; upstream: number }[];
}

function pipeDelayed(from: net.Socket, to: net.Socket, delayMs: number): void {
    from.on("data", (chunk) => setTimeout(() => to.writable && to.write(chunk), delayMs));
    from.on("end", () => setTimeout(() => to.end(), delayMs));
}

/** Binds every listener; resolves when all are listening. */
export function serve(cfg: DelayProxyConfig): Promise<net.Server[]> {
    return Promise.all(
        cfg.maps.map(
            (m) =>
                new Promise<net.Server>((resolve, reject) => {
                    const server = net.createServer((client) => {
                        const upstream = net.connect({ host: cfg.host, port: m.upstream });
                        const close = () => {
                            client.destroy();
                            upstream.destroy();
                        };
                        client.on("error", close);
                        upstream.on("error", close);
                        client.on("close", () => setTimeout(() => upstream.destroy(), cfg.delayMs));
                        upstream.on("close", () => setTimeout(() => client.destroy(), cfg.delayMs));
                        pipeDelayed(client, upstream, cfg.delayMs);
                        pipeDelayed(upstream, client, cfg.delayMs);
                    });
                    server.once("error", reject);
                    server.listen(m.listen, cfg.host, () => resolve(server));
                }),
        ),
    );
}

export interface DelayProxyHandle {
    pid: number;
    stop(): Promise<void>;
}

/** Starts the proxy in namespace `ns` (bounded wait for `ready`); stop() SIGKILLs exactly that PID. */
export function startDelayProxy(ns: string, cfg: DelayProxyConfig, timeoutMs = 20000): Promise<DelayProxyHandle> {
    const root = path.resolve(__dirname, "..");
    const p = spawn("ip", ["netns", "exec", ns, process.execPath, "--import", "tsx", path.join(__dirname, "delay-proxy.ts"), JSON.stringify(cfg)], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    const handle: DelayProxyHandle = {
        pid: p.pid!,
        stop: async () => {
            if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
            await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        },
    };
    return new Promise((resolve, reject) => {
        let out = "";
        const timer = setTimeout(() => {
            void handle.stop();
            reject(new Error(`delay proxy in ${ns} not ready within ${timeoutMs} ms: ${out.trim()}`));
        }, timeoutMs);
        const onData = (d: Buffer) => {
            out += d;
            if (/^ready$/m.test(out)) {
                clearTimeout(timer);
                resolve(handle);
            }
        };
        p.stdout.on("data", onData);
        p.stderr.on("data", (d) => (out += d));
        p.once("exit", (code, sig) => {
            clearTimeout(timer);
            reject(new Error(`delay proxy in ${ns} exited (${sig ?? code}) before it was ready: ${out.trim()}`));
        });
    });
}

if (require.main === module) {
    const cfg = JSON.parse(process.argv[2]) as DelayProxyConfig;
    serve(cfg).then(
        () => process.stdout.write("ready\n"),
        (e) => {
            process.stderr.write(`delay proxy: ${(e as Error).message}\n`);
            process.exit(1);
        },
    );
}
