# shellcheck shell=bash
# Sourced by scripts/test.sh, scripts/local-up.sh, scripts/local-down.sh (and by you: `source scripts/env.sh`).
# Puts the project's Pulumi CLI and plugins (.tools/bin, see scripts/install-pulumi.sh) first on PATH
# and sets the Pulumi environment for the `local` stack:
#   - a file backend inside the project (.pulumi-state/, git-ignored), so no account is needed;
#   - the passphrase secrets provider, with a random passphrase generated once into
#     .pulumi-state/.passphrase (0600) — for the local stack only; cloud stacks bring their own
#     backend and secrets provider and should override PULUMI_BACKEND_URL / PULUMI_CONFIG_PASSPHRASE*;
#   - no plugin downloads, no update checks.
_rf_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REDISFORGE_ROOT="$_rf_root"
case ":$PATH:" in
  *":$_rf_root/.tools/bin:"*) ;;
  *) export PATH="$_rf_root/.tools/bin:$PATH" ;;
esac
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
export PULUMI_NODEJS_TRANSPILE_ONLY=true
export PULUMI_HOME="${PULUMI_HOME:-$_rf_root/.tools/pulumi-home}"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$_rf_root/.pulumi-state}"
if [[ -z "${PULUMI_CONFIG_PASSPHRASE:-}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
  mkdir -p "$_rf_root/.pulumi-state"
  if [[ ! -s "$_rf_root/.pulumi-state/.passphrase" ]]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$_rf_root/.pulumi-state/.passphrase")
  fi
  export PULUMI_CONFIG_PASSPHRASE_FILE="$_rf_root/.pulumi-state/.passphrase"
fi
unset _rf_root
