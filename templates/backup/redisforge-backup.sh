#!/usr/bin/env bash
# RedisForge backup: one consistent copy of this node's AOF (appendonlydir: base + incr files +
# manifest) and nodes.conf, verified with redis-check-aof, uploaded with rclone to
#   <BACKUP_REMOTE>/<cluster>/<node>/<UTC timestamp>/
# with a manifest.json (sha256 per file, redis version, node id, role, slots, db0 key count before
# and after the copy) uploaded LAST, so a
# timestamp directory without manifest.json is an incomplete upload and restore skips it.
#
# Consistency, without BGREWRITEAOF: Redis only ever appends to the newest incr file and replaces
# base/incr files through a rewrite that ends with an atomic rename of the manifest. So we wait
# until no rewrite runs, copy nodes.conf, the manifest and exactly the files it lists (base and
# incr, not history), then read the manifest, nodes.conf and the rewrite state again: if any of
# them changed, a rewrite or a slot change raced us and we start over (bounded). The copied last
# incr file is a prefix of the write stream; if the copy cut a command in half, redis-check-aof
# --fix trims that half command IN THE STAGING COPY (what Redis itself does at load time with
# aof-load-truncated). Never a byte of the live data dir is modified.
#
# Credentials: none here. rclone authenticates with the VM identity (S3 env_auth / GCS env_auth /
# Azure use_msi) from the rclone.conf rendered by templates/backup/index.ts. Redis is read with
# the least-privileged `exporter` ACL user (INFO only); node id, role and slots come from nodes.conf.
#
# On success, and only then, the node_exporter textfile metric
# redisforge_backup_last_success_timestamp_seconds is replaced atomically (tmp + mv).
# The script never deletes remote objects (retention is the bucket lifecycle's job).
#
# Configuration: environment variables (the systemd unit reads /etc/redisforge/backup.env).
set -euo pipefail

readonly PROG=redisforge-backup
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//' | head -n -1
  cat >&2 <<'EOF'
Environment (defaults in brackets):
  REDISFORGE_CLUSTER, REDISFORGE_NODE   names used in the object path (required)
  BACKUP_REMOTE                         rclone remote and bucket, e.g. redisforge:my-bucket (required)
  RCLONE_CONFIG                         rclone.conf [/etc/redisforge/backup/rclone.conf]
  REDIS_DATA_DIR                        data dir holding nodes.conf and the AOF dir [/var/lib/redisforge/data]
  REDIS_AOF_DIRNAME, REDIS_AOF_FILENAME appenddirname / appendfilename [appendonlydir / appendonly.aof]
  REDIS_HOST, REDIS_PORT                where redis-server listens [127.0.0.1 / 6379]
  REDIS_TLS_CA, REDIS_TLS_CERT, REDIS_TLS_KEY  TLS files for redis-cli (TLS is used when REDIS_TLS_CA is set)
  REDIS_USER                            ACL user with +info [exporter]
  REDIS_PASSWORD_FILE                   file with REDIS_PASSWORD=<password> or the bare password
  TEXTFILE_DIR                          node_exporter textfile dir [/var/lib/prometheus/node-exporter]
  STAGING_DIR                           staging dir, best on the data filesystem [$REDIS_DATA_DIR/.redisforge-backup]
  CHECK_AOF_IMAGE                       run redis-check-aof from this image with docker (matches the server's AOF format)
  REWRITE_WAIT_SEC, SNAPSHOT_ATTEMPTS   bounds [300 / 5]
  REDIS_CLI_TIMEOUT_SEC                 bound of one redis-cli call [10]
EOF
  exit 0
fi

CLUSTER="${REDISFORGE_CLUSTER:-}"
NODE="${REDISFORGE_NODE:-}"
REMOTE="${BACKUP_REMOTE:-}"
export RCLONE_CONFIG="${RCLONE_CONFIG:-/etc/redisforge/backup/rclone.conf}"
DATA_DIR="${REDIS_DATA_DIR:-/var/lib/redisforge/data}"
AOF_DIRNAME="${REDIS_AOF_DIRNAME:-appendonlydir}"
AOF_FILENAME="${REDIS_AOF_FILENAME:-appendonly.aof}"
HOST="${REDIS_HOST:-127.0.0.1}"
PORT="${REDIS_PORT:-6379}"
USER_NAME="${REDIS_USER:-exporter}"
TEXTFILE_DIR="${TEXTFILE_DIR:-/var/lib/prometheus/node-exporter}"
STAGING_DIR="${STAGING_DIR:-$DATA_DIR/.redisforge-backup}"
REWRITE_WAIT_SEC="${REWRITE_WAIT_SEC:-300}"
SNAPSHOT_ATTEMPTS="${SNAPSHOT_ATTEMPTS:-5}"
REDIS_CLI_TIMEOUT_SEC="${REDIS_CLI_TIMEOUT_SEC:-10}"
readonly METRIC=redisforge_backup_last_success_timestamp_seconds

# ---------------------------------------------------------------- configuration checks
problems=()
name_re='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
[[ "$CLUSTER" =~ $name_re ]] || problems+=("REDISFORGE_CLUSTER='$CLUSTER' must be a lower-case DNS label (e.g. prod-redis)")
[[ "$NODE" =~ $name_re ]] || problems+=("REDISFORGE_NODE='$NODE' must be a lower-case DNS label (e.g. prod-redis-shard0-master)")
[[ "$REMOTE" =~ ^[A-Za-z0-9_-]+:[A-Za-z0-9._/-]+$ ]] || problems+=("BACKUP_REMOTE='$REMOTE' must be <rclone remote>:<bucket>[/prefix] (e.g. redisforge:prod-backups)")
[[ -f "$RCLONE_CONFIG" ]] || problems+=("RCLONE_CONFIG='$RCLONE_CONFIG' does not exist (render it with templates/backup buildRcloneConfig)")
[[ -d "$DATA_DIR" ]] || problems+=("REDIS_DATA_DIR='$DATA_DIR' is not a directory")
[[ "$PORT" =~ ^[0-9]{1,5}$ ]] || problems+=("REDIS_PORT='$PORT' must be a port number")
[[ "$REWRITE_WAIT_SEC" =~ ^[0-9]+$ && "$SNAPSHOT_ATTEMPTS" =~ ^[1-9][0-9]*$ && "$REDIS_CLI_TIMEOUT_SEC" =~ ^[1-9][0-9]*$ ]] || problems+=("REWRITE_WAIT_SEC, SNAPSHOT_ATTEMPTS and REDIS_CLI_TIMEOUT_SEC must be positive integers")
[[ -d "$TEXTFILE_DIR" ]] || problems+=("TEXTFILE_DIR='$TEXTFILE_DIR' is not a directory (node_exporter's --collector.textfile.directory)")
for tool in rclone redis-cli jq sha256sum flock; do
  command -v "$tool" >/dev/null 2>&1 || problems+=("$tool is not installed")
done
if [[ -n "${CHECK_AOF_IMAGE:-}" ]]; then
  command -v docker >/dev/null 2>&1 || problems+=("CHECK_AOF_IMAGE is set but docker is not installed")
else
  command -v redis-check-aof >/dev/null 2>&1 || problems+=("redis-check-aof is not installed (install redis-tools or set CHECK_AOF_IMAGE)")
fi
if ((${#problems[@]})); then
  printf '%s: ERROR: bad configuration:\n' "$PROG" >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 2
fi

# ---------------------------------------------------------------- redis access (INFO only)
password=""
if [[ -n "${REDIS_PASSWORD_FILE:-}" ]]; then
  [[ -r "$REDIS_PASSWORD_FILE" ]] || die "REDIS_PASSWORD_FILE='$REDIS_PASSWORD_FILE' is not readable"
  password="$(sed -n 's/^REDIS_PASSWORD=//p' "$REDIS_PASSWORD_FILE" | head -n 1)"
  [[ -n "$password" ]] || password="$(head -n 1 "$REDIS_PASSWORD_FILE")"
fi
cli_args=(-h "$HOST" -p "$PORT" --user "$USER_NAME" --no-auth-warning)
if [[ -n "${REDIS_TLS_CA:-}" ]]; then
  cli_args+=(--tls --cacert "$REDIS_TLS_CA")
  [[ -n "${REDIS_TLS_CERT:-}" ]] && cli_args+=(--cert "$REDIS_TLS_CERT" --key "${REDIS_TLS_KEY:?REDIS_TLS_KEY must be set with REDIS_TLS_CERT}")
fi

# Prints `INFO <section>`; fails when redis does not answer with that section.
redis_info() {
  local out
  out="$(REDISCLI_AUTH="$password" timeout "$REDIS_CLI_TIMEOUT_SEC" redis-cli "${cli_args[@]}" INFO "$1" 2>&1 | tr -d '\r')" || true
  [[ "$out" == *"# "* ]] || die "redis at $HOST:$PORT did not answer INFO $1 as user $USER_NAME within ${REDIS_CLI_TIMEOUT_SEC}s: ${out:-no output} (is redis-server running? check 'systemctl status redis')"
  printf '%s\n' "$out"
}
field() { sed -n "s/^$1://p" <<<"$2" | head -n 1; }

# ---------------------------------------------------------------- one run at a time
mkdir -p "$STAGING_DIR"
chmod 0700 "$STAGING_DIR"
exec 9>"$STAGING_DIR/.lock"
flock -n 9 || die "another backup holds $STAGING_DIR/.lock"

ts="$(date -u +%Y%m%dT%H%M%SZ)"
stage="$STAGING_DIR/$ts"
rm -rf "$stage"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$AOF_DIRNAME"

server="$(redis_info server)"
redis_version="$(field redis_version "$server")"
info_cluster="$(redis_info cluster)"
[[ "$(field cluster_enabled "$info_cluster")" == 1 ]] || die "redis at $HOST:$PORT is not a cluster node (cluster_enabled != 1)"

# Wait (bounded) until the AOF is enabled, loaded, written without error and not being rewritten.
wait_quiet_aof() {
  local deadline=$((SECONDS + REWRITE_WAIT_SEC)) p
  while :; do
    p="$(redis_info persistence)"
    [[ "$(field aof_enabled "$p")" == 1 ]] || die "AOF is disabled on $HOST:$PORT (appendonly no); nothing consistent to back up"
    [[ "$(field aof_last_write_status "$p")" == ok ]] || die "aof_last_write_status is not ok on $HOST:$PORT (disk full or I/O error?); see runbook RedisAofWriteFailing"
    if [[ "$(field loading "$p")" == 0 && "$(field aof_rewrite_in_progress "$p")" == 0 && "$(field aof_rewrite_scheduled "$p")" == 0 ]]; then
      return 0
    fi
    ((SECONDS < deadline)) || die "an AOF rewrite or load is still running on $HOST:$PORT after ${REWRITE_WAIT_SEC}s; try again later"
    sleep 1
  done
}

# The `myself` line of a nodes.conf: <id> <addr> <flags> <master> <ping> <pong> <epoch> <link> <slots...>
myself_line() { awk '$3 ~ /(^|,)myself(,|$)/ { print; exit }' "$1"; }

aof_dir="$DATA_DIR/$AOF_DIRNAME"
aof_manifest="$aof_dir/$AOF_FILENAME.manifest"

# Copies nodes.conf, the AOF manifest and the files it lists (base + incr) into $stage.
snapshot_once() {
  rm -rf "${stage:?}/$AOF_DIRNAME" "$stage/nodes.conf"
  mkdir -p "$stage/$AOF_DIRNAME"
  [[ -f "$DATA_DIR/nodes.conf" ]] || die "$DATA_DIR/nodes.conf does not exist (is REDIS_DATA_DIR the node's data dir?)"
  [[ -f "$aof_manifest" ]] || die "$aof_manifest does not exist (REDIS_AOF_DIRNAME/REDIS_AOF_FILENAME must match appenddirname/appendfilename)"
  cp -p "$DATA_DIR/nodes.conf" "$stage/nodes.conf"
  cp -p "$aof_manifest" "$stage/$AOF_DIRNAME/"
  local name
  while read -r name _; do
    [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || die "unexpected file name '$name' in $aof_manifest"
    cp -p --reflink=auto "$aof_dir/$name" "$stage/$AOF_DIRNAME/$name"
  done < <(awk '{ f=""; t=""; for (i = 1; i < NF; i++) { if ($i == "file") f = $(i+1); if ($i == "type") t = $(i+1) } if (f != "" && (t == "b" || t == "i")) print f, t }' "$aof_manifest")
}

# Keys in db0 (INFO keyspace; 0 when empty). Read before the copy and after it was found
# consistent: the copy holds the keyspace of a moment between the two, so a restore drill can
# check the restored count against [min, max] (exact when nothing wrote meanwhile).
keyspace_keys() {
  local k
  k="$(sed -n 's/^db0:keys=\([0-9]*\),.*/\1/p' <<<"$(redis_info keyspace)")"
  printf '%s\n' "${k:-0}"
}

ok=0
for ((attempt = 1; attempt <= SNAPSHOT_ATTEMPTS; attempt++)); do
  keys_before="$(keyspace_keys)"
  wait_quiet_aof
  snapshot_once
  p="$(redis_info persistence)"
  if cmp -s "$aof_manifest" "$stage/$AOF_DIRNAME/$AOF_FILENAME.manifest" \
     && [[ "$(myself_line "$DATA_DIR/nodes.conf")" == "$(myself_line "$stage/nodes.conf")" ]] \
     && [[ "$(field aof_rewrite_in_progress "$p")" == 0 ]]; then
    keys_after="$(keyspace_keys)"
    ok=1
    break
  fi
  log "attempt $attempt: the AOF manifest or this node's slots changed while copying; copying again"
  sleep 1
done
((ok)) || die "no consistent copy after $SNAPSHOT_ATTEMPTS attempts (AOF rewrites or slot migrations keep racing); try again later"

# ---------------------------------------------------------------- verify the copy
check_aof() {
  if [[ -n "${CHECK_AOF_IMAGE:-}" ]]; then
    # redis-check-aof opens every file read-write (for --fix) even when it only checks: root with
    # DAC_OVERRIDE as its one capability (the staged copies keep 999's owner and 0600 from cp -p;
    # the stage's root owner was refused on the VM stack: "Permission denied").
    docker run --rm -i --network none --read-only --user 0:0 --cap-drop ALL --cap-add DAC_OVERRIDE -v "$stage:$stage" --entrypoint redis-check-aof "$CHECK_AOF_IMAGE" "$@"
  else
    redis-check-aof "$@"
  fi
}
staged_manifest="$stage/$AOF_DIRNAME/$AOF_FILENAME.manifest"
last_incr="$(awk '{ f=""; t=""; for (i = 1; i < NF; i++) { if ($i == "file") f = $(i+1); if ($i == "type") t = $(i+1) } if (t == "i") last = f } END { print last }' "$staged_manifest")"
trimmed=0
if ! check_out="$(check_aof "$staged_manifest" 2>&1)"; then
  # The copy of the growing last incr file may end inside a command. Only that case is repaired,
  # and only in the staging copy: every other file must be valid, the invalid one must be the last
  # incr file. redis-check-aof --fix cuts it back to its last complete command.
  if [[ -n "$last_incr" ]] && grep -qF "AOF $last_incr is not valid" <<<"$check_out" \
     && [[ "$(grep -c 'is not valid' <<<"$check_out")" == 1 ]]; then
    size_before="$(stat -c %s "$stage/$AOF_DIRNAME/$last_incr")"
    printf 'y\n' | check_aof --fix "$staged_manifest" >/dev/null 2>&1 || true
    trimmed=$((size_before - $(stat -c %s "$stage/$AOF_DIRNAME/$last_incr")))
    log "the copy of $last_incr ended inside a command; trimmed $trimmed byte(s) from the staging copy (the live file is untouched)"
    check_out="$(check_aof "$staged_manifest" 2>&1)" || die "redis-check-aof rejects the copy even after trimming its tail: $check_out"
  else
    die "redis-check-aof rejects the copied AOF: $check_out"
  fi
fi
grep -q "is valid" <<<"$check_out" || die "redis-check-aof did not report a valid AOF: $check_out"

me="$(myself_line "$stage/nodes.conf")"
[[ -n "$me" ]] || die "$DATA_DIR/nodes.conf has no 'myself' line"
read -r node_id _addr flags master_id _rest <<<"$me"
[[ "$node_id" =~ ^[0-9a-f]{40}$ ]] || die "node id '$node_id' in nodes.conf is not 40 hex characters"
read -r -a slot_fields <<<"$(cut -d' ' -f9- <<<"$me")"
slots=()
for s in "${slot_fields[@]}"; do
  [[ -z "$s" ]] && continue
  [[ "$s" == \[* ]] && die "slot $s is being migrated/imported; back up after the migration finishes"
  slots+=("$s")
done
case ",$flags," in
  *,master,*) role=master; master_id="" ;;
  *,slave,*) role=replica ;;
  *) die "nodes.conf flags '$flags' name neither master nor replica" ;;
esac
live_role="$(field role "$(redis_info replication)")"
[[ ("$role" == master && "$live_role" == master) || ("$role" == replica && "$live_role" == slave) ]] \
  || die "nodes.conf says $role but INFO replication says $live_role (a failover is in progress?); try again later"

# ---------------------------------------------------------------- manifest.json
files_json="$(cd "$stage" && find . -type f ! -name manifest.json -printf '%P\n' | LC_ALL=C sort | while read -r f; do
  jq -n --arg path "$f" --arg sha256 "$(sha256sum "$f" | cut -d' ' -f1)" --argjson size "$(stat -c %s "$f")" '{path: $path, size: $size, sha256: $sha256}'
done | jq -s .)"
jq -n \
  --arg cluster "$CLUSTER" --arg node "$NODE" --arg timestamp "$ts" --arg redis_version "$redis_version" \
  --arg node_id "$node_id" --arg role "$role" --arg master_id "$master_id" \
  --arg aof_dirname "$AOF_DIRNAME" --arg aof_filename "$AOF_FILENAME" --arg host "$(hostname)" --argjson trimmed "$trimmed" \
  --argjson keys_before "$keys_before" --argjson keys_after "$keys_after" \
  --argjson slots "$(printf '%s\n' "${slots[@]}" | jq -R . | jq -s 'map(select(. != ""))')" \
  --argjson files "$files_json" \
  '{format: 1, cluster: $cluster, node: $node, timestamp: $timestamp, host: $host, redis_version: $redis_version,
    node_id: $node_id, role: $role, master_id: (if $master_id == "" then null else $master_id end), slots: $slots,
    aof_dirname: $aof_dirname, aof_filename: $aof_filename, trimmed_tail_bytes: $trimmed,
    keys: {before: $keys_before, after: $keys_after}, files: $files}' >"$stage/manifest.json"

# ---------------------------------------------------------------- upload (data first, manifest last), verify
dest="$REMOTE/$CLUSTER/$NODE/$ts"
rclone_flags=(--retries 3 --low-level-retries 10 --contimeout 30s --timeout 5m --stats 0)
rclone copy "${rclone_flags[@]}" --exclude /manifest.json "$stage" "$dest" || die "upload of $stage to $dest failed"
rclone check "${rclone_flags[@]}" --one-way --exclude /manifest.json "$stage" "$dest" || die "uploaded objects under $dest differ from the staged copy"
rclone copyto "${rclone_flags[@]}" "$stage/manifest.json" "$dest/manifest.json" || die "upload of manifest.json to $dest failed"
rclone check "${rclone_flags[@]}" --one-way "$stage" "$dest" || die "uploaded objects under $dest differ from the staged copy"

# ---------------------------------------------------------------- metric (atomic)
now="$(date -u +%s)"
tmp="$TEXTFILE_DIR/redisforge_backup.prom.tmp"
{
  echo "# HELP $METRIC Unix time of the last successful backup (AOF + nodes.conf uploaded and verified)."
  echo "# TYPE $METRIC gauge"
  echo "$METRIC $now"
} >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$TEXTFILE_DIR/redisforge_backup.prom"

log "backed up node $node_id ($role, ${#slots[@]} slot range(s), redis $redis_version) to $dest"
printf '%s\n' "$dest"
