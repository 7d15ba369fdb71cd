/**
 * Azurite (the Azure Storage emulator, npm `azurite`) blob service on 127.0.0.1 for tests, and the
 * rclone environment that points the rendered `redisforge-backup` remote at it.
 *
 * The rendered rclone.conf (templates/backup buildRcloneConfig, azure) says `use_msi = true`; the
 * test overrides only the authentication through rclone's per-remote environment variables
 * (RCLONE_CONFIG_<REMOTE>_<OPTION> win over the file): `use_emulator` with Azurite's documented
 * development account/key (public test data, never in templates) and the emulator endpoint.
 * rclone 1.60 needs `endpoint` as a full URL when `use_emulator` is set (its built-in default is
 * the production suffix), which also lets the emulator listen on any free port.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";

/** Azurite's well-known development storage account and key (documented by Microsoft; public). */
export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const AZURITE_BIN = path.resolve(__dirname, "../../../node_modules/.bin/azurite-blob");

export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.on("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const port = (srv.address() as net.AddressInfo).port;
            srv.close(() => resolve(port));
        });
    });
}

function canConnect(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const s = net.connect({ host: "127.0.0.1", port });
        s.once("connect", () => {
            s.destroy();
            resolve(true);
        });
        s.once("error", () => resolve(false));
    });
}

export class Azurite {
    private constructor(
        readonly port: number,
        private readonly child: ChildProcess,
        readonly logFile: string,
    ) {}

    /** Starts the blob service with its data under `dir`; waits (bounded) until it accepts connections. */
    static async start(dir: string, timeoutMs = 20000): Promise<Azurite> {
        fs.mkdirSync(dir, { recursive: true });
        const port = await freePort();
        const logFile = path.join(dir, "azurite.log");
        const fd = fs.openSync(logFile, "a");
        const child = spawn(
            AZURITE_BIN,
            ["--blobHost", "127.0.0.1", "--blobPort", String(port), "--location", dir, "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"],
            { stdio: ["ignore", fd, fd], detached: true },
        );
        fs.closeSync(fd);
        const az = new Azurite(port, child, logFile);
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
            if (child.exitCode !== null) break;
            if (await canConnect(port)) return az;
            await new Promise((r) => setTimeout(r, 200));
        }
        await az.stop();
        throw new Error(`Azurite did not listen on 127.0.0.1:${port} within ${timeoutMs} ms: ${fs.readFileSync(logFile, "utf8").slice(-2000)}`);
    }

    get pid(): number | undefined {
        return this.child.pid;
    }

    /** Environment that makes rclone's `remote` talk to this emulator with the development key. */
    rcloneEnv(remote: string): Record<string, string> {
        if (!/^[a-z0-9_]+$/.test(remote)) throw new Error(`remote name ${remote}: use [a-z0-9_] so RCLONE_CONFIG_<REMOTE>_* is a valid environment name`);
        const p = `RCLONE_CONFIG_${remote.toUpperCase()}_`;
        return {
            [`${p}USE_MSI`]: "false",
            [`${p}USE_EMULATOR`]: "true",
            [`${p}ACCOUNT`]: AZURITE_ACCOUNT,
            [`${p}KEY`]: AZURITE_KEY,
            [`${p}ENDPOINT`]: `http://127.0.0.1:${this.port}/${AZURITE_ACCOUNT}`,
        };
    }

    /** Stops the process this object started (by its PID): SIGTERM, then SIGKILL after a bounded wait. */
    async stop(timeoutMs = 5000): Promise<void> {
        const pid = this.child.pid;
        if (!pid || this.child.exitCode !== null || this.child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
        process.kill(pid, "SIGTERM");
        const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs));
        if ((await Promise.race([exited.then(() => true), timer])) === false && this.child.exitCode === null) {
            process.kill(pid, "SIGKILL");
            await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
        }
    }
}

/** Runs rclone synchronously with `env` added; returns code and output. */
export function rclone(args: string[], env: Record<string, string>, input?: Buffer): { code: number | null; out: string; stdout: Buffer } {
    const r = spawnSync("rclone", ["--retries", "1", "--low-level-retries", "2", ...args], {
        env: { ...process.env, ...env },
        input,
        timeout: 60000,
    });
    if (r.error) throw new Error(`rclone ${args.join(" ")}: ${r.error.message}`);
    return { code: r.status, out: `${r.stdout?.toString() ?? ""}${r.stderr?.toString() ?? ""}`, stdout: r.stdout ?? Buffer.alloc(0) };
}
