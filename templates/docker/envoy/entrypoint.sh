#!/bin/bash
# RedisForge Envoy entrypoint: checks that every file the bootstrap names (certificates, keys,
# password files) was fetched and is readable, validates the config with Envoy itself, then execs.
# Usage: redisforge-envoy-entrypoint [envoy.yaml] ; REDISFORGE_PREFLIGHT_ONLY=1 checks only the files.
set -euo pipefail

conf=${1:-/etc/envoy/envoy.yaml}
envoy_bin=${ENVOY_BIN:-envoy}

die() {
  echo "redisforge-envoy-entrypoint: $*" >&2
  exit 64
}

[[ $(id -u) != 0 ]] || die "refusing to run as root; run the container with --user 101:101"
[[ -r $conf ]] || die "$conf is not readable; mount the rendered config directory at /etc/envoy"

# Every `filename: <path>` DataSource must be readable, and key/password files private.
mapfile -t files < <(sed -n 's/^[[:space:]-]*filename:[[:space:]]*//p' "$conf" | tr -d "\"'")
((${#files[@]} > 0)) || die "$conf names no certificate or password files; render it with templates/envoy"
for f in "${files[@]}"; do
  [[ -r $f ]] || die "$f is not readable; was it fetched from the secret store (redisforge-secrets.service)?"
  if [[ $f == *.key || $f == *.password ]]; then
    mode=$(stat -c %a "$f")
    [[ $mode == *00 ]] || die "$f is readable by group or others (mode $mode); it must be 0600 or 0400"
  fi
done

if [[ ${REDISFORGE_PREFLIGHT_ONLY:-0} == 1 ]]; then
  echo "redisforge-envoy-entrypoint: $conf ok (${#files[@]} files)"
  exit 0
fi
"$envoy_bin" --mode validate -c "$conf" --log-level warn >/dev/null ||
  die "envoy --mode validate rejected $conf"
# One Envoy per container, restarted by systemd: hot restart (shared memory between generations) is not used.
exec "$envoy_bin" -c "$conf" --log-level info --disable-hot-restart --drain-time-s 30 --drain-strategy immediate
