/** Runs a backup/restore script with the given environment (only that), bounded by a timeout (SIGKILL). */
import { spawn } from "child_process";

export interface ScriptRun {
    code: number | null;
    stdout: string;
    stderr: string;
}

export function runScript(script: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<ScriptRun> {
    return new Promise((resolve, reject) => {
        const p = spawn(script, args, { env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
        p.stdout.on("data", (d) => (stdout += d));
        p.stderr.on("data", (d) => (stderr += d));
        p.on("error", reject);
        p.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr });
        });
    });
}
