/**
 * RedisForge's Alertmanager configuration as typed objects; monitoring/generate.ts writes
 * monitoring/alertmanager/alertmanager.yaml from it.
 *
 * - Receivers: Discord through Alertmanager's native `discord_configs`, one channel webhook for
 *   critical alerts and one for warnings. The webhook URLs are secrets: the committed file only
 *   names the files that hold them (`webhook_url_file`, Alertmanager >= 0.28).
 * - Debian 12 ships Alertmanager 0.25, whose Discord receiver has `webhook_url` only. For it,
 *   `alertmanagerConfig({ discordWebhookUrls })` produces the same tree with the URLs inlined;
 *   write that file with mode 0600 outside the repository (monitoring/README.md shows how).
 * - Routing: by `severity`; notifications are grouped by `cluster`.
 * - Inhibition: while RedisClusterDown fires for a cluster, node-level alerts (`scope="node"`) of
 *   that cluster are silenced; while RedisForgeNodeDown fires for a node, that node's RedisDown,
 *   exporter and replication alerts are silenced.
 */

export const RECEIVERS = { critical: "discord-critical", warning: "discord-warning" } as const;

/** Where the webhook URL files live on the Alertmanager host (0600, owned by alertmanager). */
export const DISCORD_WEBHOOK_FILES = {
    critical: "/etc/alertmanager/secrets/discord-critical.url",
    warning: "/etc/alertmanager/secrets/discord-warning.url",
} as const;

interface DiscordConfig {
    webhook_url?: string;
    webhook_url_file?: string;
    send_resolved: boolean;
    title: string;
    message: string;
}

export interface AlertmanagerConfig {
    global: { resolve_timeout: string };
    route: Route;
    inhibit_rules: { source_matchers: string[]; target_matchers: string[]; equal: string[] }[];
    receivers: { name: string; discord_configs: DiscordConfig[] }[];
}

interface Route {
    receiver: string;
    group_by?: string[];
    group_wait?: string;
    group_interval?: string;
    repeat_interval?: string;
    matchers?: string[];
    continue?: boolean;
    routes?: Route[];
}

/** Discord title and message (Go templates, rendered by Alertmanager). Discord caps messages at 2000 characters. */
const TITLE = `[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.cluster }}: {{ .GroupLabels.SortedPairs.Values | join " " }}`;
const MESSAGE = `{{ range .Alerts }}**{{ .Labels.alertname }}** ({{ .Labels.severity }}{{ if .Labels.node }}, {{ .Labels.node }}{{ end }}): {{ .Annotations.summary }}
{{ .Annotations.runbook_url }}
{{ end }}`;

export interface AlertmanagerConfigOptions {
    /**
     * For Alertmanager < 0.28 only: the webhook URLs themselves. The result is then a secret;
     * never commit or log it.
     */
    discordWebhookUrls?: { critical: string; warning: string };
    /** Override group_wait/group_interval (integration tests use seconds). */
    timing?: { groupWait: string; groupInterval: string; repeatInterval: string };
}

export function alertmanagerConfig(opts: AlertmanagerConfigOptions = {}): AlertmanagerConfig {
    const discord = (severity: keyof typeof RECEIVERS): DiscordConfig => ({
        ...(opts.discordWebhookUrls ? { webhook_url: opts.discordWebhookUrls[severity] } : { webhook_url_file: DISCORD_WEBHOOK_FILES[severity] }),
        send_resolved: true,
        title: TITLE,
        message: MESSAGE,
    });
    const t = opts.timing;
    return {
        global: { resolve_timeout: "5m" },
        route: {
            receiver: RECEIVERS.warning,
            group_by: ["cluster"],
            group_wait: t?.groupWait ?? "30s",
            group_interval: t?.groupInterval ?? "5m",
            repeat_interval: t?.repeatInterval ?? "4h",
            routes: [
                { matchers: ['severity="critical"'], receiver: RECEIVERS.critical, group_wait: t?.groupWait ?? "10s", repeat_interval: t?.repeatInterval ?? "1h" },
                { matchers: ['severity="warning"'], receiver: RECEIVERS.warning },
            ],
        },
        inhibit_rules: [
            { source_matchers: ['alertname="RedisClusterDown"'], target_matchers: ['scope="node"'], equal: ["cluster"] },
            {
                source_matchers: ['alertname="RedisForgeNodeDown"'],
                target_matchers: ['alertname=~"RedisDown|RedisForgeExporterDown|RedisReplicationLinkDown"'],
                equal: ["cluster", "node"],
            },
        ],
        receivers: [
            { name: RECEIVERS.critical, discord_configs: [discord("critical")] },
            { name: RECEIVERS.warning, discord_configs: [discord("warning")] },
        ],
    };
}
