/** What the VM-stack tests share: the stack's names and state directory, the Pulumi CLI as vm-up.sh runs it, a shell in a VM. */
import { execFileSync } from "child_process";
import * as path from "path";
import { guestSh } from "../../lab/vm/qga";

export const REPO = path.resolve(__dirname, "..", "..");
export const STACK = process.env.REDISFORGE_VM_STACK ?? "vm";
/** The stack's short id (network namespace, state directory). */
export const STACK_ID = STACK.replace(/[^a-z0-9]/g, "").slice(0, 6);
export const STATE = path.join(REPO, ".vm-stack", STACK_ID);

export interface NodeOut { name: string; zone: string; role: string; shard: number; privateIp: string }

/** The environment vm-up.sh gives `pulumi` (the repo's CLI, backend and passphrase file). */
export function pulumiEnv(): NodeJS.ProcessEnv {
    return { ...process.env, PATH: `${REPO}/.tools/bin:${process.env.PATH}`, PULUMI_SKIP_UPDATE_CHECK: "true", PULUMI_BACKEND_URL: `file://${REPO}/.pulumi-state`, PULUMI_CONFIG_PASSPHRASE_FILE: `${REPO}/.pulumi-state/.passphrase`, PULUMI_HOME: `${REPO}/.tools/pulumi-home` };
}

/** `pulumi <args> --stack STACK`, bounded; returns stdout. */
export function pulumi(args: string[], env: NodeJS.ProcessEnv = pulumiEnv(), timeoutMs = 5 * 60 * 1000): string {
    return execFileSync("pulumi", [...args, "--stack", STACK], { cwd: REPO, env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024, timeout: timeoutMs });
}

export const qga = (host: string) => path.join(STATE, "vms", host, "qga.sock");

/** A shell command in the VM as root (guest agent), `input` on its stdin; throws naming the VM unless it exits 0. */
export async function sh(host: string, script: string, timeoutMs = 60000, input?: string): Promise<string> {
    try {
        return await guestSh(qga(host), script, timeoutMs, input);
    } catch (e) {
        throw new Error(`${host}: ${(e as Error).message}`);
    }
}
