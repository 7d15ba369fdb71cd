/**
 * Grafana provisioning files (typed, serialised by monitoring/generate.ts):
 *   monitoring/grafana/provisioning/datasources/redisforge.yaml
 *   monitoring/grafana/provisioning/dashboards/redisforge.yaml
 * Copy them into Grafana's provisioning dir (default /etc/grafana/provisioning) and the dashboard
 * JSON into DASHBOARDS_PATH. The Prometheus URL comes from the environment of the Grafana
 * process (`REDISFORGE_PROMETHEUS_URL`), which Grafana expands in provisioning files.
 */

/** Where the dashboards provider reads JSON files from on the Grafana host. */
export const DASHBOARDS_PATH = "/var/lib/grafana/dashboards/redisforge";

/** uid of the provisioned datasource; the dashboard's `$datasource` variable defaults to any Prometheus. */
export const DATASOURCE_UID = "redisforge-prometheus";

export function datasourceProvisioning() {
    return {
        apiVersion: 1,
        datasources: [
            {
                name: "RedisForge Prometheus",
                uid: DATASOURCE_UID,
                type: "prometheus",
                access: "proxy",
                url: "${REDISFORGE_PROMETHEUS_URL}",
                isDefault: false,
                editable: false,
                jsonData: { httpMethod: "POST", timeInterval: "15s" },
            },
        ],
    };
}

export function dashboardProvisioning() {
    return {
        apiVersion: 1,
        providers: [
            {
                name: "redisforge",
                orgId: 1,
                folder: "RedisForge",
                type: "file",
                disableDeletion: false,
                allowUiUpdates: false,
                updateIntervalSeconds: 60,
                options: { path: DASHBOARDS_PATH, foldersFromFilesStructure: false },
            },
        ],
    };
}
