#!/usr/bin/env bash
# Tears the local stack down: `pulumi destroy` stops every redis-server it started (by PID) and
# removes the node data dirs and the operator client files; then the stack is removed from the
# project's file backend. Usage: bash scripts/local-down.sh [stack]   (default: local)
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-local}"
# shellcheck disable=SC1091  # sourced from the repo root
source scripts/env.sh
if ! command -v pulumi >/dev/null; then
  echo "local-down: no pulumi on PATH; run bash scripts/setup.sh first" >&2
  exit 1
fi
if ! pulumi stack select "$stack" >/dev/null 2>&1; then
  echo "local-down: no stack \"$stack\" in $PULUMI_BACKEND_URL; nothing to tear down"
  exit 0
fi
pulumi destroy --stack "$stack" --yes --skip-preview
pulumi stack rm "$stack" --yes --preserve-config
# `stack init` wrote the stack's passphrase salt into the config file; it belongs to the removed stack.
[[ -f "Pulumi.$stack.yaml" ]] && sed -i '/^encryptionsalt:/d' "Pulumi.$stack.yaml"
rm -rf ".local-stack/$stack"
rmdir .local-stack 2>/dev/null || true
echo "local-down: stack \"$stack\" destroyed; no redis-server of it runs and .local-stack/$stack is gone"
