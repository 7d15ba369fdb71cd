#!/bin/sh
# Health check: a TLS PING to the address and port redis.conf names, with the node's certificate
# as client certificate (tls-auth-clients yes). Unauthenticated, so NOAUTH also proves that the
# server is up and speaks TLS; the check needs no password.
set -eu
conf=${REDIS_CONF:-/etc/redis/redis.conf}
value() { awk -v k="$1" '$1 == k { print $2; exit }' "$conf"; }

host=$(value bind)
port=$(value tls-port)
reply=$(redis-cli --tls --cacert "$(value tls-ca-cert-file)" --cert "$(value tls-cert-file)" \
  --key "$(value tls-key-file)" -h "${host:-127.0.0.1}" -p "$port" PING 2>&1 || true)
case "$reply" in
  PONG | *NOAUTH*) exit 0 ;;
esac
echo "redis at ${host}:${port} unhealthy: $reply" >&2
exit 1
