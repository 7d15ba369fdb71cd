// RunPlugin of RedisForge's Node.js language host (see pulumi-language-nodejs.js, which wires it in).
//
// Why: when a `nodejs` language plugin is installed, the engine (3.274.1, NewPolicyAnalyzer) does not
// start `pulumi-analyzer-policy` itself for a Node.js policy pack (`pulumi preview --policy-pack DIR`):
// it asks the language host to RunPlugin the pack, with kind "analyzer". The official language host
// then runs @pulumi/pulumi/cmd/run-policy-pack; we do the same through the analyzer launcher
// `pulumi-analyzer-policy` (tools/pulumi-build/bin-scripts, linked into .tools/bin by
// scripts/install-policy-analyzer.sh), so that the one launcher serves both ways the engine may start a
// policy pack. Other plugin kinds are not served (resource plugins of this project are scripts on PATH).
//
// Protocol: a server stream of RunPluginResponse messages: stdout bytes (the first line is the plugin's
// gRPC port, which the engine reads), stderr bytes, and finally the exit code.
"use strict";

const fs = require("fs");
const path = require("path");
const { spawn } = require("child_process");

const LAUNCHER = "pulumi-analyzer-policy";

/** Absolute path of an executable on PATH, or undefined. */
function onPath(name, envPath) {
    for (const dir of (envPath || "").split(path.delimiter)) {
        if (!dir) continue;
        const p = path.join(dir, name);
        try {
            fs.accessSync(p, fs.constants.X_OK);
            return p;
        } catch {
            // not here
        }
    }
    return undefined;
}

/** The RunPlugin handler; `children` is the host's set of running child processes (for Cancel/exit). */
function makeRunPlugin(langPb, children) {
    return function runPlugin(call) {
        const req = call.request;
        const send = (set, value) => {
            const res = new langPb.RunPluginResponse();
            res[set](value);
            call.write(res);
        };
        const fail = (message) => {
            send("setStderr", Buffer.from(`pulumi-language-nodejs: ${message}\n`));
            send("setExitcode", 1);
            call.end();
        };
        const kind = req.getKind();
        if (kind !== "analyzer") {
            fail(`RunPlugin of kind ${JSON.stringify(kind)} is not supported by this language host (only policy packs, kind "analyzer")`);
            return;
        }
        const env = { ...process.env };
        for (const kv of req.getEnvList()) {
            const i = kv.indexOf("=");
            if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
        }
        const info = req.getInfo();
        const packDir = (info && info.getProgramDirectory()) || req.getPwd() || process.cwd();
        const launcher = onPath(LAUNCHER, env.PATH);
        if (!launcher) {
            fail(`no ${LAUNCHER} on PATH to run the policy pack in ${packDir}; run \`bash scripts/install-policy-analyzer.sh\` (scripts/setup.sh does) and put .tools/bin on PATH (source scripts/env.sh)`);
            return;
        }
        // The engine passes its own address; the pack directory is the launcher's second argument.
        const args = [...req.getArgsList(), "."];
        const child = spawn(launcher, args, { cwd: packDir, env, stdio: ["ignore", "pipe", "pipe"] });
        children.add(child);
        child.stdout.on("data", (b) => send("setStdout", b));
        child.stderr.on("data", (b) => send("setStderr", b));
        let done = false;
        const finish = (code) => {
            if (done) return;
            done = true;
            children.delete(child);
            send("setExitcode", code);
            call.end();
        };
        child.on("error", (e) => {
            send("setStderr", Buffer.from(`pulumi-language-nodejs: could not start ${launcher}: ${e.message}\n`));
            finish(1);
        });
        child.on("close", (code, signal) => finish(code === null ? (signal ? 128 : 1) : code));
        call.on("cancelled", () => child.kill("SIGTERM"));
    };
}

module.exports = { makeRunPlugin };
