// Entry point the engine loads (package.json "main"). @pulumi/pulumi's run-policy-pack registers
// ts-node WITH type-checking for .ts files, which costs seconds on every preview; the pack is
// type-checked by `tsc --noEmit` in the tests (tsconfig.json includes policy/), so here its .ts files
// are only transpiled, like the program itself (PULUMI_NODEJS_TRANSPILE_ONLY).
"use strict";
const fs = require("fs");
const ts = require("typescript");

require.extensions[".ts"] = (module, filename) => {
    const { outputText } = ts.transpileModule(fs.readFileSync(filename, "utf8"), {
        fileName: filename,
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false },
    });
    module._compile(outputText, filename);
};
require("./pack");
