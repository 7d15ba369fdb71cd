// Shared plumbing for the resource plugins RedisForge ships in place of the official `tls` and
// `random` plugins (their Go modules, github.com/pulumi/pulumi-tls/provider/v5 and
// github.com/pulumi/pulumi-random/provider/v4, answer "403 Forbidden: This module version is not
// available" from the Go module proxy reachable here, for every version).
//
// A plugin is served by @pulumi/pulumi's own provider server (`@pulumi/pulumi/provider`.main), found
// in the node_modules of the program the engine runs us for.
"use strict";

const fs = require("fs");
const path = require("path");

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** Directory of node_modules/@pulumi/pulumi for the program in the working directory (or this repo). */
function sdkDir() {
    for (const start of [process.cwd(), path.resolve(__dirname, "../../..")]) {
        let dir = start;
        for (;;) {
            const p = path.join(dir, "node_modules", "@pulumi", "pulumi", "package.json");
            if (fs.existsSync(p)) return path.dirname(p);
            const up = path.dirname(dir);
            if (up === dir) break;
            dir = up;
        }
    }
    throw new Error("no node_modules/@pulumi/pulumi above the working directory; run `npm ci`");
}

/** Removes secret wrappers (the engine sends secrets wrapped because the provider accepts them). */
function unwrap(v) {
    if (Array.isArray(v)) return v.map(unwrap);
    if (v && typeof v === "object") {
        if (v[SECRET_SIG] === SECRET_VALUE) return unwrap(v.value);
        const out = {};
        for (const [k, x] of Object.entries(v)) out[k] = unwrap(x);
        return out;
    }
    return v;
}

function containsUnknown(v) {
    if (v === UNKNOWN) return true;
    if (Array.isArray(v)) return v.some(containsUnknown);
    if (v && typeof v === "object") return Object.values(v).some(containsUnknown);
    return false;
}

function canonical(v) {
    if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
    if (v && typeof v === "object") {
        return `{${Object.keys(v)
            .filter((k) => v[k] !== undefined && v[k] !== null)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
            .join(",")}}`;
    }
    return JSON.stringify(v === undefined ? null : v);
}

/** Drops undefined values (protobuf Structs cannot carry them). */
function defined(obj) {
    return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

/** The resource type token of a URN (`…::parent$tls:index/privateKey:PrivateKey::name`). */
function typeOf(urn) {
    const parts = urn.split("::");
    return parts[2].split("$").pop();
}

/**
 * Diff where every input forces a replacement (as in the upstream providers: their resources have no
 * in-place updates). `olds` are the stored outputs, which echo every input.
 */
function replaceOnAnyChange(inputKeys) {
    return async (_id, _urn, olds, news) => {
        const o = unwrap(olds);
        const replaces = [];
        for (const k of inputKeys) {
            if (news[k] === undefined && (o[k] === undefined || o[k] === null)) continue;
            if (containsUnknown(news[k]) || canonical(unwrap(news[k])) !== canonical(o[k])) replaces.push(k);
        }
        return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
    };
}

/** Serves `impl` (a map from type token to {inputs, defaults, create}) as a provider plugin. */
function serve(name, version, impl) {
    const sdk = sdkDir();
    const providerMod = require(path.join(sdk, "provider"));
    const provider = {
        version,
        schema: JSON.stringify({ name, version }),
        async check(urn, _olds, news) {
            const t = impl[typeOf(urn)];
            if (!t) return { inputs: news, failures: [{ property: "", reason: `${name}: resource type ${typeOf(urn)} is not supported by RedisForge's ${name} plugin (supported: ${Object.keys(impl).join(", ")})` }] };
            const inputs = { ...t.defaults, ...news };
            const failures = [];
            for (const k of t.required || []) {
                if (inputs[k] === undefined || inputs[k] === null) failures.push({ property: k, reason: `${typeOf(urn)}: "${k}" is required` });
            }
            return { inputs, failures };
        },
        async diff(id, urn, olds, news) {
            const t = impl[typeOf(urn)];
            return replaceOnAnyChange(t.inputs)(id, urn, olds, news);
        },
        async create(urn, inputs) {
            const t = impl[typeOf(urn)];
            if (!t) throw new Error(`${name}: unsupported resource type ${typeOf(urn)}`);
            const plain = unwrap(inputs);
            const computed = await t.create(plain);
            return { id: computed.id, outs: defined({ ...plain, ...computed.outs }) };
        },
        async read(id, _urn, props) {
            return { id, props };
        },
        async update(_id, _urn, olds, news) {
            return { outs: defined({ ...unwrap(olds), ...unwrap(news) }) };
        },
        async delete() {
            // Nothing outside the state: keys, certificates and random values live only there.
        },
    };
    return providerMod.main(provider, process.argv.slice(2));
}

module.exports = { serve, unwrap, containsUnknown, canonical, typeOf, UNKNOWN };
