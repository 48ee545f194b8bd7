#!/usr/bin/env bash
# Sets up and runs the gateway. With no arguments it runs on the embedded defaults: the built-in
# register emulator, the journal under ./var, the HTTP API on 127.0.0.1:16732, the status page
# on 127.0.0.1:8080, MQTT off. Extra arguments go to `fiscal-gateway run` (e.g. --config FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/fiscal-gateway run "$@"
