#!/usr/bin/env bash
# Bundles the converge agent (providers/redis-cluster/agent/main.ts with the cluster executor and
# ioredis) into one file for its image: templates/docker/converge-agent/converge-agent.js
# (git-ignored; rebuilt from the sources every time). Needs `npm ci` first (esbuild comes with tsx).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-templates/docker/converge-agent/converge-agent.js}
node_modules/.bin/esbuild providers/redis-cluster/agent/main.ts --bundle --platform=node --target=node20 \
  --log-level=warning --legal-comments=none --outfile="$out"
echo "converge agent bundled: $out ($(wc -c <"$out") bytes)"
