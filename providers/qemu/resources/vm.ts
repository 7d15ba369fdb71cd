/**
 * QemuVm: one VM of the qemu cloud: a tap on the stack's bridge with its source address pinned
 * (nftables `netdev` table on the tap: any other source address or ARP sender is dropped, which
 * is what lets the metadata service trust the source address), its membership in an identity
 * (metadata service store), a NoCloud seed with the user-data exactly as given, and the QEMU
 * process (lab/vm/qemu.ts: `-nodefaults`, tap NIC only, software emulation).
 *
 * create returns once QEMU runs (like a cloud's instance "running"); QemuVmReady waits for
 * cloud-init. A user-data change is an update that re-provisions the VM in place the way a cloud
 * replaces an instance and re-attaches its data disk: power down, new root overlay, new seed with a
 * new instance-id, the same data disk, boot. Refresh reports a stopped VM (`up` starts it again
 * with its disks). Delete powers it down (bounded, then SIGTERM/SIGKILL by its pidfile PID only)
 * and removes tap, pin table, membership, disks and seed: nothing is left behind.
 */
import * as pulumi from "@pulumi/pulumi";
import type { StackNetwork } from "../../../lab/vm/network";
import type { VmSpec } from "../../../lab/vm/qemu";
import { hostModule } from "./host";

const netl = () => hostModule<typeof import("../../../lab/vm/network")>("lab/vm/network");
const qemul = () => hostModule<typeof import("../../../lab/vm/qemu")>("lab/vm/qemu");
const runIn = (...a: Parameters<typeof import("../../../lab/vm/exec").runIn>) => hostModule<typeof import("../../../lab/vm/exec")>("lab/vm/exec").runIn(...a);

export interface QemuVmInputs {
    network: string;
    hostName: string;
    zone: string;
    ip: string;
    tap: string;
    mac: string;
    /** The rendered user-data, unmodified. */
    userData: string;
    dataDiskGb: number;
    memoryMiB: number;
    /** Cached base image directory (scripts/build-vm-image.sh). */
    imageDir: string;
    /** The VM's state directory (absolute, short: unix socket paths live in it). */
    dir: string;
    /** Metadata service store and the identity this VM runs as. */
    storeDir: string;
    identity: string;
    /**
     * Identity tags for humans and the policy pack (components/tags.ts: `redisforge:role`, `zone`,
     * `redis-role`, `shard`), like a cloud instance's tags. Recorded only: changing them never
     * touches the VM. Optional: state written before they existed has none.
     */
    tags?: Record<string, string>;
}

export interface QemuVmOutputs extends Omit<QemuVmInputs, "userData"> {
    pid: number;
    running: boolean;
    userDataSha256: string;
    instanceId: string;
}

const sha = (s: string) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require("crypto") as typeof import("crypto")).createHash("sha256").update(s).digest("hex");
};
const netOf = (s: string) => JSON.parse(s) as StackNetwork;
const pinTable = (tap: string) => `rfpin_${tap.replace(/-/g, "_")}`;

function pin(i: QemuVmInputs): void {
    const t = pinTable(i.tap);
    const script = [
        `table netdev ${t}`,
        `delete table netdev ${t}`,
        `table netdev ${t} {`,
        "  chain ingress {",
        `    type filter hook ingress device "${i.tap}" priority -500; policy accept;`,
        `    ether type ip ip saddr != ${i.ip} drop`,
        `    ether type arp arp saddr ip != ${i.ip} drop`,
        "    ether type ip6 drop",
        "  }",
        "}",
        "",
    ].join("\n");
    runIn(netOf(i.network).netns, "nft", ["-f", "-"], { input: script });
}

function unpin(netns: string, tap: string): void {
    try {
        const tables = runIn(netns, "nft", ["list", "tables"]);
        if (tables.includes(`netdev ${pinTable(tap)}`)) runIn(netns, "nft", ["delete", "table", "netdev", pinTable(tap)]);
    } catch {
        // namespace gone: the table went with it
    }
}

function member(storeDir: string, ip: string, identity: string | undefined): void {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    const f = `${storeDir}/members/${ip}`;
    if (identity === undefined) return fs.rmSync(f, { force: true });
    fs.mkdirSync(`${storeDir}/members`, { recursive: true, mode: 0o700 });
    fs.writeFileSync(f, `${identity}\n`, { mode: 0o600 });
}

function spec(i: QemuVmInputs): VmSpec {
    const net = netOf(i.network);
    return {
        name: i.hostName,
        dir: i.dir,
        image: qemul().loadVmImage(i.imageDir),
        netns: net.netns,
        tap: i.tap,
        mac: i.mac,
        seedIso: `${i.dir}/seed.iso`,
        memoryMiB: i.memoryMiB,
        ...(i.dataDiskGb > 0 ? { dataDisk: { sizeGiB: i.dataDiskGb } } : {}),
    };
}

function instanceIdOf(i: QemuVmInputs): string {
    return `${i.hostName}-${sha(i.userData).slice(0, 12)}`;
}

function provision(i: QemuVmInputs): void {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fs = require("fs") as typeof import("fs");
    const net = netOf(i.network);
    netl().addTap(net, i.tap);
    pin(i);
    member(i.storeDir, i.ip, i.identity);
    fs.mkdirSync(i.dir, { recursive: true, mode: 0o700 });
    const seg = Object.values(net.zones).find((s) => s.gateway.split(".").slice(0, 3).join(".") === i.ip.split(".").slice(0, 3).join("."));
    if (!seg) throw new Error(`qemu VM ${i.hostName}: ${i.ip} is in no zone segment of ${net.netns}`);
    hostModule<typeof import("../../../lab/vm/seed")>("lab/vm/seed").buildSeedIso({ instanceId: instanceIdOf(i), hostname: i.hostName, userData: i.userData, mac: i.mac, address: `${i.ip}/${seg.prefixLen}`, gateway: seg.gateway }, `${i.dir}/seed.iso`);
}

function outs(i: QemuVmInputs, pid: number): QemuVmOutputs {
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    const { userData, ...rest } = i;
    return { ...rest, pid, running: pid > 0, userDataSha256: sha(i.userData), instanceId: instanceIdOf(i) };
}

const replacesOf = (olds: QemuVmOutputs, news: QemuVmInputs) => (["network", "hostName", "ip", "tap", "mac", "dir", "dataDiskGb", "zone"] as const).filter((k) => String(olds[k]) !== String(news[k]));
/** A change the VM itself must see (a restart or a re-provision), as opposed to recorded tags. */
const touchesVm = (olds: QemuVmOutputs, news: QemuVmInputs) => !olds.running || olds.userDataSha256 !== sha(news.userData) || olds.identity !== news.identity || olds.memoryMiB !== news.memoryMiB || olds.imageDir !== news.imageDir;
const sameTags = (a: Record<string, string> | undefined, b: Record<string, string> | undefined) => JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b ?? {}).sort());

export const qemuVmProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: QemuVmInputs, news: QemuVmInputs) {
        const failures: pulumi.dynamic.CheckFailure[] = [];
        if (!/^(\d{1,3}\.){3}\d{1,3}$/.test(news.ip)) failures.push({ property: "ip", reason: `ip must be an IPv4 address; got ${JSON.stringify(news.ip)}` });
        if (typeof news.userData !== "string" || !news.userData.startsWith("#cloud-config")) failures.push({ property: "userData", reason: "userData must be the rendered #cloud-config" });
        if (!news.dir?.startsWith("/")) failures.push({ property: "dir", reason: "dir must be absolute" });
        return { inputs: news, failures };
    },
    async diff(_id: string, olds: QemuVmOutputs, news: QemuVmInputs) {
        const replaces = replacesOf(olds, news);
        const changed = replaces.length > 0 || touchesVm(olds, news) || !sameTags(olds.tags, news.tags);
        return { changes: changed, replaces, deleteBeforeReplace: true };
    },
    async create(i: QemuVmInputs) {
        provision(i);
        const vm = qemul().startVm(spec(i));
        return { id: `${netOf(i.network).netns}/${i.hostName}`, outs: outs(i, vm.pid) };
    },
    async read(id: string, props: QemuVmOutputs) {
        const pid = qemul().runningVmPid(props.dir) ?? 0;
        return { id, props: { ...props, pid, running: pid > 0 } };
    },
    async update(_id: string, olds: QemuVmOutputs, news: QemuVmInputs) {
        // Only the tags changed: record them, leave the running VM alone.
        if (replacesOf(olds, news).length === 0 && !touchesVm(olds, news)) return { outs: outs(news, olds.pid) };
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const fs = require("fs") as typeof import("fs");
        const reprovision = olds.userDataSha256 !== sha(news.userData) || olds.imageDir !== news.imageDir;
        if (reprovision || olds.memoryMiB !== news.memoryMiB) await qemul().stopVm(olds.dir, 60000);
        // A new instance: fresh root overlay (QEMU makes it on start), same data disk.
        if (reprovision) fs.rmSync(`${news.dir}/root.qcow2`, { force: true });
        provision(news);
        const vm = qemul().startVm(spec(news));
        return { outs: outs(news, vm.pid) };
    },
    async delete(_id: string, props: QemuVmOutputs) {
        const net = netOf(props.network);
        // Terminate, as a cloud does: the root overlay and the data disk are deleted right below, so an
        // ACPI power-down (~30 s per guest under emulation, one VM after the other along the rolling
        // gates) would flush nothing that survives. QEMU quits on SIGTERM (SIGKILL after 10 s).
        await qemul().stopVm(props.dir, 0);
        if (qemul().runningVmPid(props.dir)) throw new Error(`qemu VM ${props.hostName}: QEMU pid ${qemul().runningVmPid(props.dir)} did not stop; its files in ${props.dir} are kept`);
        unpin(net.netns, props.tap);
        try {
            netl().deleteTap(net, props.tap);
        } catch {
            // namespace gone: the tap went with it
        }
        member(props.storeDir, props.ip, undefined);
        qemul().deleteVmFiles(props.dir);
    },
};

export class QemuVm extends pulumi.dynamic.Resource {
    declare public readonly pid: pulumi.Output<number>;
    declare public readonly running: pulumi.Output<boolean>;
    declare public readonly dir: pulumi.Output<string>;
    declare public readonly instanceId: pulumi.Output<string>;
    declare public readonly ip: pulumi.Output<string>;
    constructor(name: string, args: { [K in keyof QemuVmInputs]: pulumi.Input<QemuVmInputs[K]> }, opts?: pulumi.CustomResourceOptions) {
        super(qemuVmProvider, name, { ...args, pid: undefined, running: undefined, userDataSha256: undefined, instanceId: undefined }, opts, "qemu", "Vm");
    }
}
