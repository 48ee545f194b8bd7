#!/usr/bin/env bash
# Sets up everything fiscal-gateway needs on Debian 12 / Raspberry Pi OS bookworm:
# Debian packages (apt) and a Python virtual environment in .venv with the project installed.
#   scripts/setup.sh           what the daemon needs
#   scripts/setup.sh --hub     what the office hub needs instead (its extra, a local broker)
#   scripts/setup.sh --test    what the test suite needs (pytest, ruff, mypy, the hub, …)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
want_hub=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --hub) want_hub=1 ;;
    *) echo "setup: unknown option $arg (use --test or --hub)" >&2; exit 2 ;;
  esac
done

# Debian packages, one per line ('#' comments): scripts/apt-run.txt for the daemon,
# scripts/apt-test.txt in addition for the test suite (a real broker, a browser, systemd tools).
read_list() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$1"; }
mapfile -t apt_packages < <(read_list scripts/apt-run.txt)
[ "$want_test" = 1 ] && mapfile -t -O "${#apt_packages[@]}" apt_packages < <(read_list scripts/apt-test.txt)
[ "$want_hub" = 1 ] && mapfile -t -O "${#apt_packages[@]}" apt_packages < <(read_list scripts/apt-hub.txt)

# A non-Debian python3 (e.g. a self-built one) already has venv; then neither package is needed.
own_python=0
python3 -c 'import venv, ensurepip' 2>/dev/null && own_python=1
missing=()
for pkg in "${apt_packages[@]}"; do
  pkg="${pkg%%[[:space:]]*}"
  if [ "$own_python" = 1 ] && { [ "$pkg" = python3 ] || [ "$pkg" = python3-venv ]; }; then
    continue
  fi
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
extra=""
[ "$want_hub" = 1 ] && extra="[hub]"
[ "$want_test" = 1 ] && extra="[test,hub]"  # the hub's tests need its extra; a box never does
stamp=".venv/.installed${extra:+-${want_test}${want_hub}}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".${extra}"
  touch "$stamp"
fi
