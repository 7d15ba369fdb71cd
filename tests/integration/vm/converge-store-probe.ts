/**
 * Run inside a namespace that holds a VM's address (tests/integration/vm/bucket.test.ts): what the
 * converge agent's store does on a qemu Redis VM, with the agent's own code (openStore, the S3
 * store, the VM identity's credentials from the metadata service). Prints one JSON line: for each
 * step, the outcome ("ok", "absent", "conflict", or the error's first line).
 *
 *   tsx converge-store-probe.ts <settings JSON> <step>...
 *   steps: read:<key>  create:<key>  write:<key>
 */
import { openStore } from "../../../providers/redis-cluster/agent/stores";
import type { AgentStoreSettings } from "../../../providers/redis-cluster/agent/stores";

async function main(): Promise<void> {
    const [settings, ...steps] = process.argv.slice(2);
    const store = openStore(JSON.parse(settings) as AgentStoreSettings, { instance: {} }, 5000);
    const out: Record<string, string> = {};
    for (const step of steps) {
        const [op, key] = step.split(":");
        try {
            if (op === "read") {
                const r = await store.read(key);
                out[step] = r === undefined ? "absent" : `ok ${r.body}`;
            } else {
                const r = await store.write(key, `${JSON.stringify({ by: "probe", key })}`, op === "create" ? { ifAbsent: true } : undefined);
                out[step] = r === "conflict" ? "conflict" : "ok";
            }
        } catch (e) {
            out[step] = (e as Error).message.split("\n")[0];
        }
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e: Error) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
});
