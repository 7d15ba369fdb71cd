/**
 * `npm run backup -- --stack <stack> [--remote <remote>:<bucket> --rclone-config <file>]`
 * One backup of every node of a local stack with templates/backup/redisforge-backup.sh (what a
 * VM's timer runs every 15 minutes); by default into the stack's directory remote
 * (.local-stack/<stack>.backups/). Exit 1 when any node's backup failed.
 */
import { runtimeForVersion } from "../../lab/redis-runtime";
import { backupStack } from "./stack-backup";
import { parseFlags, readStackOutputs, resolveStore, stackCluster, stackNodes } from "./stack-target";

const USAGE = "usage: npm run backup -- --stack <stack> [--remote <remote>:<bucket> --rclone-config <file>]";

async function main(): Promise<void> {
    const f = parseFlags(process.argv.slice(2), ["stack", "remote", "rclone-config"], [], USAGE);
    if (typeof f.stack !== "string") throw new Error(`--stack <stack> is required\n${USAGE}`);
    const o = await readStackOutputs(f.stack);
    const store = resolveStore(f.stack, o, { remote: f.remote as string | undefined, rcloneConfig: f["rclone-config"] as string | undefined });
    const { nodes, tls, exporterPassword } = stackNodes(f.stack, o);
    const rt = o.serverVersion ? runtimeForVersion(o.serverVersion) : undefined;
    const cluster = stackCluster(f.stack, o);
    process.stdout.write(`backup of ${nodes.length} node(s) of ${cluster} to ${store.label ?? store.remote}\n`);
    const results = await backupStack({ cluster, nodes, tls, exporterPassword, store, redisBinDir: rt?.binDir ?? undefined, log: (l) => process.stdout.write(`  ${l}\n`) });
    const failed = results.filter((r) => !r.ok);
    process.stdout.write(`${results.length - failed.length}/${results.length} node(s) backed up${failed.length ? `; failed: ${failed.map((r) => r.node).join(", ")}` : ""}\n`);
    process.stdout.write(`next: npm run restore-drill -- --stack ${f.stack}${f.remote ? ` --remote ${f.remote} --rclone-config ${f["rclone-config"]}` : ""}\n`);
    if (failed.length) process.exitCode = 1;
}

main().catch((e) => {
    process.stderr.write(`backup: ${(e as Error).message}\n`);
    process.exit(1);
});
