/**
 * templates/cloud-init compactScript (what every boot script becomes in the user-data: no comment-only
 * or blank lines, no indentation; AWS caps raw user-data at 16 KiB) must not change what bash runs.
 * Bash itself is the judge: each script's body wrapped in a function and printed back by `declare -f`
 * (bash's own canonical form: whitespace outside words normalised, string contents kept) is the same
 * text for the full script and its compact form. A heredoc or a multi-line string whose indentation
 * matters would differ, and this test shows that it would.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { compactScript } from "../../../templates/cloud-init/index";

const SCRIPTS = path.resolve(__dirname, "../../../templates/scripts");

/** bash's canonical form of a script body (`declare -f` of a function holding it). */
function canonical(body: string): string {
    const r = spawnSync("bash", ["--norc", "--noprofile", "-c", 'eval "rf_script() {\n$(cat)\n}" && declare -f rf_script'], { input: body.replace(/^#!.*\n/, ""), encoding: "utf8", timeout: 20000 });
    if (r.status !== 0) throw new Error(`bash could not read the script: ${r.stderr}`);
    return r.stdout;
}

describe("compactScript keeps what bash runs", () => {
    const names = fs.readdirSync(SCRIPTS).filter((f) => f.endsWith(".sh"));
    it("covers every boot script", () => {
        expect(names.length).toBeGreaterThanOrEqual(5);
    });
    it.each(names)("%s: the same to bash, and smaller", (name) => {
        const full = fs.readFileSync(path.join(SCRIPTS, name), "utf8");
        const compact = compactScript(full);
        expect(compact.length).toBeLessThan(full.length);
        expect(compact).not.toMatch(/^[ \t]/m);
        expect(canonical(compact)).toBe(canonical(full));
    });
    it("would tell: a multi-line string whose indentation is data differs", () => {
        const script = '#!/bin/bash\nmsg="first\n    second"\necho "$msg"\n';
        expect(canonical(compactScript(script))).not.toBe(canonical(script));
    });
});
