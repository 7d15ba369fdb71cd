#!/usr/bin/env bash
# The VM stack ("rehearse a cloud deployment on one machine"): builds or reuses the cached VM image
# (scripts/build-vm-image.sh) and container images (infra/vm-images.ts), pins the images' digests
# into a generated copy of Pulumi.<stack>.yaml (.vm-stack/), and runs `pulumi up --stack <stack>`
# with the real engine on the `qemu` cloud (providers/qemu). Prints the time of each phase.
# Usage: bash scripts/vm-up.sh [stack]   (default: vm)
# REDISFORGE_VM_FORMATION=agent: the cluster is formed by the converge agent on the Redis VMs
# (redisforge:formation agent, convergeHeal on, the agent image pinned like the others); the
# deployer publishes the spec to the stack's S3 service with the stack's administrator key
# (providers/qemu/deployer-keys.ts), as an operator's cloud keys are in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-vm}"
formation="${REDISFORGE_VM_FORMATION:-direct}"
[[ $formation == direct || $formation == agent ]] || { echo "vm-up: REDISFORGE_VM_FORMATION=$formation must be direct or agent" >&2; exit 2; }
bash scripts/setup.sh >/dev/null
# shellcheck disable=SC1091  # sourced from the repo root
source scripts/env.sh
t0=$(date +%s)
phase() { echo "vm-up: $1: $(( $(date +%s) - $2 )) s"; }

t=$(date +%s)
REDISFORGE_VM_IMAGE=$(bash scripts/build-vm-image.sh | tail -n 1)
export REDISFORGE_VM_IMAGE
phase "VM image ($REDISFORGE_VM_IMAGE)" "$t"

t=$(date +%s)
digests=$(npx tsx infra/vm-images.ts)
phase "container images built and pushed" "$t"

mkdir -p .vm-stack
cfg=".vm-stack/Pulumi.$stack.yaml"
cp "Pulumi.$stack.yaml" "$cfg"
for name in redis redis-exporter node-exporter; do
  digest=$(sed -n "s/^$name=//p" <<<"$digests")
  [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "vm-up: no digest for $name" >&2; exit 1; }
  key=$(case $name in redis) echo redisImage ;; redis-exporter) echo redisExporterImage ;; node-exporter) echo nodeExporterImage ;; esac)
  sed -i -E "s#^(  redisforge:$key: [^@]+)@sha256:[0-9a-f]{64}#\1@$digest#" "$cfg"
done
grep -q "$(sed -n 's/^redis=//p' <<<"$digests")" "$cfg" || { echo "vm-up: the redis digest did not land in $cfg" >&2; exit 1; }
state_dir=".vm-stack/$(tr -cd 'a-z0-9' <<<"$stack" | cut -c1-6)"
if [[ $formation == agent ]]; then
  agent=$(sed -n 's/^converge-agent=//p' <<<"$digests")
  [[ $agent =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "vm-up: no digest for converge-agent" >&2; exit 1; }
  registry=$(sed -n -E 's#^  redisforge:redisImage: ([^/]+)/.*#\1#p' "$cfg")
  printf '  redisforge:formation: agent\n  redisforge:convergeHeal: "true"\n  redisforge:convergeAgentImage: %s/redisforge/converge-agent@%s\n' "$registry" "$agent" >> "$cfg"
  eval "$(npx tsx providers/qemu/deployer-keys.ts "$PWD/$state_dir/s3-keys/stack.json")"
fi

# The passphrase provider keeps its salt in the stack file: `stack init` writes it into the committed
# Pulumi.<stack>.yaml; move it into the generated copy and leave the committed file as it was.
if ! pulumi stack select "$stack" >/dev/null 2>&1; then
  cp "Pulumi.$stack.yaml" .vm-stack/committed.yaml
  pulumi stack init "$stack" >/dev/null
  grep '^encryptionsalt:' "Pulumi.$stack.yaml" > ".vm-stack/$stack.salt" || true
  cp .vm-stack/committed.yaml "Pulumi.$stack.yaml"
fi
[[ -s ".vm-stack/$stack.salt" ]] && cat ".vm-stack/$stack.salt" >> "$cfg"
t=$(date +%s)
pulumi up --stack "$stack" --config-file "$cfg" --yes --skip-preview
phase "pulumi up (VMs booted, cloud-init done, cluster formed)" "$t"
# Per VM: the phases in seconds since its kernel started, and the CPU each unit used (lab/vm/boot-profile.ts).
npx tsx lab/vm/boot-profile.ts "$state_dir" | sed 's/^/vm-up: boot phases of /' || echo "vm-up: boot phases: not readable (see above)"
phase "total" "$t0"
echo "vm-up: endpoint $(pulumi stack output --stack "$stack" endpoint); tear down with: bash scripts/vm-down.sh $stack"
