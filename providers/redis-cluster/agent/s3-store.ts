/**
 * CasStore on the S3 API (AWS S3; the qemu cloud's versitygw): GET for reads, PUT with
 * `If-None-Match: *` (create only) or `If-Match: <ETag>` (replace that version) for conditional
 * writes, 412/409 = someone else wrote first. Path-style URLs (`<endpoint>/<bucket>/<key>`),
 * SigV4-signed (providers/object-store/sigv4.ts). Every request is bounded by `timeoutMs`.
 */
import { httpCall } from "../../object-store/http";
import { sigv4Headers, SigV4Credentials } from "../../object-store/sigv4";
import { CasStore, Stored } from "./store";
import { checkPrefix } from "./store-names";

export interface S3StoreOptions {
    /** e.g. https://s3.eu-west-1.amazonaws.com or http://10.210.56.3:9000 */
    endpoint: string;
    bucket: string;
    /** Key prefix of this cluster's documents, e.g. `converge/prod-cache` (no leading or trailing slash). */
    prefix: string;
    region: string;
    /** Static credentials, or a function returning current ones (instance role credentials rotate). */
    credentials: SigV4Credentials | (() => Promise<SigV4Credentials>);
    timeoutMs?: number;
}

/** The S3 error code of an XML error body (e.g. AccessDenied), for messages. */
function s3Code(body: string): string {
    return /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? body.slice(0, 120);
}

export class S3Store implements CasStore {
    readonly where: string;
    private readonly o: S3StoreOptions;

    constructor(o: S3StoreOptions) {
        const problems: string[] = [];
        if (!/^https?:\/\/[^/]+\/?$/.test(o.endpoint)) problems.push(`endpoint must be http(s)://host[:port]; got ${JSON.stringify(o.endpoint)}`);
        if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(o.bucket)) problems.push(`bucket must be an S3 bucket name; got ${JSON.stringify(o.bucket)}`);
        const p = checkPrefix(o.prefix);
        if (p) problems.push(p);
        if (!o.region) problems.push("region is required");
        if (problems.length) throw new Error(`S3Store: ${problems.join("; ")}`);
        this.o = o;
        this.where = `s3://${o.bucket}/${o.prefix}`;
    }

    private async call(method: "GET" | "PUT", key: string, body = "", extra: Record<string, string> = {}) {
        const url = new URL(`${this.o.endpoint.replace(/\/$/, "")}/${this.o.bucket}/${this.o.prefix}/${key}`);
        const creds = typeof this.o.credentials === "function" ? await this.o.credentials() : this.o.credentials;
        const b = Buffer.from(body);
        const headers = sigv4Headers({ method, url, body: b, creds, region: this.o.region, headers: extra });
        return httpCall(url, method, headers, b, this.o.timeoutMs ?? 10000);
    }

    async read(key: string): Promise<Stored | undefined> {
        const r = await this.call("GET", key);
        if (r.status === 404) return undefined;
        if (r.status !== 200) throw new Error(`${this.where}/${key}: GET answered ${r.status} ${s3Code(r.body)}`);
        const etag = r.headers.etag;
        if (!etag) throw new Error(`${this.where}/${key}: GET returned no ETag; conditional writes need one`);
        return { body: r.body, version: String(etag) };
    }

    async write(key: string, body: string, cond: { ifAbsent?: boolean; ifVersion?: string } = {}): Promise<{ version: string } | "conflict"> {
        if (cond.ifAbsent && cond.ifVersion) throw new Error("S3Store.write: ifAbsent and ifVersion exclude each other");
        const extra: Record<string, string> = { "content-type": "application/json" };
        if (cond.ifAbsent) extra["if-none-match"] = "*";
        if (cond.ifVersion) extra["if-match"] = cond.ifVersion;
        const r = await this.call("PUT", key, body, extra);
        if (r.status === 412 || r.status === 409) return "conflict";
        if (r.status !== 200) throw new Error(`${this.where}/${key}: PUT answered ${r.status} ${s3Code(r.body)}`);
        const etag = r.headers.etag;
        if (!etag) throw new Error(`${this.where}/${key}: PUT returned no ETag; conditional writes need one`);
        return { version: String(etag) };
    }
}
