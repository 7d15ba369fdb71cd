/**
 * QemuVmReady: waits (bounded) until cloud-init has finished inside a QemuVm (lab/vm/qemu.ts
 * waitForCloudInit, through the guest agent: no ssh, no network path) and records the result:
 * `cloud-init status`, the errors of /run/cloud-init/result.json, and the seconds from this wait's
 * start. A child of the same component as the VM, so whatever depends on the node (the
 * RedisCluster resource) waits for it, while the rolling gates (which take the VM's id) do not.
 *
 * An errored cloud-init does not fail `up` (a cloud does not either); it is a warning naming the
 * errors and the `status`/`errors` outputs say so (the end-to-end test asserts on them).
 * A new instance id (the VM re-provisioned) waits again.
 */
import * as pulumi from "@pulumi/pulumi";
import { hostModule } from "./host";

const qemul = () => hostModule<typeof import("../../../lab/vm/qemu")>("lab/vm/qemu");

export interface QemuVmReadyInputs {
    hostName: string;
    dir: string;
    instanceId: string;
    /** Bound on the wait, seconds. Default 2700 (45 min: 7 VMs under software emulation on 2 busy cores took > 25 min). */
    timeoutSec?: number;
}

async function wait(i: QemuVmReadyInputs) {
    const pid = qemul().runningVmPid(i.dir);
    if (!pid) throw new Error(`qemu VM ${i.hostName}: not running (no live QEMU for ${i.dir}); run \`pulumi up\` again to start it`);
    const started = Date.now();
    const r = await qemul().waitForCloudInit({ name: i.hostName, dir: i.dir, pid, serialLog: `${i.dir}/serial.log`, qmpSocket: `${i.dir}/qmp.sock`, qgaSocket: `${i.dir}/qga.sock` }, (i.timeoutSec ?? 2700) * 1000, started);
    if (r.status !== "done" || r.errors.length > 0) {
        await pulumi.log.warn(`qemu VM ${i.hostName}: cloud-init ended '${r.status}' with ${r.errors.length} error(s): ${r.errors.join(" | ")}`);
    }
    return { ...i, status: r.status, errors: r.errors, seconds: Math.round(r.seconds) };
}

export const qemuVmReadyProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: QemuVmReadyInputs, news: QemuVmReadyInputs) {
        return { changes: olds.instanceId !== news.instanceId || olds.dir !== news.dir };
    },
    async create(i: QemuVmReadyInputs) {
        return { id: `${i.hostName}-ready`, outs: await wait(i) };
    },
    async update(_id: string, _o: QemuVmReadyInputs, news: QemuVmReadyInputs) {
        return { outs: await wait(news) };
    },
};

export class QemuVmReady extends pulumi.dynamic.Resource {
    declare public readonly status: pulumi.Output<string>;
    declare public readonly errors: pulumi.Output<string[]>;
    declare public readonly seconds: pulumi.Output<number>;
    constructor(name: string, args: { [K in keyof QemuVmReadyInputs]: pulumi.Input<QemuVmReadyInputs[K]> }, opts?: pulumi.CustomResourceOptions) {
        super(qemuVmReadyProvider, name, { ...args, status: undefined, errors: undefined, seconds: undefined }, opts, "qemu", "VmReady");
    }
}
