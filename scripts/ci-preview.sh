#!/usr/bin/env bash
# The pull-request preview of one stack, as .github/workflows/pull-request.yml runs it (and as
# tests/e2e/ci-preview.test.ts runs it here against a throw-away local stack):
#
#   bash scripts/ci-preview.sh <stack>
#
# runs `pulumi preview --diff` with the policy pack (policy/, mandatory policies refuse the change),
# keeps the full output in $REDISFORGE_PREVIEW_OUT (default: a file under ${RUNNER_TEMP:-/tmp}), and
# prints a summary: either "no changes", or the resources to create/update/replace/delete and the
# slot-move plan of the cluster (the RedisCluster resource's planned steps: shards added or drained,
# slots that move, failovers). On GitHub the summary also goes to $GITHUB_STEP_SUMMARY.
# Exit code: the preview's (non-zero when the engine or a mandatory policy refuses).
# Env: REDISFORGE_POLICY_PACK (default: policy; "none" = no pack), REDISFORGE_POLICY_CONFIG (a
# --policy-pack-config JSON file, e.g. one that makes a policy advisory).
set -euo pipefail
cd "$(dirname "$0")/.."

stack=${1:-}
if [[ -z $stack || $# -ne 1 ]]; then
  files=(Pulumi.*.yaml)
  names=("${files[@]#Pulumi.}")
  echo "usage: scripts/ci-preview.sh <stack>   (stack files here: ${names[*]%.yaml})" >&2
  exit 2
fi
if [[ ! -f Pulumi.$stack.yaml ]]; then
  echo "ci-preview: no stack file Pulumi.$stack.yaml in $(pwd); pass the name of an existing stack file (Pulumi.<stack>.yaml)" >&2
  exit 2
fi
command -v pulumi >/dev/null || { echo "ci-preview: no pulumi on PATH; source scripts/env.sh (local: .tools/bin) or install the CLI (GitHub: pulumi/actions)" >&2; exit 2; }

pack=${REDISFORGE_POLICY_PACK:-policy}
args=(preview --diff --non-interactive --color never --stack "$stack")
if [[ $pack != none ]]; then
  [[ -f $pack/PulumiPolicy.yaml ]] || { echo "ci-preview: $pack/PulumiPolicy.yaml not found; REDISFORGE_POLICY_PACK must name the policy pack directory" >&2; exit 2; }
  args+=(--policy-pack "$pack")
  if [[ -n ${REDISFORGE_POLICY_CONFIG:-} ]]; then
    [[ -f $REDISFORGE_POLICY_CONFIG ]] || { echo "ci-preview: REDISFORGE_POLICY_CONFIG=$REDISFORGE_POLICY_CONFIG does not exist" >&2; exit 2; }
    args+=(--policy-pack-config "$REDISFORGE_POLICY_CONFIG")
  fi
fi
out=${REDISFORGE_PREVIEW_OUT:-$(mktemp "${RUNNER_TEMP:-/tmp}/ci-preview-$stack.XXXXXX")}

echo "ci-preview: pulumi ${args[*]}"
set +e
pulumi "${args[@]}" >"$out" 2>&1
rc=$?
set -e
cat "$out"

# ---- summary (from the engine's own output; --diff prints "+ <type>: (create)" then "[urn=...::<name>]")
changes=$(awk '
  match($0, /^ *(\+-|-\+|\+|~|-|-) +[^ ]+: \((create|update|replace|delete|create-replacement|delete-replaced)\)/) {
    line = $0; sub(/^ +/, "", line); split(line, f, " "); op = f[1]; type = f[2]; sub(/:$/, "", type)
    action = line; sub(/^.*\(/, "", action); sub(/\).*$/, "", action); pending = op " " type " " action; next
  }
  pending != "" && /\[urn=/ { n = $0; sub(/^.*::/, "", n); sub(/\].*$/, "", n); print pending " " n; pending = ""; next }
  pending != "" && /^ *\[/ { next }
  pending != "" { print pending; pending = "" }' "$out")
resources=$(awk '/^Resources:/ {on=1; next} on && /^ *$/ {on=0} on {sub(/^ +/, ""); print}' "$out")
# The RedisCluster resource logs its planned steps (from the live cluster to the new spec) while diffing.
plan=$(grep -E 'RedisCluster [^ ]+: ' "$out" | sed -E 's/^.*RedisCluster [^ ]+: //; s/inputs changed; pulumi up runs these steps://' | tr ';' '\n' | sed -E 's/^ *-? *//' | grep -v '^$' || true)
policies=$(awk '/^(Policies|Policy Packs run):/ {on=1; print; next} on && /^[A-Z][A-Za-z ]+:/ {on=0} on && NF {print}' "$out")
{
  echo
  echo "== ci-preview summary: stack $stack"
  if ((rc != 0)); then
    echo "preview FAILED (exit $rc)"
    grep -E '^ +- \[(mandatory|advisory)\]|^ +[a-z-]+:[^ ]+ [^ ]+: [a-zA-Z]|error:' "$out" | sed -E 's/^ +/  /' | sort -u || true
  elif [[ -z $changes ]] && ! grep -qE 'to (create|update|delete|replace)' <<<"$resources"; then
    echo "no changes: the stack matches the program and its config ($(tail -1 <<<"$resources"))"
  else
    echo "changes:"
    if [[ -n $changes ]]; then awk '{print "  " $0}' <<<"$changes"; fi
    awk '{print "  " $0}' <<<"$resources"
    if [[ -n $plan ]]; then
      echo "slot-move plan (RedisCluster, from the live cluster to the new config):"
      # In a preview the joining nodes do not run yet (this update creates them before the cluster
      # resource runs), so the provider's "not repaired while ... unreachable" is expected here.
      awk '/^not repaired while .* unreachable/ {print "  (the joining nodes do not run yet: pulumi up creates them first, then runs these steps)"; next}
           /^start them, then run pulumi up$/ {next} {print "  - " $0}' <<<"$plan"
    fi
  fi
  if [[ -n $policies ]]; then echo "$policies"; fi
} | tee -a "${GITHUB_STEP_SUMMARY:-/dev/null}"
echo "ci-preview: full output in $out"
exit "$rc"
