#!/usr/bin/env bash
# Restart callsite's server processes one at a time (deploy/systemd): each gets SIGTERM, drains
# (its sockets reconnect to the others with 1012) and exits within 10 s; the next one follows
# once this one is ready again, so the service never stops answering.
#
#   scripts/rolling-restart.sh              # every enabled callsite-server@PORT unit
#   scripts/rolling-restart.sh 8001 8002    # these ports only
#
# bench/rolling_restart.py measures the same sequence under load (invitations lost, requests
# failed, time until every socket is back).
set -euo pipefail

ports=("$@")
if [ ${#ports[@]} -eq 0 ]; then
  mapfile -t ports < <(systemctl list-units 'callsite-server@*.service' --plain --no-legend \
    | awk '{print $1}' | sed -E 's/^callsite-server@([0-9]+)\.service$/\1/')
fi
[ ${#ports[@]} -gt 0 ] || { echo "no callsite-server@PORT units found" >&2; exit 1; }

for port in "${ports[@]}"; do
  echo "restarting callsite-server@${port}..."
  started=$(date +%s%N)
  systemctl restart "callsite-server@${port}.service"
  # Ready means: database, channel layer and a timer worker answer (GET /readyz).
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${port}/readyz"; then
      echo "callsite-server@${port} ready after $(( ($(date +%s%N) - started) / 1000000 )) ms"
      break
    fi
    sleep 0.2
  done
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${port}/readyz" \
    || { echo "callsite-server@${port} is not ready after 60 s: stopping here" >&2; exit 1; }
  sleep 2  # let the sockets that moved settle before the next process goes
done
echo "all ${#ports[@]} server processes restarted"
