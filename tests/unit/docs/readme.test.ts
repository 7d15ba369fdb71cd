import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";

const ROOT = path.join(__dirname, "../../..");
const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");

describe("README", () => {
    it("documents every config key declared in Pulumi.yaml, and no other", () => {
        const declared = Object.keys(parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")).config).sort();
        const section = readme.split("## Configuration reference")[1].split("\n## ")[0];
        const documented = [...section.matchAll(/^\| `(redisforge:[A-Za-z]+)` \|/gm)].map((m) => m[1]).sort();
        expect(declared.length).toBeGreaterThan(10);
        expect(documented).toEqual(declared);
    });
    it("names its two commands, and the test command is what .ci/run runs", () => {
        expect(readme).toMatch(/^npm test\b/m);
        expect(readme).toMatch(/^bash scripts\/local-up\.sh$/m);
        expect(JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts.test).toBe("bash scripts/test.sh");
        expect(fs.readFileSync(path.join(ROOT, ".ci/run"), "utf8")).toMatch(/^npm test$/m);
        expect(fs.existsSync(path.join(ROOT, "scripts/local-up.sh"))).toBe(true);
    });
    it("links only to files that exist", () => {
        for (const m of readme.matchAll(/\]\(([^)#]+)(#[^)]*)?\)/g)) {
            if (/^https?:/.test(m[1])) continue;
            expect(fs.existsSync(path.join(ROOT, m[1]))).toBe(true);
        }
    });
});
