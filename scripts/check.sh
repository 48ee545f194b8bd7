#!/usr/bin/env bash
# Sets up and runs every check: ruff, mypy, import rules, and the whole test suite.
# Extra arguments go to pytest (e.g. -k link, or -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"
ruff check gateway tests bench
ruff format --check gateway tests bench
echo "== mypy"
mypy
echo "== import rules"
lint-imports
echo "== tests"
pytest -q -p no:cacheprovider "$@"
