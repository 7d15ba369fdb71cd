/**
 * The NoCloud seed of a VM: an ISO 9660 volume labelled `cidata` holding user-data, meta-data and
 * network-config (cloud-init reads it as a CD; the image limits cloud-init to NoCloud).
 *
 * user-data is written byte for byte as given (the qemu adapter passes what RedisNode/EnvoyProxy
 * render, unmodified; it never holds a secret). meta-data and network-config are built as typed
 * objects and serialised with the `yaml` library. network-config is version 2: one NIC matched by
 * its MAC, named eth0, a static address and a default route via the segment's gateway, no DNS.
 */
import { createHash } from "crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "fs";
import { join } from "path";
import { stringify } from "yaml";
import { run } from "./exec";

export interface SeedSpec {
    /** cloud-init instance-id: a new id makes cloud-init run the first-boot modules again. */
    instanceId: string;
    /** Hostname (DNS label). */
    hostname: string;
    /** The user-data text (`#cloud-config ...`), written unmodified. */
    userData: string;
    /** The NIC's MAC (matched by network-config), e.g. 52:54:00:12:34:56. */
    mac: string;
    /** Static address with prefix, e.g. 10.210.0.10/24. */
    address: string;
    /** Default gateway, e.g. 10.210.0.1. */
    gateway: string;
}

const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAC_RE = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;
const ADDR_RE = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;
const IP_RE = /^(\d{1,3}\.){3}\d{1,3}$/;

/** meta-data as text (pure). */
export function renderMetaData(s: SeedSpec): string {
    return stringify({ "instance-id": s.instanceId, "local-hostname": s.hostname });
}

/** network-config (v2) as text (pure). */
export function renderNetworkConfig(s: SeedSpec): string {
    return stringify({
        version: 2,
        ethernets: {
            eth0: {
                match: { macaddress: s.mac },
                "set-name": "eth0",
                addresses: [s.address],
                routes: [{ to: "0.0.0.0/0", via: s.gateway }],
            },
        },
    });
}

/** A MAC in QEMU's locally administered range from a stable key (e.g. the VM name): same key, same MAC. */
export function macFor(key: string): string {
    const h = createHash("sha256").update(key).digest();
    return ["52", "54", "00", ...[h[0], h[1], h[2]].map((b) => b.toString(16).padStart(2, "0"))].join(":");
}

function check(s: SeedSpec): void {
    const p: string[] = [];
    if (typeof s.instanceId !== "string" || !/^[A-Za-z0-9._-]{1,128}$/.test(s.instanceId)) p.push(`instanceId must be 1-128 letters, digits, '.', '_' or '-'; got ${JSON.stringify(s.instanceId)}`);
    if (!LABEL_RE.test(s.hostname ?? "")) p.push(`hostname must be a lower-case DNS label; got ${JSON.stringify(s.hostname)}`);
    if (typeof s.userData !== "string" || !/^(#cloud-config|#!|Content-Type:)/.test(s.userData)) p.push("userData must start with #cloud-config, #! or a MIME header (pass the rendered user-data)");
    if (!MAC_RE.test(s.mac ?? "")) p.push(`mac must look like 52:54:00:12:34:56 (lower case); got ${JSON.stringify(s.mac)}`);
    if (!ADDR_RE.test(s.address ?? "")) p.push(`address must be an IPv4 address with prefix like 10.210.0.10/24; got ${JSON.stringify(s.address)}`);
    if (!IP_RE.test(s.gateway ?? "")) p.push(`gateway must be an IPv4 address; got ${JSON.stringify(s.gateway)}`);
    if (p.length) throw new Error(`NoCloud seed: ${p.join("; ")}`);
}

/** Writes the seed ISO to `isoPath` (replacing it). Returns isoPath. */
export function buildSeedIso(s: SeedSpec, isoPath: string): string {
    check(s);
    mkdirSync(join(isoPath, ".."), { recursive: true });
    const dir = mkdtempSync(join(isoPath, "..", ".seed-"));
    try {
        writeFileSync(join(dir, "user-data"), s.userData);
        writeFileSync(join(dir, "meta-data"), renderMetaData(s));
        writeFileSync(join(dir, "network-config"), renderNetworkConfig(s));
        run("genisoimage", ["-quiet", "-output", `${isoPath}.tmp`, "-volid", "cidata", "-joliet", "-rock", join(dir, "user-data"), join(dir, "meta-data"), join(dir, "network-config")]);
        run("mv", ["-f", `${isoPath}.tmp`, isoPath]);
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
    return isoPath;
}
