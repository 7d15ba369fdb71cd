/**
 * What `check` needs from a stack's outputs: the nodes (address + zone), the CA, a client
 * certificate (the nodes require one: `tls-auth-clients yes`), the admin and app passwords, and the
 * backup bucket. The local stack has all of them (client files in `clientDir`); a cloud stack's
 * outputs carry neither passwords nor a client certificate, so `check` says what is missing.
 */
import * as fs from "fs";
import * as path from "path";

export type Outputs = Record<string, { value: unknown; secret?: boolean }>;

export interface CheckNode {
    name: string;
    host: string;
    port: number;
    zone: string;
}

export interface StackView {
    cloud: string;
    nodes: CheckNode[];
    shards: number;
    replicasPerShard: number;
    ca: string;
    clientCert: string;
    clientKey: string;
    adminPassword: string;
    appPassword: string;
    /** Bucket URL (cloud stacks), absent for the local stack. */
    bucket?: string;
}

/** Builds the view, or throws one message listing everything that is missing and how to get it. */
export function stackView(outputs: Outputs): StackView {
    const v = (k: string) => outputs[k]?.value;
    const missing: string[] = [];
    const nodes = v("nodes") as CheckNode[] | undefined;
    if (!Array.isArray(nodes) || nodes.length === 0) missing.push("output `nodes` (run `pulumi up` first)");
    const clientDir = v("clientDir") as string | undefined;
    const readClient = (f: string) => {
        if (!clientDir) return "";
        try {
            return fs.readFileSync(path.join(clientDir, f), "utf8");
        } catch (e) {
            missing.push(`${path.join(clientDir, f)} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
            return "";
        }
    };
    const ca = (v("caCertPem") as string | undefined) ?? (v("caCertificate") as string | undefined) ?? readClient("ca.crt");
    const clientCert = readClient("client.crt");
    const clientKey = readClient("client.key");
    if (!clientDir) missing.push("a client certificate (output `clientDir`; cloud stacks do not export one: run check from a machine holding an operator certificate signed by the stack's CA)");
    if (!ca) missing.push("the CA certificate (output `caCertPem` / `caCertificate`)");
    const adminPassword = v("adminPassword") as string | undefined;
    const appPassword = v("appPassword") as string | undefined;
    if (!adminPassword) missing.push("secret output `adminPassword`");
    if (!appPassword) missing.push("secret output `appPassword`");
    if (missing.length) throw new Error(`check needs from the stack outputs: ${missing.join("; ")}`);
    return {
        cloud: String(v("cloud") ?? "?"),
        nodes: nodes!.map((n) => ({ name: n.name, host: n.host, port: Number(n.port), zone: n.zone })),
        shards: Number(v("shards")),
        replicasPerShard: Number(v("replicasPerShard")),
        ca,
        clientCert,
        clientKey,
        adminPassword: adminPassword!,
        appPassword: appPassword!,
        bucket: typeof v("bucket") === "string" && v("bucket") !== "" ? String(v("bucket")) : undefined,
    };
}
