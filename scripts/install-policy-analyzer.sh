#!/usr/bin/env bash
# Installs the policy analyzer plugin for Node.js policy packs into .tools/bin (idempotent):
#   pulumi-analyzer-policy          the launcher (tools/pulumi-build/bin-scripts): runs
#                                   @pulumi/pulumi/cmd/run-policy-pack, like the official script
#   pulumi-analyzer-policy-nodejs   the same file under the name this engine version looks for when no
#                                   Node.js language host is installed (NewPolicyAnalyzer: "policy-<runtime>")
# With our language host installed (scripts/install-pulumi.sh), the engine starts the pack through the
# host's RunPlugin, which runs this launcher. Used by `pulumi preview --policy-pack policy` (README "Policies").
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin
for name in pulumi-analyzer-policy pulumi-analyzer-policy-nodejs; do
  install -m 0755 tools/pulumi-build/bin-scripts/pulumi-analyzer-policy ".tools/bin/$name"
done
[[ -d node_modules/@pulumi/policy ]] || { echo "install-policy-analyzer: node_modules/@pulumi/policy is missing; run npm ci (scripts/setup.sh does)" >&2; exit 1; }
echo "install-policy-analyzer: .tools/bin/pulumi-analyzer-policy ready"
