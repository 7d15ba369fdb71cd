/**
 * The metadata service's store entries as dynamic resources (the files metadata-server.ts reads):
 * - QemuSecret: one secret's content, 0600 in `<storeDir>/secrets/<key>`; the state keeps a
 *   SHA-256 of it, never the value (the value input is a Pulumi secret, encrypted in the state);
 * - QemuBucketKeys: the stack S3 service's root key and the VM principal's key, generated here (in
 *   the provider) into one 0600 JSON file; the state keeps the path and a SHA-256, never a key;
 * - QemuIdentity: which secrets an identity may read and, for an identity with a bucket grant,
 *   the VM principal's S3 keys, copied from the QemuBucketKeys file into its identity file (what
 *   the principal may do in which bucket is the grants' bucket policies: resources/bucket.ts);
 * - membership (which address is which identity) is written by QemuVm.
 * Delete removes the file; a missing store directory on delete is fine (destroyed already).
 */
import * as pulumi from "@pulumi/pulumi";

function put(path: string, content: string): void {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const p = require("path") as typeof import("path");
    fs.mkdirSync(p.dirname(path), { recursive: true, mode: 0o700 });
    fs.writeFileSync(`${path}.tmp`, content, { mode: 0o600 });
    fs.renameSync(`${path}.tmp`, path);
}

function remove(path: string): void {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    (require("fs") as typeof import("fs")).rmSync(path, { force: true });
}

function sha(s: string): string {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require("crypto") as typeof import("crypto")).createHash("sha256").update(s).digest("hex");
}

export interface QemuSecretInputs {
    storeDir: string;
    key: string;
    value: string;
}

export const qemuSecretProvider: pulumi.dynamic.ResourceProvider = {
    async check(_o: QemuSecretInputs, news: QemuSecretInputs) {
        const failures = /^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$/.test(news.key) ? [] : [{ property: "key", reason: `secret key ${JSON.stringify(news.key)} must be 1-255 letters, digits, _ or -` }];
        return { inputs: news, failures };
    },
    async diff(_id: string, olds: { storeDir: string; key: string; digest: string }, news: QemuSecretInputs) {
        const replaces = (["storeDir", "key"] as const).filter((k) => olds[k] !== news[k]);
        return { changes: replaces.length > 0 || olds.digest !== sha(news.value), replaces, deleteBeforeReplace: true };
    },
    async create(i: QemuSecretInputs) {
        put(`${i.storeDir}/secrets/${i.key}`, i.value);
        return { id: i.key, outs: { storeDir: i.storeDir, key: i.key, digest: sha(i.value) } };
    },
    async update(_id: string, _o: unknown, news: QemuSecretInputs) {
        put(`${news.storeDir}/secrets/${news.key}`, news.value);
        return { outs: { storeDir: news.storeDir, key: news.key, digest: sha(news.value) } };
    },
    async delete(_id: string, props: { storeDir: string; key: string }) {
        remove(`${props.storeDir}/secrets/${props.key}`);
    },
};

export class QemuSecret extends pulumi.dynamic.Resource {
    declare public readonly key: pulumi.Output<string>;
    declare public readonly digest: pulumi.Output<string>;
    constructor(name: string, args: { storeDir: pulumi.Input<string>; key: string; value: pulumi.Input<string> }, opts?: pulumi.CustomResourceOptions) {
        super(qemuSecretProvider, name, { ...args, value: pulumi.secret(args.value), digest: undefined }, opts, "qemu", "Secret");
    }
}

/**
 * What a QemuBucketKeys file holds: the stack S3 service's administrator (versitygw's root user)
 * and the one VM principal every identity with a bucket grant gets from the metadata service (the
 * grants' bucket policies name it).
 */
export interface BucketKeys {
    root: { accessKeyId: string; secretAccessKey: string };
    vm: { accessKeyId: string; secretAccessKey: string };
}

export interface QemuBucketKeysInputs {
    /** Absolute path of the keys file (0600), e.g. `<state>/s3-keys/stack.json`. */
    file: string;
}

/** Reads the keys file, or undefined when it is missing (deleted, or not created yet). */
export function readKeys(file: string): string | undefined {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined;
}

/** The file's content: the existing keys when present (so an update never rotates them), else new ones. */
export function ensureKeys(file: string): string {
    const have = readKeys(file);
    if (have) return have;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const crypto = require("crypto") as typeof import("crypto");
    const id = (p: string) => `${p}-${crypto.randomBytes(6).toString("hex")}`;
    const secret = () => crypto.randomBytes(24).toString("base64url");
    const keys: BucketKeys = { root: { accessKeyId: id("root"), secretAccessKey: secret() }, vm: { accessKeyId: id("vm"), secretAccessKey: secret() } };
    put(file, `${JSON.stringify(keys)}\n`);
    return readKeys(file)!;
}

export const qemuBucketKeysProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: { file: string; digest: string }, news: QemuBucketKeysInputs) {
        // A vanished file (or other keys in it) is a change: update writes new keys, and the
        // digest output tells the S3 service and the identities to follow.
        const now = readKeys(news.file);
        const replaces = olds.file !== news.file ? ["file"] : [];
        return { changes: replaces.length > 0 || !now || sha(now) !== olds.digest, replaces, deleteBeforeReplace: true };
    },
    async create(i: QemuBucketKeysInputs) {
        return { id: i.file, outs: { file: i.file, digest: sha(ensureKeys(i.file)) } };
    },
    async read(id: string, props: { file: string; digest: string }) {
        const now = readKeys(props.file);
        return { id, props: { ...props, digest: now ? sha(now) : "" } };
    },
    async update(_id: string, _o: unknown, news: QemuBucketKeysInputs) {
        return { outs: { file: news.file, digest: sha(ensureKeys(news.file)) } };
    },
    async delete(_id: string, props: { file: string }) {
        remove(props.file);
    },
};

export class QemuBucketKeys extends pulumi.dynamic.Resource {
    declare public readonly file: pulumi.Output<string>;
    declare public readonly digest: pulumi.Output<string>;
    constructor(name: string, args: { file: string }, opts?: pulumi.CustomResourceOptions) {
        super(qemuBucketKeysProvider, name, { ...args, digest: undefined }, opts, "qemu", "BucketKeys");
    }
}

export interface QemuIdentityInputs {
    storeDir: string;
    name: string;
    secrets: string[];
    /**
     * For an identity with a bucket grant: the QemuBucketKeys file whose VM principal key goes into
     * the identity file, and that file's digest (so new keys update the identity). Absent = no S3 key.
     */
    s3Keys?: { file: string; digest: string };
}

/** The identity file; throws when the bucket's keys file is missing (the keys resource makes it first). */
function identityJson(i: QemuIdentityInputs): string {
    let s3: { accessKey: string; secretKey: string } | undefined;
    if (i.s3Keys) {
        const text = readKeys(i.s3Keys.file);
        if (!text) throw new Error(`qemu identity ${i.name}: bucket keys file ${i.s3Keys.file} is missing; run \`pulumi up\` again to recreate the bucket keys`);
        const k = (JSON.parse(text) as BucketKeys).vm;
        s3 = { accessKey: k.accessKeyId, secretKey: k.secretAccessKey };
    }
    return `${JSON.stringify({ secrets: [...i.secrets].sort(), ...(s3 ? { s3 } : {}) })}\n`;
}

/** The identity's state: names and digests only (the s3 keys stay in the files). */
const identityOuts = (i: QemuIdentityInputs, json: string) => ({
    storeDir: i.storeDir,
    name: i.name,
    secrets: [...i.secrets].sort(),
    bucket: Boolean(i.s3Keys),
    s3KeysDigest: i.s3Keys?.digest ?? "",
    digest: sha(json),
});

export const qemuIdentityProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: { storeDir: string; name: string; digest: string; s3KeysDigest?: string }, news: QemuIdentityInputs) {
        const replaces = (["storeDir", "name"] as const).filter((k) => olds[k] !== news[k]);
        let json = "";
        try {
            json = identityJson(news);
        } catch {
            // keys file not there yet (the keys resource is being replaced): a change either way
        }
        return { changes: replaces.length > 0 || (olds.s3KeysDigest ?? "") !== (news.s3Keys?.digest ?? "") || olds.digest !== sha(json), replaces, deleteBeforeReplace: true };
    },
    async create(i: QemuIdentityInputs) {
        const json = identityJson(i);
        put(`${i.storeDir}/identities/${i.name}.json`, json);
        return { id: i.name, outs: identityOuts(i, json) };
    },
    async update(_id: string, _o: unknown, news: QemuIdentityInputs) {
        const json = identityJson(news);
        put(`${news.storeDir}/identities/${news.name}.json`, json);
        return { outs: identityOuts(news, json) };
    },
    async delete(_id: string, props: { storeDir: string; name: string }) {
        remove(`${props.storeDir}/identities/${props.name}.json`);
    },
};

export class QemuIdentity extends pulumi.dynamic.Resource {
    declare public readonly name: pulumi.Output<string>;
    declare public readonly secrets: pulumi.Output<string[]>;
    declare public readonly bucket: pulumi.Output<boolean>;
    constructor(
        name: string,
        args: { storeDir: pulumi.Input<string>; name: string; secrets: pulumi.Input<string>[]; s3Keys?: { file: pulumi.Input<string>; digest: pulumi.Input<string> } },
        opts?: pulumi.CustomResourceOptions,
    ) {
        super(qemuIdentityProvider, name, { ...args, bucket: undefined, s3KeysDigest: undefined, digest: undefined }, opts, "qemu", "Identity");
    }
}
