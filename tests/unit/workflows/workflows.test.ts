/**
 * The GitHub workflows (.github/workflows) checked with the real tools available here, since no
 * hosted runner or OIDC provider is: actionlint v1.7.12 (scripts/install-actionlint.sh) with
 * shellcheck over every `run:` block, shown to catch broken workflows; the delivery rules read from
 * the parsed files (SHA pins, least permissions, OIDC only, one stack at a time, environments,
 * the PR comment edited in place, the repository scripts the steps call); and scripts/ci-stacks.sh,
 * which decides the matrix, on a table of changes.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const ACTIONLINT = path.join(ROOT, ".tools", "bin", "actionlint");
const WF = path.join(ROOT, ".github", "workflows");
const read = (f: string) => parse(fs.readFileSync(path.join(WF, f), "utf8"));

function actionlint(args: string[], cwd = ROOT) {
    if (!fs.existsSync(ACTIONLINT)) throw new Error(`${ACTIONLINT} missing: run bash scripts/install-actionlint.sh (scripts/setup.sh does)`);
    const r = spawnSync(ACTIONLINT, ["-color=false", ...args], { cwd, encoding: "utf8", timeout: 60_000 });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("actionlint", () => {
    it("is v1.7.12 and shellcheck is there for it", () => {
        expect(actionlint(["-version"]).out.split("\n")[0]).toBe("v1.7.12");
        expect(spawnSync("shellcheck", ["--version"], { encoding: "utf8" }).status).toBe(0);
    });

    it("passes every workflow", () => {
        const files = fs.readdirSync(WF).filter((f) => /\.ya?ml$/.test(f));
        expect(files.sort()).toEqual(["deploy.yml", "pull-request.yml"]);
        const r = actionlint(files.map((f) => path.join(WF, f)));
        expect(r.out).toBe("");
        expect(r.code).toBe(0);
    });

    const broken: [string, (s: string) => string, RegExp][] = [
        ["a shell bug in a run: block (shellcheck)", (s) => s.replace('run: bash scripts/ci-preview.sh "$STACK"', "run: bash scripts/ci-preview.sh $STACK"), /shellcheck reported issue in this script: SC2086/],
        ["a job that needs a job that does not exist", (s) => s.replace("needs: [test, stacks]", "needs: [test, stack]"), /job "preview" needs job "stack" which does not exist/],
        ["an unknown permission scope", (s) => s.replace("pull-requests: write", "pull-request: write"), /unknown permission scope "pull-request"/],
        ["an expression on a context that does not exist", (s) => s.replace("BASE_SHA: ${{ github.event.pull_request.base.sha }}", "BASE_SHA: ${{ githb.event.pull_request.base.sha }}"), /undefined variable "githb"/],
    ];
    it.each(broken)("catches %s", (_label, mutate, expected) => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-actionlint-"));
        try {
            const original = fs.readFileSync(path.join(WF, "pull-request.yml"), "utf8");
            const mutated = mutate(original);
            expect(mutated).not.toBe(original); // the mutation applied
            fs.mkdirSync(path.join(dir, ".github", "workflows"), { recursive: true });
            fs.writeFileSync(path.join(dir, ".github", "workflows", "pull-request.yml"), mutated);
            const r = actionlint([path.join(dir, ".github", "workflows", "pull-request.yml")], dir);
            expect(r.code).toBe(1);
            expect(r.out).toMatch(expected);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe("delivery rules in the workflows", () => {
    const pr = read("pull-request.yml");
    const deploy = read("deploy.yml");
    const steps = (wf: any) => Object.values(wf.jobs).flatMap((j: any) => j.steps ?? []);

    it("every action is pinned to a full commit SHA, the tag named beside it", () => {
        for (const f of ["pull-request.yml", "deploy.yml"]) {
            const uses = fs.readFileSync(path.join(WF, f), "utf8").split("\n").filter((l) => /^\s*(- )?uses:/.test(l));
            expect(uses.length).toBeGreaterThan(4);
            for (const l of uses) expect(l).toMatch(/uses: [\w.-]+\/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/);
        }
    });

    it("least permissions: none at the top, per job only what it uses; OIDC tokens only where a cloud is reached", () => {
        for (const wf of [pr, deploy]) {
            expect(wf.permissions).toEqual({});
            for (const [name, job] of Object.entries<any>(wf.jobs)) {
                expect({ name, permissions: job.permissions }).toEqual({ name, permissions: expect.objectContaining({ contents: "read" }) });
                const usesCloud = (job.steps ?? []).some((s: any) => /configure-aws-credentials|google-github-actions\/auth|azure\/login/.test(s.uses ?? ""));
                expect({ name, idToken: job.permissions["id-token"] }).toEqual({ name, idToken: usesCloud ? "write" : undefined });
            }
        }
        expect(pr.jobs.preview.permissions).toEqual({ contents: "read", "id-token": "write", "pull-requests": "write" });
        expect(deploy.jobs.deploy.permissions).toEqual({ contents: "read", "id-token": "write" });
    });

    it("no long-lived cloud keys: credentials by OIDC, nothing but GITHUB_TOKEN from secrets", () => {
        for (const f of ["pull-request.yml", "deploy.yml"]) {
            const text = fs.readFileSync(path.join(WF, f), "utf8");
            expect([...text.matchAll(/secrets\.([A-Z_]+)/g)].map((m) => m[1]).filter((s) => s !== "GITHUB_TOKEN")).toEqual([]);
            expect(text).not.toMatch(/aws-access-key-id|aws-secret-access-key|credentials_json|creds:/);
        }
        const aws = steps(pr).find((s: any) => /configure-aws-credentials/.test(s.uses ?? ""));
        expect(aws.with["role-to-assume"]).toBe("${{ vars.AWS_PREVIEW_ROLE_ARN }}");
        const gcp = steps(deploy).find((s: any) => /google-github-actions\/auth/.test(s.uses ?? ""));
        expect(Object.keys(gcp.with).sort()).toEqual(["service_account", "workload_identity_provider"]);
        const az = steps(deploy).find((s: any) => /azure\/login/.test(s.uses ?? ""));
        expect(Object.keys(az.with).sort()).toEqual(["client-id", "subscription-id", "tenant-id"]);
        // Backend and secrets provider come from repository settings.
        expect(pr.jobs.preview.env.PULUMI_BACKEND_URL).toBe("${{ vars.PULUMI_BACKEND_URL }}");
        expect(deploy.jobs.deploy.env.PULUMI_SECRETS_PROVIDER).toBe("${{ vars.PULUMI_SECRETS_PROVIDER }}");
    });

    it("pull-request: tests first, then a preview per affected stack through scripts/ci-preview.sh, the diff commented in place with the policy pack", () => {
        expect(pr.on.pull_request).toBeDefined();
        expect(pr.jobs.test.steps.map((s: any) => s.run).filter(Boolean)).toEqual(["bash .ci/run"]);
        expect(pr.jobs.preview.needs).toEqual(["test", "stacks"]);
        expect(pr.jobs.preview.strategy.matrix.include).toBe("${{ fromJSON(needs.stacks.outputs.stacks) }}");
        const runs = pr.jobs.preview.steps.map((s: any) => s.run).filter(Boolean);
        expect(runs).toContain('bash scripts/ci-preview.sh "$STACK"');
        const comment = pr.jobs.preview.steps.find((s: any) => s.with?.command === "preview");
        expect(comment.uses).toMatch(/^pulumi\/actions@/);
        expect(comment.with).toEqual(expect.objectContaining({ "comment-on-pr": true, "edit-pr-comment": true, diff: true, policyPacks: "policy", "stack-name": "${{ matrix.stack }}" }));
        expect(pr.concurrency["cancel-in-progress"]).toBe(true);
    });

    it("deploy: on merge to main, one stack at a time, each behind its environment, never two deploys of a stack at once", () => {
        expect(deploy.on.push.branches).toEqual(["main"]);
        const job = deploy.jobs.deploy;
        expect(job.strategy["max-parallel"]).toBe(1);
        expect(job.environment.name).toBe("${{ matrix.stack }}");
        expect(job.concurrency).toEqual({ group: "deploy-${{ matrix.stack }}", "cancel-in-progress": false });
        expect(job.steps.map((s: any) => s.run).filter(Boolean)).toEqual(["npm ci --no-audit --no-fund", 'bash scripts/ci-stack-select.sh "$STACK"', 'bash scripts/ci-deploy.sh "$STACK"']);
    });

    it("the repository scripts the steps call exist and pass shellcheck", () => {
        const text = ["pull-request.yml", "deploy.yml"].map((f) => fs.readFileSync(path.join(WF, f), "utf8")).join("\n");
        const scripts = [...new Set([...text.matchAll(/bash (scripts\/[\w.-]+\.sh|\.ci\/run)/g)].map((m) => m[1]))];
        expect(scripts.sort()).toEqual([".ci/run", "scripts/ci-deploy.sh", "scripts/ci-preview.sh", "scripts/ci-stack-select.sh", "scripts/ci-stacks.sh"]);
        const r = spawnSync("shellcheck", scripts.map((s) => path.join(ROOT, s)), { encoding: "utf8" });
        expect(r.stdout).toBe("");
        expect(r.status).toBe(0);
    });
});

describe("scripts/ci-stacks.sh: the stacks a change can affect", () => {
    const stacksFor = (files: string[]) => {
        const r = spawnSync("bash", [path.join(ROOT, "scripts", "ci-stacks.sh")], { cwd: ROOT, encoding: "utf8", env: { ...process.env, REDISFORGE_CHANGED_FILES: files.join("\n") } });
        if (r.status !== 0) throw new Error(r.stderr);
        const m = /^stacks=(.*)$/.exec(r.stdout.trim());
        return (JSON.parse(m![1]) as { stack: string; cloud: string; region: string }[]);
    };
    const clouds = [
        { stack: "azure-prod", cloud: "azure", region: "westeurope" },
        { stack: "gcp-prod", cloud: "gcp", region: "europe-west1" },
        { stack: "prod", cloud: "aws", region: "eu-west-1" },
    ];
    it.each<[string, string[], string[]]>([
        ["docs and tests only", ["README.md", "tests/unit/render.test.ts", "lab/cli.ts"], []],
        ["one stack file", ["Pulumi.gcp-prod.yaml"], ["gcp-prod"]],
        ["the local stack file (not a cloud stack)", ["Pulumi.local.yaml"], []],
        ["a component", ["components/redis-node.ts"], ["azure-prod", "gcp-prod", "prod"]],
        ["the policy pack", ["policy/checks.ts"], ["azure-prod", "gcp-prod", "prod"]],
        ["dependencies", ["package-lock.json"], ["azure-prod", "gcp-prod", "prod"]],
    ])("%s", (_label, files, expected) => {
        expect(stacksFor(files)).toEqual(clouds.filter((c) => expected.includes(c.stack)));
    });
});
