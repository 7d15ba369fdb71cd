/**
 * QemuNetwork: the stack's network namespace, bridge, zone segments and host link
 * (lab/vm/network.ts), plus the metadata service's link-local address on the bridge.
 * Created, refreshed and deleted by the engine; delete removes the namespace with everything in it
 * (taps, tables, services bound there) and the host link.
 */
import * as pulumi from "@pulumi/pulumi";
import type { StackNetwork } from "../../../lab/vm/network";
import { hostModule } from "./host";

type Net = typeof import("../../../lab/vm/network");
const lab = () => hostModule<Net>("lab/vm/network");
const runIn = (...a: Parameters<typeof import("../../../lab/vm/exec").runIn>) => hostModule<typeof import("../../../lab/vm/exec")>("lab/vm/exec").runIn(...a);
import { METADATA_IP, SERVICE_HOSTS } from "../plan";

export interface QemuNetworkInputs {
    /** lab/vm stack id (1-6 lowercase letters/digits). */
    stackId: string;
    slot: number;
    zones: string[];
}

export interface QemuNetworkOutputs extends QemuNetworkInputs {
    /** The lab/vm record, as JSON (every other qemu resource takes it). */
    network: string;
    /** False when refresh found the namespace gone (the next `up` recreates it). */
    present: boolean;
}

function ensureMetadataAddress(net: StackNetwork): void {
    const have = runIn(net.netns, "ip", ["-4", "-o", "addr", "show", "dev", net.bridge]);
    if (!have.includes(` ${METADATA_IP}/`)) runIn(net.netns, "ip", ["addr", "add", `${METADATA_IP}/32`, "dev", net.bridge]);
    // registry, S3 server, load balancer bind these.
    for (const n of Object.values(SERVICE_HOSTS)) lab().addServiceAddress(net, n);
}

export const qemuNetworkProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: QemuNetworkInputs, news: QemuNetworkInputs) {
        const failures: pulumi.dynamic.CheckFailure[] = [];
        try {
            lab().describeStackNetwork(news.stackId, news.slot, news.zones);
        } catch (e) {
            failures.push({ property: "zones", reason: (e as Error).message });
        }
        return { inputs: news, failures };
    },
    async diff(_id: string, olds: QemuNetworkOutputs, news: QemuNetworkInputs) {
        const replaces = (["stackId", "slot", "zones"] as const).filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
        return { changes: replaces.length > 0 || !olds.present, replaces, deleteBeforeReplace: true };
    },
    async create(i: QemuNetworkInputs) {
        const net = lab().createStackNetwork({ id: i.stackId, slot: i.slot, zones: i.zones });
        ensureMetadataAddress(net);
        return { id: net.netns, outs: { ...i, network: JSON.stringify(net), present: true } };
    },
    async read(id: string, props: QemuNetworkOutputs) {
        const net = JSON.parse(props.network) as StackNetwork;
        return { id, props: { ...props, present: lab().stackNetworkExists(net) } };
    },
    async update(_id: string, _olds: QemuNetworkOutputs, news: QemuNetworkInputs) {
        // Only reached when the namespace vanished (refresh): build it again from the same plan.
        const net = lab().describeStackNetwork(news.stackId, news.slot, news.zones);
        if (!lab().stackNetworkExists(net)) {
            lab().deleteStackNetwork(net);
            lab().createStackNetwork({ id: news.stackId, slot: news.slot, zones: news.zones });
        }
        ensureMetadataAddress(net);
        return { outs: { ...news, network: JSON.stringify(net), present: true } };
    },
    async delete(_id: string, props: QemuNetworkOutputs) {
        lab().deleteStackNetwork(JSON.parse(props.network) as StackNetwork);
    },
};

export class QemuNetwork extends pulumi.dynamic.Resource {
    declare public readonly network: pulumi.Output<string>;
    declare public readonly present: pulumi.Output<boolean>;
    constructor(name: string, args: { stackId: string; slot: number; zones: string[] }, opts?: pulumi.CustomResourceOptions) {
        super(qemuNetworkProvider, name, { ...args, network: undefined, present: undefined }, opts, "qemu", "Network");
    }
}
