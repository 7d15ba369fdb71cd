/**
 * The converge documents' store on each cloud's object store, against the real servers that speak
 * those APIs here: versitygw (S3: AWS and the qemu cloud), fake-gcs-server (GCS JSON API) and
 * Azurite (Azure Blob). What the agent and the deployer rely on:
 *
 * 1. the compare-and-swap contract (agent/store.ts) holds on each: create-only and
 *    replace-this-version conflict when someone wrote first, exactly one of two racing writers of
 *    the same version wins, a missing object reads as undefined, wrong credentials are an error
 *    naming the status (not a conflict, not "absent");
 * 2. the VM-identity credential paths (providers/object-store/instance-credentials.ts): the agent's
 *    S3 store through the qemu cloud's real metadata service (the IMDSv2 protocol AWS speaks), its
 *    GCS store through a GCE metadata server, with the token fetched once and cached;
 * 3. an agent process forms a cluster through the GCS store (instance credentials) and then, with a
 *    second spec published on Azure Blob (Shared Key from a 0600 file), adds the replicas: the same
 *    agent code on every store kind. The second agent is the bundle its image carries
 *    (scripts/build-converge-agent.sh), run by plain node: the packaged artifact works.
 *
 * Not checked here: the stores' IAM (fake-gcs-server accepts any token; Azurite's Shared Key is the
 * development account's); the Azure managed-identity token path (Azurite takes bearer tokens only
 * over HTTPS) — its request is unit-tested (tests/unit/redis-cluster/agent-stores.test.ts).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { AddressInfo } from "net";
import { Lab } from "../../../lab/lab";
import { GceMetadataServer } from "../../../lab/gce-metadata";
import { GcsServer, randomSecret, S3Server } from "../../../lab/object-stores";
import { azureSharedKeyAuthorization } from "../../../providers/object-store/azure-shared-key";
import { httpCall } from "../../../providers/object-store/http";
import { handler as qemuMetadataHandler } from "../../../providers/qemu/metadata-server";
import { AZURE_BLOB_VERSION } from "../../../providers/redis-cluster/agent/azure-store";
import { publishSpec, waitForGeneration } from "../../../providers/redis-cluster/agent/deployer";
import { CasStore } from "../../../providers/redis-cluster/agent/store";
import { AgentStoreSettings, openStore } from "../../../providers/redis-cluster/agent/stores";
import { checkCluster } from "../../../providers/redis-cluster/executor";
import { Azurite, AZURITE_ACCOUNT, AZURITE_KEY } from "../backup/azurite";
import { AgentProcess, startAgentProcess } from "./agent-process";
import { labCreds, labSpec, startLab } from "./helpers";

jest.setTimeout(300000);

const BUCKET = "redisforge-converge";
let lab: Lab;
let s3: S3Server;
let gcs: GcsServer;
let gce: GceMetadataServer;
let azurite: Azurite;
let imds: http.Server;
let imdsUrl: string;
const rootKeys = { accessKeyId: "root-stores", secretAccessKey: randomSecret() };
const nodeKeys = { accessKeyId: "node-stores", secretAccessKey: randomSecret() };
const agents: AgentProcess[] = [];

const azureSettings = (prefix: string): AgentStoreSettings => ({ kind: "azure", endpoint: `http://127.0.0.1:${azurite.port}/${AZURITE_ACCOUNT}`, account: AZURITE_ACCOUNT, container: BUCKET, prefix });
const gcsSettings = (prefix: string): AgentStoreSettings => ({ kind: "gcs", endpoint: `http://${gcs.host}:${gcs.port}`, bucket: BUCKET, prefix });
const s3Settings = (prefix: string): AgentStoreSettings => ({ kind: "s3", endpoint: s3.endpoint, bucket: s3.bucket, prefix, region: "us-east-1" });

beforeAll(async () => {
    lab = await startLab("agent-stores", 6);
    s3 = await S3Server.start({ dir: path.join(lab.dir, "s3"), root: rootKeys, bucket: BUCKET, backupUser: nodeKeys });
    gcs = await GcsServer.start({ dir: path.join(lab.dir, "gcs"), buckets: [BUCKET] });
    gce = await GceMetadataServer.start();
    azurite = await Azurite.start(path.join(lab.dir, "azurite"));
    // The container, with a Shared Key request signed by our signer (a query string included).
    const url = new URL(`http://127.0.0.1:${azurite.port}/${AZURITE_ACCOUNT}/${BUCKET}?restype=container`);
    const h: Record<string, string> = { "x-ms-date": new Date().toUTCString(), "x-ms-version": AZURE_BLOB_VERSION, "content-length": "0" };
    h.authorization = azureSharedKeyAuthorization("PUT", url, h, AZURITE_ACCOUNT, AZURITE_KEY);
    const made = await httpCall(url, "PUT", h);
    expect(made.status).toBe(201);
    // The qemu cloud's metadata service, for real, knowing 127.0.0.1 as a Redis VM with the node keys.
    const md = path.join(lab.dir, "metadata");
    fs.mkdirSync(path.join(md, "members"), { recursive: true });
    fs.mkdirSync(path.join(md, "identities"), { recursive: true });
    fs.writeFileSync(path.join(md, "members", "127.0.0.1"), "vm-node0\n");
    fs.writeFileSync(path.join(md, "identities", "vm-node0.json"), JSON.stringify({ secrets: [], s3: { accessKey: nodeKeys.accessKeyId, secretKey: nodeKeys.secretAccessKey } }));
    imds = http.createServer(qemuMetadataHandler(md));
    await new Promise<void>((r) => imds.listen(0, "127.0.0.1", r));
    imdsUrl = `http://127.0.0.1:${(imds.address() as AddressInfo).port}`;
});

afterAll(async () => {
    for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill("SIGKILL");
    imds?.closeAllConnections();
    await new Promise((r) => imds?.close(r));
    await azurite?.stop();
    await gce?.stop();
    await gcs?.stop();
    await s3?.stop();
    await lab?.stop({ removeData: true });
});

async function checkContract(store: CasStore): Promise<void> {
    expect(await store.read("absent.json")).toBeUndefined();
    const v1 = await store.write("doc.json", '{"n":1}', { ifAbsent: true });
    if (v1 === "conflict") throw new Error(`${store.where}: first create conflicted`);
    expect(await store.write("doc.json", '{"n":9}', { ifAbsent: true })).toBe("conflict");
    const r1 = await store.read("doc.json");
    expect(r1).toEqual({ body: '{"n":1}', version: v1.version });
    const v2 = await store.write("doc.json", '{"n":2}', { ifVersion: v1.version });
    if (v2 === "conflict") throw new Error(`${store.where}: replace of the current version conflicted`);
    expect(v2.version).not.toBe(v1.version);
    expect(await store.write("doc.json", '{"n":3}', { ifVersion: v1.version })).toBe("conflict");
    expect((await store.read("doc.json"))?.body).toBe('{"n":2}');
    // Two writers race on the same version: exactly one wins, the other sees a conflict.
    const race = await Promise.all([store.write("doc.json", '{"w":"a"}', { ifVersion: v2.version }), store.write("doc.json", '{"w":"b"}', { ifVersion: v2.version })]);
    expect(race.filter((x) => x === "conflict")).toHaveLength(1);
    const winner = race.find((x) => x !== "conflict") as { version: string };
    const now = await store.read("doc.json");
    expect(now?.version).toBe(winner.version);
    expect(['{"w":"a"}', '{"w":"b"}']).toContain(now?.body);
    // Unconditional writes replace whatever is there.
    expect(await store.write("doc.json", '{"n":4}')).not.toBe("conflict");
    expect((await store.read("doc.json"))?.body).toBe('{"n":4}');
}

test("S3 (versitygw): the compare-and-swap contract holds; a wrong secret is an error naming 403, not a conflict", async () => {
    await checkContract(openStore(s3Settings("converge/contract"), { static: nodeKeys }));
    const wrong = openStore(s3Settings("converge/contract"), { static: { ...nodeKeys, secretAccessKey: "wrong" } });
    await expect(wrong.read("doc.json")).rejects.toThrow(/GET answered 403/);
    await expect(wrong.write("doc.json", "{}", { ifAbsent: true })).rejects.toThrow(/PUT answered 403/);
});

test("GCS (fake-gcs-server JSON API): generations are the versions and the contract holds", async () => {
    const store = openStore(gcsSettings("converge/contract"), { static: { accessToken: "deployer-token" } });
    await checkContract(store);
    const st = await store.read("doc.json");
    expect(st?.version).toMatch(/^\d+$/);
});

test("Azure Blob (Azurite, Shared Key signed by our signer): ETags are the versions and the contract holds; a wrong key is 403", async () => {
    await checkContract(openStore(azureSettings("converge/contract"), { static: { accountKey: AZURITE_KEY } }));
    const wrong = openStore(azureSettings("converge/contract"), { static: { accountKey: Buffer.from("not the key").toString("base64") } });
    await expect(wrong.read("doc.json")).rejects.toThrow(/GET answered 403/);
});

test("instance credentials: the S3 store through the qemu cloud's real metadata service (IMDSv2), GCS through a GCE metadata server with one token for many requests", async () => {
    const viaImds = openStore(s3Settings("converge/instance"), { instance: { endpoint: imdsUrl } });
    expect(await viaImds.write("i.json", "{}", { ifAbsent: true })).not.toBe("conflict");
    expect((await viaImds.read("i.json"))?.body).toBe("{}");
    const before = (await gce.stats()).tokenRequests;
    const viaGce = openStore(gcsSettings("converge/instance"), { instance: { endpoint: `http://${gce.hostPort}` } });
    await checkContract(viaGce);
    expect((await gce.stats()).tokenRequests - before).toBe(1);
    // A VM without an identity gets a clear error, not a hang.
    const noRole = openStore(s3Settings("converge/instance"), { instance: { endpoint: `http://${gce.hostPort}` } });
    await expect(noRole.read("i.json")).rejects.toThrow(/instance role credentials: .*latest\/api\/token answered 403/);
});

test("one agent, two store kinds: formed through GCS with instance credentials, then reshaped by a spec published on Azure Blob", async () => {
    const gcsAgent = startAgentProcess({ lab, name: "gcs-agent", prefix: "converge/form", store: gcsSettings("converge/form"), instance: { endpoint: `http://${gce.hostPort}` }, config: { leaseTtlMs: 6000 } });
    agents.push(gcsAgent);
    const deployerGcs = openStore(gcsSettings("converge/form"), { static: { accessToken: "deployer-token" } });
    const g1 = await publishSpec(deployerGcs, labSpec(lab, [0, 1, 2], 3, 0), { heal: false });
    const st1 = await waitForGeneration(deployerGcs, g1, 120000);
    expect(st1.phase).toBe("converged");
    expect(st1.observed?.masters).toHaveLength(3);
    gcsAgent.child.kill("SIGTERM");

    const bundle = path.join(lab.dir, "converge-agent.js");
    execFileSync("bash", [path.resolve(__dirname, "../../../scripts/build-converge-agent.sh"), bundle], { stdio: "pipe", timeout: 120000 });
    const azAgent = startAgentProcess({ lab, name: "azure-agent", prefix: "converge/form", store: azureSettings("converge/form"), credentialsDoc: { accountKey: AZURITE_KEY }, config: { leaseTtlMs: 6000 }, bundle });
    agents.push(azAgent);
    expect((fs.statSync(path.join(azAgent.dir, "store.json")).mode & 0o777).toString(8)).toBe("600");
    const deployerAz = openStore(azureSettings("converge/form"), { static: { accountKey: AZURITE_KEY } });
    const g2 = await publishSpec(deployerAz, labSpec(lab, [0, 1, 2, 3, 4, 5], 3, 1), { heal: false });
    const st2 = await waitForGeneration(deployerAz, g2, 180000);
    expect(st2.phase).toBe("converged");
    expect(st2.agent).toMatch(/^azure-agent/);
    const cluster = await checkCluster(labSpec(lab, [0, 1, 2, 3, 4, 5], 3, 1), labCreds(lab));
    expect(cluster.state).toBe("ok");
    expect(cluster.masters).toHaveLength(3);
    expect(cluster.problems).toEqual([]);
    expect(cluster.replicas).toHaveLength(3);
    for (const r of cluster.replicas) expect(r.zone).not.toBe(cluster.masters.find((m) => m.id === r.master)?.zone);
    azAgent.child.kill("SIGTERM");
});
