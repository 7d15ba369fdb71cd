/**
 * One bounded TCP probe, shared by the local stack's process resources and the rolling-restart
 * hook. `net` is required inside the function: these run inside dynamic providers that the engine
 * serialises (pulumi.runtime.serializeFunction) and captures no module-level state.
 */

/** True if something accepts TCP connections on host:port within 1 s. */
export function tcpAccepts(host: string, port: number): Promise<boolean> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const net = require("net") as typeof import("net");
    return new Promise<boolean>((resolve) => {
        const s = net.connect({ host, port });
        s.setTimeout(1000);
        s.once("connect", () => {
            s.destroy();
            resolve(true);
        });
        s.once("error", () => resolve(false));
        s.once("timeout", () => {
            s.destroy();
            resolve(false);
        });
    });
}
