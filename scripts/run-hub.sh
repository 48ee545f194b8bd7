#!/usr/bin/env bash
# Sets up and runs the office hub on one machine. With no arguments it runs on the embedded
# defaults: state in ./var/hub/, the API on 127.0.0.1:8700, the fleet page on 127.0.0.1:8701
# once a password is configured, and a local Mosquitto on 127.0.0.1:1883, started here when no
# broker answers there. Extra arguments go to `fiscal-gateway hub run` (e.g. --config FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --hub
mkdir -p var/hub

broker_pid=""
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  cat > var/hub/mosquitto.conf <<CONF
listener 1883 127.0.0.1
allow_anonymous true
persistence true
persistence_location $(pwd)/var/hub/
CONF
  /usr/sbin/mosquitto -c var/hub/mosquitto.conf > var/hub/mosquitto.log 2>&1 &
  broker_pid=$!
  trap '[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null' EXIT
  echo "run-hub: started a local Mosquitto on 127.0.0.1:1883 (log: var/hub/mosquitto.log)"
fi
.venv/bin/fiscal-gateway hub run "$@"
