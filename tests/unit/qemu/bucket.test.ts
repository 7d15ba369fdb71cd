/**
 * The qemu backup bucket's plan and records, without touching the machine:
 * - the adapter under the mocked engine: bucket name, endpoint (services .3:9000, what the VMs'
 *   rclone.conf names), the S3 service's inputs, and bucket keys for an identity only when it
 *   writes the bucket; no registered input carries a key (the keys do not exist at program time);
 * - the QemuBucketKeys / QemuIdentity providers on a temporary directory: keys generated inside
 *   the provider, 0600, and absent from every output (= the state); the identity file gets the
 *   backup user's key only with a bucket; new keys update the identity; updates never rotate keys.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { installMocks, MockEngine, settle, unwrap, valueOf } from "../../helpers/mocks";
import { BucketKeys, qemuBucketKeysProvider, qemuIdentityProvider } from "../../../providers/qemu/resources/store";

// The adapter's resources are recorded by the mocked engine; nothing may reach the host primitives.
jest.mock("../../../providers/qemu/resources/host", () => ({
    hostModule: (rel: string) => {
        throw new Error(`the machine was touched: ${rel} loaded`);
    },
}));

describe("adapter (mocked engine)", () => {
    let engine: MockEngine;
    let bucket: { name: string; url: string; endpoint: string };
    const stateRoot = path.join(os.tmpdir(), "rf-qemu-bucket-unit-never-written");

    beforeAll(async () => {
        process.env.REDISFORGE_VM_STATE = stateRoot;
        engine = await installMocks({ stack: "vm" });
        const { qemuAdapter } = await import("../../../providers/qemu/index");
        const parent = new pulumi.ComponentResource("test:index:Parent", "bk", {});
        const tags = {};
        const network = qemuAdapter.createNetwork("bk-net", { parent, tags, region: "local-vm", zones: ["vm-a", "vm-b", "vm-c"], cidr: "10.210.32.0/20" });
        const store = qemuAdapter.createSecretStore("bk-secrets", { parent, tags, region: "local-vm", network });
        const b = qemuAdapter.createBucket("bk-backups-bucket", { parent, tags, region: "local-vm", retentionDays: 14 });
        qemuAdapter.createIdentity("bk-node0-identity", { parent, tags, role: "redis", readSecrets: [], store, writeBucket: b } as never);
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
        const s = inputsOf("Service", "bk-backups-bucket");
        const keys = inputsOf("BucketKeys", "bk-backups-bucket-keys");
        expect(keys.file).toBe(path.join(stateRoot, "bk", "s3-keys", "bk-backups-bucket.json"));
        expect(s).toMatchObject({ name: "s3", netns: "rfvm-bk", dir: path.join(stateRoot, "bk", "s3"), probe: { host: "10.210.40.3", port: 9000 }, readyFile: "ready" });
        expect(s.argv.slice(2)).toEqual([path.resolve(__dirname, "../../../providers/qemu/s3-service.ts"), "{dir}", "10.210.40.3", "9000", keys.file, "bk-backups-bucket"]);
        expect(Object.keys(s.files)).toEqual(["keys.sha256"]);
    });

    test("only the identity that writes the bucket is given the bucket's keys file", () => {
        const keys = inputsOf("BucketKeys", "bk-backups-bucket-keys");
        expect(inputsOf("Identity", "bk-node0-identity").s3Keys).toMatchObject({ file: keys.file });
        expect(inputsOf("Identity", "bk-envoy-identity").s3Keys).toBeUndefined();
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
        expect(k.backup.secretAccessKey).not.toBe(k.root.secretAccessKey);
        expect(Object.keys(r.outs).sort()).toEqual(["digest", "file"]);
        for (const s of [k.root.secretAccessKey, k.backup.secretAccessKey, k.backup.accessKeyId]) expect(JSON.stringify(r)).not.toContain(s);
    });

    test("identity: the backup key (never root's) only with a bucket; outputs hold no key", async () => {
        const digest = (await qemuBucketKeysProvider.read!(file, { file, digest: "" })).props.digest as string;
        const w = await qemuIdentityProvider.create!({ storeDir, name: "writer", secrets: ["a"], s3Keys: { file, digest } });
        const n = await qemuIdentityProvider.create!({ storeDir, name: "reader", secrets: ["a"] });
        const k = keys();
        expect(identity("writer")).toEqual({ secrets: ["a"], s3: { accessKey: k.backup.accessKeyId, secretKey: k.backup.secretAccessKey } });
        expect(identity("reader")).toEqual({ secrets: ["a"] });
        expect(fs.statSync(path.join(storeDir, "identities", "writer.json")).mode & 0o777).toBe(0o600);
        expect(w.outs).toMatchObject({ bucket: true, s3KeysDigest: digest });
        expect(n.outs).toMatchObject({ bucket: false });
        for (const s of [k.root.secretAccessKey, k.backup.secretAccessKey]) expect(JSON.stringify([w, n])).not.toContain(s);
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
        expect(keys().backup.accessKeyId).not.toBe(before.backup.accessKeyId);
        const olds = { storeDir, name: "writer", digest: "x", s3KeysDigest: d0 };
        expect(await qemuIdentityProvider.diff!("writer", olds, { storeDir, name: "writer", secrets: ["a"], s3Keys: { file, digest: d1 } })).toMatchObject({ changes: true });
        await qemuIdentityProvider.update!("writer", olds, { storeDir, name: "writer", secrets: ["a"], s3Keys: { file, digest: d1 } });
        expect(identity("writer").s3.accessKey).toBe(keys().backup.accessKeyId);
        await qemuBucketKeysProvider.delete!(file, { file });
        expect(fs.existsSync(file)).toBe(false);
    });
});
