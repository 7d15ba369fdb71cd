/**
 * providers/qemu/plan.ts (pure) and the metadata service, for real:
 * - addresses: stable per host name, inside their zone segment and their role's range, distinct;
 * - the firewall plan: no protected port from 0.0.0.0/0, role rules stay between role ranges, the
 *   load balancer takes the client port from the client CIDRs only, and the whole plan is accepted
 *   by the real `nft -c` (lab/vm/firewall.ts renders it);
 * - metadata-server.ts on 127.0.0.1 answering templates/scripts/fetch-secrets.sh's qemu branch
 *   (bash + curl): the caller's identity reads its secrets, gets 403 for another's, and the
 *   instance-credential endpoints follow the EC2 protocol.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { firewallRules } from "../../../components/firewall-rules";
import { checkFirewallSyntax, renderFirewall } from "../../../lab/vm/firewall";
import { cidrContains } from "../../../providers/network-plan";
import { addressFor, firewallPlan, hostLinkAddress, roleRange, serviceAddress, slotOf, tapNameOf, zoneSegment } from "../../../providers/qemu/plan";
import { handler } from "../../../providers/qemu/metadata-server";

const PORTS = { client: 6379, redis: 6379, bus: 16379, redisExporter: 9121, nodeExporter: 9100, envoyAdmin: 9901 };

describe("address plan", () => {
    test("slot from the network CIDR; anything else is refused with the fix", () => {
        expect(slotOf("10.210.0.0/20")).toEqual({ slot: 0 });
        expect(slotOf("10.210.48.0/20")).toEqual({ slot: 3 });
        for (const bad of ["10.40.0.0/16", "10.210.8.0/20", "10.210.0.0/16"]) expect(slotOf(bad)).toEqual({ error: expect.stringMatching(/use 10\.210\.<16\*S>\.0\/20/) });
    });
    test("every node and envoy address lies in its zone segment and its role range, all distinct, tap names unique", () => {
        for (const slot of [0, 5]) {
            const seen = new Set<string>();
            const taps = new Set<string>();
            for (let z = 0; z < 3; z++) {
                for (let i = 0; i < 12; i++) {
                    const ip = addressFor(slot, z, "redis", `c-node${i}`);
                    expect(cidrContains(zoneSegment(slot, z).cidr, ip)).toBe(true);
                    expect(cidrContains(roleRange(slot, z, "redis"), ip)).toBe(true);
                    expect(cidrContains(roleRange(slot, z, "envoy"), ip)).toBe(false);
                    expect(seen.has(ip)).toBe(false);
                    seen.add(ip);
                }
                for (let i = 0; i < 4; i++) {
                    const ip = addressFor(slot, z, "envoy", `c-envoy${i}`);
                    expect(cidrContains(roleRange(slot, z, "envoy"), ip)).toBe(true);
                    expect(cidrContains(roleRange(slot, z, "redis"), ip)).toBe(false);
                    seen.add(ip);
                }
            }
            for (let i = 0; i < 12; i++) taps.add(tapNameOf(`c-node${i}`)).add(tapNameOf(`c-envoy${i}`));
            expect(taps.size).toBe(24);
            for (const t of taps) expect(t.length).toBeLessThanOrEqual(13);
            expect(addressFor(slot, 1, "redis", "c-node3")).toBe(addressFor(slot, 1, "redis", "other-node3"));
        }
        expect(() => addressFor(0, 0, "redis", "c-envoy1")).toThrow(/no -node<i> ordinal/);
        expect(() => addressFor(0, 0, "redis", "c-node99")).toThrow(/above 52/);
    });
});

describe("firewall plan", () => {
    const rules = firewallRules({ ports: PORTS, clientCidrs: ["10.210.9.0/24"], monitoringCidrs: ["10.210.10.0/24"], adminCidrs: [] });
    const plan = firewallPlan({ slot: 0, zoneCount: 3, rules, redisPort: PORTS.redis });
    test("no rule takes traffic from 0.0.0.0/0; protected ports only from roles, monitoring or the deployer", () => {
        for (const r of plan) {
            expect(r.from).not.toBe("0.0.0.0/0");
            const p = r.ports as number;
            if ([16379].includes(p)) expect(r.from).toMatch(/^10\.210\.\d+\.0\/26$/);
            if ([9121, 9100, 9901].includes(p)) expect(r.from).toBe("10.210.10.0/24");
            if (r.to === serviceAddress(0, "lb")) expect([r.from, r.ports]).toEqual(["10.210.9.0/24", PORTS.client]);
            if (r.from === hostLinkAddress(0)) expect([r.comment, r.ports]).toEqual(r.to === serviceAddress(0, "s3") ? ["s3-from-deployer", 9000] : ["redis-from-deployer", PORTS.redis]);
        }
        // The deployer reaches the Redis VMs' TLS port and the stack's S3 API, nothing else.
        expect(plan.filter((r) => r.from === hostLinkAddress(0)).map((r) => r.to)).toEqual(["10.210.0.0/26", "10.210.1.0/26", "10.210.2.0/26", serviceAddress(0, "s3")]);
        // Formation agent: the S3 API only (the converge store); every other rule is the same.
        const agent = firewallPlan({ slot: 0, zoneCount: 3, rules, redisPort: PORTS.redis, deployerReachesNodes: false });
        expect(agent.filter((r) => r.from === hostLinkAddress(0)).map((r) => [r.to, r.ports])).toEqual([[serviceAddress(0, "s3"), 9000]]);
        expect(agent).toEqual(plan.filter((r) => r.comment !== "redis-from-deployer"));
        expect(plan.filter((r) => r.comment === "redis-from-redis")).toHaveLength(3 * 3 * 2);
    });
    test("the real nft accepts the rendered table", () => {
        expect(renderFirewall(plan)).toMatch(/table inet rfvm \{/);
        expect(() => checkFirewallSyntax(plan)).not.toThrow();
    });
});

describe("metadata service + fetch-secrets.sh (qemu branch)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-metadata-"));
    let server: http.Server;
    let base = "";
    beforeAll(async () => {
        fs.mkdirSync(path.join(dir, "store", "secrets"), { recursive: true });
        fs.mkdirSync(path.join(dir, "store", "identities"), { recursive: true });
        fs.mkdirSync(path.join(dir, "store", "members"), { recursive: true });
        fs.writeFileSync(path.join(dir, "store", "secrets", "vm-node0-tls-key"), "-----BEGIN TEST KEY-----\nAAAA\n-----END TEST KEY-----\n");
        fs.writeFileSync(path.join(dir, "store", "secrets", "vm-node1-tls-key"), "other node's key");
        fs.writeFileSync(path.join(dir, "store", "secrets", "vm-exporter-password"), "pw-0123456789abcdefABCDEF");
        fs.writeFileSync(path.join(dir, "store", "identities", "vm-node0-identity.json"), JSON.stringify({ secrets: ["vm-node0-tls-key", "vm-exporter-password"], s3: { accessKey: "backup-node0", secretKey: "s3-secret-0123456789" } }));
        fs.writeFileSync(path.join(dir, "store", "members", "127.0.0.1"), "vm-node0-identity\n");
        server = http.createServer(handler(path.join(dir, "store")));
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    afterAll(async () => {
        await new Promise((r) => server.close(r));
        fs.rmSync(dir, { recursive: true, force: true });
    });
    const run = (names: string[]) => {
        const out = fs.mkdtempSync(path.join(dir, "run-"));
        fs.writeFileSync(path.join(out, "boot.env"), "CLOUD=qemu\n");
        fs.writeFileSync(path.join(out, "secrets.list"), names.map((n) => `${out}/f/${n} ${process.getuid!()} file http://169.254.169.254/redisforge/v1/secrets/${n}`).join("\n") + "\n");
        return new Promise<{ code: number; out: string; dir: string }>((resolve) =>
            execFile("bash", [path.resolve(__dirname, "../../../templates/scripts/fetch-secrets.sh")], {
                env: { PATH: process.env.PATH, BOOT_ENV: path.join(out, "boot.env"), SECRETS_LIST: path.join(out, "secrets.list"), QEMU_METADATA: base, MAX_ATTEMPTS: "2", RETRY_SLEEP: "0" },
                timeout: 30000,
            }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr, dir: out })),
        );
    };
    test("the caller's identity reads its own secrets (exact content, 0400)", async () => {
        const r = await run(["vm-node0-tls-key", "vm-exporter-password"]);
        expect(r.out).toContain("wrote 2 secret file(s)");
        expect(fs.readFileSync(path.join(r.dir, "f", "vm-node0-tls-key"), "utf8")).toMatch(/^-----BEGIN TEST KEY-----\nAAAA\n/);
        expect(fs.statSync(path.join(r.dir, "f", "vm-node0-tls-key")).mode & 0o777).toBe(0o400);
    });
    test("another node's key is refused (403) and the script fails naming the reference", async () => {
        const r = await run(["vm-node1-tls-key"]);
        expect(r.code).not.toBe(0);
        expect(r.out).toMatch(/could not read http:\/\/169\.254\.169\.254\/redisforge\/v1\/secrets\/vm-node1-tls-key/);
        expect(fs.existsSync(path.join(r.dir, "f", "vm-node1-tls-key"))).toBe(false);
        const res = await fetch(`${base}/redisforge/v1/secrets/vm-node1-tls-key`);
        expect(res.status).toBe(403);
    });
    test("instance credentials: IMDSv2 token, role name, keys in the EC2 format; a wrong token is refused", async () => {
        const token = await (await fetch(`${base}/latest/api/token`, { method: "PUT", headers: { "x-aws-ec2-metadata-token-ttl-seconds": "300" } })).text();
        const h = { "x-aws-ec2-metadata-token": token };
        expect(await (await fetch(`${base}/latest/meta-data/iam/security-credentials/`, { headers: h })).text()).toBe("vm-node0-identity");
        const creds = await (await fetch(`${base}/latest/meta-data/iam/security-credentials/vm-node0-identity`, { headers: h })).json();
        expect(creds).toMatchObject({ Code: "Success", AccessKeyId: "backup-node0", SecretAccessKey: "s3-secret-0123456789" });
        expect((await fetch(`${base}/latest/meta-data/iam/security-credentials/`, { headers: { "x-aws-ec2-metadata-token": "forged" } })).status).toBe(401);
    });
    test("IMDSv2 tokens as EC2 issues them: the TTL echoed in the response header (the AWS SDK rejects a token without it), 400 without a TTL in 1-21600, 401 once expired", async () => {
        const put = (ttl?: string) => fetch(`${base}/latest/api/token`, { method: "PUT", headers: ttl === undefined ? {} : { "x-aws-ec2-metadata-token-ttl-seconds": ttl } });
        const ok = await put("21600");
        expect(ok.status).toBe(200);
        expect(ok.headers.get("x-aws-ec2-metadata-token-ttl-seconds")).toBe("21600");
        for (const bad of [undefined, "0", "21601", "abc", "-5"]) expect([bad, (await put(bad)).status]).toEqual([bad, 400]);
        const short = await (await put("1")).text();
        const list = () => fetch(`${base}/latest/meta-data/iam/security-credentials/`, { headers: { "x-aws-ec2-metadata-token": short } });
        expect((await list()).status).toBe(200);
        await new Promise((r) => setTimeout(r, 1200));
        expect((await list()).status).toBe(401);
    });
});
