/**
 * For Alertmanager < 0.28 (Debian 12 ships 0.25): writes alertmanager.yml with the Discord webhook
 * URLs read from their secret files, mode 0600. The URLs never reach argv, stdout or logs.
 *
 *   npx tsx monitoring/alertmanager/render-025.ts \
 *     --critical-file /etc/alertmanager/secrets/discord-critical.url \
 *     --warning-file /etc/alertmanager/secrets/discord-warning.url \
 *     --out /etc/alertmanager/alertmanager.yml
 */
import * as fs from "fs";
import { stringify } from "yaml";
import { alertmanagerConfig } from "./config";

function readUrl(file: string, flag: string): string {
    const url = fs.readFileSync(file, "utf8").trim();
    if (!/^https?:\/\/\S+$/.test(url)) throw new Error(`${flag} ${file}: expected one http(s) URL in the file; got something else (content not shown: it is a secret)`);
    return url;
}

/** Renders the 0.25 variant; returns the YAML text (a secret). */
export function renderAlertmanager025(criticalFile: string, warningFile: string): string {
    return stringify(alertmanagerConfig({ discordWebhookUrls: { critical: readUrl(criticalFile, "--critical-file"), warning: readUrl(warningFile, "--warning-file") } }));
}

if (require.main === module) {
    const arg = (name: string) => {
        const i = process.argv.indexOf(name);
        const v = i >= 0 ? process.argv[i + 1] : undefined;
        if (!v) {
            console.error(`usage: render-025.ts --critical-file FILE --warning-file FILE --out FILE (missing ${name})`);
            process.exit(2);
        }
        return v;
    };
    const text = renderAlertmanager025(arg("--critical-file"), arg("--warning-file"));
    const out = arg("--out");
    fs.writeFileSync(out, text, { mode: 0o600 });
    fs.chmodSync(out, 0o600);
    console.log(`wrote ${out} (mode 0600)`);
}
