#!/bin/bash
# Installs Redis 8.6.3 (Debian experimental, 5:8.6.3-1) beside Debian's 7.0.15, for the lab, the
# local stack, the bench and the tests on both versions (README "Redis versions").
#
# Why a rootfs: the 8.6.3 packages need libc6 >= 2.38 and this host is bookworm (2.36), so they are
# installed into a trixie rootfs built with mmdebstrap (experimental added; its Release file is past
# its validity date on these machines, hence Check-Valid-Until false). The binaries run through the
# rootfs's own loader (no chroot, so they read and write the caller's paths): wrappers in
# .tools/redis-8.6/bin/{redis-server,redis-cli,redis-benchmark,redis-check-aof,redis-check-rdb}.
# argv0 matters: redis-server, redis-check-aof and redis-check-rdb are one binary that dispatches
# on its name.
#
# Idempotent: the rootfs is cached in ~/.cache/redisforge/redis-8.6.3 (about 135 MB, ~30-60 s to
# build); a second run only rewrites the wrappers.
set -euo pipefail
cd "$(dirname "$0")/.."

deb_version="5:8.6.3-1"
version=8.6.3
cache_dir=${REDISFORGE_CACHE:-$HOME/.cache/redisforge}
root="$cache_dir/redis-$version/root"
bin=.tools/redis-8.6/bin

if [[ ! -x $root/usr/bin/redis-check-rdb || ! -f $root/.redisforge-complete ]]; then
  if ! command -v mmdebstrap >/dev/null; then
    echo "redis-8.6: mmdebstrap is required (Debian package mmdebstrap; scripts/setup.sh installs it)" >&2
    exit 1
  fi
  echo "redis-8.6: building a trixie rootfs with redis-server/redis-tools $deb_version from experimental into $root"
  rm -rf "$root.tmp"
  mkdir -p "$(dirname "$root")"
  # shellcheck disable=SC2016 # $1 is the rootfs, expanded by mmdebstrap's hook shell
  mmdebstrap --variant=apt --quiet \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --setup-hook='echo "deb http://deb.debian.org/debian experimental main" > "$1/etc/apt/sources.list.d/experimental.list"' \
    --customize-hook="chroot \"\$1\" apt-get install -y -q --no-install-recommends redis-server=$deb_version redis-tools=$deb_version" \
    --customize-hook='touch "$1/.redisforge-complete"' \
    trixie "$root.tmp" http://deb.debian.org/debian >"$root.log" 2>&1 || {
    echo "redis-8.6: mmdebstrap failed; the end of $root.log:" >&2
    tail -n 30 "$root.log" >&2
    exit 1
  }
  rm -rf "$root"
  mv "$root.tmp" "$root"
fi

mkdir -p "$bin"
libs="$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu"
write_wrapper() { # name, binary in the rootfs
  cat >"$bin/$1.tmp" <<WRAP
#!/bin/sh
# Redis $version from $root (scripts/install-redis8.sh): run through the rootfs's loader.
exec "$root/lib64/ld-linux-x86-64.so.2" --library-path "$libs" --argv0 $1 "$root/usr/bin/$2" "\$@"
WRAP
  chmod 0755 "$bin/$1.tmp"
  mv -f "$bin/$1.tmp" "$bin/$1"
}
write_wrapper redis-server redis-check-rdb
write_wrapper redis-check-aof redis-check-rdb
write_wrapper redis-check-rdb redis-check-rdb
write_wrapper redis-cli redis-cli
write_wrapper redis-benchmark redis-benchmark
got=$("$bin/redis-server" --version)
case "$got" in
  *"v=$version "*) echo "redis-8.6: ready ($got) in $bin" ;;
  *) echo "redis-8.6: $bin/redis-server reports '$got', expected v=$version" >&2; exit 1 ;;
esac
