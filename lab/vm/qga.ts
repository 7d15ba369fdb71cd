/**
 * A client of the QEMU guest agent (qemu-guest-agent in the image, on the virtio-serial port
 * org.qemu.guest_agent.0 that lab/vm/qemu.ts exposes as a unix socket): run a command inside a VM
 * and read its output WITHOUT ssh, keys or a network path. Tests and the adapter use it to read
 * cloud-init's status, sysctl values, `docker inspect`, ...
 *
 * Protocol: one JSON object per line. Every call opens the socket, synchronises with
 * `guest-sync` (a random id; replies to requests a previous connection left behind are skipped),
 * sends one command and reads its reply. Every call is bounded by a timeout.
 */
import { createConnection } from "net";
import { sleep } from "./exec";

export class GuestAgentError extends Error {}

/** One QGA request/reply on a fresh connection. */
export function qgaCall(socketPath: string, command: string, args?: object, timeoutMs = 10000): Promise<unknown> {
    return new Promise((resolve, reject) => {
        const id = Math.floor(Math.random() * 2 ** 31);
        const sock = createConnection(socketPath);
        let buf = "";
        let synced = false;
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new GuestAgentError(`guest agent ${socketPath}: ${command} got no reply within ${timeoutMs} ms (is the VM up and qemu-guest-agent running?)`));
        }, timeoutMs);
        const done = (err: Error | null, v?: unknown) => {
            clearTimeout(timer);
            sock.destroy();
            if (err) reject(err);
            else resolve(v);
        };
        sock.on("error", (e) => done(new GuestAgentError(`guest agent ${socketPath}: ${e.message}`)));
        sock.on("connect", () => sock.write(`${JSON.stringify({ execute: "guest-sync", arguments: { id } })}\n`));
        sock.on("data", (d) => {
            buf += d.toString();
            let nl: number;
            while ((nl = buf.indexOf("\n")) >= 0) {
                const line = buf.slice(0, nl).trim();
                buf = buf.slice(nl + 1);
                if (!line) continue;
                let msg: { return?: unknown; error?: { class?: string; desc?: string } };
                try {
                    msg = JSON.parse(line.replace(/^\xff/, ""));
                } catch {
                    continue;
                }
                if (!synced) {
                    if (msg.return === id) {
                        synced = true;
                        sock.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
                    }
                    continue;
                }
                if (msg.error) return done(new GuestAgentError(`guest agent: ${command}: ${msg.error.class}: ${msg.error.desc}`));
                return done(null, msg.return);
            }
        });
    });
}

export interface ExecResult {
    exitCode: number;
    stdout: string;
    stderr: string;
}

/**
 * Runs `path args...` in the guest (as root, no shell unless you pass /bin/sh -c) and waits for it
 * (bounded by timeoutMs), with `input` on its stdin. Returns exit code and output (the agent caps
 * captured output at ~16 MB).
 */
export async function guestExec(socketPath: string, path: string, args: string[] = [], timeoutMs = 60000, input?: string): Promise<ExecResult> {
    const deadline = Date.now() + timeoutMs;
    // `input`: the process's stdin (e.g. a password a test hands to a guest command: never an argument).
    const stdin = input === undefined ? {} : { "input-data": Buffer.from(input).toString("base64") };
    const started = (await qgaCall(socketPath, "guest-exec", { path, arg: args, "capture-output": true, ...stdin }, Math.min(15000, timeoutMs))) as { pid: number };
    for (let i = 0; Date.now() < deadline && i < 100000; i++) {
        const st = (await qgaCall(socketPath, "guest-exec-status", { pid: started.pid }, 15000)) as {
            exited: boolean;
            exitcode?: number;
            signal?: number;
            "out-data"?: string;
            "err-data"?: string;
        };
        if (st.exited) {
            return {
                exitCode: st.exitcode ?? 128 + (st.signal ?? 0),
                stdout: Buffer.from(st["out-data"] ?? "", "base64").toString(),
                stderr: Buffer.from(st["err-data"] ?? "", "base64").toString(),
            };
        }
        await sleep(Math.min(1000, 100 * (i + 1)));
    }
    throw new GuestAgentError(`guest exec ${path} ${args.join(" ")} did not finish within ${timeoutMs} ms`);
}

/**
 * Reads a file in the guest through the agent's file calls (no process started in the guest: under
 * emulation a fork+exec costs ~40 ms of a core alone, several times that on a busy host). Returns
 * undefined when the file does not exist; throws on any other error. Reads at most maxBytes.
 */
export async function guestReadFile(socketPath: string, path: string, timeoutMs = 20000, maxBytes = 4 * 1024 * 1024): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(1000, deadline - Date.now());
    let handle: number;
    try {
        handle = (await qgaCall(socketPath, "guest-file-open", { path, mode: "r" }, left())) as number;
    } catch (e) {
        if (/No such file or directory/i.test((e as Error).message)) return undefined;
        throw e;
    }
    const chunks: Buffer[] = [];
    try {
        let size = 0;
        for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
            const r = (await qgaCall(socketPath, "guest-file-read", { handle, count: 65536 }, left())) as { count: number; "buf-b64": string; eof: boolean };
            const b = Buffer.from(r["buf-b64"] ?? "", "base64");
            chunks.push(b);
            size += b.length;
            if (size > maxBytes) throw new GuestAgentError(`guest file ${path} is larger than ${maxBytes} bytes`);
            if (r.eof || r.count === 0) return Buffer.concat(chunks).toString();
        }
        throw new GuestAgentError(`guest file ${path}: not read to its end within ${timeoutMs} ms`);
    } finally {
        await qgaCall(socketPath, "guest-file-close", { handle }, 5000).catch(() => undefined);
    }
}

/** guestExec of `/bin/sh -c script` (`input` on its stdin); throws (with stderr) unless it exits 0. Returns stdout. */
export async function guestSh(socketPath: string, script: string, timeoutMs = 60000, input?: string): Promise<string> {
    const r = await guestExec(socketPath, "/bin/sh", ["-c", script], timeoutMs, input);
    if (r.exitCode !== 0) throw new GuestAgentError(`guest: sh -c '${script}' exited ${r.exitCode}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
}

/** Waits (bounded) until the guest agent answers guest-ping; gives up early when stillRunning() turns false (QEMU exited). */
export async function waitForAgent(socketPath: string, timeoutMs: number, stillRunning: () => boolean = () => true): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (let i = 0; Date.now() < deadline && i < 10000; i++) {
        if (!stillRunning()) throw new GuestAgentError(`guest agent ${socketPath}: the VM stopped before its agent answered`);
        try {
            await qgaCall(socketPath, "guest-ping", undefined, Math.max(1000, Math.min(5000, deadline - Date.now())));
            return;
        } catch (e) {
            last = (e as Error).message;
        }
        await sleep(2000);
    }
    throw new GuestAgentError(`guest agent ${socketPath} did not answer within ${timeoutMs} ms: ${last}`);
}
