/**
 * The one list of cloud adapters. `redisforge:cloud` picks one by key; the unit tests iterate
 * this list, so a newly registered cloud is tested the moment it appears here.
 *
 * One line per cloud, loaded lazily: an adapter module (and the cloud SDK it imports) is
 * required the first time its entry is read, so a stack loads only its own cloud's code.
 * `Object.keys(adapters)` loads nothing; reading `adapters.aws` (or iterating the values, as the
 * three-cloud tests do) loads that adapter. `loadedAdapters()` says which are loaded so far.
 */
import type { CloudAdapter } from "./types";

/** kind -> how to load its adapter. Add a cloud here (one line) and a folder under providers/. */
const loaders: Readonly<Record<string, () => CloudAdapter>> = {
    aws: () => (require("./aws") as typeof import("./aws")).awsAdapter,
    gcp: () => (require("./gcp") as typeof import("./gcp")).gcpAdapter,
    azure: () => (require("./azure") as typeof import("./azure")).azureAdapter,
    local: () => (require("./local") as typeof import("./local")).localAdapter,
    qemu: () => (require("./qemu") as typeof import("./qemu")).qemuAdapter,
};

const loaded = new Map<string, CloudAdapter>();

function load(kind: string): CloudAdapter {
    let a = loaded.get(kind);
    if (!a) {
        a = loaders[kind]();
        loaded.set(kind, a);
    }
    return a;
}

/** Every registered adapter by kind; each entry is a getter that loads its module on first read. */
export const adapters: Readonly<Record<string, CloudAdapter>> = Object.freeze(
    Object.defineProperties(
        {} as Record<string, CloudAdapter>,
        Object.fromEntries(Object.keys(loaders).map((kind) => [kind, { enumerable: true, get: () => load(kind) }])),
    ),
);

export function getAdapter(kind: string): CloudAdapter {
    if (!Object.prototype.hasOwnProperty.call(loaders, kind)) {
        throw new Error(`redisforge:cloud=${JSON.stringify(kind)} is not a registered cloud; use one of: ${Object.keys(loaders).join(", ")}`);
    }
    return load(kind);
}

/** Kinds whose adapter module has been loaded in this process (for tests and the preview timer). */
export function loadedAdapters(): string[] {
    return [...loaded.keys()];
}
