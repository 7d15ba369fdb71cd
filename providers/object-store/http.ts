/**
 * One bounded HTTP(S) request with the whole answer buffered: what the converge store clients
 * (S3, GCS, Azure Blob) and the instance-credential sources need, and nothing more (no retries:
 * callers decide; no redirects: object stores do not send them to these calls).
 */
import * as http from "http";
import * as https from "https";

export interface HttpAnswer {
    status: number;
    body: string;
    headers: http.IncomingHttpHeaders;
}

export function httpCall(url: URL, method: string, headers: Record<string, string>, body: Buffer | string = "", timeoutMs = 10000): Promise<HttpAnswer> {
    const b = typeof body === "string" ? Buffer.from(body) : body;
    return new Promise((resolve, reject) => {
        const mod = url.protocol === "https:" ? https : http;
        const req = mod.request(url, { method, headers: { ...headers, "content-length": String(b.length) } }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
            res.on("error", reject);
        });
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url.origin}${url.pathname}: no answer within ${timeoutMs} ms`)));
        req.on("error", reject);
        req.end(b);
    });
}

/** A header's single value (first of a repeated one), or undefined. */
export function header(h: http.IncomingHttpHeaders, name: string): string | undefined {
    const v = h[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
}
