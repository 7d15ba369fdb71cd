/**
 * Puts the VM stack's container images where its registry serves them from, and prints their
 * digests (scripts/vm-up.sh pins them into the stack's config, so the user-data pulls by digest):
 *
 *   1. scripts/build-container-images.sh (cached; lab/vm/registry.ts buildContainerImages):
 *      redis (templates/docker/redis FROM the trixie 8.6.3 base), redis-exporter, node-exporter;
 *   2. a throw-away docker-registry on 127.0.0.1 over the stack registry's blob store
 *      (REDISFORGE_VM_REGISTRY_DATA, default ~/.cache/redisforge/vm-registry/data), which the
 *      stack's registry (providers/qemu createRegistry) serves later;
 *   3. `buildah push` of each image (lab/vm/registry.ts pushImage), then the registry is stopped
 *      by its PID.
 * Output: one `<name>=sha256:<digest>` line per image. The Envoy image is not built (no Envoy
 * binary is obtainable here). Usage: tsx infra/vm-images.ts
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { buildContainerImages, pushImage } from "../lab/vm/registry";

const dataDir = process.env.REDISFORGE_VM_REGISTRY_DATA ?? path.join(os.homedir(), ".cache", "redisforge", "vm-registry", "data");

function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on("error", reject);
        s.listen(0, "127.0.0.1", () => {
            const p = (s.address() as net.AddressInfo).port;
            s.close(() => resolve(p));
        });
    });
}

async function main(): Promise<void> {
    const images = buildContainerImages();
    fs.mkdirSync(dataDir, { recursive: true });
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-push-registry-"));
    const config = path.join(dir, "config.yml");
    fs.writeFileSync(config, `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${dataDir}\n  delete:\n    enabled: false\nhttp:\n  addr: 127.0.0.1:${port}\n`);
    const child = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
    try {
        let up = false;
        for (let i = 0; i < 60 && !up; i++) {
            up = await new Promise<boolean>((r) => {
                const c = net.connect(port, "127.0.0.1", () => (c.destroy(), r(true)));
                c.on("error", () => r(false));
            });
            if (!up) await new Promise((r) => setTimeout(r, 250));
        }
        if (!up) throw new Error(`docker-registry did not listen on 127.0.0.1:${port} within 15 s`);
        for (const [name, local] of Object.entries(images)) {
            const tag = local.split(":").pop()!;
            const ref = pushImage(local, `127.0.0.1:${port}`, `redisforge/${name}:${tag}`);
            process.stdout.write(`${name}=${ref.split("@")[1]}\n`);
        }
    } finally {
        if (child.pid) child.kill("SIGTERM");
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

main().catch((e) => {
    process.stderr.write(`vm-images: ${(e as Error).message}\n`);
    process.exit(1);
});
