#!/bin/sh
# RedisForge Redis entrypoint: checks the mounted config and secrets, then execs redis-server.
# The config is rendered by RedisForge (templates/redis) and mounted read-only; this script only
# verifies it and refuses to start a server that would be plaintext, root or missing a secret,
# with a message that names the file and the fix.
# Usage: redisforge-entrypoint [redis.conf] ; REDISFORGE_PREFLIGHT_ONLY=1 checks without starting.
set -eu

conf=${1:-/etc/redis/redis.conf}
redis_server=${REDIS_SERVER:-redis-server}

die() {
  echo "redisforge-entrypoint: $*" >&2
  exit 64
}

conf_values() {
  awk -v k="$1" '$1 == k { print $2 }' "$conf"
}

[ "$(id -u)" != 0 ] || die "refusing to run as root; run the container with --user 999:999"
[ -r "$conf" ] || die "$conf is not readable; mount the rendered config directory at /etc/redis"

[ "$(conf_values port)" = 0 ] || die "$conf must set 'port 0' (plaintext off); render it with templates/redis"
[ -n "$(conf_values tls-port)" ] || die "$conf has no tls-port; render it with templates/redis"
if grep -Eq '^[[:space:]]*(requirepass|masterauth)[[:space:]]' "$conf"; then
  die "$conf contains a password; passwords belong in the secrets include under /run/secrets/redis"
fi

for key in tls-cert-file tls-key-file tls-ca-cert-file aclfile include; do
  for f in $(conf_values "$key"); do
    [ -r "$f" ] || die "$key $f is not readable; was it fetched from the secret store (redisforge-secrets.service)?"
  done
done

for key in tls-key-file include; do
  for f in $(conf_values "$key"); do
    case "$(stat -c %a "$f")" in
      *00) ;;
      *) die "$key $f is readable by group or others (mode $(stat -c %a "$f")); it must be 0600 or 0400" ;;
    esac
  done
done

for d in $(conf_values dir); do
  [ -w "$d" ] || die "data dir $d is not writable by uid $(id -u); mount the data disk at /data owned by 999"
done

if [ "${REDISFORGE_PREFLIGHT_ONLY:-0}" = 1 ]; then
  echo "redisforge-entrypoint: $conf ok"
  exit 0
fi
exec "$redis_server" "$conf"
