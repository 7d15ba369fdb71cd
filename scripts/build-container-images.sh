#!/usr/bin/env bash
# Builds (or reuses) the container images the qemu cloud's VMs pull, on the host with buildah
# (private config: lab/vm/containers-env.sh; no Docker Hub here):
#   redisforge/redis-base    a trixie rootfs (mmdebstrap --variant=essential) with redis-server and
#                            redis-tools 8.6.3 from Debian experimental, user redis = 999:999 like the
#                            official image; imported with `buildah from scratch` + copy of only the
#                            Redis binaries, the tools the entrypoint/health check use and their
#                            libraries (26 of 83 MB: the VMs unpack every byte under emulation)
#   redisforge/redis         templates/docker/redis/Dockerfile built FROM redis-base (REDIS_BASE)
#   redisforge/redis-exporter, redisforge/node-exporter
#                            FROM redis-base + the Debian prometheus-redis-exporter /
#                            prometheus-node-exporter binaries (host packages, same bookworm builds);
#                            non-root (999 / 65534), entrypoint = the exporter, flags from the unit
#   redisforge/converge-agent templates/docker/converge-agent (the bundled agent) FROM node-base: the
#                            host's Node.js binary and its libraries (Docker Hub is unreachable); uid 10001
# Not built: templates/docker/envoy (FROM envoyproxy/envoy: no Envoy binary is obtainable here).
#
# Tags carry a hash of their inputs (this script, the Dockerfile folder, the exporter binaries),
# so an unchanged input reuses the image. Prints one "name=localhost/<repo>:<tag>" line per image
# at the end. Idempotent; ~2-4 min for a fresh build, seconds when cached.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lab/vm/containers-env.sh
source lab/vm/containers-env.sh
[[ -f $CONTAINERS_CONF ]] || bash scripts/install-vm-tools.sh >/dev/null

cache_dir=${REDISFORGE_CACHE:-$HOME/.cache/redisforge}
redis_deb=5:8.6.3-1
redis_version=8.6.3
redis_exporter_bin=/usr/bin/prometheus-redis-exporter
node_exporter_bin=/usr/bin/prometheus-node-exporter
for b in "$redis_exporter_bin" "$node_exporter_bin"; do
  [[ -x $b ]] || { echo "container-images: $b is missing; run bash scripts/setup.sh (Debian prometheus-*-exporter packages)" >&2; exit 1; }
done

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }
h() { sha256sum | cut -c1-12; }

# --- redis-base: trixie + Redis 8.6.3 --------------------------------------------------------
base_hash=$( { sed -n '/^# --- redis-base/,/^# --- redis-base end/p' "$0"; echo "$redis_deb"; } | h)
base="localhost/redisforge/redis-base:$redis_version-$base_hash"
if ! have_image "$base"; then
  # The rootfs is keyed by its own recipe (the mmdebstrap block), the image by the whole section.
  rootfs_hash=$( { sed -n '/^    # --- rootfs/,/^    # --- rootfs end/p' "$0"; echo "$redis_deb"; } | h)
  rootfs="$cache_dir/redis-rootfs-$rootfs_hash"
  if [[ ! -f $rootfs/.complete ]]; then
    # --- rootfs
    echo "container-images: building a trixie rootfs with Redis $redis_deb into $rootfs"
    rm -rf "$rootfs" && mkdir -p "$(dirname "$rootfs")"
    # Hooks: $1 is the rootfs. The redis user/group get 999 BEFORE the package creates them.
    # shellcheck disable=SC2016
    mmdebstrap --variant=essential --quiet --mode=root \
      --aptopt='Acquire::Check-Valid-Until "false"' \
      --include="redis-server=$redis_deb,redis-tools=$redis_deb,mawk,ca-certificates" \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --essential-hook='echo "redis:x:999:999::/var/lib/redis:/usr/sbin/nologin" >> "$1/etc/passwd"; echo "redis:x:999:" >> "$1/etc/group"; echo "redis:*:19000:0:99999:7:::" >> "$1/etc/shadow"' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*; touch "$1/.complete"' \
      trixie "$rootfs" "deb http://deb.debian.org/debian trixie main" "deb http://deb.debian.org/debian experimental main" \
      >"$rootfs.log" 2>&1 || { echo "container-images: mmdebstrap failed; end of $rootfs.log:" >&2; tail -n 30 "$rootfs.log" >&2; exit 1; }
    # --- rootfs end
  fi
  got=$(chroot "$rootfs" redis-server --version)
  [[ $got == *"v=$redis_version "* ]] || { echo "container-images: rootfs redis-server reports '$got', expected v=$redis_version" >&2; exit 1; }
  [[ $(chroot "$rootfs" id -u redis) == 999 ]] || { echo "container-images: redis is not uid 999 in $rootfs" >&2; exit 1; }
  # The image gets only what runs in it (the VMs pull and unpack every byte under software
  # emulation; the full rootfs is 83 MB): Redis's binaries, the tools the entrypoint, the health
  # check and the Dockerfile's RUN use, and their shared libraries, resolved inside the rootfs.
  slim="$cache_dir/redis-base-$base_hash"
  rm -rf "$slim" && mkdir -p "$slim"/{usr/bin,usr/lib,usr/lib64,usr/sbin,etc,tmp,data}
  for d in bin lib lib64 sbin; do ln -s "usr/$d" "$slim/$d"; done
  chmod 1777 "$slim/tmp"
  tools=(redis-server redis-check-aof redis-check-rdb redis-cli sh dash awk mawk id stat grep rm mkdir chown chmod cat ls)
  paths=()
  for t in "${tools[@]}"; do
    p=$(chroot "$rootfs" sh -c "command -v $t") || { echo "container-images: $t not found in $rootfs" >&2; exit 1; }
    paths+=("$p")
    while read -r lib; do paths+=("$lib"); done < <(chroot "$rootfs" ldd "$p" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p')
  done
  # Each path and every link on its way (redis-server -> redis-check-rdb, sh -> dash, awk ->
  # /etc/alternatives/awk -> mawk, ld.so), copied as they are in the rootfs.
  declare -A seen=()
  list=()
  add() { # absolute path inside the rootfs
    local p=$1 dir
    dir=$(chroot "$rootfs" readlink -f "$(dirname "$p")")
    p="$dir/$(basename "$p")"
    [[ -n ${seen[$p]:-} ]] && return 0
    seen[$p]=1
    list+=("${p#/}")
    if [[ -L $rootfs$p ]]; then
      local to
      to=$(readlink "$rootfs$p")
      [[ $to == /* ]] || to="$dir/$to"
      add "$to"
    fi
  }
  for p in "${paths[@]}"; do add "$p"; done
  tar -C "$rootfs" -cf - "${list[@]}" | tar -C "$slim" -xf -
  printf 'root:x:0:0::/root:/usr/sbin/nologin\nredis:x:999:999::/data:/usr/sbin/nologin\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n' > "$slim/etc/passwd"
  printf 'root:x:0:\nredis:x:999:\nnogroup:x:65534:\n' > "$slim/etc/group"
  got=$(chroot "$slim" redis-server --version) || got="exit $?"
  [[ $got == *"v=$redis_version "* ]] || { echo "container-images: the slim rootfs's redis-server does not run: '$got'" >&2; exit 1; }
  # shellcheck disable=SC2016 # expanded by the rootfs's sh
  if ! chroot "$slim" sh -c 'awk "BEGIN { exit 0 }" && id -u && stat -c %a /tmp && grep -q redis /etc/passwd && redis-cli --version && ls / | grep -q usr && { redis-check-aof 2>&1 | grep -q Usage; }' >/dev/null; then
    echo "container-images: a tool of the slim rootfs $slim does not run" >&2; exit 1
  fi
  echo "container-images: importing $slim ($(du -sm "$slim" | cut -f1) MB of the rootfs's $(du -sm "$rootfs" | cut -f1) MB) as $base"
  c=$(buildah from scratch)
  mnt=$(buildah mount "$c")
  tar -C "$slim" -cf - . | tar -C "$mnt" -xf -
  buildah umount "$c" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd '["redis-server"]' \
    --label org.opencontainers.image.description="Debian trixie + Redis $redis_deb (experimental) for RedisForge" "$c"
  buildah commit -q --rm "$c" "$base" >/dev/null
fi
# --- redis-base end

# --- redis: the hardened image from templates/docker/redis ------------------------------------
redis_hash=$( { echo "$base"; tar -C templates/docker/redis -cf - --sort=name --mtime=@0 --owner=0 --group=0 . ; } | h)
redis="localhost/redisforge/redis:$redis_version-$redis_hash"
if ! have_image "$redis"; then
  echo "container-images: building $redis from templates/docker/redis (REDIS_BASE=$base)"
  buildah build --quiet --isolation oci --network none --format docker \
    --build-arg "REDIS_BASE=$base" -t "$redis" templates/docker/redis >/dev/null
fi

# --- exporters ---------------------------------------------------------------------------------
exporter_image() { # repo, binary, uid
  local tag name c
  tag=$( { echo "$base $3 v2"; sha256sum "$2"; } | h)
  name="localhost/redisforge/$1:$tag"
  if ! have_image "$name"; then
    echo "container-images: building $name from $2" >&2
    c=$(buildah from "$base")
    buildah copy --chmod 0555 "$c" "$2" "/usr/local/bin/$1" >/dev/null
    buildah config --user "$3:$3" --entrypoint "[\"/usr/local/bin/$1\"]" --cmd '[]' \
      --label org.opencontainers.image.description="$1 ($(basename "$2"), Debian bookworm build) for RedisForge" "$c"
    buildah commit -q --rm --format docker "$c" "$name" >/dev/null
  fi
  echo "$name"
}
redis_exporter=$(exporter_image redis-exporter "$redis_exporter_bin" 999)
node_exporter=$(exporter_image node-exporter "$node_exporter_bin" 65534)

# --- converge-agent: templates/docker/converge-agent FROM a node-base cut from this host's Node.js ----
# Docker Hub (the Dockerfile's default node image) is unreachable here: node-base holds the host's
# `node` binary, its shared libraries and the loader, resolved on the host (Node.js is one binary with
# OpenSSL and ICU inside), and a passwd naming the agent's uid 10001. The agent is bundled from the
# sources (scripts/build-converge-agent.sh) into a copy of the build context.
node_bin=$(readlink -f "$(command -v node)")
node_hash=$( { sed -n '/^# --- converge-agent/,/^# --- converge-agent end/p' "$0"; sha256sum "$node_bin"; } | h)
node_base="localhost/redisforge/node-base:$("$node_bin" --version | tr -d v)-$node_hash"
if ! have_image "$node_base"; then
  echo "container-images: importing $node_bin and its libraries as $node_base" >&2
  nb=$(mktemp -d)
  mkdir -p "$nb"/{usr/bin,etc,tmp}
  chmod 1777 "$nb/tmp"
  cp "$node_bin" "$nb/usr/bin/node"
  while read -r lib; do
    mkdir -p "$nb$(dirname "$lib")"
    cp -L "$lib" "$nb$lib"
  done < <(ldd "$node_bin" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p')
  printf 'root:x:0:0::/root:/usr/sbin/nologin\nconverge:x:10001:10001::/nonexistent:/usr/sbin/nologin\n' >"$nb/etc/passwd"
  printf 'root:x:0:\nconverge:x:10001:\n' >"$nb/etc/group"
  got=$(chroot "$nb" /usr/bin/node -e 'process.stdout.write(process.version)') || got="exit $?"
  [[ $got == "$("$node_bin" --version)" ]] || { echo "container-images: node does not run from $nb: $got" >&2; rm -rf "$nb"; exit 1; }
  c=$(buildah from scratch)
  mnt=$(buildah mount "$c")
  tar -C "$nb" -cf - . | tar -C "$mnt" -xf -
  buildah umount "$c" >/dev/null
  rm -rf "$nb"
  buildah config --env PATH=/usr/local/bin:/usr/bin:/bin --label org.opencontainers.image.description="Node.js $("$node_bin" --version) from the build host, for the RedisForge converge agent" "$c"
  buildah commit -q --rm "$c" "$node_base" >/dev/null
fi
ctx=$(mktemp -d)
cp -r templates/docker/converge-agent/. "$ctx/"
bash scripts/build-converge-agent.sh "$ctx/converge-agent.js" >/dev/null
agent_hash=$( { echo "$node_base"; tar -C "$ctx" -cf - --sort=name --mtime=@0 --owner=0 --group=0 . ; } | h)
converge_agent="localhost/redisforge/converge-agent:$agent_hash"
if ! have_image "$converge_agent"; then
  echo "container-images: building $converge_agent from templates/docker/converge-agent (NODE_BASE=$node_base)" >&2
  buildah build --quiet --isolation oci --network none --format docker \
    --build-arg "NODE_BASE=$node_base" -t "$converge_agent" "$ctx" >/dev/null
fi
rm -rf "$ctx"
# --- converge-agent end

echo "redis-base=$base"
echo "redis=$redis"
echo "redis-exporter=$redis_exporter"
echo "node-exporter=$node_exporter"
echo "converge-agent=$converge_agent"
