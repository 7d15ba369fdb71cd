/**
 * Parameter checks shared by the cloud-init and Envoy builders.
 *
 * Every string that ends up in user-data or in the Envoy config is checked against a narrow
 * pattern, so that a secret value handed to the wrong parameter (a password as a node name, a
 * PEM block as a secret reference) is refused instead of shipped. Problems are collected and
 * thrown once, each naming the parameter, the rule, the (redacted) value and the fix.
 */

export class TemplateParamError extends Error {
    constructor(public readonly problems: string[], what: string) {
        super(`${what}: ${problems.length} invalid parameter(s):\n- ${problems.join("\n- ")}`);
        this.name = "TemplateParamError";
    }
}

/** Shows enough of a refused value to find it, never the whole of something that may be a secret. */
export function redact(value: unknown): string {
    if (typeof value !== "string") return JSON.stringify(value) ?? String(value);
    if (value.length <= 12) return JSON.stringify(value);
    return JSON.stringify(`${value.slice(0, 4)}…(${value.length} chars)`);
}

export class Problems {
    readonly list: string[] = [];

    add(param: string, rule: string, value: unknown, fix: string): void {
        this.list.push(`${param}: ${rule}; got ${redact(value)}. Fix: ${fix}`);
    }

    /** Checks `value` against `re`; returns it typed as string when it matches. */
    match(param: string, value: unknown, re: RegExp, rule: string, fix: string): void {
        if (typeof value !== "string" || !re.test(value)) this.add(param, rule, value, fix);
    }

    port(param: string, value: unknown): void {
        if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
            this.add(param, "must be an integer TCP port 1-65535", value, "pass a port number");
        }
    }

    throwIfAny(what: string): void {
        if (this.list.length) throw new TemplateParamError(this.list, what);
    }
}

/**
 * A run of 24+ token characters mixing upper case, lower case and digits: what generated passwords
 * and API tokens look like. Used on free-form values (exporter flags) where no narrower pattern fits.
 */
export function looksLikeSecret(value: string): boolean {
    return (value.match(/[A-Za-z0-9+\/_=-]{24,}/g) ?? []).some((run) => /[A-Z]/.test(run) && /[a-z]/.test(run) && /\d/.test(run));
}

/** Flag names that carry credentials; only their `-file` variants (a path) are acceptable. */
export const CREDENTIAL_FLAG_RE = /^--(?![a-z0-9._-]*-file(=|$))([a-z0-9._-]*(pass|secret|token|auth|credential)[a-z0-9._-]*|[a-z0-9._-]*key)(=|$)/;

/** DNS-label style names: cluster, node, zone. Short, lower-case, no secret fits this by accident. */
export const NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;
/** Zones: `us-east-1a`, `europe-west1-b`, Azure `1`. */
export const ZONE_RE = /^[a-z0-9][a-z0-9-]{0,39}$/;
export const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** An image reference pinned by digest: `registry/path/name[:tag]@sha256:<64 hex>`. */
export const IMAGE_BY_DIGEST_RE = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?(\/[a-z0-9]+([._-][a-z0-9]+)*)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$/;
/** An absolute path inside a container or host, no spaces or shell metacharacters. */
export const PATH_RE = /^\/[A-Za-z0-9._\/-]*$/;
/** A block device path or udev symlink. */
export const DEVICE_RE = /^\/dev\/[A-Za-z0-9._\/:-]+$/;

/** Secret-store references (names, never values), per cloud. */
export const SECRET_REF_RE = {
    /** Full ARN: the region for the API call is read from it. */
    aws: /^arn:aws(-[a-z]+)*:secretsmanager:[a-z]{2}(-[a-z]+)+-\d:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$/,
    /** `projects/<project id or number>/secrets/<name>[/versions/<n|latest>]` (Secret.id or Secret.name). */
    gcp: /^projects\/([a-z][a-z0-9-]{4,28}[a-z0-9]|\d{6,20})\/secrets\/[A-Za-z0-9_-]{1,255}(\/versions\/(latest|[1-9]\d*))?$/,
    /** Key Vault secret identifier `https://<vault>.vault.azure.net/secrets/<name>[/<version>]`. */
    azure: /^https:\/\/[a-z0-9-]{3,24}\.vault\.azure\.net\/secrets\/[A-Za-z0-9-]{1,127}(\/[0-9a-f]{32})?$/,
    /** qemu (the VM stack on one machine): the secret's path on the stack's metadata service, `http://169.254.169.254/redisforge/v1/secrets/<name>`. */
    qemu: /^http:\/\/169\.254\.169\.254\/redisforge\/v1\/secrets\/[A-Za-z0-9][A-Za-z0-9_-]{0,254}$/,
} as const;

export const SECRET_REF_FIX = {
    aws: "pass the secret's ARN (aws.secretsmanager.Secret.arn), e.g. arn:aws:secretsmanager:us-east-1:123456789012:secret:prod-redis-app-AbCdEf",
    gcp: "pass the secret's resource name (gcp.secretmanager.Secret.id), e.g. projects/my-project/secrets/prod-redis-app",
    azure: "pass the Key Vault secret URI without version or with a 32-hex version, e.g. https://prodkv.vault.azure.net/secrets/redis-app",
    qemu: "pass the secret's metadata-service URL (providers/qemu createSecret ref), e.g. http://169.254.169.254/redisforge/v1/secrets/vm-node0-tls-key",
} as const;

/**
 * Strings that must never appear in rendered user-data or Envoy config: private keys,
 * certificates, password directives. A last line of defence behind the parameter checks.
 */
export const FORBIDDEN_CONTENT: Array<[RegExp, string]> = [
    [/-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----/, "a PEM key or certificate"],
    [/^\s*(requirepass|masterauth)\s+\S/m, "a Redis password directive"],
    [/\binline_(string|bytes)\b[^\n]*(password|key)/i, "an inline secret in Envoy config"],
];

export function assertNoSecretContent(text: string, what: string): void {
    for (const [re, label] of FORBIDDEN_CONTENT) {
        if (re.test(text)) {
            throw new Error(`${what}: contains ${label}; secrets are delivered through the cloud secret store at boot, never inline. Fix: pass a secret reference instead of the value`);
        }
    }
}
