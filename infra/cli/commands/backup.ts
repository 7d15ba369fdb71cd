/**
 * `backup`: one backup of every node of a local stack with templates/backup/redisforge-backup.sh
 * (what a VM's timer runs every 15 minutes); by default into the stack's directory remote
 * (.local-stack/<stack>.backups/), or `--remote <remote>:<bucket> --rclone-config <file>`.
 * Exit 1 when any node's backup failed. `npm run backup -- --stack local` is the same command.
 */
import { EXIT, Register, withCommonOptions } from "../context";
import { openStore, StoreOptions, withStoreOptions } from "../store-options";

export const register: Register = (program, run) => {
    withStoreOptions(withCommonOptions(program.command("backup").description("back up the AOF and nodes.conf of every node of a local stack (what the VMs' timer does)")))
        .action(
            run(async (ctx) => {
                const { runtimeForVersion } = await import("../../../lab/redis-runtime");
                const { backupStack } = await import("../../backup/stack-backup");
                const { stackCluster, stackNodes } = await import("../../backup/stack-target");
                const opts = ctx.opts as StoreOptions;
                const { outputs: o, store } = await openStore(opts);
                const { nodes, tls, exporterPassword } = stackNodes(opts.stack, o);
                const rt = o.serverVersion ? runtimeForVersion(o.serverVersion) : undefined;
                const cluster = stackCluster(opts.stack, o);
                ctx.out.line(`backup of ${nodes.length} node(s) of ${cluster} to ${store.label ?? store.remote}`);
                const results = await backupStack({ cluster, nodes, tls, exporterPassword, store, redisBinDir: rt?.binDir ?? undefined, log: (l) => ctx.out.line(`  ${l}`) });
                const failed = results.filter((r) => !r.ok);
                ctx.out.line(`${results.length - failed.length}/${results.length} node(s) backed up${failed.length ? `; failed: ${failed.map((r) => r.node).join(", ")}` : ""}`);
                ctx.out.line(`next: npm run restore-drill -- --stack ${opts.stack}${opts.remote ? ` --remote ${opts.remote} --rclone-config ${opts.rcloneConfig}` : ""}`);
                ctx.out.result(results);
                return failed.length ? EXIT.checkFailed : EXIT.ok;
            }),
        );
};
