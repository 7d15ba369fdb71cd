#!/usr/bin/env bash
# Logs in to the Pulumi backend and selects (creating on first use) one stack, for the workflows:
#
#   PULUMI_BACKEND_URL=s3://... PULUMI_SECRETS_PROVIDER=awskms://... bash scripts/ci-stack-select.sh <stack>
#
# Both come from the repository's settings (variables PULUMI_BACKEND_URL and PULUMI_SECRETS_PROVIDER),
# never from this repository; the cloud credentials that reach them come from OIDC in the job.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:?usage: scripts/ci-stack-select.sh <stack>}
[[ -f Pulumi.$stack.yaml ]] || { echo "ci-stack-select: no stack file Pulumi.$stack.yaml" >&2; exit 2; }
: "${PULUMI_BACKEND_URL:?set the repository variable PULUMI_BACKEND_URL (e.g. s3://bucket/prefix, gs://bucket, azblob://container, https://api.pulumi.com)}"
: "${PULUMI_SECRETS_PROVIDER:?set the repository variable PULUMI_SECRETS_PROVIDER (e.g. awskms://alias/redisforge, gcpkms://..., azurekeyvault://...)}"
pulumi login --non-interactive "$PULUMI_BACKEND_URL"
pulumi stack select --non-interactive --create --secrets-provider "$PULUMI_SECRETS_PROVIDER" "$stack"
echo "ci-stack-select: $stack on $(pulumi whoami --non-interactive 2>/dev/null || echo '?') ($PULUMI_BACKEND_URL)"
