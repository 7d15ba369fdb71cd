/**
 * Which Redis the lab, the local stack, the bench and the tests run: Debian's 7.0.15 on PATH
 * ("system"), or 8.6.3 from Debian experimental, installed by scripts/install-redis8.sh into a
 * trixie rootfs with wrappers in .tools/redis-8.6/bin (README "Redis versions").
 *
 * Chosen by name ("system", "7.0", "8.6"), by a directory holding redis-server + redis-cli, or by
 * the environment: REDISFORGE_REDIS (same values; default "system").
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export interface RedisRuntime {
    /** What was asked for: "system", "8.6", or a directory. */
    name: string;
    /** redis_version of the server binary, e.g. "8.6.3". */
    version: string;
    server: string;
    cli: string;
    checkAof: string;
    benchmark: string;
    /** Directory of the binaries, or null for PATH lookup. */
    binDir: string | null;
}

/** The project root (lab/ is one level below it). */
const PROJECT_DIR = path.resolve(__dirname, "..");

/** Where scripts/install-redis8.sh puts the 8.6 wrappers. */
export const REDIS86_BIN_DIR = path.join(PROJECT_DIR, ".tools", "redis-8.6", "bin");

/** Returns e.g. "7.0.15" for the given redis-server binary. */
export function redisServerVersion(bin = "redis-server"): string {
    let out: string;
    try {
        out = execFileSync(bin, ["--version"]).toString();
    } catch (e) {
        throw new Error(`cannot run ${bin} --version: ${(e as Error).message}`);
    }
    const m = /v=(\d+\.\d+\.\d+)/.exec(out);
    if (!m) throw new Error(`cannot read the version of ${bin} from: ${out}`);
    return m[1];
}

function fromDir(name: string, dir: string): RedisRuntime {
    const server = path.join(dir, "redis-server");
    if (!fs.existsSync(server)) {
        const hint = dir === REDIS86_BIN_DIR ? "; install it with: bash scripts/install-redis8.sh (npm test and scripts/setup.sh do)" : "";
        throw new Error(`Redis runtime "${name}": no redis-server in ${dir}${hint}`);
    }
    const bin = (b: string) => (fs.existsSync(path.join(dir, b)) ? path.join(dir, b) : b);
    return { name, version: redisServerVersion(server), server, cli: bin("redis-cli"), checkAof: bin("redis-check-aof"), benchmark: bin("redis-benchmark"), binDir: dir };
}

/**
 * Resolves a runtime choice. `choice` defaults to $REDISFORGE_REDIS, then "system".
 * Throws with the fix when the choice is unknown or not installed.
 */
export function redisRuntime(choice: string = process.env.REDISFORGE_REDIS || "system"): RedisRuntime {
    const c = choice.trim();
    if (c === "system" || c === "7.0") {
        const rt: RedisRuntime = { name: c, version: redisServerVersion("redis-server"), server: "redis-server", cli: "redis-cli", checkAof: "redis-check-aof", benchmark: "redis-benchmark", binDir: null };
        if (c === "7.0" && !rt.version.startsWith("7.0.")) throw new Error(`Redis runtime "7.0": redis-server on PATH is ${rt.version}, not 7.0.x`);
        return rt;
    }
    if (c === "8.6") return fromDir(c, REDIS86_BIN_DIR);
    if (c.includes("/")) return fromDir(c, path.resolve(c));
    throw new Error(`unknown Redis runtime "${choice}" (REDISFORGE_REDIS): use "system" (Debian's redis-server on PATH, 7.0), "8.6" (bash scripts/install-redis8.sh) or a directory holding redis-server and redis-cli`);
}

/** Every runtime installed here, oldest first. */
export function installedRuntimes(): RedisRuntime[] {
    const out: RedisRuntime[] = [];
    for (const c of ["system", "8.6"]) {
        try {
            out.push(redisRuntime(c));
        } catch {
            /* not installed */
        }
    }
    return out.sort((a, b) => compareVersions(a.version, b.version));
}

/** Numeric compare of dotted versions ("8.4" < "8.6.3" < "10.0"). */
export function compareVersions(a: string, b: string): number {
    const x = a.split(".").map(Number);
    const y = b.split(".").map(Number);
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    return 0;
}

/**
 * The installed runtime for a requested `redisforge:redisVersion` ("7.0", "8.4", "8.6.3"): the
 * lowest installed version of the same major that is >= the request (8.4 runs on 8.6.3: 8.6 has
 * every 8.4 feature). Throws naming what is installed when none fits.
 */
export function runtimeForVersion(requested: string, runtimes: RedisRuntime[] = installedRuntimes()): RedisRuntime {
    const major = requested.split(".")[0];
    const fit = runtimes.filter((r) => r.version.split(".")[0] === major && compareVersions(r.version, requested) >= 0);
    if (!fit.length) {
        throw new Error(
            `redisforge:redisVersion=${requested}: no installed redis-server of version ${major}.x >= ${requested} on this machine (installed: ${runtimes.map((r) => `${r.version} (${r.name})`).join(", ") || "none"}); ` +
                `Debian's redis-server is 7.0, bash scripts/install-redis8.sh adds 8.6.3`,
        );
    }
    return fit.sort((a, b) => compareVersions(a.version, b.version))[0];
}
