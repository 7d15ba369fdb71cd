#!/usr/bin/env node
// RedisForge's Node.js language host for the Pulumi engine (`pulumi-language-nodejs`).
//
// Why this exists: the official language host is the Go module
// github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3, which has no tags; the Go module
// proxy reachable here refuses every version of it we can name (`@v/list`, `@latest`, the release
// tag: "403 Forbidden ... This module version is not available"), and its pseudo-version needs the
// commit hash of the release tag, which nothing reachable from this machine tells us. So this file
// implements the part of the LanguageRuntime gRPC service that `pulumi preview/up/refresh/destroy`
// and the Automation API use, on top of the gRPC stubs that ship inside @pulumi/pulumi:
//
//   Handshake, GetPluginInfo, GetRequiredPlugins, GetRequiredPackages, Run, InstallDependencies,
//   About, GetProgramDependencies, RuntimeOptionsPrompts, Cancel, and RunPlugin for policy packs
//   (run-plugin.js). Anything else answers UNIMPLEMENTED.
//
// Run starts `node <program dir>/node_modules/@pulumi/pulumi/cmd/run ...` with the same flags and
// environment the official host passes (monitor/engine addresses, project, stack, dry-run, parallel,
// PULUMI_CONFIG with `ns:config:key` keys, PULUMI_CONFIG_SECRET_KEYS, PULUMI_NODEJS_TYPESCRIPT) and
// maps exit code 32 ("already reported a user-actionable message") to a bail.
//
// Protocol of a plugin: print the gRPC port on the first stdout line, serve until killed.
"use strict";

const fs = require("fs");
const net = require("net");
const path = require("path");
const { spawn } = require("child_process");

const VERSION = process.env.REDISFORGE_LANGUAGE_HOST_VERSION || "3.274.1";
/** Exit code of @pulumi/pulumi/cmd/run meaning "the error was already shown to the user". */
const EXIT_ALREADY_REPORTED = 32;

function die(msg) {
    process.stderr.write(`pulumi-language-nodejs: ${msg}\n`);
    process.exit(1);
}

// ---------------------------------------------------------------- arguments
const argv = process.argv.slice(2);
if (argv.includes("-version") || argv.includes("--version")) {
    process.stdout.write(`${VERSION}\n`);
    process.exit(0);
}
let engineAddress = "";
for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-tracing" || a === "--tracing" || a === "-runtime" || a === "--runtime") {
        i++;
        continue;
    }
    if (a.startsWith("-")) continue;
    engineAddress = a;
    break;
}

// ---------------------------------------------------------------- load the SDK's gRPC stubs
/** Directory holding node_modules/@pulumi/pulumi: the project the engine runs us for. */
function findSdkDir() {
    const candidates = [process.env.REDISFORGE_PROJECT_DIR, process.cwd(), path.resolve(__dirname, "../../..")];
    for (const c of candidates) {
        if (!c) continue;
        let dir = path.resolve(c);
        for (;;) {
            const p = path.join(dir, "node_modules", "@pulumi", "pulumi", "package.json");
            if (fs.existsSync(p)) return path.dirname(p);
            const up = path.dirname(dir);
            if (up === dir) break;
            dir = up;
        }
    }
    return undefined;
}
const sdkDir = findSdkDir();
if (!sdkDir) {
    die("cannot find node_modules/@pulumi/pulumi above the working directory; run `npm ci` in the project first");
}
const grpc = require(require.resolve("@grpc/grpc-js", { paths: [sdkDir] }));
const langGrpc = require(path.join(sdkDir, "proto", "language_grpc_pb.js"));
const langPb = require(path.join(sdkDir, "proto", "language_pb.js"));
const pluginPb = require(path.join(sdkDir, "proto", "plugin_pb.js"));
const emptyPb = require(require.resolve("google-protobuf/google/protobuf/empty_pb.js", { paths: [sdkDir] }));

// ---------------------------------------------------------------- helpers
/** Plain object of a ProgramInfo's `options` Struct (runtime options from Pulumi.yaml). */
function runtimeOptions(info) {
    const s = info && info.getOptions && info.getOptions();
    return s ? s.toJavaScript() : {};
}

/** Where @pulumi/pulumi lives for this program (its own node_modules first). */
function resolveFromProgram(programDir, request) {
    return require.resolve(request, { paths: [programDir, process.cwd()] });
}

/** `ns:key` -> `ns:config:key`, the form every @pulumi/pulumi version reads. */
function configForNode(map) {
    const out = {};
    map.forEach((value, key) => {
        const i = key.indexOf(":");
        if (i <= 0) {
            out[key] = value;
        } else {
            out[`${key.slice(0, i)}:config:${key.slice(i + 1)}`] = value;
        }
    });
    return out;
}

const children = new Set();

// ---------------------------------------------------------------- service
const service = {
    handshake(call, cb) {
        const addr = call.request.getEngineAddress();
        if (addr) engineAddress = addr;
        cb(null, new langPb.LanguageHandshakeResponse());
    },

    getPluginInfo(_call, cb) {
        const info = new pluginPb.PluginInfo();
        info.setVersion(VERSION);
        cb(null, info);
    },

    // Providers are loaded on demand when the program registers a resource of their package; with
    // PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true nothing is downloaded, so announcing none up
    // front only means the engine resolves each provider when it is first used.
    getRequiredPlugins(_call, cb) {
        cb(null, new langPb.GetRequiredPluginsResponse());
    },
    getRequiredPackages(_call, cb) {
        cb(null, new langPb.GetRequiredPackagesResponse());
    },

    run(call, cb) {
        const req = call.request;
        const info = req.getInfo();
        const programDir = (info && info.getProgramDirectory()) || req.getPwd() || process.cwd();
        const entryPoint = (info && info.getEntryPoint()) || req.getProgram() || ".";
        const opts = runtimeOptions(info);
        let runPath;
        try {
            runPath = resolveFromProgram(programDir, "@pulumi/pulumi/cmd/run");
        } catch (e) {
            const res = new langPb.RunResponse();
            res.setError(`cannot find @pulumi/pulumi/cmd/run from ${programDir}: ${e.message}; run \`npm ci\``);
            cb(null, res);
            return;
        }
        const args = [];
        if (typeof opts.nodeargs === "string" && opts.nodeargs.trim() !== "") {
            args.push(...opts.nodeargs.trim().split(/\s+/));
        }
        args.push(runPath);
        const flag = (k, v) => {
            if (v !== undefined && v !== null && `${v}` !== "") args.push(`--${k}`, `${v}`);
        };
        flag("monitor", req.getMonitorAddress());
        flag("engine", engineAddress);
        flag("organization", req.getOrganization());
        flag("project", req.getProject());
        flag("root-directory", info && info.getRootDirectory());
        flag("stack", req.getStack());
        flag("pwd", programDir);
        if (req.getDryrun()) args.push("--dry-run");
        flag("parallel", req.getParallel());
        args.push(entryPoint, ...req.getArgsList());

        const env = { ...process.env };
        env.PULUMI_CONFIG = JSON.stringify(configForNode(req.getConfigMap()));
        env.PULUMI_CONFIG_SECRET_KEYS = JSON.stringify(req.getConfigsecretkeysList());
        if (opts.typescript !== false) env.PULUMI_NODEJS_TYPESCRIPT = "true";
        if (typeof opts.tsconfig === "string" && opts.tsconfig !== "") env.PULUMI_NODEJS_TSCONFIG_PATH = opts.tsconfig;
        // Type checking is `tsc --noEmit` in the project's tests; the engine only needs to run the code.
        if (env.PULUMI_NODEJS_TRANSPILE_ONLY === undefined) env.PULUMI_NODEJS_TRANSPILE_ONLY = "true";

        const child = spawn(process.execPath, args, { cwd: programDir, env, stdio: ["ignore", "pipe", "pipe"] });
        children.add(child);
        child.stdout.pipe(process.stdout, { end: false });
        child.stderr.pipe(process.stderr, { end: false });
        let finished = false;
        const finish = (error, bail) => {
            if (finished) return;
            finished = true;
            children.delete(child);
            const res = new langPb.RunResponse();
            if (error) res.setError(error);
            if (bail) res.setBail(true);
            cb(null, res);
        };
        child.on("error", (e) => finish(`Problem executing program (could not run node): ${e.message}`, false));
        child.on("close", (code, signal) => {
            if (code === 0) finish("", false);
            else if (code === EXIT_ALREADY_REPORTED) finish("", true);
            else if (signal) finish(`Program was stopped by signal ${signal}`, false);
            else finish(`Program exited with non-zero exit code: ${code}`, false);
        });
    },

    installDependencies(call) {
        // Dependencies are installed by `npm ci` (scripts/setup.sh); nothing to stream.
        call.end();
    },

    runtimeOptionsPrompts(_call, cb) {
        cb(null, new langPb.RuntimeOptionsResponse());
    },

    about(_call, cb) {
        const res = new langPb.AboutResponse();
        res.setExecutable(process.execPath);
        res.setVersion(process.version.replace(/^v/, ""));
        cb(null, res);
    },

    getProgramDependencies(call, cb) {
        const res = new langPb.GetProgramDependenciesResponse();
        try {
            const info = call.request.getInfo();
            const dir = (info && info.getProgramDirectory()) || call.request.getPwd() || process.cwd();
            const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
            for (const name of Object.keys(pkg.dependencies || {}).sort()) {
                let version = pkg.dependencies[name];
                try {
                    const p = resolveFromProgram(dir, `${name}/package.json`);
                    version = JSON.parse(fs.readFileSync(p, "utf8")).version;
                } catch {
                    // keep the declared range
                }
                const d = new langPb.DependencyInfo();
                d.setName(name);
                d.setVersion(version);
                res.addDependencies(d);
            }
        } catch {
            // no package.json: no dependencies to report
        }
        cb(null, res);
    },

    // `pulumi preview --policy-pack DIR` of a Node.js pack comes here (see run-plugin.js).
    runPlugin: require("./run-plugin").makeRunPlugin(langPb, children),

    cancel(_call, cb) {
        for (const c of children) c.kill("SIGINT");
        cb(null, new emptyPb.Empty());
    },
};

// ---------------------------------------------------------------- serve
const server = new grpc.Server({
    "grpc.max_receive_message_length": 400 * 1024 * 1024,
    "grpc.max_send_message_length": 400 * 1024 * 1024,
});
server.addService(langGrpc.LanguageRuntimeService, service);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) die(`cannot listen on 127.0.0.1: ${err.message}`);
    process.stdout.write(`${port}\n`);
});

// Health check: leave when the engine that started us is gone (bounded: 3 failed probes, 10 s apart).
if (engineAddress) {
    const m = /^(.*):(\d+)$/.exec(engineAddress);
    if (m) {
        let failures = 0;
        const timer = setInterval(() => {
            const sock = net.connect({ host: m[1] || "127.0.0.1", port: Number(m[2]) });
            sock.setTimeout(5000);
            sock.once("connect", () => {
                failures = 0;
                sock.destroy();
            });
            const fail = () => {
                sock.destroy();
                if (++failures >= 3) {
                    for (const c of children) c.kill("SIGTERM");
                    process.exit(0);
                }
            };
            sock.once("error", fail);
            sock.once("timeout", fail);
        }, 10000);
        timer.unref();
    }
}
for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, () => {
        for (const c of children) c.kill(sig);
        server.forceShutdown();
        process.exit(0);
    });
}
