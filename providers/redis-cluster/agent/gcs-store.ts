/**
 * CasStore on Google Cloud Storage's JSON API: the object's generation is its version.
 * Reads: GET .../o/<name>?alt=media (the generation from the `x-goog-generation` header; when a
 * front end leaves it out, the object's metadata is read first and exactly that generation is
 * downloaded). Writes: a media upload with `ifGenerationMatch=0` (create only) or
 * `ifGenerationMatch=<generation>` (replace that version); 412 = someone else wrote first.
 * Authorization: a bearer token (the VM's service account through the metadata server, or the
 * deployer's). Every request is bounded by `timeoutMs`.
 */
import { header, httpCall, HttpAnswer } from "../../object-store/http";
import { CasStore, Stored } from "./store";
import { checkPrefix } from "./store-names";

export interface GcsStoreOptions {
    /** Default https://storage.googleapis.com (fake-gcs-server in tests: http://127.0.0.1:<port>). */
    endpoint?: string;
    bucket: string;
    prefix: string;
    /** A bearer token, or a function returning the current one (tokens expire). */
    token: string | (() => Promise<string>);
    timeoutMs?: number;
}

const gcsError = (r: HttpAnswer) => {
    try {
        const e = JSON.parse(r.body) as { error?: { message?: string; errors?: { reason?: string }[] } };
        return [e.error?.errors?.[0]?.reason, e.error?.message].filter(Boolean).join(": ") || r.body.slice(0, 120);
    } catch {
        return r.body.slice(0, 120);
    }
};

export class GcsStore implements CasStore {
    readonly where: string;
    private readonly base: string;

    constructor(private readonly o: GcsStoreOptions) {
        const problems: string[] = [];
        if (o.endpoint !== undefined && !/^https?:\/\/[^/]+\/?$/.test(o.endpoint)) problems.push(`endpoint must be http(s)://host[:port]; got ${JSON.stringify(o.endpoint)}`);
        if (!/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(o.bucket ?? "")) problems.push(`bucket must be a GCS bucket name; got ${JSON.stringify(o.bucket)}`);
        const p = checkPrefix(o.prefix);
        if (p) problems.push(p);
        if (problems.length) throw new Error(`GcsStore: ${problems.join("; ")}`);
        this.base = (o.endpoint ?? "https://storage.googleapis.com").replace(/\/$/, "");
        this.where = `gs://${o.bucket}/${o.prefix}`;
    }

    private async call(method: "GET" | "POST", path: string, query: Record<string, string>, body = "", extra: Record<string, string> = {}): Promise<HttpAnswer> {
        const url = new URL(`${this.base}${path}`);
        for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
        const token = typeof this.o.token === "function" ? await this.o.token() : this.o.token;
        return httpCall(url, method, { authorization: `Bearer ${token}`, ...extra }, body, this.o.timeoutMs ?? 10000);
    }

    private objectPath(key: string): string {
        return `/storage/v1/b/${encodeURIComponent(this.o.bucket)}/o/${encodeURIComponent(`${this.o.prefix}/${key}`)}`;
    }

    async read(key: string): Promise<Stored | undefined> {
        for (let attempt = 0; attempt < 3; attempt++) {
            const r = await this.call("GET", this.objectPath(key), { alt: "media" });
            if (r.status === 404) return undefined;
            if (r.status !== 200) throw new Error(`${this.where}/${key}: GET answered ${r.status} ${gcsError(r)}`);
            const gen = header(r.headers, "x-goog-generation");
            if (gen) return { body: r.body, version: gen };
            // No generation header: read the metadata, then exactly that generation.
            const m = await this.call("GET", this.objectPath(key), {});
            if (m.status === 404) return undefined;
            if (m.status !== 200) throw new Error(`${this.where}/${key}: GET metadata answered ${m.status} ${gcsError(m)}`);
            const g = String((JSON.parse(m.body) as { generation?: string }).generation ?? "");
            if (!g) throw new Error(`${this.where}/${key}: the object's metadata has no generation; conditional writes need one`);
            const d = await this.call("GET", this.objectPath(key), { alt: "media", generation: g });
            if (d.status === 200) return { body: d.body, version: g };
            if (d.status !== 404) throw new Error(`${this.where}/${key}: GET generation ${g} answered ${d.status} ${gcsError(d)}`);
            // Replaced between the two reads: read again.
        }
        throw new Error(`${this.where}/${key}: the object kept changing between reading its generation and its body (3 tries)`);
    }

    async write(key: string, body: string, cond: { ifAbsent?: boolean; ifVersion?: string } = {}): Promise<{ version: string } | "conflict"> {
        if (cond.ifAbsent && cond.ifVersion) throw new Error("GcsStore.write: ifAbsent and ifVersion exclude each other");
        if (cond.ifVersion !== undefined && !/^\d+$/.test(cond.ifVersion)) throw new Error(`GcsStore.write: ifVersion must be a GCS generation (digits); got ${JSON.stringify(cond.ifVersion)}`);
        const q: Record<string, string> = { uploadType: "media", name: `${this.o.prefix}/${key}` };
        if (cond.ifAbsent) q.ifGenerationMatch = "0";
        if (cond.ifVersion) q.ifGenerationMatch = cond.ifVersion;
        const r = await this.call("POST", `/upload/storage/v1/b/${encodeURIComponent(this.o.bucket)}/o`, q, body, { "content-type": "application/json" });
        if (r.status === 412) return "conflict";
        if (r.status !== 200) throw new Error(`${this.where}/${key}: upload answered ${r.status} ${gcsError(r)}`);
        const g = (JSON.parse(r.body) as { generation?: string | number }).generation;
        if (g === undefined || g === "") throw new Error(`${this.where}/${key}: the upload's answer has no generation`);
        return { version: String(g) };
    }
}
