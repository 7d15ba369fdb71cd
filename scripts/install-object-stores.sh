#!/bin/bash
# Builds the object-store servers the backup tests, the restore drill and the local stack's backups
# run against, from the Go module proxy, into .tools/bin:
#   versitygw        Versity Gateway v1.8.0 (Apache-2.0): an S3 server over a plain directory
#                    (posix backend) with an internal IAM (users in a dir) and AWS-style bucket
#                    policies, so a backup user that may write/read/list but not delete is enforced
#                    by the server itself, the way an instance profile's IAM policy is on AWS.
#   fake-gcs-server  fsouza/fake-gcs-server v1.56.1 (BSD-2-Clause): the GCS JSON API over a
#                    directory. It does no authentication and no IAM (see lab/object-stores.ts).
# Why Versity and not SeaweedFS's S3 gateway: one process over one directory (SeaweedFS needs a
# master, a volume server and a filer behind its S3 gateway), a smaller build, and its bucket
# policies evaluate s3:PutObject / s3:GetObject / s3:ListBucket / s3:DeleteObject separately
# (SeaweedFS's identities grant "Write", which includes delete). MinIO is AGPL and not used.
#
# Idempotent: built binaries are cached in ~/.cache/redisforge (REDISFORGE_CACHE) and copied into
# .tools/bin; a second run only checks versions. A cold build takes ~3-6 min on 2 shared cores.
set -euo pipefail
cd "$(dirname "$0")/.."

cache_dir=${REDISFORGE_CACHE:-$HOME/.cache/redisforge}
mkdir -p .tools/bin

# install <binary name> <go package> <version> [ldflags]
install_one() {
  local name=$1 pkg=$2 version=$3 ldflags=${4:-}
  local out=.tools/bin/$name cached="$cache_dir/$name-$version"
  if [[ -x $out && -f $out.version && $(cat "$out.version") == "$version" ]]; then
    echo "$name: up to date ($version)"
    return 0
  fi
  if [[ ! -x $cached ]]; then
    if ! command -v go >/dev/null; then
      echo "$name: Go is required to build $pkg@$version (https://go.dev/dl/); not found on PATH" >&2
      return 1
    fi
    echo "$name: building $pkg@$version"
    local gobin
    gobin=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: the dir of this call
    trap "rm -rf '$gobin'" RETURN
    GOBIN="$gobin" GOFLAGS=-buildvcs=false go install -trimpath -ldflags "$ldflags" "$pkg@$version"
    mkdir -p "$cache_dir"
    cp "$gobin/$(basename "${pkg%%@*}")" "$cached.tmp"
    mv -f "$cached.tmp" "$cached"
  fi
  cp "$cached" "$out.tmp"
  mv -f "$out.tmp" "$out"
  echo "$version" >"$out.version"
  echo "$name: installed $out ($version)"
}

install_one versitygw github.com/versity/versitygw/cmd/versitygw v1.8.0 "-X main.Version=v1.8.0"
install_one fake-gcs-server github.com/fsouza/fake-gcs-server v1.56.1
