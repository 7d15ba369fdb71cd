#!/usr/bin/env bash
# Tools of the qemu cloud's substrate (lab/vm/): QEMU, genisoimage (NoCloud seed ISO), buildah/podman
# (container images built on the host), docker-registry (the lab registry), mmdebstrap (VM image).
# The Debian packages are lines of scripts/apt-packages.txt (setup.sh installs them); this script
# checks them and writes a PRIVATE containers config for buildah/podman under .tools/containers/,
# used only through lab/vm/containers-env.sh (CONTAINERS_CONF / CONTAINERS_STORAGE_CONF /
# CONTAINERS_REGISTRIES_CONF), so nothing in /etc/containers or another user's setup changes.
#
# What this machine needs (measured): runtime runc, cgroup manager cgroupfs, explicit nofile/nproc
# ulimits <= 20000, and no network namespace for build steps (netns none). Storage lives in
# ~/.cache/redisforge/containers (images survive a fresh clone). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in qemu-system-x86_64 qemu-img genisoimage buildah podman docker-registry mmdebstrap nft; do
  command -v "$tool" >/dev/null || { echo "vm-tools: $tool is missing; run bash scripts/setup.sh (scripts/apt-packages.txt lists its package)" >&2; exit 1; }
done

cache_dir=${REDISFORGE_CACHE:-$HOME/.cache/redisforge}
conf=.tools/containers
mkdir -p "$conf" "$cache_dir/containers/storage" "$cache_dir/containers/run"

write() { # path, content: replaced atomically only when it changed
  if [[ ! -f $1 ]] || [[ $(cat "$1") != "$2" ]]; then
    printf '%s\n' "$2" >"$1.tmp"
    mv -f "$1.tmp" "$1"
  fi
}
write "$conf/containers.conf" '# RedisForge private containers.conf (scripts/install-vm-tools.sh): the settings this machine needs.
[containers]
netns = "none"
default_ulimits = [ "nofile=20000:20000", "nproc=20000:20000" ]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"'
write "$conf/storage.conf" "# RedisForge private storage.conf (scripts/install-vm-tools.sh)
[storage]
driver = \"${REDISFORGE_CONTAINERS_DRIVER:-vfs}\"
graphroot = \"$cache_dir/containers/storage\"
runroot = \"$cache_dir/containers/run\""
write "$conf/registries.conf" '# RedisForge private registries.conf: no search registries (nothing is pulled from outside).
unqualified-search-registries = []'
echo "vm-tools: ready (qemu $(qemu-system-x86_64 --version | head -n1 | awk '{print $4}'), buildah $(buildah --version | awk '{print $3}'), private containers config in $conf)"
