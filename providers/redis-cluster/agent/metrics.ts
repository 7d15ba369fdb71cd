/**
 * The converge agent's node_exporter textfile (the lease holder writes it at every status write;
 * RedisForgeConvergeNeedsDecision / RedisForgeConvergeFailing read it). One writer, used by the agent
 * and by the monitoring test that checks every metric the rules read is really exposed.
 */
import * as fs from "fs";
import { AgentStatusDoc } from "./store";

export function renderConvergeMetrics(st: Pick<AgentStatusDoc, "needsDecision" | "phase" | "appliedGeneration">): string {
    return [
        "# HELP redisforge_converge_needs_decision Repairs the converge agent will not do without a new spec (status.json needsDecision).",
        "# TYPE redisforge_converge_needs_decision gauge",
        `redisforge_converge_needs_decision ${st.needsDecision.length}`,
        "# HELP redisforge_converge_failed 1 while the agent's last converge or heal run failed.",
        "# TYPE redisforge_converge_failed gauge",
        `redisforge_converge_failed ${st.phase === "failed" ? 1 : 0}`,
        "# HELP redisforge_converge_leader 1 on the node whose agent holds the lease.",
        "# TYPE redisforge_converge_leader gauge",
        "redisforge_converge_leader 1",
        "# HELP redisforge_converge_applied_generation The spec generation the cluster was last converged to.",
        "# TYPE redisforge_converge_applied_generation gauge",
        `redisforge_converge_applied_generation ${st.appliedGeneration}`,
        "",
    ].join("\n");
}

/** tmp file + rename, so node_exporter never reads half a file. */
export function writeConvergeMetrics(file: string, st: Pick<AgentStatusDoc, "needsDecision" | "phase" | "appliedGeneration">): void {
    fs.writeFileSync(`${file}.tmp`, renderConvergeMetrics(st), { mode: 0o644 });
    fs.renameSync(`${file}.tmp`, file);
}
