#!/usr/bin/env bash
# RedisForge restore: puts one node's backup (made by redisforge-backup.sh) back into its data dir
# so that redis-server starts with the same node id, slots and data.
#
#   redisforge-restore.sh --cluster <name> --node <name> [--timestamp <UTC ts>|latest] [--force]
#                         [--data-dir <dir>] [--owner <uid:gid>] [--list]
#
# Steps: refuse early when the data dir already holds Redis state (nodes.conf, the AOF dir,
# dump.rdb) unless --force; pick the timestamp (default: the newest one that has manifest.json,
# i.e. a complete upload); download into a staging dir on the data filesystem; check that the
# manifest names this cluster and node, that every listed file is present with its sha256 and
# nothing else is, and that redis-check-aof accepts the AOF; only then move the current state
# aside (with --force, into <data dir>/.pre-restore-<UTC time>/, nothing is deleted) and move the
# backup into place with the owner of the data dir (or --owner), files 0600, dirs 0700.
#
# Stop redis-server on this node before restoring, start it afterwards. For a whole cluster,
# restore every master from the same point in time first (see README "Backups and restore").
#
# Credentials: none; rclone uses the VM identity from RCLONE_CONFIG. Environment:
#   BACKUP_REMOTE (required), RCLONE_CONFIG [/etc/redisforge/backup/rclone.conf],
#   REDIS_DATA_DIR [/var/lib/redisforge/data], CHECK_AOF_IMAGE (docker image for redis-check-aof).
set -euo pipefail

readonly PROG=redisforge-restore
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//' | head -n -1 >&2; exit "${1:-2}"; }

CLUSTER="${REDISFORGE_CLUSTER:-}"
NODE="${REDISFORGE_NODE:-}"
TIMESTAMP=latest
FORCE=0
LIST=0
OWNER=""
REMOTE="${BACKUP_REMOTE:-}"
export RCLONE_CONFIG="${RCLONE_CONFIG:-/etc/redisforge/backup/rclone.conf}"
DATA_DIR="${REDIS_DATA_DIR:-/var/lib/redisforge/data}"

while (($#)); do
  case "$1" in
    --cluster) CLUSTER="${2:-}"; shift 2 ;;
    --node) NODE="${2:-}"; shift 2 ;;
    --timestamp) TIMESTAMP="${2:-}"; shift 2 ;;
    --data-dir) DATA_DIR="${2:-}"; shift 2 ;;
    --owner) OWNER="${2:-}"; shift 2 ;;
    --force) FORCE=1; shift ;;
    --list) LIST=1; shift ;;
    -h | --help) usage 0 ;;
    *) printf '%s: ERROR: unknown argument %s\n' "$PROG" "$1" >&2; usage 2 ;;
  esac
done

problems=()
name_re='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
[[ "$CLUSTER" =~ $name_re ]] || problems+=("--cluster '$CLUSTER' must be a lower-case DNS label (e.g. prod-redis)")
[[ "$NODE" =~ $name_re ]] || problems+=("--node '$NODE' must be a lower-case DNS label (e.g. prod-redis-shard0-master)")
[[ "$TIMESTAMP" == latest || "$TIMESTAMP" =~ ^[0-9]{8}T[0-9]{6}Z$ ]] || problems+=("--timestamp '$TIMESTAMP' must be 'latest' or a UTC timestamp like 20260101T120000Z (see --list)")
[[ "$REMOTE" =~ ^[A-Za-z0-9_-]+:[A-Za-z0-9._/-]+$ ]] || problems+=("BACKUP_REMOTE='$REMOTE' must be <rclone remote>:<bucket>[/prefix]")
[[ -f "$RCLONE_CONFIG" ]] || problems+=("RCLONE_CONFIG='$RCLONE_CONFIG' does not exist")
[[ -z "$OWNER" || "$OWNER" =~ ^[0-9]+:[0-9]+$ ]] || problems+=("--owner '$OWNER' must be <uid>:<gid> (the redis user, 999:999 in the official image)")
((LIST)) || [[ -d "$DATA_DIR" ]] || problems+=("data dir '$DATA_DIR' is not a directory (mount the data disk first)")
for tool in rclone jq sha256sum; do command -v "$tool" >/dev/null 2>&1 || problems+=("$tool is not installed"); done
if [[ -z "${CHECK_AOF_IMAGE:-}" ]]; then
  command -v redis-check-aof >/dev/null 2>&1 || problems+=("redis-check-aof is not installed (install redis-tools or set CHECK_AOF_IMAGE)")
fi
if ((${#problems[@]})); then
  printf '%s: ERROR: bad arguments:\n' "$PROG" >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 2
fi

rclone_flags=(--retries 3 --low-level-retries 10 --contimeout 30s --timeout 5m --stats 0)
base="$REMOTE/$CLUSTER/$NODE"

# Timestamps under <cluster>/<node>/ that hold a manifest.json (complete uploads), oldest first.
complete_timestamps() {
  local listing t files
  listing="$(rclone lsf "${rclone_flags[@]}" --dirs-only "$base/" 2>&1)" || die "cannot list $base/: $listing"
  for t in $(tr -d '/' <<<"$listing" | grep -E '^[0-9]{8}T[0-9]{6}Z$' | LC_ALL=C sort); do
    files="$(rclone lsf "${rclone_flags[@]}" --files-only "$base/$t/" 2>&1)" || die "cannot list $base/$t/: $files"
    if grep -qx manifest.json <<<"$files"; then echo "$t"; fi
  done
}

if ((LIST)); then
  complete_timestamps
  exit 0
fi

# Redis state in the data dir. Other files (redis.conf in the lab, lost+found) are not state.
state_entries() {
  local e
  for e in nodes.conf dump.rdb appendonlydir "$@"; do [[ -e "$DATA_DIR/$e" ]] && echo "$e"; done | awk '!seen[$0]++'
  return 0
}
existing="$(state_entries)"
if [[ -n "$existing" && "$FORCE" != 1 ]]; then
  die "data dir $DATA_DIR is not empty (holds: $(tr '\n' ' ' <<<"$existing")); refusing to overwrite. Stop redis and re-run with --force to move the current state aside into $DATA_DIR/.pre-restore-<time>/"
fi

if [[ "$TIMESTAMP" == latest ]]; then
  all_complete="$(complete_timestamps)"
  TIMESTAMP="$(tail -n 1 <<<"$all_complete")"
  [[ -n "$TIMESTAMP" ]] || die "no complete backup (with manifest.json) under $base/"
  log "latest complete backup: $TIMESTAMP"
fi
src="$base/$TIMESTAMP"

stage="$(mktemp -d "$DATA_DIR/.redisforge-restore-XXXXXX")"
trap 'rm -rf "$stage"' EXIT
rclone copy "${rclone_flags[@]}" "$src" "$stage" || die "download of $src failed"
[[ -f "$stage/manifest.json" ]] || die "$src has no manifest.json (incomplete upload); pick another timestamp (--list)"

# ---------------------------------------------------------------- verify
m="$stage/manifest.json"
jq -e '.format == 1 and (.files | type == "array")' "$m" >/dev/null || die "$src/manifest.json is not a RedisForge backup manifest (format 1)"
[[ "$(jq -r .cluster "$m")" == "$CLUSTER" && "$(jq -r .node "$m")" == "$NODE" ]] \
  || die "$src/manifest.json belongs to cluster '$(jq -r .cluster "$m")' node '$(jq -r .node "$m")', not $CLUSTER/$NODE"
aof_dirname="$(jq -r .aof_dirname "$m")"
aof_filename="$(jq -r .aof_filename "$m")"
[[ "$aof_dirname" =~ ^[A-Za-z0-9._-]+$ && "$aof_filename" =~ ^[A-Za-z0-9._-]+$ ]] || die "bad aof_dirname/aof_filename in $src/manifest.json"

bad=()
while IFS=$'\t' read -r path sum; do
  [[ "$path" =~ ^[A-Za-z0-9._/-]+$ && "$path" != *..* ]] || die "unsafe path '$path' in $src/manifest.json"
  if [[ ! -f "$stage/$path" ]]; then
    bad+=("$path: missing")
  elif [[ "$(sha256sum "$stage/$path" | cut -d' ' -f1)" != "$sum" ]]; then
    bad+=("$path: sha256 mismatch (expected $sum, got $(sha256sum "$stage/$path" | cut -d' ' -f1))")
  fi
done < <(jq -r '.files[] | [.path, .sha256] | @tsv' "$m")
while read -r extra; do
  jq -e --arg p "$extra" 'any(.files[]; .path == $p)' "$m" >/dev/null || bad+=("$extra: not listed in manifest.json")
done < <(cd "$stage" && find . -type f ! -name manifest.json -printf '%P\n')
if ((${#bad[@]})); then
  printf '%s: ERROR: backup %s failed verification, nothing was changed:\n' "$PROG" "$src" >&2
  printf '  - %s\n' "${bad[@]}" >&2
  exit 1
fi
[[ -f "$stage/nodes.conf" && -f "$stage/$aof_dirname/$aof_filename.manifest" ]] || die "backup $src lacks nodes.conf or the AOF manifest"

check_aof() {
  if [[ -n "${CHECK_AOF_IMAGE:-}" ]]; then
    # redis-check-aof opens every file read-write (for --fix) even when it only checks, so it gets a
    # writable mount and runs as root with DAC_OVERRIDE as its one capability: the staged files are
    # root's (downloaded) or 999's (copied with -p) and 0600 (a read-only mount or the image's uid 999
    # failed with "Cannot open file" on the VMs).
    docker run --rm --network none --read-only --user 0:0 --cap-drop ALL --cap-add DAC_OVERRIDE -v "$stage:$stage" --entrypoint redis-check-aof "$CHECK_AOF_IMAGE" "$@"
  else
    redis-check-aof "$@"
  fi
}
if ! check_out="$(check_aof "$stage/$aof_dirname/$aof_filename.manifest" 2>&1)" || ! grep -q "is valid" <<<"$check_out"; then
  die "redis-check-aof rejects the AOF of $src: $check_out"
fi
node_id="$(jq -r .node_id "$m")"
grep -q "^$node_id .*myself" "$stage/nodes.conf" || die "nodes.conf in $src does not hold node id $node_id as myself"

# ---------------------------------------------------------------- put in place
owner="${OWNER:-$(stat -c '%u:%g' "$DATA_DIR")}"
existing="$(state_entries "$aof_dirname")"
if [[ -n "$existing" ]]; then
  aside="$DATA_DIR/.pre-restore-$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$aside"
  while read -r e; do mv "$DATA_DIR/$e" "$aside/"; done <<<"$existing"
  log "moved the previous state ($(tr '\n' ' ' <<<"$existing")) to $aside"
fi
chown -R "$owner" "$stage/nodes.conf" "$stage/$aof_dirname"
find "$stage/$aof_dirname" -type d -exec chmod 0700 {} +
find "$stage/$aof_dirname" "$stage/nodes.conf" -type f -exec chmod 0600 {} +
mv "$stage/$aof_dirname" "$DATA_DIR/$aof_dirname"
mv "$stage/nodes.conf" "$DATA_DIR/nodes.conf"
sync -f "$DATA_DIR/nodes.conf" 2>/dev/null || sync

log "restored $src into $DATA_DIR: node $node_id, $(jq -r .role "$m"), slots $(jq -r '.slots | join(" ")' "$m"), redis $(jq -r .redis_version "$m"); start redis-server now"
printf '%s\n' "$TIMESTAMP"
