/**
 * The qemu buckets' plan and records, without touching the machine:
 * - the adapter under the mocked engine: bucket names, endpoint (services .3:9000, what the VMs'
 *   rclone.conf names), ONE S3 service for the stack's two buckets (backup, converge store), the
 *   grants each identity gets (the backup writer's statements, the converge agent's: read the
 *   spec, read/write status and lease, never delete), the VM principal's keys file for an identity
 *   only when it has a grant; no registered input carries a key (none exists at program time);
 * - the QemuBucketKeys / QemuIdentity providers on a temporary directory: keys generated inside
 *   the provider, 0600, and absent from every output (= the state); the identity file gets the
 *   VM principal's key only with a grant; new keys update the identity; updates never rotate keys;
 * - s3-grants.ts policyOf: the union of grants, identical statements once, unique Sids.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { installMocks, MockEngine, settle, unwrap, valueOf } from "../../helpers/mocks";
import { BucketKeys, qemuBucketKeysProvider, qemuIdentityProvider } from "../../../providers/qemu/resources/store";
import { backupStatements, convergeStatements } from "../../../providers/object-store/s3-admin";
import { policyOf } from "../../../providers/qemu/s3-grants";

// The adapter's resources are recorded by the mocked engine; nothing may reach the host primitives.
jest.mock("../../../providers/qemu/resources/host", () => ({
    hostModule: (rel: string) => {
        throw new Error(`the machine was touched: ${rel} loaded`);
    },
}));

describe("adapter (mocked engine)", () => {
    let engine: MockEngine;
    let bucket: { name: string; url: string; endpoint: string };
    let converge: unknown;
    const stateRoot = path.join(os.tmpdir(), "rf-qemu-bucket-unit-never-written");

    beforeAll(async () => {
        process.env.REDISFORGE_VM_STATE = stateRoot;
        engine = await installMocks({ stack: "vm" });
        const { qemuAdapter } = await import("../../../providers/qemu/index");
        const parent = new pulumi.ComponentResource("test:index:Parent", "bk", {});
        const tags = {};
        const network = qemuAdapter.createNetwork("bk-net", { parent, tags, region: "local-vm", zones: ["vm-a", "vm-b", "vm-c"], cidr: "10.210.32.0/20" });
        const store = qemuAdapter.createSecretStore("bk-secrets", { parent, tags, region: "local-vm", network });
        const c = qemuAdapter.createBucket("bk-converge", { parent, tags, region: "local-vm", retentionDays: 1, keepCurrent: true });
        const b = qemuAdapter.createBucket("bk-backups-bucket", { parent, tags, region: "local-vm", retentionDays: 14 });
        const convergeStore = { bucket: c, prefix: "converge/bk", read: ["spec.json"], readWrite: ["status.json", "lease.json"] };
        qemuAdapter.createIdentity("bk-node0-identity", { parent, tags, role: "redis", readSecrets: [], store, writeBucket: b, convergeStore } as never);
        converge = await valueOf(qemuAdapter.convergeStoreSettings!(c, "converge/bk"));
        qemuAdapter.createIdentity("bk-envoy-identity", { parent, tags, role: "envoy", readSecrets: [], store } as never);
        bucket = { name: await valueOf(b.name), url: await valueOf(b.url), endpoint: await valueOf(b.endpoint!) };
        await settle(engine);
    });
    afterAll(() => {
        delete process.env.REDISFORGE_VM_STATE;
    });

    const inputsOf = (type: string, name: string) => {
        const r = engine.byType(`pulumi-nodejs:dynamic/qemu:${type}`).find((x) => x.name === name);
        if (!r) throw new Error(`no qemu:${type} ${name}; have ${engine.resources.map((x) => `${x.type} ${x.name}`).join(", ")}`);
        return unwrap(r.inputs) as Record<string, any>;
    };

    test("bucket: name, s3:// URL and the services segment's S3 endpoint (slot 2: 10.210.40.3:9000)", () => {
        expect(bucket).toEqual({ name: "bk-backups-bucket", url: "s3://bk-backups-bucket", endpoint: "http://10.210.40.3:9000" });
        expect(fs.existsSync(stateRoot)).toBe(false); // recorded, not run
    });

    test("the S3 service runs s3-service.ts in the stack namespace on that address, data under <state>/s3, waits for its ready file", () => {
        // One S3 service and one keys file for the stack, however many buckets (two here).
        expect(engine.byType("pulumi-nodejs:dynamic/qemu:Service").filter((r) => (unwrap(r.inputs) as { name: string }).name === "s3").map((r) => r.name)).toEqual(["bk-s3"]);
        expect(engine.byType("pulumi-nodejs:dynamic/qemu:BucketKeys").map((r) => r.name)).toEqual(["bk-s3-keys"]);
        const s = inputsOf("Service", "bk-s3");
        const keys = inputsOf("BucketKeys", "bk-s3-keys");
        expect(keys.file).toBe(path.join(stateRoot, "bk", "s3-keys", "stack.json"));
        expect(s).toMatchObject({ name: "s3", netns: "rfvm-bk", dir: path.join(stateRoot, "bk", "s3"), probe: { host: "10.210.40.3", port: 9000 }, readyFile: "ready" });
        expect(s.argv.slice(2)).toEqual([path.resolve(__dirname, "../../../providers/qemu/s3-service.ts"), "{dir}", "10.210.40.3", "9000", keys.file]);
        expect(Object.keys(s.files)).toEqual(["keys.sha256"]);
        for (const b of ["bk-backups-bucket", "bk-converge"]) expect(inputsOf("S3Bucket", b)).toMatchObject({ bucket: b, endpoint: "http://10.210.40.3:9000", keysFile: keys.file });
    });

    test("grants: the node's identity writes backups and reads/writes only its converge documents; the Envoy's has none", () => {
        const keys = inputsOf("BucketKeys", "bk-s3-keys");
        const grantsDir = path.join(stateRoot, "bk", "s3-grants");
        expect(inputsOf("BucketGrant", "bk-node0-identity-backup-grant")).toMatchObject({ bucket: "bk-backups-bucket", identity: "bk-node0-identity", grantsDir, keysFile: keys.file, statements: backupStatements("arn:aws:s3:::bk-backups-bucket") });
        const conv = inputsOf("BucketGrant", "bk-node0-identity-converge-grant");
        expect(conv).toMatchObject({ bucket: "bk-converge", identity: "bk-node0-identity", statements: convergeStatements("arn:aws:s3:::bk-converge", { prefix: "converge/bk", read: ["spec.json"], readWrite: ["status.json", "lease.json"] }) });
        // Nothing but the three documents is writable or readable; delete is denied outright.
        const allowed = (conv.statements as { Effect: string; Action: string[]; Resource: string[] }[]).filter((x) => x.Effect === "Allow");
        expect(allowed.flatMap((x) => x.Resource).sort()).toEqual(["arn:aws:s3:::bk-converge", ...["lease.json", "spec.json", "status.json"].map((k) => `arn:aws:s3:::bk-converge/converge/bk/${k}`)].sort());
        expect(allowed.flatMap((x) => x.Action).filter((a) => /Delete|Policy/.test(a))).toEqual([]);
        expect(engine.byType("pulumi-nodejs:dynamic/qemu:BucketGrant").filter((r) => r.name.startsWith("bk-envoy"))).toEqual([]);
        expect(inputsOf("Identity", "bk-node0-identity").s3Keys).toMatchObject({ file: keys.file });
        expect(inputsOf("Identity", "bk-envoy-identity").s3Keys).toBeUndefined();
    });

    test("convergeStoreSettings: the agent's S3 store on the stack's endpoint (path style, us-east-1)", () => {
        expect(converge).toEqual({ kind: "s3", endpoint: "http://10.210.40.3:9000", bucket: "bk-converge", prefix: "converge/bk", region: "us-east-1" });
    });
});

describe("QemuBucketKeys / QemuIdentity providers (temporary directory)", () => {
    // The real providers, called as the engine calls them (they use only fs and crypto).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-qemu-keys-"));
    const file = path.join(dir, "s3-keys", "b.json");
    const storeDir = path.join(dir, "metadata");
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    const keys = () => JSON.parse(fs.readFileSync(file, "utf8")) as BucketKeys;
    const identity = (name: string) => JSON.parse(fs.readFileSync(path.join(storeDir, "identities", `${name}.json`), "utf8"));

    test("keys are generated in the provider, 0600, and no output (state) holds one", async () => {
        const r = await qemuBucketKeysProvider.create!({ file });
        const k = keys();
        expect(fs.statSync(file).mode & 0o777).toBe(0o600);
        expect(k.root.secretAccessKey.length).toBeGreaterThanOrEqual(32);
        expect(k.vm.secretAccessKey).not.toBe(k.root.secretAccessKey);
        expect(Object.keys(r.outs).sort()).toEqual(["digest", "file"]);
        for (const s of [k.root.secretAccessKey, k.vm.secretAccessKey, k.vm.accessKeyId]) expect(JSON.stringify(r)).not.toContain(s);
    });

    test("identity: the VM principal's key (never root's) only with a grant; outputs hold no key", async () => {
        const digest = (await qemuBucketKeysProvider.read!(file, { file, digest: "" })).props.digest as string;
        const w = await qemuIdentityProvider.create!({ storeDir, name: "writer", secrets: ["a"], s3Keys: { file, digest } });
        const n = await qemuIdentityProvider.create!({ storeDir, name: "reader", secrets: ["a"] });
        const k = keys();
        expect(identity("writer")).toEqual({ secrets: ["a"], s3: { accessKey: k.vm.accessKeyId, secretKey: k.vm.secretAccessKey } });
        expect(identity("reader")).toEqual({ secrets: ["a"] });
        expect(fs.statSync(path.join(storeDir, "identities", "writer.json")).mode & 0o777).toBe(0o600);
        expect(w.outs).toMatchObject({ bucket: true, s3KeysDigest: digest });
        expect(n.outs).toMatchObject({ bucket: false });
        for (const s of [k.root.secretAccessKey, k.vm.secretAccessKey]) expect(JSON.stringify([w, n])).not.toContain(s);
        expect(await qemuIdentityProvider.diff!("writer", w.outs, { storeDir, name: "writer", secrets: ["a"], s3Keys: { file, digest } })).toMatchObject({ changes: false });
    });

    test("an update keeps the keys; a vanished file is a change, regenerated, and the identity follows the new digest", async () => {
        const before = keys();
        const d0 = (await qemuBucketKeysProvider.update!(file, {}, { file })).outs.digest as string;
        expect(keys()).toEqual(before);
        expect(await qemuBucketKeysProvider.diff!(file, { file, digest: d0 }, { file })).toMatchObject({ changes: false });
        fs.rmSync(file);
        expect(await qemuBucketKeysProvider.diff!(file, { file, digest: d0 }, { file })).toMatchObject({ changes: true, replaces: [] });
        const d1 = (await qemuBucketKeysProvider.update!(file, {}, { file })).outs.digest as string;
        expect(d1).not.toBe(d0);
        expect(keys().vm.accessKeyId).not.toBe(before.vm.accessKeyId);
        const olds = { storeDir, name: "writer", digest: "x", s3KeysDigest: d0 };
        expect(await qemuIdentityProvider.diff!("writer", olds, { storeDir, name: "writer", secrets: ["a"], s3Keys: { file, digest: d1 } })).toMatchObject({ changes: true });
        await qemuIdentityProvider.update!("writer", olds, { storeDir, name: "writer", secrets: ["a"], s3Keys: { file, digest: d1 } });
        expect(identity("writer").s3.accessKey).toBe(keys().vm.accessKeyId);
        await qemuBucketKeysProvider.delete!(file, { file });
        expect(fs.existsSync(file)).toBe(false);
    });
});

describe("s3-grants policyOf", () => {
    const arn = "arn:aws:s3:::b";
    const conv = convergeStatements(arn, { prefix: "converge/x", read: ["spec.json"], readWrite: ["status.json"] });
    test("the union of the grants for the VM principal: identical statements once", () => {
        const p = policyOf([backupStatements(arn), conv, conv, backupStatements(arn)], "vm-1");
        expect(p.map((x) => x.Sid)).toEqual(["RedisForgeBackupWriteReadListNoDelete", "ConvergeReadSpec", "ConvergeWriteStatus", "ConvergeList", "ConvergeNeverDelete"]);
        expect(p.every((x) => JSON.stringify(x.Principal) === JSON.stringify({ AWS: "vm-1" }))).toBe(true);
    });
    test("two different statements with one Sid get unique Sids (a policy's Sids must be)", () => {
        const other = convergeStatements(arn, { prefix: "converge/y", read: ["spec.json"], readWrite: ["status.json"] });
        const p = policyOf([conv, other], "vm-1");
        expect(new Set(p.map((x) => x.Sid)).size).toBe(p.length);
        // The list and never-delete statements are identical for both prefixes: once each.
        expect(p.map((x) => x.Sid)).toEqual(["ConvergeReadSpec", "ConvergeWriteStatus", "ConvergeList", "ConvergeNeverDelete", "ConvergeReadSpec2", "ConvergeWriteStatus2"]);
        expect(p[4].Resource).toEqual(["arn:aws:s3:::b/converge/y/spec.json"]);
    });
    test("no grant, no statement", () => {
        expect(policyOf([], "vm-1")).toEqual([]);
    });
});
