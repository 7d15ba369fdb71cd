/**
 * The rendered redis.conf + users.acl (templates/redis, via the lab) on a real TLS redis-server:
 * each ACL user can do what it should and nothing more, `default` cannot authenticate, nothing
 * listens in plaintext, and a client without a certificate from the cluster CA is refused (mTLS).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import * as tls from "tls";
import Redis from "ioredis";
import { Lab } from "../../../lab/lab";
import { ensureLabTls } from "../../../lab/tls";
import { AclUser } from "../../../templates/redis";

jest.setTimeout(60000);

let lab: Lab;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redisforge-acl-"));
const clients: Redis[] = [];

function client(user: AclUser | null, override: Record<string, unknown> = {}): Redis {
    const base = lab.clientOptions(0, user ?? "admin");
    const opts = { ...base, ...override, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, connectTimeout: 5000 };
    if (user === null) {
        delete (opts as Record<string, unknown>).username;
        delete (opts as Record<string, unknown>).password;
    }
    const c = new Redis(opts as never);
    c.on("error", () => undefined); // failures are asserted on the command promises
    clients.push(c);
    return c;
}

/**
 * Sends inline commands over TLS (with the lab's client certificate, or `cert`) and returns one
 * reply per command, each flattened to one line. Bounded by a 5 s timeout.
 */
function resp(commands: string[], cert: { cert?: Buffer; key?: Buffer } | null = undefined as never): Promise<string[]> {
    const node = lab.nodes[0];
    const c = cert === undefined ? { cert: fs.readFileSync(lab.tls.clientCertFile), key: fs.readFileSync(lab.tls.clientKeyFile) } : cert ?? {};
    return new Promise((resolve, reject) => {
        let data = "";
        const s = tls.connect({ host: node.host, port: node.port, ca: fs.readFileSync(lab.tls.caFile), servername: "localhost", ...c }, () => s.write(commands.map((x) => `${x}\r\n`).join("")));
        const timer = setTimeout(() => done(new Error(`timeout; got ${JSON.stringify(data)}`)), 5000);
        const replies = () => {
            const out: string[] = [];
            const lines = data.split("\r\n");
            for (let i = 0; i < lines.length - 1; i++) {
                if (lines[i].startsWith("$") && lines[i] !== "$-1") out.push(`${lines[i]} ${lines[++i] ?? ""}`);
                else out.push(lines[i]);
            }
            return out;
        };
        const done = (err?: Error) => {
            clearTimeout(timer);
            s.destroy();
            const r = replies();
            if (err && r.length < commands.length) reject(err);
            else resolve(r);
        };
        s.on("data", (d) => {
            data += d.toString();
            if (replies().length >= commands.length) done();
        });
        s.on("error", (e) => done(e));
        s.on("close", () => done(new Error(`closed; got ${JSON.stringify(data)}`)));
    });
}

async function as(user: AclUser): Promise<Redis> {
    const c = client(user);
    await c.connect();
    return c;
}

beforeAll(async () => {
    lab = await Lab.start({ dir, count: 1 });
    // A single-node cluster owning every slot, so keyed commands are served.
    await lab.cli(0, ["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    const deadline = Date.now() + 20000;
    while (!/cluster_state:ok/.test(await lab.cli(0, ["CLUSTER", "INFO"]))) {
        if (Date.now() > deadline) throw new Error("single-node cluster did not reach cluster_state:ok in 20 s");
        await new Promise((r) => setTimeout(r, 100));
    }
}, 60000);

afterAll(async () => {
    await Promise.allSettled(clients.map((c) => (c.status === "ready" ? c.quit() : Promise.resolve(c.disconnect()))));
    if (lab) await lab.stop({ removeData: true });
    fs.rmSync(dir, { recursive: true, force: true });
});

describe("ACL users on a real redis-server", () => {
    it("admin can administer (positive control for the NOPERM checks)", async () => {
        const admin = await as("admin");
        expect(await admin.config("GET", "maxmemory-policy")).toEqual(["maxmemory-policy", "noeviction"]);
        expect(await admin.acl("WHOAMI")).toBe("admin");
    });

    it("app can GET/SET but gets NOPERM for FLUSHALL, CONFIG, KEYS, DEBUG, SHUTDOWN, ACL", async () => {
        const app = await as("app");
        expect(await app.set("acl:app", "v")).toBe("OK");
        expect(await app.get("acl:app")).toBe("v");
        expect(await app.del("acl:app")).toBe(1);
        await expect(app.flushall()).rejects.toThrow(/NOPERM/);
        await expect(app.config("GET", "maxmemory")).rejects.toThrow(/NOPERM/);
        await expect(app.config("SET", "maxmemory", "1")).rejects.toThrow(/NOPERM/);
        await expect(app.keys("*")).rejects.toThrow(/NOPERM/);
        // DEBUG is refused twice over: enable-debug-command (checked first) and the ACL.
        await expect(app.call("DEBUG", "SLEEP", "0")).rejects.toThrow(/NOPERM|DEBUG command not allowed/);
        await expect(app.call("SHUTDOWN", "NOSAVE")).rejects.toThrow(/NOPERM/);
        await expect(app.call("ACL", "LIST")).rejects.toThrow(/NOPERM/);
        expect(await lab.cli(0, ["PING"])).toMatch(/PONG/); // still alive after the SHUTDOWN attempt
    });

    it("app, Envoy's upstream user, can run CLUSTER SLOTS (envoy.clusters.redis discovers the topology with it)", async () => {
        const app = await as("app");
        const slots = (await app.call("CLUSTER", "SLOTS")) as unknown[][];
        expect(slots[0].slice(0, 2)).toEqual([0, 16383]);
        expect((slots[0][2] as unknown[])[1]).toBe(lab.nodes[0].port);
    });

    it("readonly can GET but not SET or DEL", async () => {
        const admin = await as("admin");
        await admin.set("acl:ro", "x");
        const ro = await as("readonly");
        expect(await ro.get("acl:ro")).toBe("x");
        await expect(ro.set("acl:ro", "y")).rejects.toThrow(/NOPERM/);
        await expect(ro.del("acl:ro")).rejects.toThrow(/NOPERM/);
        expect(await admin.get("acl:ro")).toBe("x");
    });

    it("replication cannot read or write data", async () => {
        const repl = await as("replication");
        expect(await repl.ping()).toBe("PONG");
        await expect(repl.get("acl:ro")).rejects.toThrow(/NOPERM/);
        await expect(repl.set("acl:repl", "x")).rejects.toThrow(/NOPERM/);
    });

    it("exporter can INFO but cannot GET, SET or CONFIG SET", async () => {
        const exp = await as("exporter");
        expect(await exp.info("server")).toMatch(/redis_version:/);
        await expect(exp.get("acl:ro")).rejects.toThrow(/NOPERM/);
        await expect(exp.set("acl:exp", "x")).rejects.toThrow(/NOPERM/);
        await expect(exp.config("SET", "maxmemory", "1")).rejects.toThrow(/NOPERM/);
    });

    it("the default user cannot authenticate, and an unauthenticated connection gets NOAUTH", async () => {
        const replies = await resp(["GET acl:ro", "AUTH default anything", 'AUTH default ""', "AUTH anything", "PING"]);
        expect(replies).toEqual([
            expect.stringMatching(/^-NOAUTH/),
            expect.stringMatching(/^-WRONGPASS/),
            expect.stringMatching(/^-WRONGPASS/),
            // The one-argument form means "the default user": refused (7.0 words it as ERR).
            expect.stringMatching(/^-(WRONGPASS|ERR AUTH <password> called without any password)/),
            expect.stringMatching(/^-NOAUTH/),
        ]);
        const acl = (await (await as("admin")).acl("GETUSER", "default")) as unknown[];
        expect(acl[acl.indexOf("flags") + 1]).toContain("off");
    });

    it("a wrong password for a real user is refused; the right one works", async () => {
        const pw = lab.password("app");
        const replies = await resp([`AUTH app ${pw}x`, "GET acl:ro", `AUTH app ${pw}`, "ACL WHOAMI"]);
        expect(replies).toEqual([expect.stringMatching(/^-WRONGPASS/), expect.stringMatching(/^-NOAUTH/), "+OK", "$3 app"]);
    });
});

describe("transport", () => {
    it("the plaintext port is off: port 0, and the server listens only on its TLS and bus ports", async () => {
        const admin = await as("admin");
        expect(await admin.config("GET", "port")).toEqual(["port", "0"]);
        const node = lab.nodes[0];
        const ss = execFileSync("ss", ["-Hltnp"]).toString();
        const ports = ss
            .split("\n")
            .filter((l) => l.includes(`pid=${node.pid},`))
            .map((l) => Number(/:(\d+)\s/.exec(l.split(/\s+/)[3] + " ")![1]));
        expect([...new Set(ports)].sort()).toEqual([node.port, node.busPort].sort());
    });

    it("a plaintext client on the TLS port gets no Redis reply", async () => {
        const node = lab.nodes[0];
        const reply = await new Promise<string>((resolve) => {
            let data = "";
            const s = net.connect(node.port, node.host, () => s.write("PING\r\n"));
            const timer = setTimeout(() => s.destroy(), 3000);
            s.on("data", (d) => (data += d.toString("latin1")));
            s.on("error", () => undefined);
            s.on("close", () => {
                clearTimeout(timer);
                resolve(data);
            });
        });
        expect(reply).not.toMatch(/PONG|NOAUTH|ERR/);
    });

    /** Opens TLS with the given client certificate and sends PING; resolves with what came back or the error. */
    function tlsPing(cert?: { cert: Buffer; key: Buffer }): Promise<string> {
        const node = lab.nodes[0];
        return new Promise((resolve) => {
            let data = "";
            let done = false;
            const finish = (v: string) => {
                if (!done) {
                    done = true;
                    clearTimeout(timer);
                    s.destroy();
                    resolve(v);
                }
            };
            const s = tls.connect({ host: node.host, port: node.port, ca: fs.readFileSync(lab.tls.caFile), servername: "localhost", ...(cert ?? {}) }, () => s.write("PING\r\n"));
            s.on("data", (d) => {
                data += d.toString();
                if (data.includes("\r\n")) finish(`reply:${data.trim()}`);
            });
            s.on("error", (e) => finish(`error:${e.message}`));
            s.on("close", () => finish(`closed:${data}`));
            const timer = setTimeout(() => finish(`timeout:${data}`), 5000);
        });
    }

    it("mTLS: the cluster CA's client certificate gets a Redis reply (NOAUTH), no certificate is refused", async () => {
        const withCert = await tlsPing({ cert: fs.readFileSync(lab.tls.clientCertFile), key: fs.readFileSync(lab.tls.clientKeyFile) });
        expect(withCert).toMatch(/^reply:-NOAUTH/);
        const without = await tlsPing();
        expect(without).toMatch(/^(error|closed):/);
        expect(without).not.toMatch(/NOAUTH|PONG/);
    });

    it("mTLS: a client certificate from another CA is refused", async () => {
        const foreign = ensureLabTls(path.join(dir, "foreign-ca"));
        const r = await tlsPing({ cert: fs.readFileSync(foreign.clientCertFile), key: fs.readFileSync(foreign.clientKeyFile) });
        expect(r).toMatch(/^(error|closed):/);
        expect(r).not.toMatch(/NOAUTH|PONG/);
        // The right password does not help without the certificate.
        await expect(resp([`AUTH app ${lab.password("app")}`, "GET acl:ro"], {})).rejects.toThrow(/closed|reset|alert|certificate|EPIPE/i);
    });
});
