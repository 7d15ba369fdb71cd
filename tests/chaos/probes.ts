/** Measurements the chaos suite takes of nodes, zones and data directories. */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { redisRuntime } from "../../lab/redis-runtime";
import { ChaosCluster } from "./harness";

/** Probes over the suite's cluster (`cluster()` is read when one runs). */
export function zoneProbes(cluster: () => ChaosCluster) {
    /**
     * Median round trip (ms) of PING from inside zone `z`'s namespace to lab node `i` over an open TLS
     * connection (handshake and AUTH excluded): what a replica or a bus link of that zone waits.
     */
    function zonePingMs(z: number, i: number): number {
        const n = cluster().lab.nodes[i];
        const script = `
    const tls = require("tls"), fs = require("fs");
    const s = tls.connect({ host: ${JSON.stringify(n.host)}, port: ${n.port}, ca: fs.readFileSync(${JSON.stringify(cluster().lab.tls.caFile)}), cert: fs.readFileSync(${JSON.stringify(cluster().lab.tls.clientCertFile)}), key: fs.readFileSync(${JSON.stringify(cluster().lab.tls.clientKeyFile)}), checkServerIdentity: () => undefined });
    const times = []; let buf = ""; let t = 0; let want = "+OK";
    const next = () => { if (times.length === 7) { times.sort((a, b) => a - b); process.stdout.write(String(times[3])); process.exit(0); } t = Date.now(); want = "+PONG"; s.write("PING\\r\\n"); };
    s.on("secureConnect", () => s.write("AUTH admin " + process.env.PW + "\\r\\n"));
    s.on("data", (d) => { buf += d; if (!buf.includes(want)) return; buf = ""; if (want === "+PONG") times.push(Date.now() - t); next(); });
    s.on("error", (e) => { process.stderr.write(e.message); process.exit(1); });
    setTimeout(() => { process.stderr.write("timeout"); process.exit(1); }, 30000);`;
        const out = execFileSync("ip", ["netns", "exec", cluster().net.ns(z), process.execPath, "-e", script], { env: { ...process.env, PW: cluster().lab.password("admin") }, timeout: 40000 });
        return Number(out.toString());
    }

    /** INFO persistence field of node i. */
    async function persistence(i: number, field: string): Promise<string> {
        return new RegExp(`${field}:(\\S+)`).exec(await cluster().lab.cli(i, ["INFO", "persistence"]))?.[1] ?? "";
    }
    return { zonePingMs, persistence };
}

/** redis-check-aof's verdict on a copy of an AOF directory (the live one is being written). */
export function checkAofCopy(aofDir: string): string {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "rf-aofcheck-"));
    try {
        fs.cpSync(aofDir, copy, { recursive: true });
        const manifest = fs.readdirSync(copy).find((f) => f.endsWith(".manifest"))!;
        const res = spawnSync(redisRuntime().checkAof, [path.join(copy, manifest)], { encoding: "utf8", timeout: 20000 });
        return res.status === 0 ? "valid" : `not valid (${/ok_up_to=\d+[^\n]*/.exec(res.stdout)?.[0] ?? res.stdout.trim().split("\n").pop()})`;
    } finally {
        fs.rmSync(copy, { recursive: true, force: true });
    }
}

/** Bytes free on the filesystem holding `dir`. */
export function freeBytes(dir: string): number {
    const st = fs.statfsSync(dir);
    return st.bavail * st.bsize;
}
