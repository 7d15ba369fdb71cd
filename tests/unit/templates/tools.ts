/** Runs the real validators (cloud-init schema, shellcheck, envoy-validate) on text written to a temp dir. */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface ToolResult {
    code: number | null;
    out: string;
}

export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): ToolResult {
    const r = spawnSync(cmd, args, { input: opts.input, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60000, encoding: "utf8" });
    if (r.error) throw new Error(`${cmd} ${args.join(" ")}: ${r.error.message}`);
    return { code: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

export function tmpDir(prefix: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), `redisforge-${prefix}-`));
}

export function writeTmp(dir: string, name: string, content: string): string {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    return file;
}

/** `cloud-init schema --config-file`: exit code and output (Debian cloud-init 22.4). */
export function cloudInitSchema(file: string): ToolResult {
    return run("cloud-init", ["schema", "--config-file", file]);
}

/** shellcheck with the script's own shebang deciding the dialect; external sources followed. */
export function shellcheck(files: string[]): ToolResult {
    return run("shellcheck", ["--external-sources", "--format=gcc", ...files]);
}

/**
 * A scratch root for `systemd-analyze verify --root`: the distro's unit library, the files a
 * user-data writes (with their modes), and stand-ins for the docker binaries and docker.service,
 * which the distro package provides on the VM. Returns the root and the user-data's unit paths in it.
 */
export function systemdScratchRoot(root: string, writeFiles: { path: string; content: string; permissions?: string }[]): { root: string; units: string[] } {
    fs.mkdirSync(path.join(root, "usr/lib/systemd"), { recursive: true });
    fs.cpSync("/usr/lib/systemd/system", path.join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
    for (const w of writeFiles) {
        const f = path.join(root, w.path);
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.writeFileSync(f, w.content, { mode: parseInt(w.permissions ?? "0644", 8) });
    }
    fs.mkdirSync(path.join(root, "usr/bin"), { recursive: true });
    for (const b of ["docker", "dockerd"]) fs.writeFileSync(path.join(root, "usr/bin", b), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    fs.writeFileSync(path.join(root, "etc/systemd/system/docker.service"), "[Unit]\nDescription=stand-in for the docker.io package unit\n[Service]\nExecStart=/usr/bin/dockerd\n");
    const units = writeFiles.filter((w) => w.path.startsWith("/etc/systemd/system/")).map((w) => path.join(root, w.path));
    return { root, units };
}
