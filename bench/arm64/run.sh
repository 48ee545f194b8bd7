#!/usr/bin/env bash
# The benches' table under qemu-aarch64 user emulation: compare.py, memory.py (the idle RSS
# split into the guest's and qemu's own), e2e.py and intake.py, each run by the arm64
# interpreter of the sysroot bench/arm64/setup.sh builds, so the daemon, the register emulator
# and the bench clients are all arm64 code. Every figure is emulated, not a Pi's.
#   bench/arm64/run.sh [--sysroot DIR] [--quick]     (--quick: a few runs of each, to try it)
# The output is also kept in build/arm64-bench-<UTC time>.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

root=build/arm64-sysroot
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sysroot) root=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    *) echo "usage: $0 [--sysroot DIR] [--quick]" >&2; exit 2 ;;
  esac
done
py=$(cd "$root" && pwd)/usr/bin/python3
[ -x "$py" ] || { echo "run: no arm64 interpreter in $root; run bench/arm64/setup.sh first" >&2; exit 1; }

if [ "$quick" = 1 ]; then
  compare_args=(--repeat 1 --settle-s 2 --idle-s 5)
  memory_args=(--settle-s 2)
  e2e_args=(--count 3)
  intake_args=(--jobs 200)
else
  compare_args=(--repeat 5 --settle-s 10 --idle-s 30)
  memory_args=(--settle-s 10)
  e2e_args=(--count 30)
  intake_args=(--jobs 2000 --concurrency 8)
fi

log=build/arm64-bench-$(date -u +%Y%m%dT%H%M%SZ).log
mkdir -p build
exec > >(tee "$log") 2>&1
started=$(date +%s)
step() { echo; echo "== $(($(date +%s) - started)) s: $*"; }

echo "EMULATED: qemu-aarch64 user mode on $(uname -m), not a Pi"
echo "$(qemu-aarch64-static --version | head -1); host CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) CPUs"
"$py" -c 'import platform, sys; print(f"guest: {sys.executable}: Python {platform.python_version()} on {platform.machine()}")'
echo "started $(date -u +%FT%TZ), commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"

export PYTHONPATH=$repo
step "compare.py ${compare_args[*]}"
"$py" bench/compare.py --tree "$repo" "${compare_args[@]}"
step "arm64/memory.py ${memory_args[*]}"
"$py" bench/arm64/memory.py --tree "$repo" "${memory_args[@]}"
step "e2e.py ${e2e_args[*]}"
"$py" bench/e2e.py "${e2e_args[@]}"
step "intake.py ${intake_args[*]}"
"$py" bench/intake.py "${intake_args[@]}"
step "done; this output is in $log"
