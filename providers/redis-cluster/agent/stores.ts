/**
 * Which object store holds a cluster's converge documents, and how a caller authenticates to it:
 * one place that the agent's process (main.ts) and the deployer's RedisCluster resource
 * (deployer.ts, provider-agent.ts) both open stores through.
 *
 * Settings (no secret; in the RedisCluster inputs and the agent's config file):
 *   { kind: "s3",    endpoint, bucket, prefix, region }          AWS S3, the qemu cloud's S3 server
 *   { kind: "gcs",   endpoint?, bucket, prefix }                 Google Cloud Storage
 *   { kind: "azure", endpoint, account, container, prefix }      Azure Blob Storage
 *
 * Credentials, one of:
 *   static   the deployer's (a secret input): s3 {accessKeyId, secretAccessKey, sessionToken?};
 *            gcs {accessToken}; azure {accountKey} or {accessToken}
 *   file     a JSON file of that shape, read again at every request (rotated keys are picked up)
 *   instance the VM's own identity from the cloud's metadata service (no key on the node):
 *            s3 -> IMDSv2 role credentials, gcs -> service account token, azure -> managed
 *            identity token (clientId names a user-assigned identity); `endpoint` overrides the
 *            metadata service's address (tests, the qemu cloud keeps the AWS one)
 */
import * as fs from "fs";
import { awsInstanceCredentials, azureInstanceToken, gceInstanceToken } from "../../object-store/instance-credentials";
import { SigV4Credentials } from "../../object-store/sigv4";
import { AzureAuth, AzureBlobStore } from "./azure-store";
import { GcsStore } from "./gcs-store";
import { S3Store } from "./s3-store";
import { CasStore } from "./store";

export type AgentStoreSettings =
    | { kind: "s3"; endpoint: string; bucket: string; prefix: string; region: string }
    | { kind: "gcs"; endpoint?: string; bucket: string; prefix: string }
    | { kind: "azure"; endpoint: string; account: string; container: string; prefix: string };

export const STORE_KINDS = ["s3", "gcs", "azure"] as const;

export type StoreCredentialSource = { static: unknown } | { file: string } | { instance: { endpoint?: string; clientId?: string } };

/** What each kind's static / file credentials look like (for messages). */
export const CREDENTIAL_SHAPES: Record<AgentStoreSettings["kind"], string> = {
    s3: '{"accessKeyId", "secretAccessKey", "sessionToken"?}',
    gcs: '{"accessToken"}',
    azure: '{"accountKey"} or {"accessToken"}',
};

/** null when the settings are complete for their kind, else what is missing or wrong. */
export function checkStoreSettings(s: unknown): string | null {
    const o = (s ?? {}) as Record<string, unknown>;
    const need: Record<string, string[]> = { s3: ["endpoint", "bucket", "prefix", "region"], gcs: ["bucket", "prefix"], azure: ["endpoint", "account", "container", "prefix"] };
    const kind = String(o.kind);
    if (!need[kind]) return `store kind must be one of ${STORE_KINDS.join(", ")}; got ${JSON.stringify(o.kind)}`;
    const missing = need[kind].filter((k) => typeof o[k] !== "string" || !o[k]);
    return missing.length ? `a ${kind} store needs ${need[kind].join(", ")}; missing or empty: ${missing.join(", ")}` : null;
}

const str = (o: Record<string, unknown>, k: string) => (typeof o[k] === "string" && o[k] ? (o[k] as string) : undefined);

/** Validates a credential document of `kind` (static or read from a file); `where` names it in errors. */
export function credentialOf(kind: AgentStoreSettings["kind"], doc: unknown, where: string): SigV4Credentials | string | AzureAuth {
    const o = (doc && typeof doc === "object" ? doc : {}) as Record<string, unknown>;
    const bad = () => new Error(`${where}: a ${kind} store's credentials must be JSON ${CREDENTIAL_SHAPES[kind]}; got keys [${Object.keys(o).join(", ")}]`);
    if (kind === "s3") {
        const id = str(o, "accessKeyId"), secret = str(o, "secretAccessKey");
        if (!id || !secret) throw bad();
        return { accessKeyId: id, secretAccessKey: secret, sessionToken: str(o, "sessionToken") };
    }
    if (kind === "gcs") {
        const t = str(o, "accessToken");
        if (!t) throw bad();
        return t;
    }
    const key = str(o, "accountKey"), t = str(o, "accessToken");
    if (key && !t) return { accountKey: key };
    if (t && !key) return { token: t };
    throw bad();
}

function fromFile(kind: AgentStoreSettings["kind"], path: string): () => Promise<unknown> {
    return async () => {
        let text: string;
        try {
            text = fs.readFileSync(path, "utf8");
        } catch (e) {
            throw new Error(`store credentials: cannot read ${path} (${(e as NodeJS.ErrnoException).code}); the node's secret fetch writes it`);
        }
        try {
            return credentialOf(kind, JSON.parse(text), path);
        } catch (e) {
            if (e instanceof SyntaxError) throw new Error(`store credentials: ${path} is not JSON ${CREDENTIAL_SHAPES[kind]}`);
            throw e;
        }
    };
}

/** Opens the store; credentials are checked now when static, at each request otherwise. */
export function openStore(s: AgentStoreSettings, source: StoreCredentialSource, timeoutMs?: number): CasStore {
    const problem = checkStoreSettings(s);
    if (problem) throw new Error(`converge store: ${problem}`);
    let cred: () => Promise<unknown>;
    if ("static" in source) {
        const c = credentialOf(s.kind, source.static, "store credentials");
        cred = async () => c;
    } else if ("file" in source) {
        cred = fromFile(s.kind, source.file);
    } else {
        const i = source.instance ?? {};
        if (s.kind === "s3") cred = awsInstanceCredentials({ endpoint: i.endpoint });
        else if (s.kind === "gcs") cred = gceInstanceToken({ endpoint: i.endpoint });
        else {
            const token = azureInstanceToken({ endpoint: i.endpoint, clientId: i.clientId });
            cred = async () => ({ token: await token() });
        }
    }
    switch (s.kind) {
        case "s3":
            return new S3Store({ ...s, credentials: () => cred() as Promise<SigV4Credentials>, timeoutMs });
        case "gcs":
            return new GcsStore({ ...s, token: () => cred() as Promise<string>, timeoutMs });
        case "azure":
            return new AzureBlobStore({ ...s, auth: () => cred() as Promise<AzureAuth>, timeoutMs });
    }
}
