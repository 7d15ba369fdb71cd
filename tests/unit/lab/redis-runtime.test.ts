/** Choosing the Redis runtime: which installed server a requested version runs on (pure parts). */
import { compareVersions, redisRuntime, RedisRuntime, runtimeForVersion } from "../../../lab/redis-runtime";

const rt = (version: string, name: string): RedisRuntime => ({ name, version, server: `/x/${name}/redis-server`, cli: "", checkAof: "", benchmark: "", binDir: `/x/${name}` });
const installed = [rt("7.0.15", "system"), rt("8.6.3", "8.6")];

describe("runtimeForVersion", () => {
    it.each([
        ["7.0", "7.0.15"],
        ["7", "7.0.15"],
        ["7.0.15", "7.0.15"],
        ["8.4", "8.6.3"],
        ["8.6", "8.6.3"],
        ["8", "8.6.3"],
    ])("redisVersion %s runs on %s", (requested, got) => {
        expect(runtimeForVersion(requested, installed).version).toBe(got);
    });
    it("picks the lowest fitting version of the same major", () => {
        expect(runtimeForVersion("8.2", [rt("8.6.3", "a"), rt("8.4.0", "b"), rt("9.0.0", "c")]).version).toBe("8.4.0");
    });
    it.each(["8.8", "9.0", "7.2", "6.2"])("refuses %s, naming what is installed and how to add 8.6", (requested) => {
        expect(() => runtimeForVersion(requested, installed)).toThrow(/redisforge:redisVersion=.*installed: 7\.0\.15 \(system\), 8\.6\.3 \(8\.6\).*install-redis8\.sh/);
    });
});

describe("compareVersions", () => {
    it("compares numerically, missing parts as 0", () => {
        expect(compareVersions("8.10.0", "8.9.9")).toBeGreaterThan(0);
        expect(compareVersions("8.4", "8.4.0")).toBe(0);
        expect(compareVersions("7.0.15", "8.4")).toBeLessThan(0);
    });
});

describe("redisRuntime", () => {
    it("rejects an unknown choice with the accepted values", () => {
        expect(() => redisRuntime("8.x")).toThrow(/unknown Redis runtime "8\.x".*"system".*"8\.6"/);
    });
    it("rejects a directory without redis-server", () => {
        expect(() => redisRuntime("/nonexistent/dir")).toThrow(/no redis-server in \/nonexistent\/dir/);
    });
});
