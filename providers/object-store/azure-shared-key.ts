/**
 * Azure Storage "Shared Key" authorization for one Blob service request (the deployer's path when
 * it holds the storage account key; a VM uses its managed identity's bearer token instead).
 *
 * String to sign (Blob service, x-ms-version 2015-02-21 and later): the verb, the standard headers
 * Content-Encoding, Content-Language, Content-Length (empty when 0), Content-MD5, Content-Type,
 * Date, If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range, each on its own
 * line, then every x-ms-* header (lower-cased, sorted, `name:value`) and the canonicalized
 * resource: `/<account><path>` plus each query parameter (lower-cased name, sorted) on its own
 * line as `name:value`. Signature: base64(HMAC-SHA256(base64-decoded key, that string)).
 */
import { createHmac } from "crypto";

const STANDARD = ["content-encoding", "content-language", "content-length", "content-md5", "content-type", "date", "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range"];

export function azureSharedKeyString(method: string, url: URL, headers: Record<string, string>, account: string): string {
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) h[k.toLowerCase()] = String(v);
    const std = STANDARD.map((k) => (k === "content-length" && h[k] === "0" ? "" : h[k] ?? ""));
    const ms = Object.keys(h)
        .filter((k) => k.startsWith("x-ms-"))
        .sort()
        .map((k) => `${k}:${h[k].replace(/\s+/g, " ").trim()}\n`)
        .join("");
    const params = new Map<string, string[]>();
    for (const [k, v] of url.searchParams) params.set(k.toLowerCase(), [...(params.get(k.toLowerCase()) ?? []), v]);
    const query = [...params.keys()].sort().map((k) => `\n${k}:${params.get(k)!.sort().join(",")}`).join("");
    return `${method.toUpperCase()}\n${std.join("\n")}\n${ms}/${account}${url.pathname}${query}`;
}

/** The Authorization header value for a request whose headers (x-ms-date included) are final. */
export function azureSharedKeyAuthorization(method: string, url: URL, headers: Record<string, string>, account: string, key: string): string {
    const sig = createHmac("sha256", Buffer.from(key, "base64")).update(azureSharedKeyString(method, url, headers, account), "utf8").digest("base64");
    return `SharedKey ${account}:${sig}`;
}
