/**
 * The QEMU command line of a VM (pure): never a user-mode NIC, and the TCG translation cache size
 * (REDISFORGE_VM_TB_SIZE_MIB, default 256 MiB: 64 MiB flushed 57 times in one boot) validated; and how
 * VmReady reads the end of cloud-init from the serial log.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { qemuArgs, serialShowsFinished } from "../../../lab/vm/qemu";

const spec = { name: "x", dir: "/tmp/x", image: { dir: "/i", kernel: "/i/k", initrd: "/i/r", root: "/i/root.qcow2", cmdline: "c" }, netns: "n", tap: "t0", mac: "52:54:00:00:00:01", seedIso: "/s.iso", dataDisk: { sizeGiB: 1 } };
const saved = process.env.REDISFORGE_VM_TB_SIZE_MIB;
afterEach(() => {
    if (saved === undefined) delete process.env.REDISFORGE_VM_TB_SIZE_MIB;
    else process.env.REDISFORGE_VM_TB_SIZE_MIB = saved;
});

test("a tap NIC only, -nodefaults, software emulation with a 256 MiB translation cache by default", () => {
    delete process.env.REDISFORGE_VM_TB_SIZE_MIB;
    const a = qemuArgs(spec).join(" ");
    expect(a).toMatch(/ -nodefaults /);
    expect(a).toMatch(/ -accel tcg,tb-size=256 /);
    expect(a).toMatch(/-netdev tap,id=net0,ifname=t0,script=no,downscript=no/);
    expect(a).not.toMatch(/user|slirp|hostfwd/);
    // the image's command line, then the TCG clock argument (a busy host made one guest fall back to hpet)
    const args = qemuArgs(spec);
    expect(args[args.indexOf("-append") + 1]).toBe("c tsc=reliable");
});

test("REDISFORGE_VM_TB_SIZE_MIB sets the cache; a value that is not 16-2048 MiB is refused naming the variable", () => {
    process.env.REDISFORGE_VM_TB_SIZE_MIB = "512";
    expect(qemuArgs(spec).join(" ")).toMatch(/ -accel tcg,tb-size=512 /);
    for (const bad of ["8", "4096", "1.5", "lots"]) {
        process.env.REDISFORGE_VM_TB_SIZE_MIB = bad;
        expect(() => qemuArgs(spec)).toThrow(new RegExp(`REDISFORGE_VM_TB_SIZE_MIB=${bad}: must be an integer from 16 to 2048`));
    }
});

describe("serialShowsFinished: VmReady reads cloud-init's end from the serial log, not the guest", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-serial-"));
    const log = path.join(dir, "serial.log");
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("finds cloud-final's line (as cloud-init 22.4 prints it) only once it is written, also when it is split between two reads", () => {
        fs.writeFileSync(log, "[  OK  ] Started cloud-final.service\n[   44.1] random: crng init done\n");
        const a = serialShowsFinished(log, 0);
        expect(a.finished).toBe(false);
        fs.appendFileSync(log, "Cloud-init v. 22.4.2 fin");
        const b = serialShowsFinished(log, a.offset);
        expect(b.finished).toBe(false);
        fs.appendFileSync(log, "ished at Mon, 30 Nov 2026 05:58:21 +0000. Datasource DataSourceNoCloud [seed=/dev/sr0][dsmode=net].  Up 1463.20 seconds\n");
        const c = serialShowsFinished(log, b.offset);
        expect(c.finished).toBe(true);
        expect(c.offset).toBe(fs.statSync(log).size);
    });

    it("a missing log is not finished; other cloud-init lines are not the end", () => {
        expect(serialShowsFinished(path.join(dir, "none.log")).finished).toBe(false);
        fs.writeFileSync(log, "Cloud-init v. 22.4.2 running 'modules:final' at Mon, 30 Nov 2026 05:40:02 +0000. Up 480.3 seconds.\n");
        expect(serialShowsFinished(log).finished).toBe(false);
    });
});
