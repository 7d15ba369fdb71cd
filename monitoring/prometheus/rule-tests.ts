/**
 * `promtool test rules` cases for every alert in rules.ts: for each alert at least one case where
 * it fires and one where it must not. monitoring/generate.ts writes them to
 * monitoring/prometheus/tests/redisforge.test.yml.
 *
 * The input series, evaluation times, expected alert labels and expected `$value` texts are written
 * by hand in rule-test-cases.ts. Only the expected annotation strings are assembled here, by filling the alert's
 * annotation templates with the hand-written labels and values (promtool compares annotations
 * exactly, and Prometheus does the real rendering), so a template that refers to a label the alert
 * does not carry fails the test.
 */
import { ALERTS, runbookUrl } from "./rules";
import { CASES, Expect, Labels } from "./rule-test-cases";

export { targetLabels } from "./rule-test-cases";

/** Fills `{{ $labels.x }}` and `{{ $value [| filter] }}` from hand-written expectations. */
function expectAnnotation(template: string, alert: string, e: Expect): string {
    return template.replace(/\{\{\s*\$(labels\.([a-zA-Z_][a-zA-Z0-9_]*)|value(?:\s*\|\s*(\w+))?)\s*\}\}/g, (_m, _all, label?: string, filter?: string) => {
        if (label !== undefined) {
            if (!(label in e.labels)) throw new Error(`rule-tests: alert ${alert} annotation uses $labels.${label}, which the expected alert does not carry; add it to the case or fix the template`);
            return e.labels[label];
        }
        const key = (filter ?? "raw") as keyof NonNullable<Expect["value"]>;
        const text = e.value?.[key];
        if (text === undefined) throw new Error(`rule-tests: alert ${alert} annotation renders $value${filter ? ` | ${filter}` : ""}; give value.${key} in the case`);
        return text;
    });
}

export interface PromtoolTestFile {
    rule_files: string[];
    evaluation_interval: string;
    tests: {
        name: string;
        interval: string;
        input_series: { series: string; values: string }[];
        alert_rule_test: { eval_time: string; alertname: string; exp_alerts: { exp_labels: Labels; exp_annotations: Labels }[] }[];
    }[];
}

/** The promtool test file (rule_files relative to monitoring/prometheus/tests/). */
export function ruleTestFile(ruleFiles: string[] = ["../rules/redisforge.yml"], evaluationInterval = "1m"): PromtoolTestFile {
    const byName = new Map(ALERTS.map((a) => [a.alert, a]));
    return {
        rule_files: ruleFiles,
        evaluation_interval: evaluationInterval,
        tests: CASES.filter((c) => (c.evaluationInterval ?? "1m") === evaluationInterval).map((c) => ({
            name: c.name,
            interval: c.interval ?? "1m",
            input_series: c.series.map(([series, values]) => ({ series, values })),
            alert_rule_test: c.checks.map((chk) => {
                const def = byName.get(chk.alert);
                if (!def) throw new Error(`rule-tests: case "${c.name}" checks unknown alert ${chk.alert}`);
                return {
                    eval_time: chk.at,
                    alertname: chk.alert,
                    exp_alerts: chk.fires.map((e) => ({
                        exp_labels: { ...e.labels, severity: def.severity, scope: def.scope },
                        exp_annotations: {
                            summary: expectAnnotation(def.summary, def.alert, e),
                            description: expectAnnotation(def.description, def.alert, e),
                            runbook_url: runbookUrl(def.alert),
                        },
                    })),
                };
            }),
        })),
    };
}
