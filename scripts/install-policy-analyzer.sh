#!/usr/bin/env bash
# Installs the policy analyzer plugin for Node.js policy packs into .tools/bin (idempotent):
# pulumi-analyzer-policy, a launcher (tools/pulumi-build/bin-scripts) that runs
# @pulumi/pulumi/cmd/run-policy-pack like the official script of the CLI release archive.
# With a Node.js language host installed (ours, scripts/install-pulumi.sh) the engine (3.274.1) starts a
# pack through the host's RunPlugin, which runs this launcher (tools/pulumi-build/language-nodejs/run-plugin.js).
# Used by `pulumi preview --policy-pack policy` (README "Policies", tests/e2e/policy-pack.test.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin
install -m 0755 tools/pulumi-build/bin-scripts/pulumi-analyzer-policy .tools/bin/pulumi-analyzer-policy
rm -f .tools/bin/pulumi-analyzer-policy-nodejs # an earlier version of this script installed it
[[ -d node_modules/@pulumi/policy ]] || { echo "install-policy-analyzer: node_modules/@pulumi/policy is missing; run npm ci (scripts/setup.sh does)" >&2; exit 1; }
echo "install-policy-analyzer: .tools/bin/pulumi-analyzer-policy ready"
