/**
 * Grafana dashboard: structure, datasource variable, coverage of the topics the issue names, and
 * every panel query parsed by the real PromQL parser (promtool check rules on a temporary
 * recording-rule file holding one rule per query).
 */
import * as fs from "fs";
import * as path from "path";
import { parse, stringify } from "yaml";
import { Dashboard, dashboard, dashboardQueries, Panel, substituteVariables } from "../../../monitoring/grafana/dashboard";
import { DASHBOARDS_PATH, DATASOURCE_UID } from "../../../monitoring/grafana/provisioning";
import { REPO, run, tempDir } from "./tools";

const JSON_FILE = path.join(REPO, "monitoring/grafana/dashboards/redisforge.json");
const committed = JSON.parse(fs.readFileSync(JSON_FILE, "utf8")) as Dashboard;

function leafPanels(d: Dashboard): Panel[] {
    const out: Panel[] = [];
    const walk = (ps: Panel[]) => ps.forEach((p) => (p.type === "row" ? walk(p.panels ?? []) : out.push(p)));
    walk(d.panels);
    return out;
}

/** Runs promtool check rules on a rule file holding `exprs` as recording rules. */
function promtoolParse(exprs: string[]) {
    const tmp = tempDir("dash-promql");
    try {
        const file = path.join(tmp.dir, "queries.yml");
        fs.writeFileSync(file, stringify({ groups: [{ name: "dashboard-queries", rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] }, { lineWidth: 0 }));
        return run("promtool", ["check", "rules", file]);
    } finally {
        tmp.cleanup();
    }
}

describe("Grafana dashboard", () => {
    test("the committed JSON is exactly the generator's output", () => {
        expect(fs.readFileSync(JSON_FILE, "utf8")).toBe(JSON.stringify(dashboard(), null, 2) + "\n");
    });

    test("has a datasource variable and every panel and query uses it", () => {
        const ds = committed.templating.list.find((v) => v.type === "datasource");
        expect(ds).toMatchObject({ name: "datasource", query: "prometheus" });
        for (const p of leafPanels(committed)) {
            expect(`${p.title}: ${p.datasource?.uid}`).toBe(`${p.title}: \${datasource}`);
            for (const t of p.targets ?? []) expect(t.datasource.uid).toBe("${datasource}");
        }
        for (const v of committed.templating.list.filter((v) => v.type === "query")) expect(v.datasource?.uid).toBe("${datasource}");
    });

    test("every panel has at least one query, unique ids, and fits the 24-column grid without overlaps", () => {
        const panels = leafPanels(committed);
        expect(panels.length).toBeGreaterThan(15);
        const ids = committed.panels.map((p) => p.id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const p of panels) {
            expect(p.targets?.length).toBeGreaterThan(0);
            expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
        }
        const all = committed.panels;
        for (let i = 0; i < all.length; i++)
            for (let j = i + 1; j < all.length; j++) {
                const a = all[i].gridPos;
                const b = all[j].gridPos;
                const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
                expect(overlap ? `${all[i].title} overlaps ${all[j].title}` : "").toBe("");
            }
    });

    test("covers cluster state, slots, ops/s, latency, memory, replication lag, AOF vs disk, zones, Envoy rate and errors", () => {
        const titles = leafPanels(committed).map((p) => p.title.toLowerCase());
        const queries = dashboardQueries(committed).map((q) => q.expr);
        const has = (re: RegExp) => titles.some((t) => re.test(t));
        expect(has(/cluster state/)).toBe(true);
        expect(has(/slots/)).toBe(true);
        expect(has(/commands\/s/)).toBe(true);
        expect(has(/latency/)).toBe(true);
        expect(has(/memory/)).toBe(true);
        expect(has(/replication lag/)).toBe(true);
        expect(has(/aof size vs free disk/)).toBe(true);
        expect(has(/per zone/)).toBe(true);
        expect(has(/requests\/s per envoy/)).toBe(true);
        expect(has(/errors/)).toBe(true);
        expect(queries.some((q) => q.includes("redis_cluster_slots_ok"))).toBe(true);
        expect(queries.some((q) => /sum by \(zone\)/.test(q))).toBe(true);
        expect(queries.some((q) => q.includes("redis_aof_current_size_bytes") && q.includes("node_filesystem_avail_bytes"))).toBe(true);
        expect(queries.some((q) => q.includes("envoy_redis_command_error"))).toBe(true);
        expect(queries.some((q) => q.includes('envoy_response_code_class="5"'))).toBe(true);
    });

    test("every Redis/node query is scoped by $cluster", () => {
        for (const q of dashboardQueries(committed)) expect(`${q.panel}: ${q.expr.includes('cluster=~"$cluster"')}`).toBe(`${q.panel}: true`);
    });

    test("promtool parses every panel query (Grafana variables substituted)", () => {
        const queries = dashboardQueries(committed);
        const exprs = queries.map((q) => substituteVariables(q.expr));
        for (const e of exprs) expect(e).not.toMatch(/\$/);
        const r = promtoolParse(exprs);
        expect(r.output).toContain(`SUCCESS: ${exprs.length} rules found`);
        expect(r.code).toBe(0);
    });

    test("the PromQL check fails on a broken query (the check can fail)", () => {
        const r = promtoolParse(["sum by (node) (rate(redis_commands_processed_total[5m])"]);
        expect(r.code).not.toBe(0);
    });
});

describe("Grafana provisioning", () => {
    const ds = parse(fs.readFileSync(path.join(REPO, "monitoring/grafana/provisioning/datasources/redisforge.yaml"), "utf8"));
    const dash = parse(fs.readFileSync(path.join(REPO, "monitoring/grafana/provisioning/dashboards/redisforge.yaml"), "utf8"));
    test("datasource: one Prometheus, URL from the environment", () => {
        expect(ds.apiVersion).toBe(1);
        expect(ds.datasources).toEqual([expect.objectContaining({ type: "prometheus", uid: DATASOURCE_UID, url: "${REDISFORGE_PROMETHEUS_URL}", access: "proxy" })]);
    });
    test("dashboards: a file provider reading the dashboards directory", () => {
        expect(dash.apiVersion).toBe(1);
        expect(dash.providers).toEqual([expect.objectContaining({ type: "file", options: expect.objectContaining({ path: DASHBOARDS_PATH }) })]);
    });
});
