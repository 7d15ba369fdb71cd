/**
 * Alertmanager configuration, checked by the real amtool:
 * - the committed file (webhook_url_file, Alertmanager >= 0.28) with amtool 0.28 built by
 *   scripts/install-amtool.sh;
 * - the variant for Debian's Alertmanager 0.25 (URLs inlined, from a secret file made at test time)
 *   with Debian's amtool, including routing (`amtool config routes test`).
 */
import * as fs from "fs";
import * as path from "path";
import { stringify } from "yaml";
import { alertmanagerConfig, DISCORD_WEBHOOK_FILES, RECEIVERS } from "../../../monitoring/alertmanager/config";
import { ALERTS } from "../../../monitoring/prometheus/rules";
import { REPO, run, tempDir } from "./tools";

const COMMITTED = path.join(REPO, "monitoring/alertmanager/alertmanager.yaml");
const AMTOOL_028 = path.join(REPO, ".tools/bin/amtool-0.28");

describe("committed alertmanager.yaml", () => {
    const text = fs.readFileSync(COMMITTED, "utf8");

    test("holds no webhook URL, only the files that hold them", () => {
        expect(text).not.toMatch(/webhook_url:/);
        expect(text).not.toMatch(/discord(app)?\.com\/api\/webhooks/);
        expect(text).toContain(`webhook_url_file: ${DISCORD_WEBHOOK_FILES.critical}`);
        expect(text).toContain(`webhook_url_file: ${DISCORD_WEBHOOK_FILES.warning}`);
    });

    test("amtool 0.28 check-config accepts it (run scripts/install-amtool.sh if the tool is missing)", () => {
        expect(fs.existsSync(AMTOOL_028)).toBe(true);
        expect(run(AMTOOL_028, ["--version"]).output).toMatch(/version 0\.28\./);
        const r = run(AMTOOL_028, ["check-config", COMMITTED]);
        expect(r.output).toContain("SUCCESS");
        expect(r.output).toMatch(/2 inhibit rules[\s\S]*2 receivers/);
        expect(r.code).toBe(0);
    });

    test("Debian's amtool 0.25 rejects it (webhook_url_file is newer): the reason for the 0.25 variant", () => {
        const r = run("amtool", ["check-config", COMMITTED]);
        expect(r.code).not.toBe(0);
        expect(r.output).toMatch(/webhook_url_file not found/);
    });
});

describe("Alertmanager 0.25 variant (Debian)", () => {
    let tmp: ReturnType<typeof tempDir>;
    let file: string;
    beforeAll(() => {
        tmp = tempDir("am");
        // Secret files as an operator would have them; the URLs point to loopback, never to Discord.
        const secrets = { critical: path.join(tmp.dir, "critical.url"), warning: path.join(tmp.dir, "warning.url") };
        fs.writeFileSync(secrets.critical, "http://127.0.0.1:9/api/webhooks/1/critical-token\n", { mode: 0o600 });
        fs.writeFileSync(secrets.warning, "http://127.0.0.1:9/api/webhooks/2/warning-token\n", { mode: 0o600 });
        const read = (f: string) => fs.readFileSync(f, "utf8").trim();
        file = path.join(tmp.dir, "alertmanager.yml");
        fs.writeFileSync(file, stringify(alertmanagerConfig({ discordWebhookUrls: { critical: read(secrets.critical), warning: read(secrets.warning) } })), { mode: 0o600 });
    });
    afterAll(() => tmp.cleanup());

    test("amtool check-config accepts it", () => {
        const r = run("amtool", ["check-config", file]);
        expect(r.output).toContain("SUCCESS");
        expect(r.code).toBe(0);
    });

    test("render-025.ts writes the same variant from the secret files, mode 0600, without printing the URLs", () => {
        const out = path.join(tmp.dir, "rendered.yml");
        const r = run("npx", ["tsx", "monitoring/alertmanager/render-025.ts", "--critical-file", path.join(tmp.dir, "critical.url"), "--warning-file", path.join(tmp.dir, "warning.url"), "--out", out]);
        expect(r.code).toBe(0);
        expect(r.output).not.toContain("token");
        expect(fs.statSync(out).mode & 0o777).toBe(0o600);
        expect(fs.readFileSync(out, "utf8")).toBe(fs.readFileSync(file, "utf8"));
        expect(run("amtool", ["check-config", out]).code).toBe(0);
    });

    test("amtool check-config fails on a broken variant (the check can fail)", () => {
        const broken = path.join(tmp.dir, "broken.yml");
        fs.writeFileSync(broken, fs.readFileSync(file, "utf8").replace(`receiver: ${RECEIVERS.critical}`, "receiver: no-such-receiver"));
        const r = run("amtool", ["check-config", broken]);
        expect(r.code).not.toBe(0);
        expect(r.output).toMatch(/undefined receiver "no-such-receiver"/);
    });

    const routes: [string, string[], string][] = [
        ["critical alerts page the critical channel", ["alertname=RedisClusterDown", "severity=critical", "scope=cluster", "cluster=prod"], RECEIVERS.critical],
        ["warnings go to the warning channel", ["alertname=RedisMemoryHigh", "severity=warning", "scope=node", "cluster=prod", "node=n1"], RECEIVERS.warning],
        ["an alert without severity falls back to the warning channel", ["alertname=Other", "cluster=prod"], RECEIVERS.warning],
    ];
    test.each(routes)("amtool config routes test: %s", (_name, labels, receiver) => {
        const ok = run("amtool", ["config", "routes", "test", `--config.file=${file}`, `--verify.receivers=${receiver}`, ...labels]);
        expect(ok.stdout.trim()).toBe(receiver);
        expect(ok.code).toBe(0);
        const other = receiver === RECEIVERS.critical ? RECEIVERS.warning : RECEIVERS.critical;
        const wrong = run("amtool", ["config", "routes", "test", `--config.file=${file}`, `--verify.receivers=${other}`, ...labels]);
        expect(wrong.code).not.toBe(0);
    });

    test("every alert's severity routes to its channel", () => {
        for (const a of ALERTS) {
            const r = run("amtool", ["config", "routes", "test", `--config.file=${file}`, `alertname=${a.alert}`, `severity=${a.severity}`, `scope=${a.scope}`, "cluster=prod"]);
            expect(`${a.alert} -> ${r.stdout.trim()}`).toBe(`${a.alert} -> ${RECEIVERS[a.severity]}`);
        }
    });
});

describe("grouping and inhibition", () => {
    const cfg = alertmanagerConfig();
    test("notifications are grouped by cluster", () => {
        expect(cfg.route.group_by).toEqual(["cluster"]);
    });
    test("RedisClusterDown silences node-scoped alerts of the same cluster; it is not node-scoped itself", () => {
        const rule = cfg.inhibit_rules.find((r) => r.source_matchers.includes('alertname="RedisClusterDown"'));
        expect(rule).toEqual({ source_matchers: ['alertname="RedisClusterDown"'], target_matchers: ['scope="node"'], equal: ["cluster"] });
        const clusterDown = ALERTS.find((a) => a.alert === "RedisClusterDown")!;
        expect(clusterDown.scope).not.toBe("node");
        // The node-level alerts it is meant to silence carry scope=node.
        for (const name of ["RedisDown", "RedisForgeNodeDown", "RedisReplicationLinkDown", "RedisForgeExporterDown"]) {
            expect(ALERTS.find((a) => a.alert === name)?.scope).toBe("node");
        }
    });
    test("inhibition targets name existing alerts", () => {
        const names = new Set(ALERTS.map((a) => a.alert));
        for (const r of cfg.inhibit_rules) {
            for (const m of [...r.source_matchers, ...r.target_matchers]) {
                const alt = /^alertname=~?"(.+)"$/.exec(m);
                if (alt) for (const n of alt[1].split("|")) expect(names.has(n)).toBe(true);
            }
        }
    });
});
