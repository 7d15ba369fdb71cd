/**
 * The one list of cloud adapters. `redisforge:cloud` picks one by key; the unit tests iterate
 * this list, so a newly registered cloud is tested the moment it appears here.
 */
import type { CloudAdapter } from "./types";
import { awsAdapter } from "./aws";
import { gcpAdapter } from "./gcp";
import { azureAdapter } from "./azure";
import { localAdapter } from "./local";
import { qemuAdapter } from "./qemu";

export const adapters: Readonly<Record<string, CloudAdapter>> = {
    aws: awsAdapter,
    gcp: gcpAdapter,
    azure: azureAdapter,
    local: localAdapter,
    qemu: qemuAdapter,
};

export function getAdapter(kind: string): CloudAdapter {
    const a = adapters[kind];
    if (!a) throw new Error(`redisforge:cloud=${JSON.stringify(kind)} is not a registered cloud; use one of: ${Object.keys(adapters).join(", ")}`);
    return a;
}
