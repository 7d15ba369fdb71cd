#!/usr/bin/env bash
# The README's test command: installs what is missing, then type-checks and runs every test.
# Ends with one plain summary line ("jest: N passed, N failed[, N skipped]") and jest's exit code.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
[[ -f scripts/env.sh ]] && source scripts/env.sh
npx tsc --noEmit -p .
mkdir -p .tools
results=.tools/jest-results.json
rm -f "$results"
set +e
npx jest --runInBand --json --outputFile="$results" "$@"
rc=$?
set -e
if [[ -f "$results" ]]; then
  # shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
  node -e 'const r = require(require("path").resolve(process.argv[1]));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));' "$results"
fi
exit "$rc"
