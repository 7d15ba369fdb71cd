/**
 * lab/vm/seed.ts against the real tools: the ISO is a `cidata` volume holding the three files,
 * user-data byte for byte; network-config is converted by cloud-init itself (`cloud-init devel
 * net-convert`, the code path the guest runs) into the systemd-networkd files the image uses.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { buildSeedIso, macFor, renderNetworkConfig, SeedSpec } from "../../../lab/vm/seed";
import { run } from "../../../lab/vm/exec";

let dir: string;
beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "rfvm-seed-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spec: SeedSpec = {
    instanceId: "vm-zone-a-1",
    hostname: "prod-redis-shard0-master",
    userData: "#cloud-config\nruncmd:\n  - [touch, /run/x]\n# \u00e9 and a long line " + "x".repeat(300) + "\n",
    mac: macFor("stack-prod-redis-shard0-master"),
    address: "10.210.0.10/24",
    gateway: "10.210.0.1",
};

test("the seed ISO is labelled cidata and carries user-data unmodified, meta-data and network-config", () => {
    const iso = buildSeedIso(spec, join(dir, "seed.iso"));
    expect(run("isoinfo", ["-d", "-i", iso])).toMatch(/Volume id: cidata/);
    const read = (name: string) => run("isoinfo", ["-i", iso, "-J", "-x", `/${name}`]);
    expect(read("user-data")).toBe(spec.userData);
    expect(read("meta-data")).toMatch(/instance-id: vm-zone-a-1\nlocal-hostname: prod-redis-shard0-master/);
    expect(read("network-config")).toBe(renderNetworkConfig(spec));
});

test("cloud-init converts the network-config into a networkd file: static address, default route, matched by MAC", () => {
    const nc = join(dir, "network-config");
    require("fs").writeFileSync(nc, renderNetworkConfig(spec));
    const out = join(dir, "net-out");
    run("cloud-init", ["devel", "net-convert", "-p", nc, "-k", "yaml", "-d", out, "-D", "debian", "-O", "networkd"], { timeoutMs: 60000 });
    const netdir = join(out, "etc", "systemd", "network");
    const files = readdirSync(netdir);
    const text = files.map((f) => readFileSync(join(netdir, f), "utf8")).join("\n");
    expect(text).toMatch(new RegExp(`MACAddress=${spec.mac}`));
    expect(text).toMatch(/Address=10\.210\.0\.10\/24/);
    expect(text).toMatch(/Gateway=10\.210\.0\.1/);
    expect(text).not.toMatch(/DHCP=(yes|ipv4)/);
});

test("bad seed input is refused naming each field and the fix", () => {
    expect(() => buildSeedIso({ ...spec, hostname: "Bad_Host", mac: "52:54:00:zz:00:00", address: "10.0.0.1", userData: "hello" }, join(dir, "bad.iso"))).toThrow(
        /hostname must be a lower-case DNS label.*userData must start with #cloud-config.*mac must look like.*address must be an IPv4 address with prefix/,
    );
    expect(macFor("a")).toBe(macFor("a"));
    expect(macFor("a")).not.toBe(macFor("b"));
    expect(macFor("a")).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
});
