/**
 * README "Policies" and "Pull requests and deploys" against what exists: the policies listed are
 * exactly the pack's, each mandatory by default; the advisory example names a real policy; the
 * action versions named are the ones the workflows pin.
 */
import * as fs from "fs";
import * as path from "path";
import { POLICIES } from "../../../policy/policies";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
const section = (title: string) => readme.split(`\n## ${title}\n`)[1].split("\n## ")[0];

describe("README sections of the delivery", () => {
    it("Policies lists exactly the pack's policies, in both tables", () => {
        const names = POLICIES.map((p) => p.name).sort();
        const tables = section("Policies").split("| policy |").slice(1);
        expect(tables).toHaveLength(2);
        for (const t of tables) expect([...t.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]).sort()).toEqual(names);
    });

    it("every policy is mandatory by default, and the advisory example names a policy of the pack", () => {
        const index = fs.readFileSync(path.join(ROOT, "policy", "pack.ts"), "utf8");
        expect(index).toMatch(/enforcementLevel: "mandatory"/);
        for (const p of POLICIES) expect(p.enforcementLevel).toBeUndefined(); // the pack's level applies
        const example = JSON.parse(fs.readFileSync(path.join(ROOT, "policy", "advisory.example.json"), "utf8"));
        expect(Object.keys(example).every((k) => POLICIES.some((p) => p.name === k))).toBe(true);
        expect(Object.values(example)).toEqual(["advisory"]);
    });

    it("Pull requests and deploys names the action versions the workflows pin", () => {
        const text = ["pull-request.yml", "deploy.yml"].map((f) => fs.readFileSync(path.join(ROOT, ".github", "workflows", f), "utf8")).join("\n");
        const pinned = new Set([...text.matchAll(/uses: ([\w.-]+\/[\w.-]+)@[0-9a-f]{40} # (v[\d.]+)/g)].map((m) => `${m[1]} ${m[2]}`));
        const named = new Set([...section("Pull requests and deploys").matchAll(/`([\w.-]+\/[\w.-]+)`\s+(v\d+\.\d+\.\d+)/g)].map((m) => `${m[1]} ${m[2]}`));
        expect([...named].sort()).toEqual([...pinned].sort());
    });
});
