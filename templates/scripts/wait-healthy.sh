#!/bin/bash
# Waits (bounded) until a container is healthy (or running, when its image has no health check),
# so that `systemctl start` fails loudly on a container that never becomes healthy.
# Usage: wait-healthy.sh <container> <timeout seconds> [<start bound seconds>]
# As ExecStartPost, systemd passes MAINPID (the unit's `docker run`): when that has exited and no
# container is up, there is nothing to wait for (e.g. the image could not be pulled) and it fails at once;
# while it runs and no container exists yet, it is pulling the image: the health timeout starts when the
# container exists; the pull is bounded by the start bound (default 10 x the timeout) and by the unit's
# TimeoutStartSec, whichever ends first.
# It asks the Engine API with curl, not `docker inspect`: ~4x less CPU per poll under emulation.
# DOCKER_SOCKET overrides the daemon's socket path.
set -euo pipefail
name=${1:?container name}
timeout=${2:-120}
bound=${3:-$((timeout * 10))}
poll=${POLL_SECONDS:-2}
socket=${DOCKER_SOCKET:-/var/run/docker.sock}
[[ $name =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ ]] || { echo "wait-healthy.sh: '$name' is not a container name" >&2; exit 2; }
# Bounded by wall-clock time, not by counting sleeps (slow requests: VM stack, fourth run).
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t / 1000)); }
die() { echo "container $name: $*" >&2; exit 1; }

# exited|dead, else the health check's status, else the state; "missing" if no answer or no container.
# The API's JSON is compact and quotes inside strings are escaped: these patterns match State's fields.
container_status() {
  local body code
  body=$(curl -sS --max-time 30 -w '\n%{http_code}' --unix-socket "$socket" "http://docker/containers/$name/json" 2>/dev/null) || { echo missing; return; }
  code=${body##*$'\n'}
  body=${body%$'\n'*}
  [[ $code == 200 ]] || { echo missing; return; }
  local state=unknown
  [[ $body =~ \"State\":\{\"Status\":\"([a-z]+)\" ]] && state=${BASH_REMATCH[1]}
  case $state in
    # exited | dead: whatever its last health check said
    exited | dead) echo "$state" ;;
    *) if [[ $body =~ \"Health\":\{\"Status\":\"([a-z]+)\" ]]; then echo "${BASH_REMATCH[1]}"; else echo "$state"; fi ;;
  esac
}

deadline=$(($(now_ms) + timeout * 1000))
last=$(($(now_ms) + bound * 1000))
status=
while (($(now_ms) < deadline)); do
  status=$(container_status)
  case "$status" in
    # running: only reported for a container without a health check
    healthy | running) exit 0 ;;
    exited | dead) die "$status" ;;
    missing)
      # docker run still running, no container yet: it is pulling the image (a large one under
      # emulation took >12 min); the health timeout starts when the container exists.
      if [[ -n ${MAINPID:-} ]]; then
        kill -0 "$MAINPID" 2>/dev/null || die "docker run (pid $MAINPID) exited and no container is up (image not pullable?); see journalctl -u $name"
        (($(now_ms) < last)) || die "none after ${bound}s (docker run still pulling?)"
        deadline=$(($(now_ms) + timeout * 1000))
      fi
      ;;
  esac
  sleep "$poll"
done
die "not healthy after ${timeout}s (last status: ${status:-unknown})"
