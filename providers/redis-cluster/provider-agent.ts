/**
 * The RedisCluster resource in `agent` formation mode: the deployer never connects to a node.
 * create/update publish the spec (agent/deployer.ts) and wait for the converge agent to report it
 * applied, streaming its progress; read and diff report what the agent last observed (status.json),
 * so `pulumi refresh` shows drift and `pulumi preview` the agent's plan and what needs a decision.
 */
import * as pulumi from "@pulumi/pulumi";
import { publishSpec, readStatus, storeOf, waitForGeneration } from "./agent/deployer";
import { AgentStatusDoc } from "./agent/store";
import { REPAIRABLE, RedisClusterInputs, RedisClusterStatusOutputs, specOf, statusOutputs } from "./provider-model";
import { checkStoreSettings, credentialOf, CREDENTIAL_SHAPES } from "./agent/stores";

export function isAgentMode(i: RedisClusterInputs): boolean {
    return i.formation === "agent";
}

/** check(): what agent mode needs and what it cannot do. Returns failures as [property, reason]. */
export function checkAgentInputs(i: RedisClusterInputs): [string, string][] {
    const f: [string, string][] = [];
    if (i.formation !== undefined && i.formation !== "direct" && i.formation !== "agent") f.push(["formation", `formation must be "direct" or "agent"; got ${JSON.stringify(i.formation)}`]);
    if (!isAgentMode(i)) return f;
    const s = i.agentStore;
    if (!s) f.push(["agentStore", "agent mode needs agentStore (s3: {kind, endpoint, bucket, prefix, region}; gcs: {kind, bucket, prefix, endpoint?}; azure: {kind, endpoint, account, container, prefix}): where the spec is published and the agent's status read"]);
    else {
        const problem = checkStoreSettings(s);
        if (problem) f.push(["agentStore", `agentStore: ${problem}`]);
    }
    try {
        const c = credentialsOf(i);
        if (s && !checkStoreSettings(s)) credentialOf(s.kind, c, "agentStoreCredentials");
    } catch (e) {
        f.push(["agentStoreCredentials", (e as Error).message]);
    }
    if (i.rollingRestart) f.push(["rollingRestart", "rollingRestart restarts nodes from the deployer, which agent mode does not reach; use formation \"direct\" for it"]);
    if (i.deleteAction === "reset") f.push(["deleteAction", "deleteAction \"reset\" runs on the nodes from the deployer, which agent mode does not reach; use \"keep\" or formation \"direct\""]);
    return f;
}

/**
 * The deployer's store credentials: the `agentStoreCredentials` input when given (a secret), else
 * the deployer's environment, read at run time so that no credential lands in the state and a
 * rotated session key is not a change: s3 AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
 * (+ AWS_SESSION_TOKEN), gcs GOOGLE_OAUTH_ACCESS_TOKEN, azure AZURE_STORAGE_KEY (Shared Key) or
 * REDISFORGE_AZURE_STORAGE_TOKEN (an Entra ID token for https://storage.azure.com/).
 */
export function credentialsOf(i: RedisClusterInputs, env: NodeJS.ProcessEnv = process.env): unknown {
    const kind = i.agentStore?.kind;
    if (i.agentStoreCredentials === undefined || i.agentStoreCredentials === "") {
        if (kind === "s3" && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN || undefined };
        if (kind === "gcs" && env.GOOGLE_OAUTH_ACCESS_TOKEN) return { accessToken: env.GOOGLE_OAUTH_ACCESS_TOKEN };
        if (kind === "azure" && env.AZURE_STORAGE_KEY) return { accountKey: env.AZURE_STORAGE_KEY };
        if (kind === "azure" && env.REDISFORGE_AZURE_STORAGE_TOKEN) return { accessToken: env.REDISFORGE_AZURE_STORAGE_TOKEN };
        const names = { s3: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys)", gcs: "GOOGLE_OAUTH_ACCESS_TOKEN (gcloud auth print-access-token)", azure: "REDISFORGE_AZURE_STORAGE_TOKEN (az account get-access-token --resource https://storage.azure.com/) or AZURE_STORAGE_KEY" };
        throw new Error(`agent mode: the deployer's credentials for the ${kind ?? "?"} converge store are missing: set ${kind && kind in names ? names[kind] : "the store's credentials"} in the environment of pulumi up, or pass agentStoreCredentials`);
    }
    try {
        return JSON.parse(i.agentStoreCredentials);
    } catch {
        throw new Error(`agentStoreCredentials must be JSON ${kind && kind in CREDENTIAL_SHAPES ? CREDENTIAL_SHAPES[kind] : "(s3: {accessKeyId, secretAccessKey}; gcs: {accessToken}; azure: {accountKey} or {accessToken})"} (a secret); it is not JSON`);
    }
}

const storeFor = (i: RedisClusterInputs) => storeOf(i.agentStore!, credentialsOf(i));

/** Outputs from the agent's status: its observed topology, and as pending repairs what it plans or leaves to a decision. */
export function agentOutputs(st: AgentStatusDoc | undefined, fallback: Partial<RedisClusterStatusOutputs>): RedisClusterStatusOutputs {
    if (!st?.observed) {
        return { ...(fallback as RedisClusterStatusOutputs), state: "fail", problems: [st ? `the converge agent ${st.agent} has not observed the cluster yet (${st.phase})` : "no converge agent status yet"], pendingRepairs: [] };
    }
    const pending = [...(st.phase === "converging" || st.phase === "healing" ? st.plan : []), ...st.needsDecision.map((l) => `needs a decision: ${l}`)];
    const out = statusOutputs(st.observed, pending);
    if (st.phase === "failed" && st.lastError) out.problems = [...out.problems, `the converge agent's last run failed: ${st.lastError}`];
    return out;
}

/** create/update: publish, wait for the agent, report what it observed. */
export async function agentConverge(i: RedisClusterInputs): Promise<RedisClusterStatusOutputs> {
    const store = storeFor(i);
    const generation = await publishSpec(store, specOf(i), { heal: !!i.heal, convergeTimeoutMs: (i.convergeTimeoutSec ?? 60) * 1000, formationNodeTimeoutMs: i.formationNodeTimeoutMs, connectTimeoutMs: i.connectTimeoutSec === undefined ? undefined : i.connectTimeoutSec * 1000 });
    await pulumi.log.info(`RedisCluster: spec generation ${generation} published to ${store.where}; waiting for the converge agent`);
    const st = await waitForGeneration(store, generation, (i.agentWaitTimeoutSec ?? 1800) * 1000, (line) => void pulumi.log.info(`RedisCluster: ${line}`));
    return agentOutputs(st, {});
}

/** read: the agent's last observation (never fails: an agent that does not report is drift too). */
export async function agentRead(i: RedisClusterInputs, props: Record<string, unknown>): Promise<RedisClusterStatusOutputs> {
    try {
        return agentOutputs(await readStatus(storeFor(i)), props as Partial<RedisClusterStatusOutputs>);
    } catch (e) {
        return { ...(props as unknown as RedisClusterStatusOutputs), state: "fail", problems: [`read failed: ${(e as Error).message}`] };
    }
}

/**
 * diff's drift half in agent mode: an update is asked for when the agent's status shows drift the
 * next converge repairs (crowded masters it does not heal, a failed run), never by probing nodes.
 */
export async function agentDrift(i: RedisClusterInputs): Promise<{ changes: boolean; lines: string[] }> {
    let st: AgentStatusDoc | undefined;
    try {
        st = await readStatus(storeFor(i));
    } catch (e) {
        return { changes: false, lines: [`the converge agent's status could not be read (${(e as Error).message})`] };
    }
    if (!st) return { changes: true, lines: ["no converge agent status yet: pulumi up publishes the spec and waits for the agent"] };
    const lines = [...(st.phase === "failed" ? [`the agent's last run failed: ${st.lastError}`] : []), ...(st.observed?.problems ?? []), ...st.needsDecision.map((l) => `needs a decision: ${l}`)];
    const changes = st.phase === "failed" || (st.observed?.problems ?? []).some((p) => REPAIRABLE.some((r) => r.test(p)));
    return { changes, lines };
}
