/**
 * The three object stores of the backup tests, each reached through the EXACT rclone remote its
 * cloud's VM renders (templates/backup buildRcloneConfig), with only what a VM gets from its
 * cloud supplied the way the cloud supplies it:
 *
 * - s3:    Versity Gateway (lab/object-stores.ts). The rendered remote says `env_auth = true`;
 *          on EC2 the SDK's chain finds the instance profile's keys through IMDS. Here the same
 *          chain finds them in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the chain's first link;
 *          IMDS is not emulated). The keys are a gateway user whose bucket policy allows
 *          s3:PutObject/GetObject/ListBucket (+ multipart) and no delete. Overridden: the endpoint
 *          and, for path-style addressing, provider AWS -> Other (RCLONE_CONFIG_REDISFORGE_ENDPOINT /
 *          _PROVIDER); env_auth, region, no_check_bucket and server_side_encryption stay as rendered.
 * - gcs:   fake-gcs-server. The rendered remote has no credential, so rclone uses Application
 *          Default Credentials; they come from a GCE metadata server on loopback
 *          (lab/gce-metadata.ts, GCE_METADATA_HOST), the path ADC takes on a GCE VM. Only the
 *          endpoint is overridden. fake-gcs-server checks no token and has no IAM: never-delete
 *          cannot be shown on it (deletes succeed); the test says so instead of pretending.
 * - azure: Azurite. The rendered remote says `use_msi = true`; the backup gets an account SAS
 *          (signed with Azurite's public dev key, permissions read/add/create/write/list, no
 *          delete) through RCLONE_CONFIG_REDISFORGE_SAS_URL (managed identity is not emulated).
 *          Setup steps (creating the container) use the account key, like Pulumi would.
 */
import { spawnSync } from "child_process";
import { createHmac } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { GceMetadataServer } from "../../../lab/gce-metadata";
import { GcsServer, randomSecret, S3Server } from "../../../lab/object-stores";
import { buildRcloneConfig, RCLONE_REMOTE_NAME } from "../../../templates/backup";
import { AZURITE_ACCOUNT, AZURITE_KEY, Azurite } from "./azurite";

export type StoreKind = "s3" | "gcs" | "azure";
export const STORE_KINDS: StoreKind[] = ["s3", "gcs", "azure"];

export interface TestStore {
    kind: StoreKind;
    label: string;
    /** The bucket/container. */
    bucket: string;
    /** rclone.conf rendered for this cloud. */
    rcloneConfig: string;
    /** What the backup identity gets (the VM's view). */
    env: Record<string, string>;
    /** Whether the server can refuse a delete to this identity (false: fake-gcs-server has no IAM). */
    enforcesNoDelete: boolean;
    /** Anything the test should assert about how authentication happened (e.g. ADC token fetches). */
    authEvidence: () => Promise<string>;
    stop: () => Promise<void>;
}

const PREFIX = `RCLONE_CONFIG_${RCLONE_REMOTE_NAME.toUpperCase()}_`;

/** Runs rclone synchronously (bounded) with `env` added to a clean PATH/HOME. */
export function rcloneSync(conf: string, env: Record<string, string>, args: string[], input?: Buffer): { code: number | null; out: string; stdout: Buffer } {
    const r = spawnSync("rclone", ["--config", conf, "--retries", "1", "--low-level-retries", "2", ...args], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: path.dirname(conf), ...env },
        input,
        timeout: 60000,
    });
    if (r.error) throw new Error(`rclone ${args.join(" ")}: ${r.error.message}`);
    return { code: r.status, out: `${r.stdout?.toString() ?? ""}${r.stderr?.toString() ?? ""}`, stdout: r.stdout ?? Buffer.alloc(0) };
}

/**
 * An Azure account SAS (service version 2019-12-12, blob service, service/container/object
 * resource types) over plain HTTP, signed with the account key: the string-to-sign is
 * account, permissions, services, resource types, start, expiry, IP, protocol, version, each
 * followed by a newline (Azure Storage REST docs, "Create an account SAS").
 */
export function azureAccountSas(account: string, keyBase64: string, permissions: string, expiry: Date): string {
    const se = expiry.toISOString().replace(/\.\d{3}Z$/, "Z");
    const f = { sv: "2019-12-12", ss: "b", srt: "sco", sp: permissions, se, spr: "https,http" };
    const toSign = [account, f.sp, f.ss, f.srt, "", f.se, "", f.spr, f.sv, ""].join("\n");
    const sig = createHmac("sha256", Buffer.from(keyBase64, "base64")).update(toSign, "utf8").digest("base64");
    return new URLSearchParams({ ...f, sig }).toString();
}

export async function startStore(kind: StoreKind, root: string): Promise<TestStore> {
    const dir = path.join(root, kind);
    fs.mkdirSync(dir, { recursive: true });
    const bucket = "redisforge-backups";
    const rcloneConfig = path.join(dir, "rclone.conf");
    if (kind === "s3") {
        fs.writeFileSync(rcloneConfig, buildRcloneConfig({ cloud: "aws", region: "us-east-1" }));
        const backupUser = { accessKeyId: `rf-backup-${process.pid}`, secretAccessKey: randomSecret() };
        const s3 = await S3Server.start({ dir, bucket, root: { accessKeyId: `rf-root-${process.pid}`, secretAccessKey: randomSecret() }, backupUser });
        return {
            kind,
            label: `S3 (versitygw v1.8.0 on ${s3.endpoint})`,
            bucket,
            rcloneConfig,
            // Path-style addressing: with provider AWS rclone always uses virtual-hosted style
            // (<bucket>.<endpoint host>), a name that cannot resolve to loopback here and must not be
            // looked up in DNS at all; provider Other keeps the bucket in the path.
            env: { [`${PREFIX}ENDPOINT`]: s3.endpoint, [`${PREFIX}PROVIDER`]: "Other", AWS_ACCESS_KEY_ID: backupUser.accessKeyId, AWS_SECRET_ACCESS_KEY: backupUser.secretAccessKey },
            enforcesNoDelete: true,
            authEvidence: async () => "env_auth: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY of the gateway's backup user",
            stop: () => s3.stop(),
        };
    }
    if (kind === "gcs") {
        fs.writeFileSync(rcloneConfig, buildRcloneConfig({ cloud: "gcp" }));
        const gcs = await GcsServer.start({ dir, buckets: [bucket] });
        const md = await GceMetadataServer.start();
        return {
            kind,
            label: `GCS (fake-gcs-server v1.56.1 on ${gcs.endpoint})`,
            bucket,
            rcloneConfig,
            env: { [`${PREFIX}ENDPOINT`]: gcs.endpoint, GCE_METADATA_HOST: md.hostPort },
            enforcesNoDelete: false,
            authEvidence: async () => {
                const st = await md.stats();
                return `ADC from the GCE metadata server on ${md.hostPort}: ${st.tokenRequests} token request(s), ${st.refused} refused`;
            },
            stop: async () => {
                await md.stop();
                await gcs.stop();
            },
        };
    }
    fs.writeFileSync(rcloneConfig, buildRcloneConfig({ cloud: "azure", account: AZURITE_ACCOUNT }));
    const az = await Azurite.start(path.join(dir, "azurite"), 60000);
    // The container is the bucket Pulumi creates (account key, as the deployer).
    const admin = az.rcloneEnv(RCLONE_REMOTE_NAME);
    const mk = rcloneSync(rcloneConfig, admin, ["-vv", "mkdir", `${RCLONE_REMOTE_NAME}:${bucket}`]);
    if (mk.code !== 0 || !mk.out.includes(`Setting use_msi="false" for "${RCLONE_REMOTE_NAME}" from environment variable`)) throw new Error(`Azurite: creating ${bucket} failed: ${mk.out}`);
    const sas = azureAccountSas(AZURITE_ACCOUNT, AZURITE_KEY, "rwlac", new Date(Date.now() + 6 * 3600_000));
    return {
        kind,
        label: `Azure Blob (Azurite 3.37 on 127.0.0.1:${az.port})`,
        bucket,
        rcloneConfig,
        env: { [`${PREFIX}USE_MSI`]: "false", [`${PREFIX}SAS_URL`]: `http://127.0.0.1:${az.port}/${AZURITE_ACCOUNT}?${sas}` },
        enforcesNoDelete: true,
        authEvidence: async () => "account SAS sp=rwlac (no d) in place of the managed identity",
        stop: () => az.stop(),
    };
}
