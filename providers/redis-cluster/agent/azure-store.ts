/**
 * CasStore on Azure Blob Storage: the blob's ETag is its version. Reads: GET the blob. Writes: Put
 * Blob (block blob) with `If-None-Match: *` (create only) or `If-Match: <ETag>` (replace that
 * version); 412 (ConditionNotMet) or 409 (BlobAlreadyExists) = someone else wrote first.
 * Authorization: a bearer token (the VM's managed identity, or the deployer's Entra ID token) or
 * the storage account's Shared Key (providers/object-store/azure-shared-key.ts). Every request is
 * bounded by `timeoutMs`.
 */
import { azureSharedKeyAuthorization } from "../../object-store/azure-shared-key";
import { header, httpCall, HttpAnswer } from "../../object-store/http";
import { CasStore, Stored } from "./store";
import { checkPrefix } from "./store-names";

/** The Blob service version these calls speak (bearer tokens need 2017-11-09 or later). */
export const AZURE_BLOB_VERSION = "2021-08-06";

/** What one request is authorized with: the account key (Shared Key) or a bearer token. */
export type AzureAuth = { accountKey: string } | { token: string };

export interface AzureStoreOptions {
    /** Blob service URL: https://<account>.blob.core.windows.net, or an emulator's http://127.0.0.1:<port>/<account>. */
    endpoint: string;
    account: string;
    container: string;
    prefix: string;
    /** Static, or a function returning the current one (tokens expire). */
    auth: AzureAuth | (() => Promise<AzureAuth>);
    timeoutMs?: number;
}

const azError = (r: HttpAnswer) => header(r.headers, "x-ms-error-code") ?? /<Code>([^<]+)<\/Code>/.exec(r.body)?.[1] ?? r.body.slice(0, 120);

export class AzureBlobStore implements CasStore {
    readonly where: string;
    private readonly base: string;

    constructor(private readonly o: AzureStoreOptions) {
        const problems: string[] = [];
        if (!/^https?:\/\/[^/]+(\/[a-z0-9]+)?\/?$/.test(o.endpoint ?? "")) problems.push(`endpoint must be https://<account>.blob.core.windows.net (or an emulator's http://host:port/<account>); got ${JSON.stringify(o.endpoint)}`);
        if (!/^[a-z0-9]{3,24}$/.test(o.account ?? "")) problems.push(`account must be a storage account name (3-24 lower-case letters and digits); got ${JSON.stringify(o.account)}`);
        if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(o.container ?? "")) problems.push(`container must be a blob container name (3-63 lower-case letters, digits, single hyphens); got ${JSON.stringify(o.container)}`);
        const p = checkPrefix(o.prefix);
        if (p) problems.push(p);
        if (!o.auth || (typeof o.auth !== "function" && !("accountKey" in o.auth) && !("token" in o.auth))) problems.push("auth must be {accountKey} or {token} or a function returning one");
        if (problems.length) throw new Error(`AzureBlobStore: ${problems.join("; ")}`);
        this.base = o.endpoint.replace(/\/$/, "");
        this.where = `${this.base}/${o.container}/${o.prefix}`;
    }

    private async call(method: "GET" | "PUT", key: string, body = "", extra: Record<string, string> = {}): Promise<HttpAnswer> {
        const url = new URL(`${this.base}/${this.o.container}/${this.o.prefix}/${key}`);
        const headers: Record<string, string> = { "x-ms-date": new Date().toUTCString(), "x-ms-version": AZURE_BLOB_VERSION, ...extra, "content-length": String(Buffer.byteLength(body)) };
        const a = typeof this.o.auth === "function" ? await this.o.auth() : this.o.auth;
        if ("accountKey" in a) headers.authorization = azureSharedKeyAuthorization(method, url, headers, this.o.account, a.accountKey);
        else headers.authorization = `Bearer ${a.token}`;
        return httpCall(url, method, headers, body, this.o.timeoutMs ?? 10000);
    }

    async read(key: string): Promise<Stored | undefined> {
        const r = await this.call("GET", key);
        if (r.status === 404) return undefined;
        if (r.status !== 200) throw new Error(`${this.where}/${key}: GET answered ${r.status} ${azError(r)}`);
        const etag = header(r.headers, "etag");
        if (!etag) throw new Error(`${this.where}/${key}: GET returned no ETag; conditional writes need one`);
        return { body: r.body, version: etag };
    }

    async write(key: string, body: string, cond: { ifAbsent?: boolean; ifVersion?: string } = {}): Promise<{ version: string } | "conflict"> {
        if (cond.ifAbsent && cond.ifVersion) throw new Error("AzureBlobStore.write: ifAbsent and ifVersion exclude each other");
        const extra: Record<string, string> = { "content-type": "application/json", "x-ms-blob-type": "BlockBlob" };
        if (cond.ifAbsent) extra["if-none-match"] = "*";
        if (cond.ifVersion) extra["if-match"] = cond.ifVersion;
        const r = await this.call("PUT", key, body, extra);
        if (r.status === 412 || r.status === 409) return "conflict";
        if (r.status !== 201 && r.status !== 200) throw new Error(`${this.where}/${key}: PUT answered ${r.status} ${azError(r)}`);
        const etag = header(r.headers, "etag");
        if (!etag) throw new Error(`${this.where}/${key}: PUT returned no ETag; conditional writes need one`);
        return { version: etag };
    }
}
