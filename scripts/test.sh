#!/usr/bin/env bash
# The README's test command: installs what is missing, then type-checks and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[[ -f scripts/env.sh ]] && source scripts/env.sh
npx tsc --noEmit -p .
npx jest --runInBand "$@"
