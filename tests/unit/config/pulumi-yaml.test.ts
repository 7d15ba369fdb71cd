/** Pulumi.yaml declares exactly the keys infra/config.ts reads, with the same types, defaults and secrecy. */
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { CONFIG_KEYS } from "../../../infra/config";
import { ROOT, STACK_FILES } from "../components/program";

const project = parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as {
    name: string;
    main: string;
    runtime: { name: string; options?: { typescript?: boolean } };
    config: Record<string, { type?: string; description?: string; default?: unknown; secret?: boolean; items?: { type: string } }>;
};

describe("Pulumi.yaml", () => {
    test("project, runtime and entry point", () => {
        expect(project.name).toBe("redisforge");
        expect(project.runtime.name).toBe("nodejs");
        expect(project.runtime.options?.typescript).toBe(true);
        expect(fs.existsSync(path.join(ROOT, project.main))).toBe(true);
    });

    test("declares every key the program reads, and nothing else", () => {
        const declared = Object.keys(project.config).map((k) => k.replace(/^redisforge:/, "")).sort();
        expect(declared).toEqual(Object.keys(CONFIG_KEYS).sort());
    });

    test.each(Object.entries(CONFIG_KEYS))("%s: type, default, secret, description", (key, spec) => {
        const d = project.config[`redisforge:${key}`];
        expect(d.description && d.description.length > 10).toBe(true);
        const s = spec as { type: string; default?: unknown; secret?: boolean };
        if (s.secret) {
            // Optional secrets cannot be typed (see the comment in Pulumi.yaml).
            expect(d.secret).toBe(true);
            expect(d.default).toBe("");
        } else {
            expect(d.type).toBe(s.type);
            expect(d.secret ?? false).toBe(false);
            if (s.type === "array") expect(d.items).toEqual({ type: "string" });
            expect(d.default).toEqual(s.default);
        }
    });

    test.each(Object.entries(STACK_FILES).filter(([k]) => k !== "local"))("stack file for %s uses only declared keys", (_kind, file) => {
        const doc = parse(fs.readFileSync(path.join(ROOT, file), "utf8")) as { config: Record<string, unknown> };
        for (const k of Object.keys(doc.config)) expect(project.config[k]).toBeDefined();
    });
});
