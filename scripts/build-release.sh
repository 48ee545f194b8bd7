#!/usr/bin/env bash
# Build a release artifact: fiscal-gateway-<version>-<arch>.tar.gz with release.json and wheels/
# (the project and every dependency, for CPython 3.11 on Debian 12), so a box installs it
# offline. The office signs it with `fiscal-gateway update sign`; the image build installs it.
#   scripts/build-release.sh [--arch amd64|arm64] [--out DIR]      (default: this machine's arch, ./dist)
set -euo pipefail
cd "$(dirname "$0")/.."

arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
out=dist
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--arch amd64|arm64] [--out DIR]" >&2; exit 2 ;;
  esac
done
case "$arch" in
  amd64 | x86_64) arch=amd64 machine=x86_64 ;;
  arm64 | aarch64) arch=arm64 machine=aarch64 ;;
  *) echo "build-release: unsupported arch $arch (amd64 or arm64)" >&2; exit 2 ;;
esac

pip=(python3 -m pip)
[ -x .venv/bin/python ] && pip=(.venv/bin/python -m pip)
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' gateway/__init__.py)
[ -n "$version" ] || { echo "build-release: no __version__ in gateway/__init__.py" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/wheels" "$work/share/doc" "$out"
# pip's chatter goes to a log that is shown only when a step fails.
log="$work/pip.log"
quiet() { "$@" >>"$log" 2>&1 || { cat "$log" >&2; exit 1; }; }
quiet "${pip[@]}" wheel --no-deps --wheel-dir "$work/wheels" .
# Dependencies as binary wheels for the box's interpreter (Debian 12: CPython 3.11, glibc 2.36),
# whatever machine builds the release.
platforms=()
for glibc in 2_17 2_28 2_34 2_36; do platforms+=(--platform "manylinux_${glibc}_${machine}"); done
quiet "${pip[@]}" download --disable-pip-version-check --only-binary=:all: \
  "${platforms[@]}" --platform "manylinux2014_${machine}" \
  --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
  --dest "$work/wheels" "$work"/wheels/fiscal_gateway-*.whl
printf '{"version": "%s"}\n' "$version" >"$work/release.json"
cp docs/box.md "$work/share/doc/box.md"

artifact="$out/fiscal-gateway-$version-$arch.tar.gz"
# Reproducible: sorted names, fixed owner and mtime.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@"${SOURCE_DATE_EPOCH:-0}" \
  -C "$work" -czf "$artifact.tmp" release.json wheels share
mv "$artifact.tmp" "$artifact"
echo "$artifact"
