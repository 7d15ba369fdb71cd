/**
 * `@since 8.4` lines: dropped for Debian's redis-server 7.0, kept (marker stripped) for 8.4.
 * Proven on the real template text and on the real redis-server 7.0 config parser: the line an
 * 8.4 image would get makes 7.0 refuse to start, and the 7.0 rendering of the same text starts.
 */
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { gateForVersion, loadTemplate, parseVersion, render } from "../../../templates/render";
import { renderRedisConf } from "../../../templates/redis";
import { buildRedisNodeUserData } from "../../../templates/cloud-init";
import { redisServerVersion } from "../../../lab/lab";
import { redisNodeParams } from "./fixtures";
import { tmpDir } from "./tools";

const dir = tmpDir("since");
const started: ChildProcess[] = [];
afterAll(() => {
    for (const p of started) if (p.exitCode === null && p.signalCode === null && p.pid) process.kill(p.pid, "SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
});

/** A directive 7.0 does not know (added in Redis 8.0; any 8.x-only line serves), gated at 8.4 the way templates gate 8.4 features. */
const LINE_84 = "@since 8.4 cluster-slot-stats-enabled yes";

/**
 * Starts the real redis-server on `conf` (port 0, a unix socket only) and reports whether its config
 * parser accepted it: still running after 1.5 s = accepted (then killed by PID), exited = refused.
 */
async function redisAccepts(name: string, conf: string): Promise<{ accepted: boolean; output: string }> {
    const file = path.join(dir, `${name}.conf`);
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    // No TCP listener at all: only a unix socket in the test's own dir.
    fs.writeFileSync(file, `port 0\nunixsocket ${path.join(dir, name, "s.sock")}\ndaemonize no\nsave ""\nappendonly no\ndir ${path.join(dir, name)}\n${conf}\n`);
    const p = spawn("redis-server", [file], { stdio: ["ignore", "pipe", "pipe"] });
    started.push(p);
    let output = "";
    p.stdout!.on("data", (d) => (output += d));
    p.stderr!.on("data", (d) => (output += d));
    const exited = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 1500);
        p.on("exit", () => {
            clearTimeout(t);
            resolve(true);
        });
    });
    if (!exited) {
        process.kill(p.pid!, "SIGKILL");
        await new Promise((r) => p.on("exit", r));
    }
    return { accepted: !exited, output };
}

describe("@since gating", () => {
    const template = `${loadTemplate("redis/redis.conf.tmpl")}\n${LINE_84}\n`;

    it("drops @since 8.4 lines for 7.0.15 and keeps them, unmarked, for 8.4.0", () => {
        const for70 = gateForVersion(template, parseVersion("7.0.15"));
        const for84 = gateForVersion(template, parseVersion("8.4.0"));
        expect(for70).not.toContain("cluster-slot-stats-enabled");
        expect(for70).not.toMatch(/@since/);
        expect(for84.split("\n")).toContain("cluster-slot-stats-enabled yes");
        expect(for84).not.toMatch(/@since/);
        // Everything else is identical.
        expect(for84.split("\n").filter((l) => !l.startsWith("cluster-slot-stats"))).toEqual(for70.split("\n"));
    });

    it("the real redis-server 7.0 refuses the 8.4 line and starts with the 7.0 rendering", async () => {
        const version = redisServerVersion();
        expect(version).toMatch(/^7\./); // this proof needs a pre-8.4 server
        const text = `${render("tcp-backlog {{b}}", { b: 511 })}\n${LINE_84}`;
        const refused = await redisAccepts("for84", gateForVersion(text, parseVersion("8.4.0")));
        expect(refused.accepted).toBe(false);
        expect(refused.output).toMatch(/'cluster-slot-stats-enabled yes'\s+Bad directive or wrong number of arguments/);
        const ok = await redisAccepts("for70", gateForVersion(text, parseVersion(version)));
        expect(ok.output).not.toMatch(/Bad directive/);
        expect(ok.accepted).toBe(true);
    });

    it("rendered for 7.0, the shipped template and the user-data's redis.conf carry no @since marker", () => {
        // (That the full 7.0 rendering starts a real server is shown by the lab and redis-acl.test.ts.)
        const conf = renderRedisConf({
            nodeName: "n", zone: "z", bindAddress: "127.0.0.1", announceIp: "127.0.0.1", port: 6379, busPort: 16379,
            dataDir: dir, tlsCertFile: "/x.crt", tlsKeyFile: "/x.key", tlsCaFile: "/ca.crt", aclFile: "/a.acl",
            secretsFile: "/s.conf", maxmemoryBytes: 1 << 28, serverVersion: "7.0.15",
        });
        expect(conf).not.toMatch(/^@since/m);
        // The cloud-init builder gates on the image's version too.
        const ud = buildRedisNodeUserData({ ...redisNodeParams("aws"), redisVersion: "7.0.15" });
        expect(ud.write_files.find((w) => w.path.endsWith("redis.conf"))!.content).not.toMatch(/^@since/m);
    });
});
