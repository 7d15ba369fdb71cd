#!/usr/bin/env bash
# Installs what RedisForge's tests and local stack need on a fresh machine of this project's
# kind (Debian, Node.js 20, Go): Debian packages, npm packages, and the Pulumi CLI + plugins
# (built from Go sources when no `pulumi` is installed). Idempotent: a second run is fast.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < scripts/apt-packages.txt
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi

# Tools built from sources (Pulumi CLI + plugins, the Envoy config validator, ...): each
# scripts/install-*.sh is idempotent and caches its output.
for installer in scripts/install-*.sh; do
  [[ -e "$installer" ]] || continue
  echo "setup: $installer"
  bash "$installer"
done
