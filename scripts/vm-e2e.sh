#!/usr/bin/env bash
# The VM stack end to end, opt-in in the README's test command (REDISFORGE_VM_E2E=1, scripts/test.sh): boots the VM stack
# (scripts/vm-up.sh, from tests/vm/vm-stack.vm-test.ts's beforeAll), runs that suite's checks and
# destroys the stack (its afterAll, scripts/vm-down.sh).
#
#   bash scripts/vm-e2e.sh images           builds or reuses the VM image and the container images
#                                           (so the suite's own vm-up.sh finds them cached)
#   bash scripts/vm-e2e.sh run <results>    the suite, jest results as JSON in <results>
#
# `run` is bounded (REDISFORGE_VM_E2E_MINUTES, default 62): when the bound is hit, the suite's own
# processes are killed and the stack destroyed here (vm-down.sh, bounded 10 min), so nothing of it is left.
# scripts/test.sh starts `run` in the background under `nice -n 19` beside the other suites: the guests
# take the CPU those leave idle (too little on 2 cores for now: README "VM stack").
set -uo pipefail
cd "$(dirname "$0")/.."
# The PIDs of a process and of all its descendants in its session (from the parent links), the
# process first. The stack's daemons (S3 service, registry, metadata service, haproxy: detached, and
# QEMU: daemonized) run in sessions of their own and are left to the destroy, which needs them.
descendants() {
  local todo=("$1") found=() p sid
  sid=$(ps -o sid= -p "$1" | tr -d ' ')
  while ((${#todo[@]})); do
    p=${todo[0]}
    todo=("${todo[@]:1}")
    [[ $(ps -o sid= -p "$p" | tr -d ' ') == "$sid" ]] && found+=("$p")
    # shellcheck disable=SC2207  # PIDs, no spaces
    todo+=($(ps -o pid= --ppid "$p" 2>/dev/null))
  done
  echo "${found[@]}"
}

case "${1:-}" in
  images)
    set -e
    bash scripts/build-vm-image.sh | tail -n 1
    # shellcheck disable=SC1091  # sourced from the repo root
    source scripts/env.sh
    npx tsx infra/vm-images.ts
    ;;
  run)
    out=${2:?usage: bash scripts/vm-e2e.sh run <results.json>}
    minutes=${REDISFORGE_VM_E2E_MINUTES:-62}
    [[ $minutes =~ ^[1-9][0-9]*$ ]] || { echo "vm-e2e: REDISFORGE_VM_E2E_MINUTES=$minutes must be a whole number of minutes" >&2; exit 2; }
    unset REDISFORGE_VM_KEEP
    start=$(date +%s)
    rm -f "$out"
    npx jest --runInBand --forceExit --json --outputFile="$out" --testMatch '<rootDir>/tests/vm/vm-stack.vm-test.ts' &
    pid=$!
    deadline=$((start + minutes * 60))
    while kill -0 "$pid" 2>/dev/null && (($(date +%s) < deadline)); do sleep 5; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "vm-e2e: the suite did not finish in $minutes min: stopping it and destroying the stack"
      # Every process the suite started (jest, vm-up.sh, pulumi and its plugins, which run in process
      # groups of their own), read from the parent links before any of them dies.
      tree=$(descendants "$pid")
      # shellcheck disable=SC2086  # a list of PIDs
      kill -KILL $tree 2>/dev/null
      wait "$pid" 2>/dev/null
      rc=124
      # The engine was killed holding the stack's lock (the file backend's lock names its PID, now gone).
      rm -f .pulumi-state/.pulumi/locks/organization/*/vm/*.json*
      timeout 10m bash scripts/vm-down.sh vm || echo "vm-e2e: vm-down failed: see above; the stack may be left (bash scripts/vm-down.sh vm)"
    else
      wait "$pid"
      rc=$?
    fi
    echo "vm-e2e: rc=$rc in $(($(date +%s) - start)) s"
    exit "$rc"
    ;;
  *)
    echo "usage: bash scripts/vm-e2e.sh images | run <results.json>" >&2
    exit 2
    ;;
esac
