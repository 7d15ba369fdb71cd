#!/bin/bash
# Fetches this VM's secrets from the cloud secret store with the VM's own identity (instance
# role / service account / managed identity) and writes each one as a 0400 file under /run
# (tmpfs: secrets never touch the disk and are fetched again at every boot).
#
# Reads:
#   /etc/redisforge/boot.env      CLOUD=aws|gcp|azure|qemu
#   /etc/redisforge/secrets.list  lines "<dest path> <owner uid> <format> <secret reference>"
#                                 format: file (content as stored) | env:NAME (writes NAME=<content>)
# Credentials and tokens never appear on a command line: curl reads them from stdin (-K -).
#
# Also run daily by redisforge-secrets-refresh.timer: files whose content did not change are left
# alone; when any changed (a certificate re-issued before expiry, a rotated password) the units in
# RESTART_UNITS are restarted (systemctl try-restart) so the processes pick the new files up —
# unless RELOAD_HOOK is set and succeeds: it gets the changed paths and applies them live
# (reload-redis-tls.sh: new TLS material by CONFIG SET), exiting non-zero for anything it cannot.
set -euo pipefail
umask 077

BOOT_ENV=${BOOT_ENV:-/etc/redisforge/boot.env}
SECRETS_LIST=${SECRETS_LIST:-/etc/redisforge/secrets.list}
MAX_ATTEMPTS=${MAX_ATTEMPTS:-10}
RESTART_UNITS=${RESTART_UNITS:-}
RELOAD_HOOK=${RELOAD_HOOK:-}
RETRY_SLEEP=${RETRY_SLEEP:-3}
# Endpoints: the clouds' fixed addresses. Overridable only so tests can point them at 127.0.0.1.
AWS_IMDS=${AWS_IMDS:-http://169.254.169.254}
AWS_SM_ENDPOINT=${AWS_SM_ENDPOINT:-}
GCE_METADATA=${GCE_METADATA:-http://metadata.google.internal}
GCP_SM_ENDPOINT=${GCP_SM_ENDPOINT:-https://secretmanager.googleapis.com}
AZURE_IMDS=${AZURE_IMDS:-http://169.254.169.254}
AZURE_KV_ENDPOINT=${AZURE_KV_ENDPOINT:-}
# qemu (the VM stack on one machine): the stack's metadata service, which knows the caller by its
# source address (pinned to the VM's tap by the host's nftables), like a cloud's IMDS.
QEMU_METADATA=${QEMU_METADATA:-http://169.254.169.254}

# shellcheck source=/dev/null
. "$BOOT_ENV"

log() { printf 'redisforge-secrets: %s\n' "$*" >&2; }

# Writes curl config lines (one header) for -K -. Quotes and backslashes are escaped for curl.
curl_header() {
  local value=${1//\\/\\\\}
  value=${value//\"/\\\"}
  printf 'header = "%s"\n' "$value"
}

fetch_aws() {
  local ref=$1 region imds creds role ak sk tok body
  region=$(printf '%s' "$ref" | cut -d: -f4)
  imds=$(curl -fsS --max-time 5 -X PUT "${AWS_IMDS}/latest/api/token" \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
  role=$(curl_header "X-aws-ec2-metadata-token: $imds" |
    curl -fsS --max-time 5 -K - "${AWS_IMDS}/latest/meta-data/iam/security-credentials/")
  creds=$(curl_header "X-aws-ec2-metadata-token: $imds" |
    curl -fsS --max-time 5 -K - "${AWS_IMDS}/latest/meta-data/iam/security-credentials/${role}")
  ak=$(jq -re .AccessKeyId <<<"$creds")
  sk=$(jq -re .SecretAccessKey <<<"$creds")
  tok=$(jq -re .Token <<<"$creds")
  body=$(jq -nc --arg id "$ref" '{SecretId: $id}')
  { printf 'user = "%s:%s"\n' "$ak" "$sk"; curl_header "x-amz-security-token: $tok"; } |
    curl -fsS --max-time 20 -K - \
      --aws-sigv4 "aws:amz:${region}:secretsmanager" \
      -H 'Content-Type: application/x-amz-json-1.1' \
      -H 'X-Amz-Target: secretsmanager.GetSecretValue' \
      --data "$body" "${AWS_SM_ENDPOINT:-https://secretsmanager.${region}.amazonaws.com}/" |
    jq -je .SecretString
}

fetch_gcp() {
  local ref=$1 token name=$1
  [[ $ref == */versions/* ]] || name="${ref}/versions/latest"
  token=$(curl -fsS --max-time 5 -H 'Metadata-Flavor: Google' \
    "${GCE_METADATA}/computeMetadata/v1/instance/service-accounts/default/token" |
    jq -re .access_token)
  curl_header "Authorization: Bearer $token" |
    curl -fsS --max-time 20 -K - "${GCP_SM_ENDPOINT}/v1/${name}:access" |
    jq -re .payload.data | base64 -d
}

fetch_azure() {
  local ref=$1 token url=$1
  [[ -z $AZURE_KV_ENDPOINT ]] || url="${AZURE_KV_ENDPOINT}/secrets/${ref#*/secrets/}"
  token=$(curl -fsS --max-time 5 -H 'Metadata: true' \
    "${AZURE_IMDS}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net" |
    jq -re .access_token)
  curl_header "Authorization: Bearer $token" |
    curl -fsS --max-time 20 -K - "${url}?api-version=7.4" |
    jq -je .value
}

# The reference is the secret's URL on the metadata service; only its path is kept, so the
# service address can be pointed elsewhere by tests. The service answers 403 for a secret this
# VM's identity may not read.
fetch_qemu() {
  local ref=$1
  curl -fsS --max-time 20 "${QEMU_METADATA}/${ref#http://*/}"
}

fetch() {
  case "$CLOUD" in
    aws) fetch_aws "$1" ;;
    gcp) fetch_gcp "$1" ;;
    azure) fetch_azure "$1" ;;
    qemu) fetch_qemu "$1" ;;
    *) log "unknown CLOUD=$CLOUD in $BOOT_ENV"; return 2 ;;
  esac
}

# The identity's permission may take a while to propagate after the VM starts: bounded retries.
# Each attempt rewrites $2 from scratch; an empty secret counts as a failure.
fetch_with_retry() {
  local ref=$1 out=$2 attempt=1
  until fetch "$ref" >"$out" && [[ -s $out ]]; do
    if ((attempt >= MAX_ATTEMPTS)); then
      log "could not read $ref after $attempt attempts; check that it exists, is not empty, and that this VM's identity may read it"
      return 1
    fi
    sleep $((attempt * RETRY_SLEEP))
    attempt=$((attempt + 1))
  done
}

count=0
changed=0
changed_files=()
while read -r dest uid format ref; do
  [[ -z "${dest:-}" || $dest == \#* ]] && continue
  mkdir -p "$(dirname "$dest")"
  tmp=$(mktemp "${dest}.XXXXXX")
  if ! fetch_with_retry "$ref" "$tmp" </dev/null; then
    rm -f "$tmp"
    exit 1
  fi
  case "$format" in
    file) ;;
    env:*)
      if [[ $(wc -l <"$tmp") -ne 0 ]]; then
        log "$ref holds several lines; $dest needs one"
        rm -f "$tmp"
        exit 1
      fi
      value=$(cat "$tmp")
      printf '%s=%s\n' "${format#env:}" "$value" >"$tmp"
      ;;
    *)
      log "unknown format $format for $dest"
      rm -f "$tmp"
      exit 1
      ;;
  esac
  chown "$uid:$uid" "$tmp"
  chmod 0400 "$tmp"
  if [[ -f $dest ]] && cmp -s "$tmp" "$dest"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$dest"
    changed=$((changed + 1))
    changed_files+=("$dest")
  fi
  chown "$uid:$uid" "$(dirname "$dest")"
  count=$((count + 1))
done <"$SECRETS_LIST"
log "wrote $count secret file(s), $changed changed"
if ((changed > 0)) && [[ -n $RELOAD_HOOK ]] && "$RELOAD_HOOK" "${changed_files[@]}"; then
  log "applied the changed secrets without a restart ($RELOAD_HOOK)"
elif ((changed > 0)) && [[ -n $RESTART_UNITS ]]; then
  read -ra units <<<"$RESTART_UNITS"
  log "restarting ${units[*]} to load the changed secrets"
  systemctl try-restart "${units[@]}"
fi
