/**
 * The metadata service's store entries as dynamic resources (the files metadata-server.ts reads):
 * - QemuSecret: one secret's content, 0600 in `<storeDir>/secrets/<key>`; the state keeps a
 *   SHA-256 of it, never the value (the value input is a Pulumi secret, encrypted in the state);
 * - QemuIdentity: which secrets an identity may read and, for an identity that writes backups,
 *   its S3 keys (secret input);
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

export interface QemuIdentityInputs {
    storeDir: string;
    name: string;
    secrets: string[];
    /** S3 keys of the bucket user (write/read/list, no delete); absent = no bucket access. */
    s3?: { accessKey: string; secretKey: string };
}

const identityJson = (i: QemuIdentityInputs) => `${JSON.stringify({ secrets: [...i.secrets].sort(), ...(i.s3 ? { s3: i.s3 } : {}) })}\n`;

export const qemuIdentityProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: { storeDir: string; name: string; digest: string }, news: QemuIdentityInputs) {
        const replaces = (["storeDir", "name"] as const).filter((k) => olds[k] !== news[k]);
        return { changes: replaces.length > 0 || olds.digest !== sha(identityJson(news)), replaces, deleteBeforeReplace: true };
    },
    async create(i: QemuIdentityInputs) {
        put(`${i.storeDir}/identities/${i.name}.json`, identityJson(i));
        return { id: i.name, outs: { storeDir: i.storeDir, name: i.name, secrets: [...i.secrets].sort(), bucket: Boolean(i.s3), digest: sha(identityJson(i)) } };
    },
    async update(_id: string, _o: unknown, news: QemuIdentityInputs) {
        put(`${news.storeDir}/identities/${news.name}.json`, identityJson(news));
        return { outs: { storeDir: news.storeDir, name: news.name, secrets: [...news.secrets].sort(), bucket: Boolean(news.s3), digest: sha(identityJson(news)) } };
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
        args: { storeDir: pulumi.Input<string>; name: string; secrets: pulumi.Input<string>[]; s3?: pulumi.Input<{ accessKey: string; secretKey: string }> },
        opts?: pulumi.CustomResourceOptions,
    ) {
        super(qemuIdentityProvider, name, { ...args, s3: args.s3 ? pulumi.secret(args.s3) : undefined, bucket: undefined, digest: undefined }, opts, "qemu", "Identity");
    }
}
