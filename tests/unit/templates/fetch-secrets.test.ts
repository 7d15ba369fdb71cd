/**
 * templates/scripts/fetch-secrets.sh, run for real (bash, curl, jq) against a local stand-in for
 * each cloud's metadata service and secret store on 127.0.0.1. The stand-in checks what the real
 * services require: IMDSv2 session token, a SigV4 signature recomputed here from the AWS spec
 * (including the session token header), GCE's Metadata-Flavor header and bearer token, Azure IMDS
 * `Metadata: true` and the Key Vault resource. The script must write exact contents, 0400, owned as
 * listed, retry transient errors (bounded), and fail naming the reference when a secret is missing.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { CloudKind, CLOUD_KINDS } from "../../../templates/cloud-init";
import { secretRef } from "./fixtures";
import { checkSigV4, CloudStandin, CREDS, Seen, startCloudStandin } from "./cloud-standin";
import { tmpDir } from "./tools";

const SCRIPT = path.resolve(__dirname, "../../../templates/scripts/fetch-secrets.sh");
const dir = tmpDir("fetch-secrets");
const UID = process.getuid!();

const PEM = "-----BEGIN TEST KEY-----\nAAAA\nBBBB\n-----END TEST KEY-----\n";
const STORE: Record<string, string> = { "node0-key": PEM, "app-password": "pw-no-newline-0123456789abcdefABCDEF", "exporter-password": "exporter-pw-0123456789abcdefABCDEF" };

let cloudStandin: CloudStandin;
beforeAll(async () => {
    cloudStandin = await startCloudStandin(STORE);
});
afterAll(async () => {
    await cloudStandin.close();
    fs.rmSync(dir, { recursive: true, force: true });
});

function runScript(cloud: CloudKind, names: string[], formats: string[] = names.map(() => "file"), opts: { dir?: string; env?: Record<string, string> } = {}) {
    const d = opts.dir ?? fs.mkdtempSync(path.join(dir, `${cloud}-`));
    fs.writeFileSync(path.join(d, "boot.env"), `CLOUD=${cloud}\n`);
    const list = names.map((n, i) => `${d}/out/${n} ${UID} ${formats[i]} ${secretRef(cloud, n)}`).join("\n");
    fs.writeFileSync(path.join(d, "secrets.list"), `# test\n${list}\n`);
    const env = {
        PATH: process.env.PATH,
        BOOT_ENV: path.join(d, "boot.env"),
        SECRETS_LIST: path.join(d, "secrets.list"),
        MAX_ATTEMPTS: "3",
        RETRY_SLEEP: "0",
        ...cloudStandin.env(),
        ...opts.env,
    };
    return new Promise<{ code: number; out: string; dir: string }>((resolve) => {
        execFile("bash", [SCRIPT], { env, timeout: 30000 }, (err, stdout, stderr) => {
            resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr, dir: d });
        });
    });
}

describe.each(CLOUD_KINDS)("fetch-secrets.sh on %s", (cloud) => {
    beforeEach(() => {
        cloudStandin.seen.length = 0;
        cloudStandin.failures.length = 0;
        cloudStandin.flaky = 0;
    });

    it("writes each secret's exact content, 0400, owned as listed; env format for the exporter", async () => {
        const r = await runScript(cloud, ["node0-key", "app-password", "exporter-password"], ["file", "file", "env:REDIS_PASSWORD"]);
        expect(cloudStandin.failures).toEqual([]);
        expect(r.out).toContain("wrote 3 secret file(s)");
        expect(r.code).toBe(0);
        const out = path.join(r.dir, "out");
        expect(fs.readFileSync(path.join(out, "node0-key"), "utf8")).toBe(PEM);
        expect(fs.readFileSync(path.join(out, "app-password"), "utf8")).toBe(STORE["app-password"]);
        expect(fs.readFileSync(path.join(out, "exporter-password"), "utf8")).toBe(`REDIS_PASSWORD=${STORE["exporter-password"]}\n`);
        for (const f of fs.readdirSync(out)) {
            const st = fs.statSync(path.join(out, f));
            expect([f, st.mode & 0o777, st.uid]).toEqual([f, 0o400, UID]);
        }
        expect(fs.readdirSync(out).sort()).toEqual(["app-password", "exporter-password", "node0-key"]); // no temp files left
        if (cloud === "aws") expect(cloudStandin.seen.filter((s) => s.method === "POST").length).toBe(3);
    });

    it("refresh: unchanged secrets are left alone; a changed one is replaced and restarts RESTART_UNITS", async () => {
        const first = await runScript(cloud, ["node0-key", "app-password"]);
        expect(first.out).toContain("wrote 2 secret file(s), 2 changed");
        // systemctl stand-in that records its arguments
        const bin = path.join(first.dir, "bin");
        fs.mkdirSync(bin);
        fs.writeFileSync(path.join(bin, "systemctl"), `#!/bin/sh\necho "$@" >>"${first.dir}/systemctl.calls"\n`, { mode: 0o755 });
        const env = { PATH: `${bin}:${process.env.PATH}`, RESTART_UNITS: "redis.service redis-exporter.service" };
        const keyFile = path.join(first.dir, "out", "node0-key");
        const inode = fs.statSync(keyFile).ino;
        const again = await runScript(cloud, ["node0-key", "app-password"], undefined, { dir: first.dir, env });
        expect(again.code).toBe(0);
        expect(again.out).toContain("wrote 2 secret file(s), 0 changed");
        expect(fs.existsSync(path.join(first.dir, "systemctl.calls"))).toBe(false);
        expect(fs.statSync(keyFile).ino).toBe(inode); // not rewritten
        const old = STORE["app-password"];
        STORE["app-password"] = `${old}-rotated`;
        try {
            const rotated = await runScript(cloud, ["node0-key", "app-password"], undefined, { dir: first.dir, env });
            expect(rotated.code).toBe(0);
            expect(rotated.out).toContain("wrote 2 secret file(s), 1 changed");
            expect(fs.readFileSync(path.join(first.dir, "out", "app-password"), "utf8")).toBe(`${old}-rotated`);
            expect(fs.readFileSync(path.join(first.dir, "systemctl.calls"), "utf8")).toBe("try-restart redis.service redis-exporter.service\n");
            expect(fs.readdirSync(path.join(first.dir, "out")).sort()).toEqual(["app-password", "node0-key"]);
        } finally {
            STORE["app-password"] = old;
        }
    });

    it("retries transient store errors (bounded) and then succeeds", async () => {
        cloudStandin.flaky = 2;
        const r = await runScript(cloud, ["app-password"]);
        expect(r.code).toBe(0);
        expect(fs.readFileSync(path.join(r.dir, "out", "app-password"), "utf8")).toBe(STORE["app-password"]);
    });

    it("fails, naming the reference, when a secret does not exist; writes nothing for it", async () => {
        const r = await runScript(cloud, ["missing"]);
        expect(r.code).not.toBe(0);
        expect(r.out).toContain(`could not read ${secretRef(cloud, "missing")} after 3 attempts`);
        expect(fs.existsSync(path.join(r.dir, "out")) ? fs.readdirSync(path.join(r.dir, "out")) : []).toEqual([]);
    });
});

describe("the stand-in is strict", () => {
    it("rejects a request whose signature does not match", () => {
        const req: Seen = {
            method: "POST",
            url: "/",
            body: "{}",
            headers: {
                authorization: `AWS4-HMAC-SHA256 Credential=${CREDS.AccessKeyId}/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-amz-target, Signature=${"0".repeat(64)}`,
                host: "127.0.0.1",
                "x-amz-date": "20260101T000000Z",
                "x-amz-security-token": CREDS.Token,
                "x-amz-target": "secretsmanager.GetSecretValue",
            },
        };
        expect(checkSigV4(req)).toBe("signature mismatch");
        expect(checkSigV4({ ...req, headers: { ...req.headers, authorization: String(req.headers.authorization).replace("x-amz-security-token;", "") } })).toBe("header x-amz-security-token not signed");
    });
});
