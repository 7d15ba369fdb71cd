/**
 * Certificate rotation without a restart, on the real Pulumi engine: a throw-away `local` stack
 * (this pass's Redis: 7.0.15, or 8.6.3 with REDISFORGE_REDIS=8.6) is deployed with CA generation 1;
 * then, while a TLS cluster client that holds only the OLD CA and the OLD client certificate writes
 * and acknowledges every write with `WAIT 1`:
 *
 *   1. `redisforge:tlsCaGeneration 2` + `pulumi up` re-issues the CA (new key), every node
 *      certificate and the operator certificate (new keys). The nodes load them with CONFIG SET:
 *      same PIDs, replication links and cluster-bus links keep their connections (same CLIENT LIST
 *      age / CLUSTER LINKS create-time), every node presents a certificate of CA g2 with a new
 *      expiry, a client trusting only the old CA still verifies it (cross-signed chain), the old
 *      client certificate is still accepted (the bundle holds both CAs). The writer sees 0 errors
 *      and loses 0 acknowledged writes.
 *   2. `redisforge:tlsCaOverlap false` + `pulumi up` (after the overlap; a second writer with the
 *      NEW client files runs through it) drops the old CA: same PIDs again, the old client
 *      certificate is refused, the new one works, nodes present the leaf alone.
 *   3. A preview afterwards shows no change.
 *
 * Skipped (with a message) only when no `pulumi` binary exists.
 */
import * as fs from "fs";
import * as path from "path";
import Redis from "ioredis";
import { redisRuntime } from "../../lab/redis-runtime";
import { presentedCert, TlsMaterial } from "../../providers/local/tls-reload";
import { AckedWriter } from "../helpers/acked-writer";
import { must, PULUMI, ThrowAwayStack } from "./stack-harness";

const runtime = redisRuntime();

if (!PULUMI) {
    // eslint-disable-next-line no-console
    console.warn("tests/e2e/cert-rotation.test.ts SKIPPED: no pulumi binary (.tools/bin/pulumi or PATH); run `bash scripts/install-pulumi.sh`");
}
const maybe = PULUMI ? describe : describe.skip;

type Node = { name: string; host: string; port: number };

maybe(`certificate rotation on a local stack (Redis ${runtime.version})`, () => {
    const st = new ThrowAwayStack({ prefix: "e2ecert", portBase: 21000, config: { "redisforge:redisVersion": runtime.version.split(".").slice(0, 2).join(".") } });
    const figures: Record<string, unknown> = { redis: runtime.version };

    beforeAll(() => st.init());
    afterAll(async () => {
        await st.cleanup();
        // eslint-disable-next-line no-console
        console.log(`e2e certificate rotation figures: ${JSON.stringify(figures)}`);
    }, 240_000);

    const clientFiles = (dir: string): TlsMaterial => ({
        ca: fs.readFileSync(path.join(dir, "ca.crt"), "utf8"),
        cert: fs.readFileSync(path.join(dir, "client.crt"), "utf8"),
        key: fs.readFileSync(path.join(dir, "client.key"), "utf8"),
    });

    /** What one node shows: presented certificate, replica connections' ages, bus links' create times. */
    async function observe(nodes: Node[], m: TlsMaterial, adminPassword: string) {
        const out = new Map<string, { der: string; validTo: string; issuer: string; replicaAges: number[]; links: string[]; linkUp: boolean }>();
        for (const n of nodes) {
            const cert = await presentedCert(n.host, n.port, m);
            const c = new Redis({ host: n.host, port: n.port, username: "admin", password: adminPassword, tls: { ...m, servername: "localhost" }, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 5000 });
            c.on("error", () => undefined);
            try {
                await c.connect();
                const clients = String(await c.call("CLIENT", "LIST", "TYPE", "REPLICA"));
                const replicaAges = clients.split("\n").filter(Boolean).map((l) => Number(/ age=(\d+)/.exec(l)![1]));
                const links = (await c.call("CLUSTER", "LINKS")) as unknown[][];
                const linkIds = links.map((l) => {
                    const o: Record<string, unknown> = {};
                    for (let i = 0; i < l.length; i += 2) o[String(l[i])] = l[i + 1];
                    return `${o.direction}:${o.node}:${o["create-time"]}`;
                });
                const info = String(await c.call("INFO", "replication"));
                const linkUp = !/role:slave/.test(info) || /master_link_status:up/.test(info);
                out.set(n.name, { der: cert.der.toString("base64"), validTo: cert.validTo, issuer: cert.issuer, replicaAges, links: linkIds.sort(), linkUp });
            } finally {
                c.disconnect();
            }
        }
        return out;
    }

    async function handshakeFails(n: Node, m: TlsMaterial): Promise<boolean> {
        // The server refuses a client certificate after the handshake (TLS 1.3): a command shows it.
        const c = new Redis({ host: n.host, port: n.port, tls: { ...m, servername: "localhost" }, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000, commandTimeout: 5000 });
        c.on("error", () => undefined);
        try {
            await c.connect();
            await c.ping().catch((e: Error) => (/NOAUTH|WRONGPASS/.test(e.message) ? "refused-auth" : Promise.reject(e)));
            return false;
        } catch {
            return true;
        } finally {
            c.disconnect();
        }
    }

    test("tlsCaGeneration 2 under a writer with the old CA, then tlsCaOverlap false: no restart, no error, no lost write", async () => {
        const up1 = must(await st.pulumi(["up", "--yes", "--skip-preview"], 300_000), "pulumi up (generation 1)");
        figures.firstUpMs = up1.ms;
        const o = await st.outputs();
        expect(o.clusterState).toBe("ok");
        const nodes = o.nodes as Node[];
        const clientDir = o.clientDir as string;
        const adminPassword = o.adminPassword as string;
        const old = clientFiles(clientDir);
        const pids0 = st.redisNodes();
        expect(pids0.size).toBe(6);
        const before = await observe(nodes, old, adminPassword);
        for (const v of before.values()) expect(v.issuer).toMatch(/RedisForge CA$/);

        // ---- 1. rotate everything, CA included, while a client with the old CA and certificate writes
        const writer = new AckedWriter(nodes.map((n) => ({ host: n.host, port: n.port })), { username: "app", password: o.appPassword as string, tls: { ca: old.ca, cert: old.cert, key: old.key } });
        await writer.start();
        const t0 = Date.now();
        let rotate;
        try {
            await new Promise((r) => setTimeout(r, 2000));
            st.setConfig("redisforge:tlsCaGeneration", "2");
            rotate = await st.pulumi(["up", "--yes", "--skip-preview"], 300_000);
            await new Promise((r) => setTimeout(r, 2000));
        } finally {
            await writer.stop();
        }
        must(rotate, "pulumi up (tlsCaGeneration 2)");
        const rotationSec = (Date.now() - t0) / 1000;
        const lost = await writer.lost();
        writer.close();
        Object.assign(figures, {
            rotateUpMs: rotate.ms,
            writerSec: Math.round(rotationSec),
            acknowledged: writer.acked.size,
            unacknowledged: writer.unacked,
            errors: writer.errors,
            nodeErrors: writer.nodeErrors,
            redirects: writer.redirects,
            clusterDown: writer.clusterDownSeen,
            lost: lost.length,
        });
        expect(rotate.stdout).not.toMatch(/RedisProcess.*replaced/);
        const pids1 = st.redisNodes();
        for (const [name, n] of pids1) expect(n.pid).toBe(pids0.get(name)!.pid); // no restart

        const rotated = clientFiles(clientDir);
        expect(rotated.ca).not.toBe(old.ca);
        expect(rotated.ca.match(/BEGIN CERTIFICATE/g)).toHaveLength(2); // bundle: g2 + g1
        // A client that trusts only the OLD CA, with the OLD certificate: still served (cross chain + bundle).
        const after = await observe(nodes, old, adminPassword);
        // A client that trusts only the NEW CA (g2 alone), with the new certificate.
        const g2Only = { ...rotated, ca: rotated.ca.split(/(?<=-----END CERTIFICATE-----\n)/)[0] };
        const afterNew = await observe(nodes, g2Only, adminPassword);
        const expiries: Record<string, string> = {};
        for (const n of nodes) {
            const b = before.get(n.name)!;
            const a = after.get(n.name)!;
            expect(a.der).not.toBe(b.der); // a new certificate...
            expect(a.issuer).toMatch(/RedisForge CA g2$/); // ...from the new CA
            expect(afterNew.get(n.name)!.der).toBe(a.der);
            expect(a.linkUp).toBe(true);
            // Replication connections and cluster-bus links were not re-established.
            expect(a.links).toEqual(b.links);
            expect(a.replicaAges.length).toBe(b.replicaAges.length);
            for (const age of a.replicaAges) expect(age).toBeGreaterThanOrEqual(Math.floor(rotationSec) - 2);
            expiries[n.name] = `${b.validTo} -> ${a.validTo}`;
        }
        figures.expiries = expiries;
        expect(writer.acked.size).toBeGreaterThan(50);
        expect(lost).toEqual([]);
        expect(writer.errors).toEqual({});
        expect(writer.clusterDownSeen).toBe(0);

        // ---- 2. after the overlap: drop the old CA, with a writer that has the new client files
        const writer2 = new AckedWriter(nodes.map((n) => ({ host: n.host, port: n.port })), { username: "app", password: o.appPassword as string, tls: { ca: rotated.ca, cert: rotated.cert, key: rotated.key } });
        await writer2.start();
        let drop;
        try {
            await new Promise((r) => setTimeout(r, 1000));
            st.setConfig("redisforge:tlsCaOverlap", "false");
            drop = await st.pulumi(["up", "--yes", "--skip-preview"], 300_000);
            await new Promise((r) => setTimeout(r, 1000));
        } finally {
            await writer2.stop();
        }
        must(drop, "pulumi up (tlsCaOverlap false)");
        const lost2 = await writer2.lost();
        writer2.close();
        Object.assign(figures, { dropUpMs: drop.ms, acknowledged2: writer2.acked.size, errors2: writer2.errors, nodeErrors2: writer2.nodeErrors, lost2: lost2.length });
        for (const [name, n] of st.redisNodes()) expect(n.pid).toBe(pids0.get(name)!.pid);
        const final = clientFiles(clientDir);
        expect(final.ca.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
        const dropped = await observe(nodes, final, adminPassword);
        for (const n of nodes) {
            expect(dropped.get(n.name)!.issuer).toMatch(/RedisForge CA g2$/);
            expect(dropped.get(n.name)!.linkUp).toBe(true);
            expect(await handshakeFails(n, { ...final, cert: old.cert, key: old.key })).toBe(true); // the old client certificate is refused now
            expect(await handshakeFails(n, final)).toBe(false);
        }
        expect(lost2).toEqual([]);
        expect(writer2.errors).toEqual({});

        // ---- 3. nothing left to do
        const again = must(await st.pulumi(["preview", "--expect-no-changes"], 300_000), "pulumi preview --expect-no-changes");
        figures.noChangePreviewMs = again.ms;
        const o2 = await st.outputs();
        expect(o2.clusterState).toBe("ok");
    }, 1_200_000);
});
