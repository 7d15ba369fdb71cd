/**
 * AgentGate: the rolling chain's gates in formation `agent`, where the deployer does not reach the
 * nodes (RollingGate's job, done through the converge agent's status instead of a connection).
 * The chain and its data dependencies are the same (components/redisforge.ts):
 *
 *   before(n1) -> VM(n1) -> after(n1) -> before(n2) -> VM(n2) -> after(n2) -> ...
 *
 * A gate acts only when what the node runs changes (gateChanges, as RollingGate); on create it does
 * nothing. Both phases read status.json (agent/deployer.ts readStatus) and wait (bounded) for an
 * observation newer than the gate's own start:
 *   - before: the cluster is whole (state ok, no problem) before this node is taken away;
 *   - after: this node (by its reserved address) is back as a member (a master, or a replica with
 *     its link up) and the cluster is ok again.
 * What differs from direct mode, stated: there is no planned failover before a master's VM is
 * replaced: Redis fails it over by itself (its shard refuses writes for about
 * cluster-node-timeout), and the agent with heal (or the RedisCluster update at the end of the run)
 * puts the masters back into their zones.
 */
import * as pulumi from "@pulumi/pulumi";
import type { ConvergeStoreSettings } from "../types";
import { readStatus, storeOf } from "./agent/deployer";
import { AgentStatusDoc } from "./agent/store";
import { AgentStoreSettings } from "./agent/stores";
import { credentialsOf } from "./provider-agent";
import { gateChanges, GateChainArgs, GateChainInputs } from "./rolling-gate";
import { RedisClusterInputs } from "./provider-model";

export interface AgentGateArgs extends GateChainArgs {
    /** The converge store (names only; the deployer's credentials come from its environment). */
    store: pulumi.Input<ConvergeStoreSettings>;
    /** Bound, seconds. Default 900 (a VM replacement boots a machine, then the node syncs). */
    timeoutSec?: number;
}

interface Inputs extends GateChainInputs {
    store: AgentStoreSettings;
    timeoutSec?: number;
}

/** Pure: does this status, observed after `since`, let the gate pass? Returns the reason it does not. */
export function gateWaitingFor(st: AgentStatusDoc | undefined, i: Pick<Inputs, "phase" | "host" | "port" | "nodeKey">, since: number): string | null {
    if (!st) return "no status from the converge agent (is it running on the nodes?)";
    if (Date.parse(st.updatedAt) < since) return `the agent's last status (${st.updatedAt}) predates this gate`;
    const o = st.observed;
    if (!o) return `the agent has not observed the cluster (${st.phase})`;
    if (o.state !== "ok" || o.problems.length > 0) return `the cluster is not ok: ${[o.state, ...o.problems].join("; ")}`;
    if (i.phase === "before") return null;
    const addr = `${i.host}:${i.port}`;
    if (o.masters.some((m) => m.address === addr)) return null;
    const r = o.replicas.find((x) => x.address === addr);
    if (r?.linkUp) return null;
    return r ? `${i.nodeKey} (${addr}) is back as a replica but its link is down` : `${i.nodeKey} (${addr}) is not a member yet`;
}

export const agentGateProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: Inputs) {
        return { id: `agent-gate-${inputs.phase}-${inputs.nodeKey}`, outs: inputs };
    },
    async diff(_id: string, olds: Inputs, news: Inputs) {
        return { changes: gateChanges(olds, news) || olds.phase !== news.phase, replaces: [], deleteBeforeReplace: false };
    },
    async update(_id: string, olds: Inputs, news: Inputs) {
        if (!gateChanges(olds, news)) return { outs: news };
        const store = storeOf(news.store, credentialsOf({ agentStore: news.store } as RedisClusterInputs));
        const since = Date.now();
        const deadline = since + Number(news.timeoutSec ?? 900) * 1000;
        let why: string | null = "not read yet";
        for (let i = 0; Date.now() < deadline && i < 100000; i++) {
            why = gateWaitingFor(await readStatus(store).catch(() => undefined), news, since);
            if (why === null) return { outs: news };
            await new Promise((r) => setTimeout(r, 5000));
        }
        throw new Error(`AgentGate ${news.phase} ${news.nodeKey}: not passed within ${news.timeoutSec ?? 900} s: ${why}. A rerun of pulumi up resumes the rolling replacement here.`);
    },
};

export class AgentGate extends pulumi.dynamic.Resource {
    constructor(name: string, args: AgentGateArgs, opts: pulumi.CustomResourceOptions = {}) {
        super(agentGateProvider, name, args, opts, "redisforge", "AgentGate");
    }
}
