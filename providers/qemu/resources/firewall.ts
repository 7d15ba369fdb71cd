/**
 * QemuFirewall: the stack's allow list (providers/qemu/plan.ts firewallPlan) loaded into the
 * stack namespace's nftables (lab/vm/firewall.ts: one atomic transaction, default deny with TCP
 * reset). Refresh reports whether the table is still loaded; delete removes it.
 */
import * as pulumi from "@pulumi/pulumi";
import { hostModule } from "./host";

const fwl = () => hostModule<typeof import("../../../lab/vm/firewall")>("lab/vm/firewall");
import type { StackNetwork } from "../../../lab/vm/network";
import type { LabRule } from "../plan";

export interface QemuFirewallInputs {
    network: string;
    rules: LabRule[];
}

export interface QemuFirewallOutputs extends QemuFirewallInputs {
    loaded: boolean;
}

const netOf = (s: string) => JSON.parse(s) as StackNetwork;

export const qemuFirewallProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: QemuFirewallInputs, news: QemuFirewallInputs) {
        try {
            fwl().renderFirewall(news.rules);
            return { inputs: news };
        } catch (e) {
            return { inputs: news, failures: [{ property: "rules", reason: (e as Error).message }] };
        }
    },
    async diff(_id: string, olds: QemuFirewallOutputs, news: QemuFirewallInputs) {
        const changed = !olds.loaded || JSON.stringify(olds.rules) !== JSON.stringify(news.rules) || olds.network !== news.network;
        return { changes: changed };
    },
    async create(i: QemuFirewallInputs) {
        const net = netOf(i.network);
        fwl().setFirewall(net, i.rules);
        return { id: `${net.netns}/rfvm`, outs: { ...i, loaded: true } };
    },
    async read(id: string, props: QemuFirewallOutputs) {
        let loaded = false;
        try {
            loaded = fwl().showFirewall(netOf(props.network)) !== "";
        } catch {
            loaded = false; // namespace gone
        }
        return { id, props: { ...props, loaded } };
    },
    async update(_id: string, _olds: QemuFirewallOutputs, news: QemuFirewallInputs) {
        fwl().setFirewall(netOf(news.network), news.rules);
        return { outs: { ...news, loaded: true } };
    },
    async delete(_id: string, props: QemuFirewallOutputs) {
        try {
            fwl().clearFirewall(netOf(props.network));
        } catch (e) {
            // The namespace (and the table with it) may already be gone.
            if (!/Cannot open network namespace|No such file/.test((e as Error).message)) throw e;
        }
    },
};

export class QemuFirewall extends pulumi.dynamic.Resource {
    declare public readonly rules: pulumi.Output<LabRule[]>;
    declare public readonly loaded: pulumi.Output<boolean>;
    constructor(name: string, args: { network: pulumi.Input<string>; rules: LabRule[] }, opts?: pulumi.CustomResourceOptions) {
        super(qemuFirewallProvider, name, { ...args, loaded: undefined }, opts, "qemu", "Firewall");
    }
}
