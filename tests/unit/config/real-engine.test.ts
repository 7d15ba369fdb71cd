/**
 * Pulumi.yaml and the example stack files on the REAL Pulumi CLI (scripts/install-pulumi.sh):
 * the CLI's own project-config validation accepts every stack file, and infra/config.ts reads
 * what the engine hands over (arrays, numbers, declared defaults, secret flags). The program here only loads
 * the config (no cloud plugin is needed: nothing is registered).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ROOT } from "../components/program";

function findPulumi(): string | undefined {
    const local = path.join(ROOT, ".tools", "bin", "pulumi");
    if (fs.existsSync(local)) return local;
    for (const dir of (process.env.PATH ?? "").split(":")) if (dir && fs.existsSync(path.join(dir, "pulumi"))) return path.join(dir, "pulumi");
    return undefined;
}

const PULUMI = findPulumi();
const maybe = PULUMI ? describe : describe.skip;
if (!PULUMI) console.warn("tests/unit/config/real-engine.test.ts SKIPPED: no pulumi binary; run `bash scripts/install-pulumi.sh` (CI does, via scripts/setup.sh)");

maybe("stack config on the real Pulumi CLI", () => {
    let dir = "";
    const env = () => ({
        ...process.env,
        PATH: `${path.dirname(PULUMI!)}:${process.env.PATH}`,
        PULUMI_HOME: path.join(ROOT, ".tools", "pulumi-home"),
        PULUMI_BACKEND_URL: `file://${dir}/state`,
        PULUMI_CONFIG_PASSPHRASE: "redisforge-test-only",
        PULUMI_CONFIG_PASSPHRASE_FILE: "",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_NODEJS_TRANSPILE_ONLY: "true",
    });
    const pulumi = (args: string[]) => {
        const t0 = Date.now();
        const r = spawnSync(PULUMI!, [...args, "--non-interactive"], { cwd: dir, env: env(), encoding: "utf8", timeout: 180000 });
        if (process.env.REDISFORGE_TIMING) console.log(`pulumi ${args.join(" ")}: ${Date.now() - t0} ms`);
        return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
    };

    beforeAll(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "redisforge-config-"));
        fs.mkdirSync(path.join(dir, "state"));
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8").replace("main: infra/index.ts", "main: index.ts"));
        for (const f of ["Pulumi.prod.yaml", "Pulumi.gcp-prod.yaml", "Pulumi.azure-prod.yaml"]) fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
        // A program that only loads and validates the config, and returns what it understood.
        fs.writeFileSync(
            path.join(dir, "index.ts"),
            `import { loadConfig } from ${JSON.stringify(path.join(ROOT, "infra", "config"))};
import { adapters } from ${JSON.stringify(path.join(ROOT, "providers", "registry"))};
export = () => { const c = loadConfig(adapters); return { summary: JSON.stringify({ cloud: c.cloud, zones: c.zones, shards: c.shards, replicas: c.replicasPerShard, monitoring: c.monitoringCidrs, admin: c.adminCidrs, redisPort: c.ports.redis, build: c.images.build, supplied: Object.keys(c.passwords) }) }; };
`,
        );
        fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "redisforge-config-check", main: "index.ts" }));
        fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { strict: true, module: "commonjs", moduleResolution: "node", target: "ES2022", esModuleInterop: true, skipLibCheck: true }, files: ["index.ts"] }));
        fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    });

    afterAll(() => {
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    test.each([
        ["prod", "aws", "eu-west-1a"],
        ["gcp-prod", "gcp", "europe-west1-b"],
        ["azure-prod", "azure", "1"],
    ])("stack %s: the CLI accepts it and the program reads it", (stack, cloud, firstZone) => {
        expect(pulumi(["stack", "init", stack]).code).toBe(0);
        const up = pulumi(["up", "--yes", "-s", stack]);
        expect({ code: up.code, out: up.code === 0 ? "" : up.out.slice(-3000) }).toEqual({ code: 0, out: "" });
        const out = pulumi(["stack", "output", "summary", "-s", stack]);
        const summary = JSON.parse(out.out.trim().split("\n")[0]) as Record<string, unknown>;
        expect(summary).toMatchObject({ cloud, shards: 3, replicas: 1, redisPort: 6379, build: true, admin: [], supplied: [] });
        expect((summary.zones as string[])[0]).toBe(firstZone);
        expect((summary.monitoring as string[]).length).toBe(1);
    }, 240000);

    // The rejections (short / plaintext secret) are covered on the mocked engine
    // (tests/unit/config/validate.test.ts); on this CLI a failing program takes ~90 s to report, too slow here.
    test("a secret set with `pulumi config set --secret` reaches the program as a supplied password", () => {
        expect(pulumi(["config", "set", "--secret", "redisforge:adminPassword", "Z".repeat(40), "-s", "prod"]).code).toBe(0);
        const ok = pulumi(["up", "--yes", "-s", "prod"]);
        expect({ code: ok.code, out: ok.code === 0 ? "" : ok.out.slice(-3000) }).toEqual({ code: 0, out: "" });
        expect(pulumi(["stack", "output", "summary", "-s", "prod"]).out).toContain('"supplied":["admin"]');
    }, 240000);
});
