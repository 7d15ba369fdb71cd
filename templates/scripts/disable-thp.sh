#!/bin/sh
# Transparent Huge Pages off: THP makes fork-based AOF rewrites copy 2 MiB pages and adds
# latency spikes (Redis warns at start when it is on). Run by redisforge-thp.service at every
# boot, before Docker, so the setting survives reboots.
set -eu
for f in /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/defrag; do
  if [ -w "$f" ]; then
    echo never >"$f"
  fi
done
