#!/usr/bin/env bash
# Which cloud stacks a change can affect, as a JSON matrix for the workflows (one line on stdout:
# stacks=[{"stack":"prod","cloud":"aws","region":"eu-west-1"},...]), read from the Pulumi.<stack>.yaml
# files (the local stack and the VM stack run on one machine, not on a cloud: never listed).
#
#   bash scripts/ci-stacks.sh <base-commit>     # files changed between <base-commit> and HEAD
#   REDISFORGE_CHANGED_FILES=$'a\nb' bash scripts/ci-stacks.sh   # the files given (tests)
#
# Rules: a changed Pulumi.<stack>.yaml affects that stack; a change to the program, its templates,
# the policy pack, dependencies or Pulumi.yaml affects every stack; documentation, tests, the lab,
# benchmarks and CI files alone affect none.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n ${REDISFORGE_CHANGED_FILES+x} ]]; then
  changed=$REDISFORGE_CHANGED_FILES
else
  base=${1:?usage: scripts/ci-stacks.sh <base-commit> (or REDISFORGE_CHANGED_FILES)}
  git rev-parse --verify --quiet "$base^{commit}" >/dev/null || { echo "ci-stacks: $base is not a commit here (fetch it first: actions/checkout with fetch-depth: 0)" >&2; exit 2; }
  changed=$(git diff --name-only "$base" HEAD)
fi

all=()
for f in Pulumi.*.yaml; do
  [[ -e $f ]] || continue
  s=${f#Pulumi.}
  s=${s%.yaml}
  cloud=$(sed -n 's/^ *redisforge:cloud: *"\{0,1\}\([a-z0-9-]*\)"\{0,1\} *$/\1/p' "$f" | head -1)
  [[ -n $cloud && $cloud != local && $cloud != qemu ]] && all+=("$s")
done

affected=()
every=false
while IFS= read -r f; do
  [[ -z $f ]] && continue
  case $f in
    Pulumi.yaml|package.json|package-lock.json|tsconfig.json|infra/*|components/*|providers/*|templates/*|monitoring/*|policy/*) every=true ;;
    Pulumi.*.yaml)
      s=${f#Pulumi.}
      s=${s%.yaml}
      for a in "${all[@]}"; do [[ $a == "$s" ]] && affected+=("$s"); done
      ;;
    *) ;;
  esac
done <<<"$changed"
if $every; then affected=("${all[@]}"); fi

json="["
sep=""
for s in $(printf '%s\n' "${affected[@]}" | sort -u); do
  f=Pulumi.$s.yaml
  cloud=$(sed -n 's/^ *redisforge:cloud: *"\{0,1\}\([a-z0-9-]*\)"\{0,1\} *$/\1/p' "$f" | head -1)
  region=$(sed -n 's/^ *redisforge:region: *"\{0,1\}\([A-Za-z0-9-]*\)"\{0,1\} *$/\1/p' "$f" | head -1)
  json+="$sep{\"stack\":\"$s\",\"cloud\":\"$cloud\",\"region\":\"$region\"}"
  sep=","
done
json+="]"
echo "stacks=$json"
