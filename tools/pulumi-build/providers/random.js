#!/usr/bin/env node
// `pulumi-resource-random` for @pulumi/random 4.21.2 programs, written for RedisForge (see common.js
// for why). Implements random:index/randomPassword:RandomPassword, random:index/randomString:RandomString
// and random:index/randomId:RandomId with the upstream input/output names, drawing from node:crypto.
// Not implemented: RandomPassword.bcryptHash (returned empty: no bcrypt in Node's standard library).
"use strict";

const crypto = require("crypto");
const { serve } = require("./common");

const VERSION = "4.21.2";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const NUMERIC = "0123456789";
const SPECIAL = "!@#$%&*()-_=+[]{}<>:?";

function pick(chars, n) {
    let s = "";
    for (let i = 0; i < n; i++) s += chars[crypto.randomInt(chars.length)];
    return s;
}

function shuffle(s) {
    const a = s.split("");
    for (let i = a.length - 1; i > 0; i--) {
        const j = crypto.randomInt(i + 1);
        [a[i], a[j]] = [a[j], a[i]];
    }
    return a.join("");
}

/** Same rules as the upstream provider: `length` chars from the enabled sets, with the minimums met. */
function randomString(inputs) {
    const length = Number(inputs.length);
    if (!Number.isInteger(length) || length < 1) throw new Error(`random: length must be a positive integer; got ${inputs.length}`);
    const numeric = inputs.numeric !== undefined ? inputs.numeric !== false : inputs.number !== false;
    const sets = [
        [inputs.upper !== false, UPPER, Number(inputs.minUpper || 0)],
        [inputs.lower !== false, LOWER, Number(inputs.minLower || 0)],
        [numeric, NUMERIC, Number(inputs.minNumeric || 0)],
        [inputs.special !== false, inputs.overrideSpecial || SPECIAL, Number(inputs.minSpecial || 0)],
    ];
    let all = "";
    let s = "";
    for (const [on, chars, min] of sets) {
        if (!on) continue;
        all += chars;
        s += pick(chars, min);
    }
    if (all === "") throw new Error("random: every character set is disabled (upper, lower, numeric, special); enable at least one");
    if (s.length > length) throw new Error(`random: the minimums add up to ${s.length} characters, more than length ${length}`);
    s += pick(all, length - s.length);
    return shuffle(s);
}

function createString(inputs) {
    const result = randomString(inputs);
    return { id: result, outs: { result } };
}

function createPassword(inputs) {
    const result = randomString(inputs);
    return { id: "none", outs: { result, bcryptHash: "" } };
}

function createId(inputs) {
    const n = Number(inputs.byteLength);
    if (!Number.isInteger(n) || n < 1) throw new Error(`random RandomId: byteLength must be a positive integer; got ${inputs.byteLength}`);
    const bytes = crypto.randomBytes(n);
    const prefix = inputs.prefix || "";
    const b64Url = bytes.toString("base64url");
    return {
        id: b64Url,
        outs: {
            b64Url: prefix + b64Url,
            b64Std: prefix + bytes.toString("base64"),
            hex: prefix + bytes.toString("hex"),
            dec: prefix + BigInt(`0x${bytes.toString("hex")}`).toString(10),
        },
    };
}

const STRING_INPUTS = ["length", "keepers", "lower", "minLower", "minNumeric", "minSpecial", "minUpper", "number", "numeric", "overrideSpecial", "special", "upper"];
const STRING_DEFAULTS = { lower: true, upper: true, special: true, numeric: true, number: true, minLower: 0, minNumeric: 0, minSpecial: 0, minUpper: 0 };

module.exports = { randomString, createPassword, createString, createId };

if (require.main === module) {
    serve("random", VERSION, {
        "random:index/randomPassword:RandomPassword": { inputs: STRING_INPUTS, required: ["length"], defaults: STRING_DEFAULTS, create: createPassword },
        "random:index/randomString:RandomString": { inputs: STRING_INPUTS, required: ["length"], defaults: STRING_DEFAULTS, create: createString },
        "random:index/randomId:RandomId": { inputs: ["byteLength", "keepers", "prefix"], required: ["byteLength"], defaults: {}, create: createId },
    });
}
