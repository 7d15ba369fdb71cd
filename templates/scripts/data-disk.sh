#!/bin/bash
# Formats the Redis data disk ONCE (only when it carries no filesystem and no partition table)
# and mounts it through /etc/fstab by UUID. Every later boot finds the filesystem and only mounts.
#
# Reads /etc/redisforge/boot.env: DATA_DISK_DEVICE (device or udev symlink), DATA_MOUNT,
# DATA_LABEL, DATA_UID.
set -euo pipefail

BOOT_ENV=${BOOT_ENV:-/etc/redisforge/boot.env}
# shellcheck source=/dev/null
. "$BOOT_ENV"
: "${DATA_DISK_DEVICE:?}" "${DATA_MOUNT:?}" "${DATA_LABEL:?}" "${DATA_UID:?}"
WAIT_SECONDS=${WAIT_SECONDS:-120}
FSTAB=${FSTAB:-/etc/fstab}

log() { printf 'redisforge-data-disk: %s\n' "$*" >&2; }

# An already formatted RedisForge disk is found by its label, whatever the kernel named it.
dev=$(blkid -L "$DATA_LABEL" 2>/dev/null || true)
if [[ -z $dev ]]; then
  waited=0
  until [[ -b $DATA_DISK_DEVICE ]]; do
    if ((waited >= WAIT_SECONDS)); then
      log "data disk $DATA_DISK_DEVICE did not appear within ${WAIT_SECONDS}s; is it attached?"
      exit 1
    fi
    sleep 2
    waited=$((waited + 2))
  done
  dev=$(readlink -f "$DATA_DISK_DEVICE")
  if [[ -n $(blkid -p -o value -s TYPE "$dev" 2>/dev/null || true) || -n $(blkid -p -o value -s PTTYPE "$dev" 2>/dev/null || true) ]]; then
    log "$dev already has a filesystem or partition table but not label $DATA_LABEL; refusing to format it"
    log "fix: label it (xfs_admin -L $DATA_LABEL $dev) if it is the Redis data disk, or attach an empty disk"
    exit 1
  fi
  log "formatting empty disk $dev as xfs (label $DATA_LABEL)"
  mkfs.xfs -q -L "$DATA_LABEL" "$dev"
  udevadm settle || true
fi

uuid=$(blkid -o value -s UUID "$dev")
[[ -n $uuid ]] || { log "$dev has no filesystem UUID"; exit 1; }
if ! grep -q "^UUID=${uuid} " "$FSTAB"; then
  printf 'UUID=%s %s xfs defaults,noatime,nofail,x-systemd.device-timeout=120s 0 2\n' "$uuid" "$DATA_MOUNT" >>"$FSTAB"
  systemctl daemon-reload
fi
mkdir -p "$DATA_MOUNT"
mountpoint -q "$DATA_MOUNT" || mount --fstab "$FSTAB" "$DATA_MOUNT"
chown "$DATA_UID:$DATA_UID" "$DATA_MOUNT"
chmod 0700 "$DATA_MOUNT"
log "$dev (UUID $uuid) mounted on $DATA_MOUNT"
