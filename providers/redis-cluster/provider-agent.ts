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

function credentialsOf(i: RedisClusterInputs): unknown {
    try {
        return JSON.parse(i.agentStoreCredentials ?? "");
    } catch {
        const kind = i.agentStore?.kind;
        throw new Error(`agentStoreCredentials must be JSON ${kind && kind in CREDENTIAL_SHAPES ? CREDENTIAL_SHAPES[kind] : "(s3: {accessKeyId, secretAccessKey}; gcs: {accessToken}; azure: {accountKey} or {accessToken})"} (a secret); it is missing or not JSON`);
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
    const generation = await publishSpec(store, specOf(i), { heal: !!i.heal, convergeTimeoutMs: (i.convergeTimeoutSec ?? 60) * 1000, formationNodeTimeoutMs: i.formationNodeTimeoutMs });
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
