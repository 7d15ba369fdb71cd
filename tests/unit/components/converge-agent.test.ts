/**
 * Formation `agent` in the program, for each cloud that offers a converge store, on the mocked
 * engine (what each adapter sends to the engine, not its own records): the store, the identity
 * grants and the unit the converge agent needs, and nothing more:
 *   - a converge bucket of its own whose current objects never expire (only old versions do);
 *   - every Redis VM's identity may read `converge/<cluster>/spec.json` and read + write
 *     `status.json` and `lease.json`, never delete, nothing else of that bucket; Envoy VMs get nothing;
 *   - every Redis VM's user-data runs the agent (unit + config.json naming that store); no Envoy's;
 *   - the rolling chain is made of AgentGates (no RollingGate, no admin client certificate: the
 *     deployer never connects to a node); the RedisCluster resource publishes to the store, with no
 *     client key and no store credential among its inputs;
 * and on a cloud without a converge store (local) the config is refused, naming the key.
 */
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { DOCKER_CONTEXTS } from "../../../components/images";
import { adapters } from "../../../providers/registry";
import { validateConfig } from "../../../infra/config";
import { MockEngine, RecordedResource, unwrap } from "../../helpers/mocks";
import { INSPECTORS } from "./inspect";
import { Raw, runProgram, RunResult, stackFixture } from "./program";

// The mocked programs of three clouds: under a loaded machine one preview took 33 s.
jest.setTimeout(180000);

const IMAGE = `registry.example.com/redisforge/converge-agent@sha256:${"d".repeat(64)}`;
const plain = (r: RecordedResource) => unwrap(r.inputs) as Record<string, any>;
const agentRaw = (kind: string): Raw => ({ ...stackFixture(kind), formation: "agent", convergeHeal: true, convergeAgentImage: IMAGE });

/** The converge bucket's resource(s) and the backup bucket's, told apart by name. */
const named = (e: MockEngine, type: string, part: string) => e.byType(type).filter((r) => r.name.includes(part));

describe.each(["aws", "gcp", "azure", "qemu"])("cloud %s, formation agent", (kind) => {
    let run: RunResult;
    let e: MockEngine;
    const raw = agentRaw(kind);
    const prefix = `converge/${String(raw.clusterName || "prod")}`;
    beforeAll(async () => {
        run = await runProgram(raw, { stack: "prod", preview: true });
        if (run.error) throw run.error;
        e = run.engine;
    });

    it("a converge bucket of its own, whose current objects never expire", () => {
        if (kind === "aws") {
            const [lc] = named(e, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "-converge");
            expect(plain(lc).rules[0].expiration).toBeUndefined();
            expect(plain(lc).rules[0].noncurrentVersionExpiration).toEqual({ noncurrentDays: 1 });
            const [backup] = named(e, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "-backup");
            expect(plain(backup).rules[0].expiration).toBeDefined();
        } else if (kind === "gcp") {
            const [b] = named(e, "gcp:storage/bucket:Bucket", "-converge");
            expect(plain(b).lifecycleRules.map((r: any) => r.condition)).toEqual([{ daysSinceNoncurrentTime: 1, withState: "ARCHIVED" }]);
        } else if (kind === "qemu") {
            // No expiry at all on qemu (versitygw's posix backend has no lifecycle): a bucket of its own
            // on the stack's one S3 service, beside the backup bucket.
            expect(e.byType("pulumi-nodejs:dynamic/qemu:S3Bucket").map((b) => plain(b).bucket).sort()).toEqual([expect.stringMatching(/-backup/), expect.stringMatching(/-converge$/)]);
            expect(e.byType("pulumi-nodejs:dynamic/qemu:Service").filter((x) => plain(x).name === "s3")).toHaveLength(1);
        } else {
            const [mp] = named(e, "azure-native:storage:ManagementPolicy", "-converge");
            const actions = plain(mp).policy.rules[0].definition.actions;
            expect(actions.baseBlob).toBeUndefined();
            expect(actions.version).toEqual({ delete: { daysAfterCreationGreaterThan: 1 } });
        }
    });

    it("Redis identities: read the spec, read + write status and lease, never delete, nothing else of the store; Envoys: nothing", () => {
        const docs = (...k: string[]) => k.map((x) => `${prefix}/${x}`);
        if (kind === "aws") {
            const policies = e.byType("aws:iam/rolePolicy:RolePolicy");
            const redis = policies.filter((p) => /-node\d+-identity$/.test(p.name));
            expect(redis.length).toBe(6);
            for (const p of redis) {
                const st = JSON.parse(plain(p).policy).Statement as { Sid: string; Effect: string; Action: string[]; Resource: string[] }[];
                const conv = st.filter((s) => s.Sid.startsWith("Converge"));
                const arn = conv.find((s) => s.Sid === "ConvergeList")!.Resource[0];
                expect(arn).toMatch(/converge/);
                expect(conv.find((s) => s.Sid === "ConvergeReadSpec")).toMatchObject({ Effect: "Allow", Action: ["s3:GetObject"], Resource: docs("spec.json").map((d) => `${arn}/${d}`) });
                expect(conv.find((s) => s.Sid === "ConvergeWriteStatus")).toMatchObject({ Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: docs("status.json", "lease.json").map((d) => `${arn}/${d}`) });
                expect(conv.find((s) => s.Sid === "ConvergeNeverDelete")).toMatchObject({ Effect: "Deny", Action: expect.arrayContaining(["s3:DeleteObject", "s3:DeleteObjectVersion"]) });
                // No other statement names the converge bucket.
                expect(st.filter((s) => !s.Sid.startsWith("Converge")).flatMap((s) => ([] as string[]).concat(s.Resource)).some((r) => r.startsWith(arn))).toBe(false);
            }
            for (const p of policies.filter((x) => /envoy/.test(x.name))) expect(String(plain(p).policy)).not.toMatch(/Converge/);
        } else if (kind === "gcp") {
            const members = e.byType("gcp:storage/bucketIAMMember:BucketIAMMember").filter((m) => m.name.includes("-identity-converge-"));
            expect(members.length).toBe(12);
            for (const m of members) {
                const i = plain(m);
                const names = [...String(i.condition.expression).matchAll(/objects\/([^"]+)"/g)].map((x) => x[1]).sort();
                if (m.name.endsWith("-converge-read")) {
                    expect(i.role).toBe("roles/storage.objectViewer");
                    expect(names).toEqual(docs("lease.json", "spec.json", "status.json"));
                } else {
                    expect(i.role).toBe("roles/storage.objectUser");
                    expect(names).toEqual(docs("lease.json", "status.json"));
                }
                expect(i.bucket).toMatch(/converge/);
                expect(m.name).toMatch(/-node\d+-identity-converge-/);
            }
        } else if (kind === "qemu") {
            // One QemuBucketGrant per Redis identity on the converge bucket (the bucket policy is their
            // union for the stack's VM principal: tests/integration/vm/bucket.test.ts runs it on versitygw).
            const grants = e.byType("pulumi-nodejs:dynamic/qemu:BucketGrant");
            const conv = grants.filter((g) => String(plain(g).bucket).endsWith("-converge"));
            expect(conv.map((g) => g.name.replace(/^[a-z0-9]+-/, "")).sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `node${i}-identity-converge-grant`));
            for (const g of conv) {
                const st = plain(g).statements as { Sid: string; Effect: string; Action: string[]; Resource: string[] }[];
                const arn = `arn:aws:s3:::${plain(g).bucket}`;
                expect(st.find((x) => x.Sid === "ConvergeReadSpec")).toMatchObject({ Effect: "Allow", Action: ["s3:GetObject"], Resource: docs("spec.json").map((d) => `${arn}/${d}`) });
                expect(st.find((x) => x.Sid === "ConvergeWriteStatus")).toMatchObject({ Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject"], Resource: docs("status.json", "lease.json").map((d) => `${arn}/${d}`) });
                expect(st.find((x) => x.Sid === "ConvergeNeverDelete")).toMatchObject({ Effect: "Deny", Action: expect.arrayContaining(["s3:DeleteObject", "s3:DeleteObjectVersion"]) });
            }
            // The backup grants never name the converge bucket; no Envoy identity has a grant.
            for (const g of grants.filter((x) => !conv.includes(x))) expect(JSON.stringify(plain(g).statements)).not.toMatch(/converge/);
            expect(grants.filter((g) => /envoy/.test(g.name))).toEqual([]);
            // The deploying machine (host link .2) reaches the S3 API only: no rule to a node in agent mode.
            const rules = e.byType("pulumi-nodejs:dynamic/qemu:Firewall").flatMap((f) => plain(f).rules as { from: string; to: string; ports: number; comment: string }[]);
            expect(rules.filter((r) => /^10\.210\.\d+\.2$/.test(r.from)).map((r) => [r.comment, r.ports])).toEqual([["s3-from-deployer", 9000]]);
        } else {
            const ra = e.byType("azure-native:authorization:RoleAssignment").filter((r) => r.name.includes("-identity-converge-"));
            expect(ra.length).toBe(12);
            for (const r of ra) {
                const i = plain(r);
                expect(i.conditionVersion).toBe("2.0");
                const paths = [...String(i.condition).matchAll(/'(converge\/[^']+)'/g)].map((x) => x[1]).sort();
                if (r.name.endsWith("-converge-read")) expect(paths).toEqual(docs("lease.json", "spec.json", "status.json"));
                else {
                    expect(paths).toEqual(docs("lease.json", "status.json"));
                    expect(i.condition).toMatch(/!\(ActionMatches\{'Microsoft\.Storage\/storageAccounts\/blobServices\/containers\/blobs\/delete'\}\)/);
                }
                expect(r.name).toMatch(/-node\d+-identity-converge-/);
            }
        }
    });

    it("every Redis VM runs the agent against that store; no Envoy VM does", () => {
        const vms = INSPECTORS[kind].vms(e);
        const redis = vms.filter((v) => /node\d+/.test(v.name));
        expect(redis.length).toBe(6);
        for (const v of redis) {
            const ud = parse(v.userData) as { write_files: { path: string; content: string }[] };
            expect(ud.write_files.map((f) => f.path)).toEqual(expect.arrayContaining(["/etc/systemd/system/redisforge-converge.service", "/etc/redisforge/converge/config.json"]));
            const cfg = JSON.parse(ud.write_files.find((f) => f.path === "/etc/redisforge/converge/config.json")!.content);
            expect(cfg.store).toMatchObject({ kind: { aws: "s3", gcp: "gcs", azure: "azure", qemu: "s3" }[kind], prefix });
            expect(cfg.storeCredentials).toHaveProperty("instance");
        }
        for (const v of vms.filter((x) => /envoy/.test(x.name))) expect(v.userData).not.toMatch(/converge/);
    });

    it("the rolling chain is AgentGates; the cluster resource publishes to the store with no client key and no store credential", () => {
        expect(e.byType("pulumi-nodejs:dynamic/redisforge:RollingGate")).toEqual([]);
        expect(e.byType("pulumi-nodejs:dynamic/redisforge:AgentGate").length).toBe(12);
        const [rc] = e.byType("pulumi-nodejs:dynamic/redisforge:RedisCluster");
        const i = plain(rc);
        expect(i.formation).toBe("agent");
        expect(i.heal).toBe(true);
        expect(i.agentStore).toMatchObject({ kind: { aws: "s3", gcp: "gcs", azure: "azure", qemu: "s3" }[kind], prefix });
        expect(i.clientKey).toBeUndefined();
        expect(i.agentStoreCredentials).toBeUndefined();
        expect(e.byType("tls:index/certRequest:CertRequest").map((r) => r.name).filter((n) => /admin-client/.test(n))).toEqual([]);
    });
});

test("formation agent is refused where no converge store exists, and without its image", () => {
    expect(() => validateConfig({ ...stackFixture("local"), formation: "agent", convergeAgentImage: IMAGE }, adapters)).toThrow(/redisforge:formation=agent is not available on the local cloud/);
    // The qemu cloud has a converge store (its S3 service: tests/integration/vm/bucket.test.ts).
    expect(validateConfig({ ...stackFixture("qemu"), formation: "agent", convergeAgentImage: IMAGE }, adapters).config.formation).toBe("agent");
    expect(() => validateConfig({ ...stackFixture("aws"), formation: "agent", buildImages: false }, adapters)).toThrow(/redisforge:convergeAgentImage is required when redisforge:formation=agent and redisforge:buildImages=false/);
    expect(() => validateConfig({ ...stackFixture("aws"), formation: "agent", convergeAgentImage: IMAGE, formCluster: false }, adapters)).toThrow(/needs redisforge:formCluster=true/);
    expect(() => validateConfig({ ...stackFixture("aws"), formation: "sideways" }, adapters)).toThrow(/redisforge:formation="sideways" must be "direct"/);
    expect(validateConfig({ ...stackFixture("aws"), convergeHeal: true }, adapters).warnings.join("\n")).toMatch(/convergeHeal=true does nothing with redisforge:formation=direct/);
});

test("with buildImages, the converge agent's image is built with the others (bundled from the sources, for the Redis VMs' architecture) and its digest reaches every Redis VM", async () => {
    const raw: Raw = { ...stackFixture("aws"), formation: "agent", convergeHeal: true, buildImages: true };
    delete raw.convergeAgentImage;
    expect(validateConfig(raw, adapters).config.formation).toBe("agent");
    const bundle = path.join(DOCKER_CONTEXTS["converge-agent"], "converge-agent.js");
    fs.rmSync(bundle, { force: true });
    const run = await runProgram(raw, { stack: "prod", preview: false });
    if (run.error) throw run.error;
    const images = run.engine.byType("docker:index/image:Image");
    expect(images.map((i) => i.name.replace(/^.*-images-/, "")).sort()).toEqual(["converge-agent", "envoy", "redis"]);
    const agent = images.find((i) => i.name.endsWith("-converge-agent"))!;
    const redis = images.find((i) => i.name.endsWith("-redis"))!;
    expect(plain(agent).build).toEqual({ ...plain(redis).build, context: DOCKER_CONTEXTS["converge-agent"] });
    // The bundle the Dockerfile copies was made from the sources before the build.
    expect(fs.readFileSync(bundle, "utf8")).toMatch(/converge/);
    const digest = String(agent.state.repoDigest);
    expect(digest).toMatch(/converge-agent@sha256:[0-9a-f]{64}$/);
    const vms = INSPECTORS.aws.vms(run.engine);
    const nodes = vms.filter((v) => /node\d+/.test(v.name));
    expect(nodes.length).toBe(6);
    for (const v of nodes) expect(v.userData).toContain(digest);
    for (const v of vms.filter((x) => /envoy/.test(x.name))) expect(v.userData).not.toContain(digest);
});
