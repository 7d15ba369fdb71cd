/**
 * The converge agent on a Redis VM (formation `agent`; templates/cloud-init/converge.ts), for each
 * cloud that offers a converge store: the user-data passes the real `cloud-init schema`, the units
 * pass the real `systemd-analyze verify`, the agent's config.json is the shape the agent's own
 * parser accepts (providers/redis-cluster/agent/main.ts agentFromConfig reads it back) and holds no
 * secret, the password and TLS files are fetched by reference for the agent's uid, the agent starts
 * in the boot's one systemd transaction, and the secret refresh restarts it.
 */
import * as fs from "fs";
import * as path from "path";
import { buildRedisNodeUserData, CloudConfig, renderCloudInit } from "../../../templates/cloud-init";
import { CONVERGE_UID, RedisNodeConvergeParams } from "../../../templates/cloud-init/converge";
import { agentFromConfig } from "../../../providers/redis-cluster/agent/main";
import { TemplateParamError } from "../../../templates/cloud-init/checks";
import { redisNodeParams, secretRef } from "./fixtures";
import { cloudInitSchema, run, systemdScratchRoot, tmpDir, writeTmp } from "./tools";

const dir = tmpDir("converge");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const IMAGE = `registry.example.com/redisforge/converge-agent@sha256:${"c".repeat(64)}`;
const STORES: Record<"aws" | "gcp" | "azure", Omit<RedisNodeConvergeParams, "passwordRef">> = {
    aws: { image: IMAGE, store: { kind: "s3", endpoint: "https://s3.eu-west-1.amazonaws.com", bucket: "prod-converge-1a2b", prefix: "converge/prod", region: "eu-west-1" } },
    gcp: { image: IMAGE, store: { kind: "gcs", bucket: "prod-converge-1a2b", prefix: "converge/prod" } },
    azure: { image: IMAGE, store: { kind: "azure", endpoint: "https://prodconv1a2b.blob.core.windows.net", account: "prodconv1a2b", container: "converge", prefix: "converge/prod" }, msiClientId: "11111111-2222-3333-4444-555555555555" },
};
const build = (cloud: "aws" | "gcp" | "azure"): CloudConfig => buildRedisNodeUserData({ ...redisNodeParams(cloud), converge: { ...STORES[cloud], passwordRef: secretRef(cloud, "converge-password") } });
const file = (c: CloudConfig, p: string) => c.write_files.find((w) => w.path === p)?.content ?? "";

describe.each(["aws", "gcp", "azure"] as const)("%s Redis node with the converge agent", (cloud) => {
    const config = build(cloud);
    const text = renderCloudInit(config);

    it("passes the real `cloud-init schema`", () => {
        const r = cloudInitSchema(writeTmp(dir, `${cloud}.yaml`, text));
        expect(r.out).not.toMatch(/schema errors|deprecations: \S/i);
        expect(r.code).toBe(0);
    });

    it("its units pass the real `systemd-analyze verify` (the agent's unit among them)", () => {
        const { root, units } = systemdScratchRoot(path.join(dir, `root-${cloud}`), config.write_files);
        expect(units.some((u) => u.endsWith("redisforge-converge.service"))).toBe(true);
        const r = run("systemd-analyze", ["verify", `--root=${root}`, ...units]);
        expect(r.out).toBe("");
        expect(r.code).toBe(0);
    });

    it("config.json: names only, read back by the agent's own parser; credentials from the VM identity", () => {
        const cfg = JSON.parse(file(config, "/etc/redisforge/converge/config.json"));
        expect(cfg.store).toEqual(STORES[cloud].store);
        expect(cfg.storeCredentials).toEqual({ instance: cloud === "azure" ? { clientId: STORES.azure.msiClientId } : {} });
        expect(cfg.redis.username).toBe("converge");
        // Only file paths for what is secret: the password and the key stay in the files the secret fetch writes.
        expect(Object.keys(cfg.redis).sort()).toEqual(["caFile", "certFile", "keyFile", "passwordFile", "username"]);
        for (const k of ["caFile", "certFile", "keyFile", "passwordFile"]) expect(cfg.redis[k]).toMatch(/^\/run\/secrets\/converge\//);
        // The agent's parser takes it: it fails only on the secret files, which exist on the VM alone.
        expect(() => agentFromConfig(cfg)).toThrow(/redis.passwordFile: cannot read \/run\/secrets\/converge\/password \(ENOENT\); the node's secret fetch writes it/);
    });

    it("fetches the converge password and TLS copies by reference for the agent's uid; starts it in the boot's one transaction; the refresh restarts it", () => {
        const list = file(config, "/etc/redisforge/secrets.list").split("\n").filter((l) => l.startsWith("/run/redisforge/converge/"));
        expect(list.map((l) => l.split(" ").slice(0, 3).join(" ")).sort()).toEqual(
            ["password", "tls/ca.crt", "tls/node.crt", "tls/node.key"].map((f) => `/run/redisforge/converge/${f} ${CONVERGE_UID} file`),
        );
        expect(list.find((l) => l.startsWith("/run/redisforge/converge/password"))!.split(" ")[3]).toBe(secretRef(cloud, "converge-password"));
        const enables = config.runcmd.filter((c) => c.slice(0, 3).join(" ") === "systemctl enable --now");
        expect(enables[0]).toEqual(expect.arrayContaining(["redis.service", "redisforge-converge.service"]));
        expect(config.runcmd).toContainEqual(["install", "-d", "-m", "0775", "-g", String(CONVERGE_UID), "/var/lib/prometheus/node-exporter"]);
        const unit = file(config, "/etc/systemd/system/redisforge-converge.service");
        expect(unit).toMatch(new RegExp(`--user ${CONVERGE_UID}:${CONVERGE_UID} --read-only --cap-drop ALL`));
        expect(unit).toContain(`${IMAGE} /etc/redisforge/converge/config.json`);
        expect(file(config, "/etc/systemd/system/redisforge-secrets-refresh.service")).toContain('Environment="RESTART_UNITS=redis.service redis-exporter.service redisforge-converge.service"');
    });
});

test("without converge parameters nothing of the agent is rendered; bad ones are refused, every field named", () => {
    const plain = buildRedisNodeUserData(redisNodeParams("aws"));
    expect(renderCloudInit(plain)).not.toMatch(/converge/);
    let err: unknown;
    try {
        buildRedisNodeUserData({ ...redisNodeParams("azure"), converge: { image: "converge:latest", store: { kind: "azure", endpoint: "https://a.blob.core.windows.net", account: "a", container: "", prefix: "p" }, passwordRef: "hunter2-plaintext" } as RedisNodeConvergeParams });
    } catch (e) {
        err = e;
    }
    expect(err).toBeInstanceOf(TemplateParamError);
    const m = (err as Error).message;
    for (const f of ["converge.image", "converge.store.container", "converge.msiClientId", "converge.passwordRef"]) expect(m).toContain(f);
    expect(m).not.toContain("hunter2-plaintext");
});
