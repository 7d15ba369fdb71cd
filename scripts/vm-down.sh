#!/usr/bin/env bash
# Destroys the VM stack (bash scripts/vm-up.sh): every VM, tap, service, table and the namespace go
# with `pulumi destroy`; then checks that nothing of the stack is left on this machine.
# Usage: bash scripts/vm-down.sh [stack]   (default: vm)
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-vm}"
# shellcheck disable=SC1091  # sourced from the repo root
source scripts/env.sh
cfg=".vm-stack/Pulumi.$stack.yaml"
[[ -f $cfg ]] || cfg="Pulumi.$stack.yaml"
REDISFORGE_VM_IMAGE=$(bash scripts/build-vm-image.sh | tail -n 1)
export REDISFORGE_VM_IMAGE
# Formation agent (vm-up.sh): the RedisCluster resource's delete reads the agents' store with the
# stack's administrator key, as at `up` (never created here: only an existing stack has one).
keys=".vm-stack/$(tr -cd 'a-z0-9' <<<"$stack" | cut -c1-6)/s3-keys/stack.json"
if [[ -f $keys ]] && grep -q '^  redisforge:formation: agent' "$cfg"; then
  eval "$(npx tsx providers/qemu/deployer-keys.ts "$PWD/$keys")"
fi
t=$(date +%s)
pulumi destroy --stack "$stack" --config-file "$cfg" --yes --skip-preview
echo "vm-down: destroy took $(( $(date +%s) - t )) s"
left=$(ip netns list | grep -c "^rfvm-${stack//[^a-z0-9]/}\b" || true)
if [[ $left -ne 0 ]]; then echo "vm-down: namespace rfvm-$stack is still there" >&2; exit 1; fi
echo "vm-down: nothing of stack $stack is left (no namespace rfvm-$stack)"
