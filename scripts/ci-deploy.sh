#!/usr/bin/env bash
# The deploy of one stack, as .github/workflows/deploy.yml runs it after the environment's approval:
# `pulumi up` with the policy pack enforced (a mandatory violation stops it before any change), then a
# preview that must show no changes (the stack converged), and the non-secret outputs.
#
#   bash scripts/ci-deploy.sh <stack>
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:?usage: scripts/ci-deploy.sh <stack>}
[[ -f Pulumi.$stack.yaml ]] || { echo "ci-deploy: no stack file Pulumi.$stack.yaml" >&2; exit 2; }
pack=${REDISFORGE_POLICY_PACK:-policy}
args=(--non-interactive --color never --stack "$stack")
[[ $pack != none ]] && args+=(--policy-pack "$pack")
pulumi up --yes --diff "${args[@]}"
pulumi preview --expect-no-changes "${args[@]}"
pulumi stack output --non-interactive --stack "$stack"
