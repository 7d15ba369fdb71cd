/** The bucket options of `backup` and `restore-drill`, and the stack outputs + store they resolve to. */
import type { Command } from "commander";
import { CommonOptions, usage } from "./context";

export interface StoreOptions extends CommonOptions {
    remote?: string;
    rcloneConfig?: string;
}

/** Adds `--remote <remote:bucket>` and `--rclone-config <file>` (default: the stack's directory remote). */
export function withStoreOptions(cmd: Command): Command {
    return cmd.option("--remote <remote:bucket>", "rclone remote and bucket (default: the stack's directory remote)").option("--rclone-config <file>", "rclone config that defines --remote");
}

/** The stack's outputs and where its backups are; a bad --remote/--rclone-config is a usage error (2). */
export async function openStore(opts: StoreOptions) {
    const { readStackOutputs, resolveStore } = await import("../backup/stack-target");
    const outputs = await readStackOutputs(opts.stack);
    const store = usage(() => resolveStore(opts.stack, outputs, { remote: opts.remote, rcloneConfig: opts.rcloneConfig }));
    return { outputs, store };
}
