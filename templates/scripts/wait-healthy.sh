#!/bin/bash
# Waits (bounded) until a container is healthy (or running, when its image has no health check),
# so that `systemctl start` fails loudly on a container that never becomes healthy.
# Usage: wait-healthy.sh <container> <timeout seconds>
# As ExecStartPost, systemd passes MAINPID (the unit's `docker run`): when that has exited and no
# container is up, there is nothing to wait for (e.g. the image could not be pulled) and it fails at once.
set -euo pipefail
name=${1:?container name}
timeout=${2:-120}
poll=${POLL_SECONDS:-2}
# The bound is wall-clock time (ms since the epoch): on a slow VM each `docker inspect` takes seconds,
# and counting only the sleeps let the wait run 2-3x past its bound (VM stack, fourth run).
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t / 1000)); }
deadline=$(($(now_ms) + timeout * 1000))
while (($(now_ms) < deadline)); do
  # docker 20.10 prints an empty line (and the error on stderr) for a missing container: the exit
  # status decides, and whitespace is dropped (`$(... || echo missing)` gave "\nmissing" on the VMs).
  status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$name" 2>/dev/null) || status=missing
  status=${status//[[:space:]]/}
  case "$status" in
    healthy) exit 0 ;;
    running) [[ -z $(docker inspect -f '{{if .State.Health}}x{{end}}' "$name") ]] && exit 0 ;;
    exited | dead) echo "container $name is $status" >&2; exit 1 ;;
    missing)
      if [[ -n ${MAINPID:-} ]] && ! kill -0 "$MAINPID" 2>/dev/null; then
        echo "container $name: docker run (pid $MAINPID) exited and no container is up (image not pullable?); see journalctl -u $name" >&2
        exit 1
      fi
      ;;
  esac
  sleep "$poll"
done
echo "container $name not healthy after ${timeout}s (last status: ${status:-unknown})" >&2
exit 1
