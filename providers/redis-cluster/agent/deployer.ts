/**
 * The deployer's side of the converge agent (the RedisCluster resource in `agent` formation mode):
 * publish the desired spec, wait (bounded) until the agent reports that generation applied,
 * stream its progress, and fail with the agent's own diagnosis. Talks only to the store: the
 * deployer needs no route to the nodes.
 */
import { ClusterSpec } from "../types";
import { AgentSpecDoc, AgentStatusDoc, CasStore, parseDoc, SPEC_KEY, STATUS_KEY } from "./store";
import { AgentStoreSettings, openStore } from "./stores";

/** Where the agent's documents live, as the RedisCluster resource takes it (no secret): stores.ts. */
export type { AgentStoreSettings } from "./stores";

/** The deployer's store: its own credentials (a secret input), never the nodes'. */
export function storeOf(s: AgentStoreSettings, credentials: unknown): CasStore {
    return openStore(s, { static: credentials });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Writes spec.json with the next generation (always a new one: an update with unchanged inputs
 * asks the agent for a full converge, which also repairs drift). Conditional on the version read,
 * so two deployers racing do not both think their spec is the current one.
 */
export async function publishSpec(store: CasStore, spec: ClusterSpec, o: { heal: boolean; convergeTimeoutMs?: number; formationNodeTimeoutMs?: number; connectTimeoutMs?: number }): Promise<number> {
    for (let attempt = 0; attempt < 5; attempt++) {
        const cur = await store.read(SPEC_KEY);
        const prev = parseDoc<AgentSpecDoc>(cur, `${store.where}/${SPEC_KEY}`);
        const doc: AgentSpecDoc = {
            format: 1,
            generation: (prev?.generation ?? 0) + 1,
            spec,
            heal: o.heal,
            convergeTimeoutMs: o.convergeTimeoutMs,
            formationNodeTimeoutMs: o.formationNodeTimeoutMs,
            connectTimeoutMs: o.connectTimeoutMs,
            publishedAt: new Date().toISOString(),
        };
        const r = await store.write(SPEC_KEY, JSON.stringify(doc), cur ? { ifVersion: cur.version } : { ifAbsent: true });
        if (r !== "conflict") return doc.generation;
    }
    throw new Error(`${store.where}/${SPEC_KEY}: another deployer kept writing the spec (5 conflicts in a row); is a second pulumi up running on this stack?`);
}

export async function readStatus(store: CasStore): Promise<AgentStatusDoc | undefined> {
    return parseDoc<AgentStatusDoc>(await store.read(STATUS_KEY), `${store.where}/${STATUS_KEY}`);
}

/**
 * Waits until the agent reports `generation` converged; returns that status. Fails at once when
 * the agent reports that generation failed (its lastError is the message), and at the deadline
 * with what the agent last said (or that no agent wrote a status: none running, or none can
 * reach the store). `onProgress` gets each new progress line.
 */
export async function waitForGeneration(store: CasStore, generation: number, timeoutMs: number, onProgress: (line: string) => void = () => undefined, pollMs = 2000): Promise<AgentStatusDoc> {
    const deadline = Date.now() + timeoutMs;
    let last: AgentStatusDoc | undefined;
    let lastLine = "";
    for (let i = 0; Date.now() < deadline && i < 100000; i++) {
        try {
            last = await readStatus(store);
        } catch (e) {
            onProgress(`status not readable yet: ${(e as Error).message}`);
        }
        if (last && last.appliedGeneration >= generation && last.phase !== "converging") return last;
        if (last && last.generation === generation && last.phase === "failed") {
            throw new Error(`the converge agent ${last.agent} failed generation ${generation}: ${last.lastError ?? "(no error recorded)"}`);
        }
        const line = last ? `agent ${last.agent}: ${last.phase}${last.generation === generation ? "" : ` (generation ${last.generation}, waiting for ${generation})`}${last.progress ? `: ${last.progress.message}` : ""}` : `no status in ${store.where} yet`;
        if (line !== lastLine) onProgress(line);
        lastLine = line;
        await sleep(pollMs);
    }
    throw new Error(
        last
            ? `the converge agent did not report generation ${generation} converged within ${Math.round(timeoutMs / 1000)} s; it last reported (${last.updatedAt}, agent ${last.agent}): ${last.phase}${last.lastError ? `: ${last.lastError}` : ""}`
            : `no converge agent wrote ${store.where}/${STATUS_KEY} within ${Math.round(timeoutMs / 1000)} s: is the agent unit running on the nodes, and may their identity write the store?`,
    );
}
