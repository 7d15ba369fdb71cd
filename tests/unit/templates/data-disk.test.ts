/**
 * templates/scripts/data-disk.sh decides whether to format: only an EMPTY disk is formatted, once;
 * a disk with our label is mounted whatever its device name; a disk with any other filesystem or a
 * partition table is refused; fstab gets exactly one UUID line. The script runs for real (bash);
 * the disk tools it calls (blkid, mkfs.xfs, mount, mountpoint, udevadm, systemctl) are replaced by
 * recording stand-ins on a PATH without /sbin, so no real disk is ever touched.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { tmpDir } from "./tools";

const SCRIPT = path.resolve(__dirname, "../../../templates/scripts/data-disk.sh");
const dir = tmpDir("data-disk");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Some block device that exists on this machine: only `[[ -b ]]` looks at it; the tools are stand-ins. */
const BLOCK_DEVICE = ["/dev/loop0", "/dev/loop1", "/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/xvda"].find((d) => {
    try {
        return fs.statSync(d).isBlockDevice();
    } catch {
        return false;
    }
});

const STUBS: Record<string, string> = {
    blkid: `#!/bin/bash
# blkid stand-in: answers from $STATE (label, type, pttype, uuid, dev)
echo "blkid $*" >>"$STATE/calls"
case "$1" in
  -L) [[ -f $STATE/label && $(cat "$STATE/label") == "$2" ]] && { cat "$STATE/dev"; exit 0; }; exit 2 ;;
  -p) f=$STATE/$(echo "$5" | tr 'A-Z' 'a-z'); [[ -f $f ]] && cat "$f"; [[ -f $f ]] || exit 2 ;;
  -o) [[ -f $STATE/uuid ]] && cat "$STATE/uuid" || exit 2 ;;
esac
`,
    "mkfs.xfs": `#!/bin/bash
echo "mkfs.xfs $*" >>"$STATE/calls"
[[ $1 == -q && $2 == -L ]] || exit 9
echo xfs >"$STATE/type"; echo "$3" >"$STATE/label"; echo "$4" >"$STATE/dev"; echo 0b7c4a6e-1111-2222-3333-444455556666 >"$STATE/uuid"
`,
    mount: `#!/bin/bash
echo "mount $*" >>"$STATE/calls"; echo "\${@: -1}" >"$STATE/mounted"
`,
    mountpoint: `#!/bin/bash
[[ -f $STATE/mounted && $(cat "$STATE/mounted") == "$2" ]]
`,
    udevadm: `#!/bin/bash
echo "udevadm $*" >>"$STATE/calls"
`,
    systemctl: `#!/bin/bash
echo "systemctl $*" >>"$STATE/calls"
`,
};

function setup(name: string) {
    const d = path.join(dir, name);
    const bin = path.join(d, "bin");
    const state = path.join(d, "state");
    fs.mkdirSync(bin, { recursive: true });
    fs.mkdirSync(state);
    for (const [n, body] of Object.entries(STUBS)) fs.writeFileSync(path.join(bin, n), body, { mode: 0o755 });
    fs.writeFileSync(path.join(d, "fstab"), "# /etc/fstab stand-in\n");
    const mnt = path.join(d, "mnt");
    const run = (device = BLOCK_DEVICE!, extra: Record<string, string> = {}) => {
        fs.writeFileSync(path.join(d, "boot.env"), `DATA_DISK_DEVICE=${device}\nDATA_MOUNT=${mnt}\nDATA_LABEL=redisdata\nDATA_UID=${process.getuid!()}\n`);
        const r = spawnSync("bash", [SCRIPT], {
            env: { PATH: `${bin}:/usr/bin:/bin`, STATE: state, BOOT_ENV: path.join(d, "boot.env"), FSTAB: path.join(d, "fstab"), ...extra },
            encoding: "utf8",
            timeout: 20000,
        });
        return { code: r.status, out: `${r.stdout}${r.stderr}` };
    };
    const calls = () => (fs.existsSync(path.join(state, "calls")) ? fs.readFileSync(path.join(state, "calls"), "utf8").trim().split("\n") : []);
    const fstab = () => fs.readFileSync(path.join(d, "fstab"), "utf8").split("\n").filter((l) => l.startsWith("UUID="));
    return { d, state, mnt, run, calls, fstab };
}

beforeAll(() => {
    if (!BLOCK_DEVICE) throw new Error("no block device found under /dev for the -b check (loop devices are enough)");
});

describe("data-disk.sh", () => {
    it("formats an empty disk once, mounts it by UUID; the second boot only mounts", () => {
        const t = setup("empty");
        const first = t.run();
        expect(first.code).toBe(0);
        expect(first.out).toMatch(/formatting empty disk .* as xfs \(label redisdata\)/);
        const mkfs = t.calls().filter((c) => c.startsWith("mkfs.xfs"));
        expect(mkfs).toEqual([`mkfs.xfs -q -L redisdata ${fs.realpathSync(BLOCK_DEVICE!)}`]);
        expect(t.fstab()).toEqual([`UUID=0b7c4a6e-1111-2222-3333-444455556666 ${t.mnt} xfs defaults,noatime,nofail,x-systemd.device-timeout=120s 0 2`]);
        expect(t.calls()).toContain(`mount --fstab ${path.join(t.d, "fstab")} ${t.mnt}`);
        expect((fs.statSync(t.mnt).mode & 0o777).toString(8)).toBe("700");

        fs.rmSync(path.join(t.state, "mounted")); // reboot: not mounted yet
        fs.rmSync(path.join(t.state, "calls"));
        const second = t.run();
        expect(second.code).toBe(0);
        expect(t.calls().filter((c) => c.startsWith("mkfs"))).toEqual([]);
        expect(t.calls()).toContain(`mount --fstab ${path.join(t.d, "fstab")} ${t.mnt}`);
        expect(t.fstab().length).toBe(1);
    });

    it("finds its disk by label even when the device name changed", () => {
        const t = setup("renamed");
        fs.writeFileSync(path.join(t.state, "label"), "redisdata");
        fs.writeFileSync(path.join(t.state, "dev"), "/dev/nvme2n1");
        fs.writeFileSync(path.join(t.state, "type"), "xfs");
        fs.writeFileSync(path.join(t.state, "uuid"), "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
        const r = t.run("/dev/does-not-exist-anymore");
        expect(r.code).toBe(0);
        expect(r.out).toContain("/dev/nvme2n1 (UUID aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee) mounted");
        expect(t.calls().filter((c) => c.startsWith("mkfs"))).toEqual([]);
    });

    it.each([
        ["a foreign filesystem", "type", "ext4"],
        ["a partition table", "pttype", "gpt"],
    ])("refuses to format a disk with %s", (_n, file, value) => {
        const t = setup(`foreign-${file}`);
        fs.writeFileSync(path.join(t.state, file), value);
        const r = t.run();
        expect(r.code).toBe(1);
        expect(r.out).toMatch(/already has a filesystem or partition table but not label redisdata; refusing to format it/);
        expect(t.calls().filter((c) => c.startsWith("mkfs") || c.startsWith("mount"))).toEqual([]);
        expect(t.fstab()).toEqual([]);
    });

    it("gives up (bounded) when the disk never appears", () => {
        const t = setup("absent");
        const started = Date.now();
        const r = t.run("/dev/redisforge-absent-disk", { WAIT_SECONDS: "2" });
        expect(r.code).toBe(1);
        expect(r.out).toContain("data disk /dev/redisforge-absent-disk did not appear within 2s");
        expect(Date.now() - started).toBeLessThan(10000);
    });
});
