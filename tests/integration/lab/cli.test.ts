/**
 * `npm run lab -- up/status/down` as a newcomer runs it: the CLI is a child process, the cluster
 * it forms (with the cluster provider) is checked from the outside with real clients, and after
 * `down` no process it started is left and its directory is gone.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import Redis from "ioredis";
import * as os from "os";
import * as path from "path";
import { judge } from "../../../lab/cluster-view";
import { labObserver } from "../../../lab/form";
import { redisRuntime } from "../../../lab/redis-runtime";
import { Lab, pidAlive } from "../../../lab/lab";

const ROOT = path.resolve(__dirname, "../../..");
const TSX = path.join(ROOT, "node_modules/.bin/tsx");

function lab(args: string[], timeoutMs = 150000) {
    const r = spawnSync(TSX, ["lab/cli.ts", ...args], { cwd: ROOT, encoding: "utf8", timeout: timeoutMs });
    return { code: r.status, out: r.stdout ?? "", err: r.stderr ?? "", all: `${r.stdout}\n${r.stderr}` };
}

describe("npm run lab -- up/status/down", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "redisforge-lab-cli-"));
    let pids: number[] = [];

    afterAll(async () => {
        // Whatever happened above, stop what the CLI started (by the PIDs it recorded).
        if (fs.existsSync(path.join(dir, "lab.json"))) await Lab.load(dir).stop({ removeData: true });
        fs.rmSync(dir, { recursive: true, force: true });
    });

    test("rejects a shape that is not a cluster, before starting anything", () => {
        const r = lab(["up", "--nodes", "5", "--replicas", "1", "--dir", dir]);
        expect(r.code).toBe(64);
        expect(r.err).toMatch(/--nodes 5 is not a multiple of 1 \+ --replicas \(2\)/);
        const r2 = lab(["up", "--nodes", "4", "--replicas", "1", "--dir", dir]);
        expect(r2.code).toBe(64);
        expect(r2.err).toMatch(/needs at least 3/);
        const r3 = lab(["up", "--redis", "9.9", "--dir", dir]);
        expect(r3.code).toBe(64);
        expect(r3.err).toMatch(/--redis: unknown Redis runtime "9\.9"/);
        expect(fs.existsSync(path.join(dir, "lab.json"))).toBe(false);
    });

    test("up forms a healthy, zone-aware 3x1 TLS cluster and prints how to connect without printing passwords", async () => {
        const r = lab(["up", "--dir", dir]);
        expect({ code: r.code, all: r.all }).toEqual({ code: 0, all: expect.stringContaining("Cluster healthy") });
        expect(r.out).toContain("cluster provider");
        // The runtime of this pass (REDISFORGE_REDIS, inherited by the CLI) is the one that runs.
        expect(r.out).toContain(`TLS redis-server ${redisRuntime().version} nodes`);
        expect(r.out).toMatch(/redis-cli --tls --cacert \S+ca\.crt --cert \S+client\.crt --key \S+client\.key -c -h 127\.0\.0\.1 -p \d+ --user app --askpass/);
        const secrets = path.join(dir, "secrets.json");
        expect(r.out).toContain(path.relative(ROOT, secrets));
        expect(fs.statSync(secrets).mode & 0o777).toBe(0o600);
        const passwords = Object.values(JSON.parse(fs.readFileSync(secrets, "utf8"))) as string[];
        for (const pw of passwords) expect(r.all).not.toContain(pw);

        const l = Lab.load(dir);
        pids = l.nodes.map((n) => n.pid);
        expect(pids).toHaveLength(6);
        for (const pid of pids) expect(pidAlive(pid)).toBe(true);

        // Judged independently of the CLI's own output.
        const obs = labObserver(l);
        try {
            const reports = await obs.poll();
            expect(judge(reports, { masters: 3, replicas: 3 })).toEqual({ healthy: true, problems: [] });
            const zoneOf = new Map(l.nodes.map((n) => [`${n.host}:${n.port}`, n.zone]));
            const view = reports[0].nodes;
            const masters = view.filter((n) => n.role === "master");
            expect(new Set(masters.map((m) => zoneOf.get(m.address))).size).toBe(3);
            for (const rep of view.filter((n) => n.role === "replica")) {
                const master = view.find((m) => m.id === rep.masterId)!;
                expect(zoneOf.get(rep.address)).not.toBe(zoneOf.get(master.address));
            }
        } finally {
            obs.close();
        }

        // The app user the CLI tells newcomers to use can write and read through the cluster.
        const opts = l.clientOptions(0, "app");
        const cluster = new Redis.Cluster([{ host: opts.host, port: opts.port }], {
            redisOptions: { username: opts.username, password: opts.password, enableReadyCheck: false, tls: { ...opts.tls, checkServerIdentity: () => undefined } },
            slotsRefreshTimeout: 5000,
        });
        try {
            for (let i = 0; i < 50; i++) await cluster.set(`lab-cli:${i}`, String(i));
            for (let i = 0; i < 50; i++) expect(await cluster.get(`lab-cli:${i}`)).toBe(String(i));
        } finally {
            cluster.disconnect();
        }
    }, 180000);

    test("status prints the topology and exits 0 when healthy, 1 when a node is down", async () => {
        const ok = lab(["status", "--dir", dir]);
        expect(ok.code).toBe(0);
        expect(ok.out).toContain("cluster_state: ok");
        expect(ok.out).toContain("healthy: 3 masters, 3 replicas");
        expect(ok.out.match(/^ {2}master /gm)).toHaveLength(3);
        expect(ok.out.match(/^ {4}replica .* link up/gm)).toHaveLength(3);

        const l = Lab.load(dir);
        const replica = l.nodes.find((n) => ok.out.includes(`replica ${n.name} `))!;
        await l.killNode(replica.index);
        const bad = lab(["status", "--dir", dir]);
        expect(bad.code).toBe(1);
        expect(bad.out).toContain(`${replica.name} ${replica.host}:${replica.port} ${replica.zone}: NOT RUNNING`);
        expect(bad.out).toContain("NOT healthy");
    }, 60000);

    test("down stops every process it started and removes the lab", () => {
        const r = lab(["down", "--dir", dir]);
        expect(r.code).toBe(0);
        expect(r.out).toMatch(/Stopped 5 redis-server process\(es\)/);
        for (const pid of pids) expect(pidAlive(pid)).toBe(false);
        expect(fs.existsSync(dir)).toBe(false);
        const again = lab(["status", "--dir", dir]);
        expect(again.code).toBe(2);
    }, 60000);
});
