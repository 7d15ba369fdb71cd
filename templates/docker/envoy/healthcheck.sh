#!/bin/bash
# Health check: GET /ready on Envoy's admin interface (bound to the VM's private IP), with bash's
# /dev/tcp so the image needs no curl. ENVOY_ADMIN=<ip>:<port> is set by the systemd unit.
set -euo pipefail
admin=${ENVOY_ADMIN:-127.0.0.1:9901}
host=${admin%:*}
port=${admin##*:}
exec 3<>"/dev/tcp/${host}/${port}"
printf 'GET /ready HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
read -r status_line <&3 || status_line=""
exec 3<&-
if [[ $status_line == *" 200 "* ]]; then
  exit 0
fi
echo "envoy admin ${admin} /ready answered: ${status_line:-nothing}" >&2
exit 1
