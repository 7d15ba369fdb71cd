#!/bin/bash
# Builds amtool from Alertmanager v0.28.1 (Go module proxy) into .tools/bin/amtool-0.28.
# Why: Debian 12 ships Alertmanager/amtool 0.25, whose Discord receiver has no
# `webhook_url_file`; monitoring/alertmanager/alertmanager.yaml uses it (the webhook URL is a
# secret), so tests/unit/monitoring/alertmanager.test.ts checks that file with this newer amtool
# (and the 0.25 variant with Debian's amtool). Named amtool-0.28 so it never shadows Debian's.
# Idempotent: cached in .tools/ and in the machine-level cache ~/.cache/redisforge.
# A cold build (module download + compile) takes ~2.5 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

version=v0.28.1
out=.tools/bin/amtool-0.28
cache_dir=${REDISFORGE_CACHE:-$HOME/.cache/redisforge}
cached="$cache_dir/amtool-$version"

mkdir -p .tools/bin
if [[ -x $out && -f $out.version && $(cat "$out.version") == "$version" ]]; then
  echo "amtool-0.28: up to date ($version)"
  exit 0
fi
if [[ -x $cached ]]; then
  cp "$cached" "$out.tmp" && mv -f "$out.tmp" "$out"
  echo "$version" >"$out.version"
  echo "amtool-0.28: restored from $cached"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "amtool-0.28: Go is required to build amtool $version (https://go.dev/dl/); not found on PATH" >&2
  exit 1
fi
echo "amtool-0.28: building github.com/prometheus/alertmanager/cmd/amtool@$version"
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
GOBIN="$gobin" go install -trimpath \
  -ldflags "-X github.com/prometheus/common/version.Version=${version#v}" \
  "github.com/prometheus/alertmanager/cmd/amtool@$version"
mv -f "$gobin/amtool" "$out"
echo "$version" >"$out.version"
if mkdir -p "$cache_dir" 2>/dev/null; then
  if cp "$out" "$cached.tmp"; then mv -f "$cached.tmp" "$cached"; fi
fi
echo "amtool-0.28: built $out"
