#!/usr/bin/env bash
# Builds (or reuses) the RedisForge VM base image for the qemu cloud: a Debian bookworm root
# filesystem made with mmdebstrap, holding every package the RedisNode/EnvoyProxy user-data lists or
# its scripts call (lab/vm/image-packages.txt), cloud-init limited to NoCloud, Docker trusting the
# lab registry, qemu-guest-agent as an exec channel without ssh.
#
# Output, in ~/.cache/redisforge/vm-image-<hash>/ (hash of this script, the package list and
# lab/vm/image/*, so any change of an input builds a new image and an unchanged one is reused):
#   vmlinuz, initrd.img   booted directly (qemu -kernel/-initrd), no bootloader
#   root.qcow2            ext4 root filesystem (no partition table: root=/dev/vda); VMs boot a
#                         qcow2 overlay with this file as its backing file, never the file itself
#   cmdline               the kernel command line to pass with -append
#   manifest.txt          dpkg -l of the image
# Prints the directory on its last line. Idempotent; ~4-8 min for a fresh build (mostly
# downloads and dpkg), instant when cached.
#
# Env: REDISFORGE_CACHE (default ~/.cache/redisforge), REDISFORGE_VM_INSECURE_CIDR (the address
# range whose registries Docker in the VM reaches over plain HTTP; default 10.210.0.0/16, the
# range lab/vm/network.ts allocates from).
set -euo pipefail
cd "$(dirname "$0")/.."

cache_dir=${REDISFORGE_CACHE:-$HOME/.cache/redisforge}
insecure_cidr=${REDISFORGE_VM_INSECURE_CIDR:-10.210.0.0/16}
root_size=${REDISFORGE_VM_ROOT_SIZE:-6G}
inputs=(scripts/build-vm-image.sh lab/vm/image-packages.txt lab/vm/image/cloud.cfg lab/vm/image/docker-override.conf lab/vm/image/fstab lab/vm/image/qemu-guest-agent.conf)
hash=$( { cat "${inputs[@]}"; echo "$insecure_cidr $root_size"; } | sha256sum | cut -c1-16)
out="$cache_dir/vm-image-$hash"

if [[ -f $out/.complete ]]; then
  echo "vm-image: cached"
  echo "$out"
  exit 0
fi
for tool in mmdebstrap mke2fs qemu-img; do
  command -v "$tool" >/dev/null || { echo "vm-image: $tool is missing; run bash scripts/install-vm-tools.sh" >&2; exit 1; }
done
if [[ $(id -u) -ne 0 ]]; then
  echo "vm-image: run as root (mmdebstrap installs a kernel and sets file owners in the rootfs)" >&2
  exit 1
fi

mapfile -t pkgs < <(grep -Ev '^\s*(#|$)' lab/vm/image-packages.txt)
tmp="$out.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
rootfs="$tmp/rootfs"
log="$tmp/build.log"
echo "vm-image: building bookworm rootfs with ${#pkgs[@]} packages into $out (log: $log)"
start=$(date +%s)

# Hooks run outside the chroot with the rootfs as $1.
# shellcheck disable=SC2016 # $1 is expanded by mmdebstrap's hook shell
if ! mmdebstrap --variant=minbase --quiet --mode=root \
  --include="$(IFS=,; echo "${pkgs[*]}")" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && printf "MODULES=list\nCOMPRESS=gzip\n" > "$1/etc/initramfs-tools/conf.d/redisforge" && printf "virtio_pci\nvirtio_blk\nvirtio_net\nvirtio_console\nvirtio_scsi\next4\ncrc32c_generic\n" > "$1/etc/initramfs-tools/modules"' \
  --customize-hook='cp lab/vm/image/cloud.cfg "$1/etc/cloud/cloud.cfg.d/90-redisforge-qemu.cfg"' \
  --customize-hook="mkdir -p \"\$1/etc/systemd/system/docker.service.d\" && sed 's#@INSECURE_CIDR@#$insecure_cidr#' lab/vm/image/docker-override.conf > \"\$1/etc/systemd/system/docker.service.d/redisforge-qemu.conf\"" \
  --customize-hook='cp lab/vm/image/fstab "$1/etc/fstab"' \
  --customize-hook='mkdir -p "$1/etc/systemd/system/qemu-guest-agent.service.d" && cp lab/vm/image/qemu-guest-agent.conf "$1/etc/systemd/system/qemu-guest-agent.service.d/redisforge-qemu.conf"' \
  --customize-hook=': > "$1/etc/apt/sources.list"; rm -rf "$1"/var/lib/apt/lists/*' \
  --customize-hook='echo redisforge-vm > "$1/etc/hostname"; : > "$1/etc/machine-id"' \
  --customize-hook='chroot "$1" systemctl enable systemd-networkd.service' \
  --customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-timesyncd.service getty@tty1.service serial-getty@ttyS0.service' \
  --customize-hook='chroot "$1" systemctl disable docker.service containerd.service' \
  --customize-hook='rm -f "$1/etc/init.d/docker" "$1/etc/default/docker"' \
  --customize-hook='echo "en_US.UTF-8 UTF-8" > "$1/etc/locale.gen"; chroot "$1" locale-gen; chroot "$1" update-locale LANG=en_US.UTF-8' \
  bookworm "$rootfs" http://deb.debian.org/debian >"$log" 2>&1; then
  echo "vm-image: mmdebstrap failed; the end of $log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi

# Every tool the user-data's runcmd and the templates' scripts call must be in the image.
missing=()
for tool in cloud-init docker containerd runc curl jq mkfs.xfs rclone redis-cli redis-check-aof sysctl blkid mountpoint \
  flock udevadm cmp awk base64 sha256sum timeout install nft nc qemu-ga systemd-networkd apparmor_parser iptables; do
  chroot "$rootfs" sh -c "command -v $tool || test -x /usr/lib/systemd/$tool || test -x /lib/systemd/$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "vm-image: the image lacks ${missing[*]}; add the package to lab/vm/image-packages.txt" >&2
  exit 1
fi

# shellcheck disable=SC2016 # dpkg-query format fields, not shell
chroot "$rootfs" dpkg-query -W -f='${Package} ${Version}\n' >"$tmp/manifest.txt"
kernel=$(find "$rootfs/boot" -name 'vmlinuz-*' | sort | tail -n 1)
initrd=$(find "$rootfs/boot" -name 'initrd.img-*' | sort | tail -n 1)
[[ -n $kernel && -n $initrd ]] || { echo "vm-image: no kernel/initrd in $rootfs/boot" >&2; exit 1; }
cp "$kernel" "$tmp/vmlinuz"
cp "$initrd" "$tmp/initrd.img"
# Serial console only; no splash, quiet kernel (the serial port is slow under emulation);
# net.ifnames=0 so the one NIC is eth0 on every VM.
echo "root=/dev/vda rw console=ttyS0,115200 quiet loglevel=3 net.ifnames=0 systemd.show_status=error" >"$tmp/cmdline"

mke2fs -q -t ext4 -L redisforge-root -d "$rootfs" "$tmp/root.raw" "$root_size"
qemu-img convert -f raw -O qcow2 "$tmp/root.raw" "$tmp/root.qcow2"
rm -f "$tmp/root.raw"
rm -rf "$rootfs"
touch "$tmp/.complete"
rm -rf "$out"
mv "$tmp" "$out"
echo "vm-image: built in $(($(date +%s) - start)) s ($(du -sh "$out" | cut -f1))"
echo "$out"
