/**
 * Prometheus rules: the committed files are what the generators produce, promtool accepts the
 * rules and passes every unit test, every alert has a firing and a non-firing test case, and every
 * alert carries severity, scope, summary, description and a runbook link that resolves.
 */
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { generatedFiles } from "../../../monitoring/generate";
import { ALERTS, RUNBOOK_BASE_URL, runbookAnchor, THRESHOLDS } from "../../../monitoring/prometheus/rules";
import { BACKUP_LAST_SUCCESS_METRIC, exporterAclRules } from "../../../components/exporter-targets";
import { REPO, run, tempDir } from "./tools";

const RULES_DIR = path.join(REPO, "monitoring/prometheus/rules");
const TESTS_DIR = path.join(REPO, "monitoring/prometheus/tests");

interface RuleYaml {
    groups: { name: string; rules: { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] }[];
}
interface TestYaml {
    rule_files: string[];
    tests: { name: string; alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: unknown[] }[] }[];
}

const ruleFiles = fs.readdirSync(RULES_DIR).filter((f) => /\.ya?ml$/.test(f));
const testFiles = fs.readdirSync(TESTS_DIR).filter((f) => /\.ya?ml$/.test(f));

function alertsInRuleFiles(): { alert: string; file: string; rule: RuleYaml["groups"][0]["rules"][0] }[] {
    return ruleFiles.flatMap((file) => {
        const doc = parse(fs.readFileSync(path.join(RULES_DIR, file), "utf8")) as RuleYaml;
        return doc.groups.flatMap((g) => g.rules.filter((r) => r.alert).map((rule) => ({ alert: rule.alert!, file, rule })));
    });
}

/** Slug of a Markdown heading the way GitHub builds anchors. */
function githubSlug(heading: string): string {
    return heading
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, "")
        .replace(/\s/g, "-");
}

describe("generated monitoring files", () => {
    test.each(Object.entries(generatedFiles()))("%s is up to date (run: npx tsx monitoring/generate.ts)", (rel, content) => {
        const file = path.join(REPO, rel);
        expect(fs.existsSync(file)).toBe(true);
        expect(fs.readFileSync(file, "utf8")).toBe(content);
    });
});

describe("promtool", () => {
    test("promtool check rules accepts every rule file", () => {
        expect(ruleFiles.length).toBeGreaterThan(0);
        const r = run("promtool", ["check", "rules", ...ruleFiles.map((f) => path.join(RULES_DIR, f))]);
        expect(r.output).toMatch(/SUCCESS: \d+ rules found/);
        expect(r.code).toBe(0);
    });

    test("promtool test rules passes every unit test file", () => {
        expect(testFiles.length).toBeGreaterThan(0);
        const r = run("promtool", ["test", "rules", ...testFiles], { cwd: TESTS_DIR });
        expect(r.output).toContain("SUCCESS");
        expect(r.output).not.toContain("FAILED");
        expect(r.code).toBe(0);
    });

    test("promtool test rules fails when a rule no longer fires as the test expects (the tests can fail)", () => {
        const tmp = tempDir("rules-mutant");
        try {
            // Same tests, against rules where RedisDown needs redis_up == 2: its firing case must fail.
            const rules = fs.readFileSync(path.join(RULES_DIR, "redisforge.yml"), "utf8").replace("expr: redis_up == 0", "expr: redis_up == 2");
            expect(rules).toContain("expr: redis_up == 2");
            fs.writeFileSync(path.join(tmp.dir, "rules.yml"), rules);
            const t = parse(fs.readFileSync(path.join(TESTS_DIR, "redisforge.test.yml"), "utf8")) as TestYaml;
            t.rule_files = ["rules.yml"];
            fs.writeFileSync(path.join(tmp.dir, "t.yml"), JSON.stringify(t));
            const r = run("promtool", ["test", "rules", "t.yml"], { cwd: tmp.dir });
            expect(r.code).not.toBe(0);
            expect(r.output).toMatch(/FAILED[\s\S]*alertname: RedisDown/);
        } finally {
            tmp.cleanup();
        }
    });
});

describe("every alert", () => {
    const alerts = alertsInRuleFiles();
    const checks = testFiles.flatMap((file) => {
        const doc = parse(fs.readFileSync(path.join(TESTS_DIR, file), "utf8")) as TestYaml;
        return doc.tests.flatMap((t) => (t.alert_rule_test ?? []).map((c) => ({ test: t.name, alertname: c.alertname, fires: (c.exp_alerts ?? []).length > 0 })));
    });

    test("the rule files hold exactly the alerts defined in rules.ts", () => {
        expect(alerts.map((a) => a.alert).sort()).toEqual(ALERTS.map((a) => a.alert).sort());
        expect(new Set(alerts.map((a) => a.alert)).size).toBe(alerts.length);
    });

    test.each(alerts.map((a) => [a.alert, a] as const))("%s has a promtool case where it fires and one where it must not", (name) => {
        const mine = checks.filter((c) => c.alertname === name);
        expect(mine.filter((c) => c.fires).map((c) => c.test)).not.toHaveLength(0);
        expect(mine.filter((c) => !c.fires).map((c) => c.test)).not.toHaveLength(0);
    });

    test.each(alerts.map((a) => [a.alert, a] as const))("%s has severity, scope, summary, description and a runbook link", (name, a) => {
        expect(["critical", "warning"]).toContain(a.rule.labels?.severity);
        expect(["cluster", "node", "proxy"]).toContain(a.rule.labels?.scope);
        expect(a.rule.annotations?.summary?.length).toBeGreaterThan(10);
        expect(a.rule.annotations?.description?.length).toBeGreaterThan(20);
        expect(a.rule.annotations?.runbook_url).toBe(`${RUNBOOK_BASE_URL}#${runbookAnchor(name)}`);
    });

    test("every runbook anchor is a heading in monitoring/README.md, and the README lists every alert", () => {
        const readme = fs.readFileSync(path.join(REPO, "monitoring/README.md"), "utf8");
        const anchors = new Set([...readme.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => githubSlug(m[1])));
        const missing = alerts.filter((a) => !anchors.has(runbookAnchor(a.alert))).map((a) => `${a.alert} (#${runbookAnchor(a.alert)})`);
        expect(missing).toEqual([]);
    });

    test("an alert added without a test case is caught", () => {
        // The same check as above, applied to a rule file with one extra, untested alert.
        const extra = [...alerts.map((a) => a.alert), "RedisSomethingNew"];
        const untested = extra.filter((name) => !checks.some((c) => c.alertname === name && c.fires));
        expect(untested).toEqual(["RedisSomethingNew"]);
    });
});

describe("contracts the rules rely on", () => {
    test("the backup metric is documented for the backup job", () => {
        const readme = fs.readFileSync(path.join(REPO, "monitoring/README.md"), "utf8");
        expect(readme).toContain(BACKUP_LAST_SUCCESS_METRIC);
        expect(alertsInRuleFiles().some((a) => a.rule.expr.includes(BACKUP_LAST_SUCCESS_METRIC))).toBe(true);
    });

    test("redis.conf keeps the Redis default maxclients that RedisClientsNearLimit assumes", () => {
        const conf = fs.readFileSync(path.join(REPO, "templates/redis/redis.conf.tmpl"), "utf8");
        expect(conf).not.toMatch(/^\s*maxclients\s/m);
        expect(THRESHOLDS.redisMaxclients).toBe(10000);
    });

    test("users.acl grants the exporter exactly the commands justified in components/exporter-targets.ts", () => {
        const acl = fs.readFileSync(path.join(REPO, "templates/redis/users.acl.tmpl"), "utf8");
        const line = acl.split("\n").find((l) => l.startsWith("user exporter "));
        expect(line).toBe(`user exporter on #{{exporterHash}} ${exporterAclRules()}`);
        // No key or channel patterns, nothing beyond single commands after -@all.
        expect(line).not.toMatch(/[~&%]/);
        expect(line).not.toMatch(/\+@/);
    });
});
