/**
 * The registry loads only the selected cloud's adapter and SDK (issue 11: previews under 3 s),
 * while the three-cloud tests still see every adapter. Checked in a fresh Node process, where
 * require.cache is the real module cache (jest keeps its own registry).
 */
import { execFileSync } from "child_process";
import * as path from "path";
import { limitPromiseStacks } from "../../../infra/promise-stacks";

const ROOT = path.join(__dirname, "..", "..", "..");
const TSX = path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs");

/** Runs a snippet under tsx in the repo; returns what it printed as JSON. */
function probe(code: string): { loaded: string[]; sdks: string[]; keys: string[] } {
    const out = execFileSync(process.execPath, [TSX, "-e", code], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
    return JSON.parse(out.trim().split("\n").pop()!);
}

const SNIPPET = (use: string) => `
const r = require("./providers/registry");
const keys = Object.keys(r.adapters);
${use}
const sdks = [...new Set(Object.keys(require.cache).map((f) => (/node_modules\\/(@pulumi\\/(aws|gcp|azure-native))\\//.exec(f) || [])[1]).filter(Boolean))].sort();
console.log(JSON.stringify({ loaded: r.loadedAdapters(), sdks, keys }));
`;

describe("providers/registry loads lazily", () => {
    test("listing the clouds loads no adapter and no cloud SDK", () => {
        const p = probe(SNIPPET(""));
        expect(p.keys).toEqual(["aws", "gcp", "azure", "local", "qemu"]);
        expect(p.loaded).toEqual([]);
        expect(p.sdks).toEqual([]);
    }, 130_000);

    test.each([
        ["aws", "@pulumi/aws"],
        ["gcp", "@pulumi/gcp"],
        ["azure", "@pulumi/azure-native"],
    ])("getAdapter(%s) loads that adapter and only its SDK", (kind, sdk) => {
        const p = probe(SNIPPET(`if (r.getAdapter(${JSON.stringify(kind)}).kind !== ${JSON.stringify(kind)}) throw new Error("wrong adapter");`));
        expect(p.loaded).toEqual([kind]);
        expect(p.sdks).toEqual([sdk]);
    }, 130_000);

    test("iterating the values (as the three-cloud tests do) loads every adapter", () => {
        const p = probe(SNIPPET(`for (const a of Object.values(r.adapters)) if (!a.kind) throw new Error("no kind");`));
        expect(p.loaded.sort()).toEqual(["aws", "azure", "gcp", "local", "qemu"]);
        expect(p.sdks).toEqual(["@pulumi/aws", "@pulumi/azure-native", "@pulumi/gcp"]);
    }, 130_000);
});

describe("limitPromiseStacks (infra/promise-stacks.ts)", () => {
    const saved = Error.stackTraceLimit;
    afterEach(() => {
        Error.stackTraceLimit = saved;
    });
    test.each([
        [{}, 0],
        [{ REDISFORGE_STACK_TRACES: "7" }, 7],
        [{ REDISFORGE_STACK_TRACES: "full" }, 10],
    ])("%j -> Error.stackTraceLimit %d", (env, want) => {
        Error.stackTraceLimit = 10;
        expect(limitPromiseStacks(env)).toBe(want);
        expect(Error.stackTraceLimit).toBe(want);
    });
    test("a bad value names the variable and the accepted values", () => {
        expect(() => limitPromiseStacks({ REDISFORGE_STACK_TRACES: "lots" })).toThrow(/REDISFORGE_STACK_TRACES="lots" must be "full" or a whole number of frames/);
    });
});
