/**
 * Runs the real program (infra/deploy.ts) under the mocked engine with a given raw config,
 * the way `pulumi preview/up` would: config goes in through the engine's config store.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { installMocks, MockEngine, settle, valueOf } from "../../helpers/mocks";

export const ROOT = path.join(__dirname, "..", "..", "..");

/** Stack file used as the base fixture for each registered cloud. */
export const STACK_FILES: Record<string, string> = {
    aws: "Pulumi.prod.yaml",
    gcp: "Pulumi.gcp-prod.yaml",
    azure: "Pulumi.azure-prod.yaml",
    local: "Pulumi.local.yaml",
    qemu: "Pulumi.vm.yaml",
};

export type Raw = Record<string, unknown>;

/** Reads `redisforge:*` keys of a stack file, as plain values (namespace stripped). */
export function readStackFile(file: string): Raw {
    const doc = parse(fs.readFileSync(path.join(ROOT, file), "utf8")) as { config?: Record<string, unknown> };
    const raw: Raw = {};
    for (const [k, v] of Object.entries(doc.config ?? {})) {
        if (k.startsWith("redisforge:")) raw[k.slice("redisforge:".length)] = v;
    }
    return raw;
}

export function stackFixture(kind: string): Raw {
    const file = STACK_FILES[kind];
    if (!file || !fs.existsSync(path.join(ROOT, file))) {
        throw new Error(`cloud "${kind}" is registered but has no stack fixture; add it to STACK_FILES in tests/unit/components/program.ts`);
    }
    return readStackFile(file);
}

/** Serialises values the way the CLI hands config to the program (strings; objects as JSON). */
export function toEngineConfig(raw: Raw): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) {
        if (v === undefined) continue;
        out[`redisforge:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    }
    return out;
}

export interface RunResult {
    engine: MockEngine;
    error?: Error;
    outputs?: Record<string, unknown>;
    /** The outputs before resolution (to check which are secrets). */
    rawOutputs?: Record<string, pulumi.Input<unknown>>;
    cluster?: import("../../../components/redisforge").RedisForgeCluster;
    ms: number;
}

/**
 * Installs a fresh mocked engine, sets the config, runs the program and waits for every
 * registration. `secretKeys` are stored as secrets (like `pulumi config set --secret`).
 */
export async function runProgram(raw: Raw, o: { stack?: string; preview?: boolean; secretKeys?: string[]; region?: string } = {}): Promise<RunResult> {
    const engine = await installMocks({ stack: o.stack ?? "test", preview: o.preview ?? false, region: o.region ?? (typeof raw.region === "string" ? raw.region : undefined) });
    pulumi.runtime.setAllConfig(toEngineConfig(raw), (o.secretKeys ?? []).map((k) => `redisforge:${k}`));
    // Imported lazily: the mocks must be installed before program modules run.
    const { deploy, main } = await import("../../../infra/deploy");
    const { loadConfig } = await import("../../../infra/config");
    const { adapters } = await import("../../../providers/registry");
    const start = process.hrtime.bigint();
    // The program lowers Error.stackTraceLimit (infra/promise-stacks.ts); jest's failure output
    // needs the frames back once the program has run.
    const stackTraceLimit = Error.stackTraceLimit;
    try {
        if (raw.cloud === "local") {
            // The local stack has its own composition (providers/local); run the real entry.
            const outputs = main() as unknown as Record<string, pulumi.Input<unknown>>;
            const resolved = await valueOf(pulumi.output(outputs));
            await settle(engine);
            return { engine, outputs: resolved as Record<string, unknown>, rawOutputs: outputs, ms: Number(process.hrtime.bigint() - start) / 1e6 };
        }
        const { cluster, outputs } = deploy(loadConfig(adapters));
        const resolved = await valueOf(pulumi.output(outputs as unknown as Record<string, pulumi.Input<unknown>>));
        await Promise.all(cluster.redisNodes.map((n) => valueOf(n.userData)));
        await Promise.all(cluster.envoy.userData.map((u) => valueOf(u)));
        await settle(engine);
        return { engine, outputs: resolved as Record<string, unknown>, rawOutputs: outputs as unknown as Record<string, pulumi.Input<unknown>>, cluster, ms: Number(process.hrtime.bigint() - start) / 1e6 };
    } catch (e) {
        await settle(engine, 2000).catch(() => undefined);
        return { engine, error: e as Error, ms: Number(process.hrtime.bigint() - start) / 1e6 };
    } finally {
        Error.stackTraceLimit = stackTraceLimit;
    }
}
