#!/bin/bash
# Loads re-issued TLS material into the running Redis without a restart. Called by
# fetch-secrets.sh on the daily refresh (RELOAD_HOOK) with the paths of the files that changed.
# Exit 0: every changed file was applied live; exit 1: the caller restarts RESTART_UNITS as before.
#
# Only the node certificate (chain), key and CA bundle can be applied live: Redis re-reads them on
# `CONFIG SET tls-cert-file ... tls-key-file ... tls-ca-cert-file ...` (one command: all three or
# none; the same path re-reads the file, checked on 7.0.15 and 8.6.3). Open connections (clients,
# replication, cluster bus) keep going; new ones get the new material. Anything else that changed
# (users.acl, the masterauth include, a password) needs the restart.
#
# redis-cli connects over TLS with the NEW files as the ACL user tlsreload (CONFIG SET only;
# password in a 0400 root file fetched from the secret store, handed over in REDISCLI_AUTH, never
# on a command line). During a CA rotation's overlap the new chain carries the new CA cross-signed
# by the old one, so the server (still on the old CA) accepts it; without an overlap it does not,
# the reload fails and the caller restarts instead (logged).
#
# Reads TLS_RELOAD_ENV (default /etc/redisforge/tls-reload.env, no secrets):
#   REDIS_HOST, REDIS_PORT   where the node listens
#   TLS_HOST_DIR             node.crt, node.key, ca.crt on this host (as fetch-secrets.sh writes them)
#   TLS_SERVER_DIR           the same directory as redis-server sees it (inside its container)
#   AUTH_FILE                REDISCLI_AUTH=<password of tlsreload>
#   AFTER_RELOAD_UNITS       units that read the files only at start (redis_exporter): try-restarted
set -euo pipefail

TLS_RELOAD_ENV=${TLS_RELOAD_ENV:-/etc/redisforge/tls-reload.env}
# shellcheck source=/dev/null
. "$TLS_RELOAD_ENV"

log() { printf 'redisforge-tls-reload: %s\n' "$*" >&2; }

for f in "$@"; do
  case "$f" in
    "$TLS_HOST_DIR/node.crt" | "$TLS_HOST_DIR/node.key" | "$TLS_HOST_DIR/ca.crt") ;;
    *)
      log "$f changed, which only a restart applies"
      exit 1
      ;;
  esac
done

auth=$(sed -n 's/^REDISCLI_AUTH=//p' "$AUTH_FILE")
if [[ -z $auth ]]; then
  log "$AUTH_FILE holds no REDISCLI_AUTH=<password>; cannot reload live"
  exit 1
fi

cli=(redis-cli --tls --cacert "$TLS_HOST_DIR/ca.crt" --cert "$TLS_HOST_DIR/node.crt" --key "$TLS_HOST_DIR/node.key"
  -h "$REDIS_HOST" -p "$REDIS_PORT" --user tlsreload --no-auth-warning)
out=$(REDISCLI_AUTH=$auth timeout 15 "${cli[@]}" CONFIG SET \
  tls-cert-file "$TLS_SERVER_DIR/node.crt" tls-key-file "$TLS_SERVER_DIR/node.key" \
  tls-ca-cert-file "$TLS_SERVER_DIR/ca.crt" 2>&1) || true
if [[ $out != OK ]]; then
  log "CONFIG SET tls-cert-file/tls-key-file/tls-ca-cert-file on $REDIS_HOST:$REDIS_PORT failed: ${out:-no reply}"
  exit 1
fi

# Proof: a fresh handshake now presents the certificate just written.
want=$(openssl x509 -in "$TLS_HOST_DIR/node.crt" -noout -fingerprint -sha256)
got=$(timeout 15 openssl s_client -connect "$REDIS_HOST:$REDIS_PORT" -CAfile "$TLS_HOST_DIR/ca.crt" \
  -cert "$TLS_HOST_DIR/node.crt" -key "$TLS_HOST_DIR/node.key" </dev/null 2>/dev/null |
  openssl x509 -noout -fingerprint -sha256 2>/dev/null) || true
if [[ $got != "$want" ]]; then
  log "after CONFIG SET, $REDIS_HOST:$REDIS_PORT presents ${got:-no certificate}, not the new one ($want)"
  exit 1
fi
log "loaded the new certificate into $REDIS_HOST:$REDIS_PORT without a restart ($want)"

if [[ -n ${AFTER_RELOAD_UNITS:-} ]]; then
  read -ra units <<<"$AFTER_RELOAD_UNITS"
  systemctl try-restart "${units[@]}"
fi
