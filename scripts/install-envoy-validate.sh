#!/bin/bash
# Builds tools/envoy-validate (Envoy v3 bootstrap validator on go-control-plane) into
# .tools/bin/envoy-validate. Idempotent: the binary is cached by the hash of the tool's sources,
# go.mod and go.sum, in .tools/ and in the machine-level cache ~/.cache/redisforge.
# A cold build (module download + compile of every Envoy extension proto) takes ~2-3 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

src=tools/envoy-validate
out=.tools/bin/envoy-validate
hash=$(cat "$src"/go.mod "$src"/go.sum "$src"/*.go | sha256sum | cut -c1-16)
cache_dir=${REDISFORGE_CACHE:-$HOME/.cache/redisforge}
cached="$cache_dir/envoy-validate-$hash"

mkdir -p .tools/bin
if [[ -x $out && -f $out.hash && $(cat "$out.hash") == "$hash" ]]; then
  echo "envoy-validate: up to date ($hash)"
  exit 0
fi
if [[ -x $cached ]]; then
  cp "$cached" "$out.tmp" && mv -f "$out.tmp" "$out"
  echo "$hash" >"$out.hash"
  echo "envoy-validate: restored from $cached"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "envoy-validate: Go is required to build $src (https://go.dev/dl/); not found on PATH" >&2
  exit 1
fi
echo "envoy-validate: building $src ($hash)"
(cd "$src" && go build -trimpath -o "../../$out.tmp" .)
mv -f "$out.tmp" "$out"
echo "$hash" >"$out.hash"
if mkdir -p "$cache_dir" 2>/dev/null; then
  if cp "$out" "$cached.tmp"; then mv -f "$cached.tmp" "$cached"; fi
fi
echo "envoy-validate: built $out"
