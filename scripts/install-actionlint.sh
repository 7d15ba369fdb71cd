#!/bin/bash
# Builds actionlint v1.7.12 (the GitHub Actions workflow linter) from the Go module proxy into
# ~/.cache/redisforge/actionlint-v1.7.12/actionlint and links it as .tools/bin/actionlint.
# actionlint runs shellcheck over every `run:` block when `shellcheck` is on PATH (Debian package,
# scripts/apt-packages.txt), so workflows are checked as shell too.
# Used by tests/unit/workflows/actionlint.test.ts. Idempotent; a cold build takes ~1 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

version=v1.7.12
cache_dir=${REDISFORGE_CACHE:-$HOME/.cache/redisforge}
cached="$cache_dir/actionlint-$version/actionlint"
out=.tools/bin/actionlint

mkdir -p .tools/bin
if [[ ! -x $cached ]]; then
  command -v go >/dev/null || { echo "install-actionlint: Go >= 1.22 is required to build actionlint $version (Debian: golang); not found on PATH" >&2; exit 1; }
  echo "install-actionlint: building github.com/rhysd/actionlint/cmd/actionlint@$version"
  gobin=$(mktemp -d)
  trap 'rm -rf "$gobin"' EXIT
  GOBIN="$gobin" GOFLAGS="-buildvcs=false" nice -n 10 go install -trimpath \
    -ldflags "-s -w -X github.com/rhysd/actionlint.version=$version" \
    "github.com/rhysd/actionlint/cmd/actionlint@$version"
  mkdir -p "$(dirname "$cached")"
  mv -f "$gobin/actionlint" "$cached.tmp" && mv -f "$cached.tmp" "$cached"
fi
ln -sfn "$cached" "$out"
got=$("$out" -version | head -1)
[[ $got == "${version#v}" || $got == "$version" ]] || { echo "install-actionlint: $out reports version '$got', expected $version" >&2; exit 1; }
echo "install-actionlint: $out -> $cached ($got)"
