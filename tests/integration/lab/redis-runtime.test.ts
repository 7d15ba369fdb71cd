/**
 * Both Redis runtimes are installed here and really run what they claim: Debian's 7.0.15 on PATH
 * and 8.6.3 from scripts/install-redis8.sh. A lab started on each answers with that version over
 * TLS, and its redis-cli is the same version. Fails when the 8.6 install is missing or broken.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Lab } from "../../../lab/lab";
import { installedRuntimes, redisRuntime } from "../../../lab/redis-runtime";

jest.setTimeout(120000);
const ROOT = path.resolve(__dirname, "../../..");

it("both runtimes are installed: 7.0.x on PATH and 8.6.3", () => {
    const versions = installedRuntimes().map((r) => r.version);
    expect(versions.some((v) => v.startsWith("7.0."))).toBe(true);
    expect(versions).toContain("8.6.3");
});

it("the installer is clean shell and idempotent (a second run keeps the rootfs and says ready)", () => {
    execFileSync("shellcheck", [path.join(ROOT, "scripts/install-redis8.sh")]);
    const out = execFileSync("bash", [path.join(ROOT, "scripts/install-redis8.sh")], { encoding: "utf8", timeout: 60000 });
    expect(out).toMatch(/redis-8\.6: ready \(Redis server v=8\.6\.3 /);
    expect(out).not.toMatch(/building a trixie rootfs/);
});

describe.each(["system", "8.6"])("runtime %s", (choice) => {
    let lab: Lab | undefined;
    afterEach(async () => {
        await lab?.stop({ removeData: true });
        lab = undefined;
    });
    it("a lab node answers INFO server with the runtime's version; redis-cli and redis-check-aof are that version too", async () => {
        const rt = redisRuntime(choice);
        lab = await Lab.start({ dir: fs.mkdtempSync(path.join(os.tmpdir(), `rf-runtime-${choice.replace(/\W/g, "")}-`)), count: 1, redisServer: rt.server });
        expect(lab.state.serverVersion).toBe(rt.version);
        const info = await lab.cli(0, ["INFO", "server"]);
        expect(info).toContain(`redis_version:${rt.version}`);
        expect(execFileSync(lab.redisCli, ["--version"], { encoding: "utf8" })).toContain(`redis-cli ${rt.version}`);
        // redis-check-aof is the server binary under another name: argv0 must reach it.
        const usage = (() => {
            try {
                return execFileSync(rt.checkAof, [], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
            } catch (e) {
                return String((e as { stdout?: string }).stdout ?? "") + String((e as { stderr?: string }).stderr ?? "");
            }
        })();
        expect(usage).toMatch(/Usage: redis-check-aof/);
    });
});
