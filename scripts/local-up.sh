#!/usr/bin/env bash
# The README's main command: installs what is missing (Debian redis-server, npm packages, the Pulumi
# CLI + plugins, built from Go sources if needed: scripts/setup.sh), then deploys the `local` stack
# with the real engine (`pulumi up --stack local`) and prints the endpoint, how to connect with
# `redis-cli --tls`, and how to tear it down.
# Usage: bash scripts/local-up.sh [stack]   (default: local; the stack's config is Pulumi.<stack>.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${1:-local}"
bash scripts/setup.sh
# shellcheck disable=SC1091  # sourced from the repo root
source scripts/env.sh
pulumi stack select "$stack" >/dev/null 2>&1 || pulumi stack init "$stack"
start=$(date +%s)
pulumi up --stack "$stack" --yes
echo "local-up: pulumi up took $(( $(date +%s) - start )) s"
endpoint=$(pulumi stack output --stack "$stack" endpoint)
client_dir=$(pulumi stack output --stack "$stack" clientDir)
host=${endpoint%:*}
port=${endpoint##*:}
cat <<INFO

RedisForge local stack "$stack" is up.
  endpoint (seed node; cluster clients discover the others): $endpoint
  nodes:   pulumi stack output --stack $stack nodes
  status:  npm run scale -- status --stack $stack

Connect (TLS + client certificate + ACL user "app"):
  source scripts/env.sh
  export REDISCLI_AUTH="\$(pulumi stack output --stack $stack --show-secrets appPassword)"
  redis-cli --tls --cacert $client_dir/ca.crt --cert $client_dir/client.crt --key $client_dir/client.key \\
            -h $host -p $port --user app -c

Scale:     npm run scale -- add-shard --stack $stack      (remove-shard, add-replica, remove-replica)
Tear down: bash scripts/local-down.sh $stack
INFO
