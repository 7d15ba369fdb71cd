/**
 * The converge store's settings, credentials and the instance-credential requests, without the
 * object stores (tests/integration/redis-cluster/agent-stores.test.ts runs the stores for real):
 * - what a bad agent config or RedisCluster input is told (named, nothing opened);
 * - the Azure managed-identity token request as Azure's IMDS documents it (api-version,
 *   resource https://storage.azure.com/, client_id of a user-assigned identity, `Metadata: true`,
 *   expires_on in epoch seconds), on a loopback server that records what it was asked;
 * - every instance source caches its credential until 5 minutes before its expiry, then fetches anew.
 */
import * as http from "http";
import { AddressInfo } from "net";
import { azureInstanceToken, gceInstanceToken } from "../../../providers/object-store/instance-credentials";
import { azureSharedKeyString } from "../../../providers/object-store/azure-shared-key";
import { agentFromConfig, AgentConfig } from "../../../providers/redis-cluster/agent/main";
import { checkStoreSettings, credentialOf, openStore } from "../../../providers/redis-cluster/agent/stores";
import { checkAgentInputs, credentialsOf } from "../../../providers/redis-cluster/provider-agent";
import { gateWaitingFor } from "../../../providers/redis-cluster/agent-gate";
import { AgentStatusDoc } from "../../../providers/redis-cluster/agent/store";
import { RedisClusterInputs } from "../../../providers/redis-cluster/provider-model";

let server: http.Server;
let base: string;
const asked: { url: string; headers: http.IncomingHttpHeaders }[] = [];
let expiresOn = 0;

beforeAll(async () => {
    server = http.createServer((req, res) => {
        asked.push({ url: req.url ?? "", headers: req.headers });
        if (req.url?.startsWith("/metadata/identity/oauth2/token")) {
            if (req.headers.metadata !== "true") return res.writeHead(400).end("{}");
            return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: `tok-${asked.length}`, expires_on: String(expiresOn), resource: "https://storage.azure.com/", token_type: "Bearer" }));
        }
        if (req.url === "/computeMetadata/v1/instance/service-accounts/default/token") return res.writeHead(200).end(JSON.stringify({ access_token: `gtok-${asked.length}`, expires_in: 3600 }));
        return res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
});

test("Azure managed identity: the documented request, the client id of a user-assigned identity, cached until 5 min before expires_on", async () => {
    let now = 1_800_000_000_000;
    expiresOn = now / 1000 + 3600;
    asked.length = 0;
    const token = azureInstanceToken({ endpoint: base, clientId: "1111-2222", now: () => now });
    const t1 = await token();
    expect(asked).toHaveLength(1);
    const u = new URL(asked[0].url, base);
    expect(u.pathname).toBe("/metadata/identity/oauth2/token");
    expect(Object.fromEntries(u.searchParams)).toEqual({ "api-version": "2018-02-01", resource: "https://storage.azure.com/", client_id: "1111-2222" });
    expect(asked[0].headers.metadata).toBe("true");
    now += 54 * 60 * 1000; // 6 min before expiry: still the cached token
    expect(await token()).toBe(t1);
    expect(asked).toHaveLength(1);
    now += 2 * 60 * 1000; // 4 min before expiry: fetched anew
    expiresOn = now / 1000 + 3600;
    expect(await token()).not.toBe(t1);
    expect(asked).toHaveLength(2);
});

test("GCE token: expires_in counts from the fetch; refreshed 5 min early", async () => {
    let now = 1_800_000_000_000;
    asked.length = 0;
    const token = gceInstanceToken({ endpoint: base, now: () => now });
    const t1 = await token();
    expect(asked[0].headers["metadata-flavor"]).toBe("Google");
    now += 54 * 60 * 1000;
    expect(await token()).toBe(t1);
    now += 2 * 60 * 1000;
    expect(await token()).not.toBe(t1);
    expect(asked).toHaveLength(2);
});

test("an identity endpoint that refuses is an error naming the endpoint and status, never a hang", async () => {
    await expect(azureInstanceToken({ endpoint: `${base}/nothing-here`, timeoutMs: 2000 })()).rejects.toThrow(/managed identity token: .*\/nothing-here\/metadata\/identity\/oauth2\/token answered 404/);
});

test("Shared Key string to sign: standard headers in order, empty Content-Length for 0, x-ms-* sorted, resource with sorted query", () => {
    const url = new URL("http://127.0.0.1:10000/devstoreaccount1/c1?restype=container&comp=list");
    const s = azureSharedKeyString("PUT", url, { "x-ms-version": "2021-08-06", "X-Ms-Date": "Mon, 30 Nov 2026 12:00:00 GMT", "content-length": "0", "if-match": '"0x1"' }, "devstoreaccount1");
    expect(s.split("\n")).toEqual([
        "PUT", "", "", "", "", "", "", "", '"0x1"', "", "", "",
        "x-ms-date:Mon, 30 Nov 2026 12:00:00 GMT",
        "x-ms-version:2021-08-06",
        "/devstoreaccount1/devstoreaccount1/c1",
        "comp:list",
        "restype:container",
    ]);
});

test("store settings and credentials: each kind says what it needs", () => {
    expect(checkStoreSettings({ kind: "gcs", bucket: "b", prefix: "p" })).toBeNull();
    expect(checkStoreSettings({ kind: "azure", endpoint: "https://a.blob.core.windows.net", account: "a" })).toMatch(/azure store needs endpoint, account, container, prefix; missing or empty: container, prefix/);
    expect(checkStoreSettings({ kind: "ftp" })).toMatch(/kind must be one of s3, gcs, azure/);
    expect(() => credentialOf("gcs", { accessKeyId: "x" }, "creds")).toThrow(/gcs store's credentials must be JSON \{"accessToken"\}; got keys \[accessKeyId\]/);
    expect(() => credentialOf("azure", { accountKey: "k", accessToken: "t" }, "creds")).toThrow(/\{"accountKey"\} or \{"accessToken"\}/);
    expect(() => openStore({ kind: "s3", endpoint: "http://x:1", bucket: "bb-b", prefix: "/p/", region: "r" }, { static: { accessKeyId: "a", secretAccessKey: "s" } })).toThrow(/prefix must be path segments/);
});

test("agent config: a bad store or credential source is refused with every problem named, before anything starts", () => {
    const cfg = { store: { kind: "gcs", bucket: "b" }, storeCredentials: { file: "/x", instance: {} }, redis: { username: "converge" } } as unknown as AgentConfig;
    expect(() => agentFromConfig(cfg)).toThrow(/store: a gcs store needs bucket, prefix; missing or empty: prefix; storeCredentials must be \{"file": "<path>"\} or \{"instance": \{\}\}.*; redis.passwordFile is required; redis.caFile is required/);
});

test("RedisCluster in agent mode: check() names a store without its fields and credentials of the wrong shape for the kind", () => {
    const i = { formation: "agent", agentStore: { kind: "azure", endpoint: "https://acct.blob.core.windows.net", account: "acct", container: "c1", prefix: "converge/x" }, agentStoreCredentials: JSON.stringify({ accessKeyId: "a", secretAccessKey: "b" }) } as unknown as RedisClusterInputs;
    expect(checkAgentInputs(i)).toEqual([["agentStoreCredentials", expect.stringMatching(/azure store's credentials must be JSON \{"accountKey"\} or \{"accessToken"\}/)]]);
    expect(checkAgentInputs({ ...i, agentStore: { kind: "gcs" } } as unknown as RedisClusterInputs)[0]).toEqual(["agentStore", expect.stringMatching(/gcs store needs bucket, prefix/)]);
    expect(checkAgentInputs({ ...i, agentStoreCredentials: JSON.stringify({ accountKey: "a2V5" }) })).toEqual([]);
});

test("the deployer's store credentials come from its environment when no input carries them, named per kind when missing", () => {
    const s3 = { agentStore: { kind: "s3" } } as unknown as RedisClusterInputs;
    expect(credentialsOf(s3, { AWS_ACCESS_KEY_ID: "AKIA1", AWS_SECRET_ACCESS_KEY: "s", AWS_SESSION_TOKEN: "t" })).toEqual({ accessKeyId: "AKIA1", secretAccessKey: "s", sessionToken: "t" });
    expect(credentialsOf({ agentStore: { kind: "gcs" } } as unknown as RedisClusterInputs, { GOOGLE_OAUTH_ACCESS_TOKEN: "ya29" })).toEqual({ accessToken: "ya29" });
    expect(credentialsOf({ agentStore: { kind: "azure" } } as unknown as RedisClusterInputs, { REDISFORGE_AZURE_STORAGE_TOKEN: "eyJ" })).toEqual({ accessToken: "eyJ" });
    expect(() => credentialsOf(s3, {})).toThrow(/credentials for the s3 converge store are missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    expect(() => credentialsOf({ agentStore: { kind: "azure" } } as unknown as RedisClusterInputs, {})).toThrow(/REDISFORGE_AZURE_STORAGE_TOKEN .* or AZURE_STORAGE_KEY/);
    // An explicit input wins over the environment.
    expect(credentialsOf({ ...s3, agentStoreCredentials: JSON.stringify({ accessKeyId: "in", secretAccessKey: "put" }) } as RedisClusterInputs, { AWS_ACCESS_KEY_ID: "env", AWS_SECRET_ACCESS_KEY: "env" })).toEqual({ accessKeyId: "in", secretAccessKey: "put" });
});

test("AgentGate: passes only on a fresh whole cluster, and after a replacement only once the node is back", () => {
    const since = Date.parse("2026-11-30T12:00:00Z");
    const st = (o: Partial<AgentStatusDoc["observed"]> & object, at = "2026-11-30T12:00:05Z") =>
        ({ updatedAt: at, phase: "converged", observed: { state: "ok", problems: [], masters: [{ address: "10.0.0.1:6379" }], replicas: [{ address: "10.0.0.2:6379", linkUp: true }], slotsCovered: 16384, ...o } }) as unknown as AgentStatusDoc;
    const node = { host: "10.0.0.2", port: 6379, nodeKey: "node1" };
    expect(gateWaitingFor(undefined, { ...node, phase: "before" }, since)).toMatch(/no status/);
    expect(gateWaitingFor(st({}, "2026-11-30T11:59:59Z"), { ...node, phase: "before" }, since)).toMatch(/predates this gate/);
    expect(gateWaitingFor(st({ state: "fail", problems: ["slots uncovered"] }), { ...node, phase: "before" }, since)).toMatch(/not ok: fail; slots uncovered/);
    expect(gateWaitingFor(st({}), { ...node, phase: "before" }, since)).toBeNull();
    expect(gateWaitingFor(st({}), { ...node, phase: "after" }, since)).toBeNull();
    expect(gateWaitingFor(st({ replicas: [{ address: "10.0.0.2:6379", linkUp: false }] } as never), { ...node, phase: "after" }, since)).toMatch(/link is down/);
    expect(gateWaitingFor(st({ replicas: [] }), { ...node, phase: "after" }, since)).toMatch(/node1 \(10.0.0.2:6379\) is not a member yet/);
});
