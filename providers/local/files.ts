/**
 * `LocalFiles`: a dynamic resource that keeps a small set of files in one directory on this machine
 * (0700 dir, 0600 files) and removes the directory on delete. The local stack writes the operator's
 * client certificate, key and CA with it, so that `redis-cli --tls` and the scale script can connect
 * (the nodes require client certificates). File contents are secret inputs; the outputs hold only the
 * directory, the file names and a digest.
 */
import * as pulumi from "@pulumi/pulumi";

export interface LocalFilesArgs {
    /** Absolute directory (created 0700, removed on delete). */
    dir: pulumi.Input<string>;
    /** Relative file name → content. Every value is treated as secret. */
    files: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

interface Inputs {
    dir: string;
    files: Record<string, string>;
}

interface Outputs {
    dir: string;
    names: string[];
    digest: string;
}

function digestOf(files: Record<string, string>): string {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const crypto = require("crypto") as typeof import("crypto");
    const h = crypto.createHash("sha256");
    for (const k of Object.keys(files).sort()) h.update(`${k}\0${files[k].length}\0`).update(files[k]);
    return h.digest("hex");
}

function writeAll(i: Inputs): Outputs {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const path = require("path") as typeof import("path");
    if (!path.isAbsolute(i.dir)) throw new Error(`LocalFiles: dir must be absolute; got ${JSON.stringify(i.dir)}`);
    fs.mkdirSync(i.dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(i.dir, 0o700);
    for (const [name, content] of Object.entries(i.files)) {
        if (name.includes("..") || path.isAbsolute(name)) throw new Error(`LocalFiles: file name must be relative without "..": ${JSON.stringify(name)}`);
        const p = path.join(i.dir, name);
        fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
        fs.writeFileSync(`${p}.tmp`, content, { mode: 0o600 });
        fs.renameSync(`${p}.tmp`, p);
    }
    return { dir: i.dir, names: Object.keys(i.files).sort(), digest: digestOf(i.files) };
}

export const localFilesProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: Outputs, news: Inputs) {
        const replaces = olds.dir !== news.dir ? ["dir"] : [];
        return { changes: replaces.length > 0 || olds.digest !== digestOf(news.files), replaces, deleteBeforeReplace: true };
    },
    async create(inputs: Inputs) {
        const outs = writeAll(inputs);
        return { id: inputs.dir, outs };
    },
    async read(id: string, props: Outputs) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const fs = require("fs") as typeof import("fs");
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const path = require("path") as typeof import("path");
        const present = props.names.filter((n) => fs.existsSync(path.join(props.dir, n)));
        return { id, props: { ...props, names: present } };
    },
    async update(_id: string, _olds: Outputs, news: Inputs) {
        return { outs: writeAll(news) };
    },
    async delete(_id: string, props: Outputs) {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const fs = require("fs") as typeof import("fs");
        fs.rmSync(props.dir, { recursive: true, force: true });
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const path = require("path") as typeof import("path");
        try {
            fs.rmdirSync(path.dirname(props.dir)); // the stack dir, once nothing else is in it
        } catch {
            // not empty: node data dirs are removed by their own resources
        }
    },
};

export class LocalFiles extends pulumi.dynamic.Resource {
    declare public readonly dir: pulumi.Output<string>;
    declare public readonly names: pulumi.Output<string[]>;
    declare public readonly digest: pulumi.Output<string>;

    constructor(name: string, args: LocalFilesArgs, opts?: pulumi.CustomResourceOptions) {
        super(localFilesProvider, name, { dir: args.dir, files: pulumi.secret(args.files), names: undefined, digest: undefined }, opts, "local", "Files");
    }
}
