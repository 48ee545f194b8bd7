#!/usr/bin/env bash
# An arm64 Debian 12 sysroot for running the benches under qemu-aarch64 user emulation:
# Debian's CPython 3.11 and the libraries it links (the .deb files unpacked, nothing installed
# on this machine, no foreign architecture added to its dpkg), and the box's runtime
# dependencies as aarch64 wheels from PyPI in the sysroot's dist-packages.
#   bench/arm64/setup.sh [DIR]        (default build/arm64-sysroot; bench/arm64/run.sh uses it)
# Afterwards DIR/usr/bin/python3 is the arm64 interpreter: a launcher that runs Debian's
# python3.11 under qemu-aarch64-static and names itself as sys.executable, so every
# interpreter the benches spawn is arm64 code as well.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

root=${1:-build/arm64-sysroot}
mkdir -p "$root"
root=$(cd "$root" && pwd)
started=$(date +%s)
step() { echo "== $(($(date +%s) - started)) s: $*"; }

# The host's own tools: qemu-user-static (its static qemu-aarch64), dpkg-deb and apt-get are
# this machine's architecture; only their absence installs anything.
missing=()
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
command -v dpkg-deb >/dev/null || missing+=(dpkg)
if [ "${#missing[@]}" -gt 0 ]; then
  step "host packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# A private apt: its own sources (this machine's Debian mirrors), lists, cache and an empty
# dpkg status, arm64 as its only architecture, none of the host's apt.conf.d hooks.
apt_dir=$root/.apt
mkdir -p "$apt_dir"/etc/{apt.conf.d,preferences.d,sources.list.d} "$apt_dir"/state/lists/partial \
  "$apt_dir"/cache/archives/partial
: >"$apt_dir/status"
: >"$apt_dir/etc/sources.list"
rm -f "$apt_dir"/etc/sources.list.d/*
if [ -n "${ARM64_APT_SOURCES:-}" ]; then
  cp "$ARM64_APT_SOURCES" "$apt_dir/etc/sources.list.d/"
elif [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$apt_dir/etc/sources.list.d/"
else
  grep -E '^deb[[:space:]]' /etc/apt/sources.list >"$apt_dir/etc/sources.list.d/debian.list"
fi
apt_opts=(
  -o APT::Architecture=arm64 -o APT::Architectures::=arm64
  -o Dir::Etc="$apt_dir/etc" -o Dir::Etc::SourceList=sources.list
  -o Dir::Etc::SourceParts=sources.list.d -o Dir::Etc::Parts=apt.conf.d
  -o Dir::Etc::Preferences=preferences -o Dir::Etc::PreferencesParts=preferences.d
  -o Dir::Etc::Trusted=/etc/apt/trusted.gpg -o Dir::Etc::TrustedParts=/etc/apt/trusted.gpg.d
  -o Dir::State="$apt_dir/state" -o Dir::State::status="$apt_dir/status"
  -o Dir::Cache="$apt_dir/cache" -o Debug::NoLocking=1 -o Acquire::Languages=none
)
[ "$(id -u)" = 0 ] && apt_opts+=(-o APT::Sandbox::User=root)

step "Debian bookworm arm64 package lists (private apt state in $apt_dir)"
apt-get "${apt_opts[@]}" update -qq
step "python3.11 and its dependencies (download only)"
# With an empty status apt resolves the whole dependency closure, the shared libraries too;
# libc-bin for its ldconfig.
apt-get "${apt_opts[@]}" install --download-only --no-install-recommends -y -qq python3.11 libc-bin

step "unpack the .deb files"
for deb in "$apt_dir"/cache/archives/*.deb; do
  dpkg-deb -x "$deb" "$root"
done
ls "$apt_dir"/cache/archives/*.deb | sed 's,.*/,,' >"$root/packages.txt"

# The dynamic loader reads /etc/ld.so.cache, which qemu -L finds in the sysroot first: an
# arm64 cache there, built by the sysroot's own ldconfig under qemu in a chroot (root only;
# without it the loader skips the host's x86-64 entries and searches its default directories).
step "ld.so.cache"
if [ "$(id -u)" = 0 ]; then
  rm -f "$root/etc/ld.so.cache"
  qemu-aarch64-static "$root/sbin/ldconfig" -r "$root"
fi

# The launcher: qemu's -0 sets the guest's argv[0] to the launcher itself, so sys.executable
# names it and the benches' children (sys.executable -m gateway ...) are emulated as well;
# the interpreter finds its prefix (usr/) from there.
step "launcher $root/usr/bin/python3"
cat >"$root/usr/bin/python3" <<'EOF'
#!/bin/sh
# CPython 3.11 (Debian 12 arm64) under qemu-aarch64 user emulation; see bench/arm64/setup.sh.
here=$(dirname "$(readlink -f "$0")")
root=$(dirname "$(dirname "$here")")
export QEMU_LD_PREFIX="$root"
exec qemu-aarch64-static ${ARM64_QEMU_OPTS:-} -0 "$here/python3" "$here/python3.11" "$@"
EOF
chmod +x "$root/usr/bin/python3"

step "the box's runtime dependencies: aarch64 wheels from PyPI"
pip=(python3 -m pip)
[ -x .venv/bin/python ] && pip=(.venv/bin/python -m pip)
mapfile -t requirements < <(python3 - <<'EOF'
import tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
EOF
)
# The same platforms as scripts/build-release.sh: the box's CPython 3.11 and glibc 2.36.
platforms=(--platform manylinux2014_aarch64)
for glibc in 2_17 2_28 2_34 2_36; do platforms+=(--platform "manylinux_${glibc}_aarch64"); done
wheel_opts=(--only-binary=:all: "${platforms[@]}" --python-version 3.11 --implementation cp
  --abi cp311 --abi abi3 --abi none)
wheels=$root/.wheels
rm -rf "$wheels"
mkdir -p "$wheels"
"${pip[@]}" download -q --disable-pip-version-check "${wheel_opts[@]}" --dest "$wheels" \
  "${requirements[@]}"
site=$root/usr/lib/python3/dist-packages
rm -rf "$site"
mkdir -p "$site"
"${pip[@]}" install -q --disable-pip-version-check --no-deps --no-index --no-compile \
  "${wheel_opts[@]}" --target "$site" "$wheels"/*.whl
ls "$wheels" >"$root/wheels.txt"

step "check"
"$root/usr/bin/python3" - <<'EOF'
import platform, sys
import aiohttp, aiosqlite, cryptography.hazmat.bindings._rust, jinja2, paho.mqtt, pyudev, serial_asyncio, yaml
print(f"{sys.executable}: Python {platform.python_version()} on {platform.machine()};",
      f"aiohttp {aiohttp.__version__}, cryptography {cryptography.__version__}, yaml {yaml.__version__}",
      f"(C loader: {yaml.__with_libyaml__})")
EOF
step "done: $root"
