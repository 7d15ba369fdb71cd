/**
 * A GCE metadata server on loopback, so that Google's Application Default Credentials take the
 * path they take on a VM: no key file, no gcloud login, the token of the instance's service
 * account from `http://$GCE_METADATA_HOST/computeMetadata/v1/instance/service-accounts/default/token`.
 * Google's Go libraries (rclone's gcs backend) believe they run on GCE when GCE_METADATA_HOST is
 * set, and fetch the token there with the `Metadata-Flavor: Google` header (refused without it,
 * like the real server).
 *
 * What differs from a real VM: the token is a random string that the GCS emulator
 * (fake-gcs-server) does not check, so the identity's IAM roles are not enforced here. The server
 * counts token requests (GET /__redisforge/stats) so a test can prove ADC went through it.
 *
 * It runs as its own small node process (stopped by its PID), so a caller that blocks its event
 * loop (spawnSync of rclone) still gets its token answered.
 *
 * Usage: `const md = await GceMetadataServer.start(); env.GCE_METADATA_HOST = md.hostPort; ... await md.stop();`
 */
import { ChildProcess, spawn } from "child_process";
import { randomBytes } from "crypto";
import { httpCall } from "../providers/object-store/http";

/** The server, plain JavaScript for `node -e` (argv: host, token, service account, project). */
const SERVER_JS = `
const http = require("http");
const [host, token, sa, project] = process.argv.slice(1);
let tokenRequests = 0, refused = 0;
const server = http.createServer((req, res) => {
  const p = new URL(req.url || "/", "http://metadata").pathname.replace(/\\/+$/, "");
  const send = (status, body, type) => { res.writeHead(status, { "content-type": type || "application/text", "metadata-flavor": "Google" }); res.end(body); };
  if (p === "/__redisforge/stats") return send(200, JSON.stringify({ tokenRequests, refused }), "application/json");
  if (req.headers["metadata-flavor"] !== "Google") { refused++; return send(403, "Missing Metadata-Flavor:Google header."); }
  if (p === "/computeMetadata/v1/instance/service-accounts/default/token") { tokenRequests++; return send(200, JSON.stringify({ access_token: token, expires_in: 3599, token_type: "Bearer" }), "application/json"); }
  if (p === "/computeMetadata/v1/instance/service-accounts/default/email") return send(200, sa);
  if (p === "/computeMetadata/v1/project/project-id") return send(200, project);
  if (p === "/computeMetadata/v1" || p === "") return send(200, "instance/\\nproject/\\n");
  refused++; send(404, "not found");
});
server.listen(0, host, () => process.stdout.write(server.address().port + "\\n"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
`;

export class GceMetadataServer {
    private constructor(
        private readonly child: ChildProcess,
        readonly host: string,
        readonly port: number,
        readonly serviceAccount: string,
    ) {}

    /** host:port, the value of GCE_METADATA_HOST. */
    get hostPort(): string {
        return `${this.host}:${this.port}`;
    }

    get pid(): number | undefined {
        return this.child.pid;
    }

    /** Listens on host (default 127.0.0.1) and a free port; waits (bounded) for the port. */
    static start(opts: { host?: string; serviceAccount?: string; projectId?: string; timeoutMs?: number } = {}): Promise<GceMetadataServer> {
        const host = opts.host ?? "127.0.0.1";
        const sa = opts.serviceAccount ?? "redisforge-node@redisforge-lab.iam.gserviceaccount.com";
        const token = `ya29.redisforge-lab-${randomBytes(12).toString("hex")}`;
        const child = spawn(process.execPath, ["-e", SERVER_JS, host, token, sa, opts.projectId ?? "redisforge-lab"], { stdio: ["ignore", "pipe", "pipe"] });
        return new Promise((resolve, reject) => {
            let out = "";
            let err = "";
            const timer = setTimeout(() => {
                child.kill("SIGKILL");
                reject(new Error(`GCE metadata server did not listen within ${opts.timeoutMs ?? 20000} ms: ${err}`));
            }, opts.timeoutMs ?? 20000);
            child.stderr!.on("data", (d) => (err += d));
            child.stdout!.on("data", (d) => {
                out += d;
                const m = /^(\d+)\n/.exec(out);
                if (m) {
                    clearTimeout(timer);
                    resolve(new GceMetadataServer(child, host, Number(m[1]), sa));
                }
            });
            child.once("exit", (code) => {
                clearTimeout(timer);
                reject(new Error(`GCE metadata server exited (${code}): ${err}`));
            });
        });
    }

    /** Token requests answered and requests refused so far. */
    async stats(): Promise<{ tokenRequests: number; refused: number }> {
        return JSON.parse((await httpCall(new URL(`http://${this.hostPort}/__redisforge/stats`), "GET", {}, "", 5000)).body) as { tokenRequests: number; refused: number };
    }

    /** SIGTERM to the PID this object started; SIGKILL after a bounded wait. */
    async stop(timeoutMs = 5000): Promise<void> {
        if (!this.child.pid || this.child.exitCode !== null || this.child.signalCode !== null) return;
        const exited = new Promise<boolean>((r) => this.child.once("exit", () => r(true)));
        this.child.kill("SIGTERM");
        if (!(await Promise.race([exited, new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs))]))) this.child.kill("SIGKILL");
    }
}
