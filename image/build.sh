#!/usr/bin/env bash
# Build the box's system from Debian packages and a gateway release (see image/README.md).
#   image/build.sh rpi [--out DIR] [--artifact FILE]   arm64 SD-card image for Raspberry Pi
#   image/build.sh vm  [--out DIR] [--artifact FILE]   amd64 tree for systemd-nspawn (CI boot test)
# Output in DIR (default build/image-<target>): rootfs/ (the tree; rootfs/data is the initial
# data partition), manifest.txt, and for rpi images/fiscal-gateway-rpi.img.xz.
# Runs as root (mmdebstrap --mode=root, chroot, genimage); installs its host tools itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

usage() { echo "usage: $0 rpi|vm [--out DIR] [--artifact FILE]" >&2; exit 2; }
target=${1:-}
[ $# -gt 0 ] && shift
case "$target" in
  rpi) arch=arm64 ;;
  vm) arch=amd64 ;;
  *) usage ;;
esac
out=$repo/build/image-$target
artifact=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --artifact) artifact=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
    *) usage ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "image/build.sh: run as root" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
started=$(date +%s)
step() { echo "== $(($(date +%s) - started)) s: $*"; }
read_list() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' -e 's/[[:space:]].*//' "$@"; }

step "host tools"
missing=()
for pkg in $(read_list "$here/host-packages.txt"); do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
  # Foreign maintainer scripts run through qemu-user; a container may not have binfmt mounted.
  [ -e /proc/sys/fs/binfmt_misc/register ] ||
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 2>/dev/null || true
  arch-test "$arch" >/dev/null || { echo "image/build.sh: cannot run $arch binaries here" >&2; exit 1; }
fi

step "gateway release"
[ -n "$artifact" ] || artifact=$("$repo/scripts/build-release.sh" --arch "$arch" --out "$out")
echo "$artifact"

# The build machine's own Debian mirrors (no host name is written here), with the components
# the Pi needs: raspi-firmware is in non-free-firmware.
sources=$out/debian.sources
if [ -n "${IMAGE_APT_SOURCES:-}" ]; then
  cp "$IMAGE_APT_SOURCES" "$sources"
elif [ -f /etc/apt/sources.list.d/debian.sources ]; then
  sed -E 's/^Components:.*/Components: main non-free-firmware/' \
    /etc/apt/sources.list.d/debian.sources >"$sources"
else
  sed -nE 's/^(deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+[^[:space:]]+).*/\1 main non-free-firmware/p' \
    /etc/apt/sources.list >"${sources%.sources}.list"
  sources=${sources%.sources}.list
fi

step "root file system ($arch, mmdebstrap)"
rm -rf "$out/rootfs"
packages=$(read_list "$here/packages/common.list" "$here/packages/$target.list" | paste -sd, -)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
# The hooks read these.
export IMAGE_TARGET=$target IMAGE_DIR=$here IMAGE_REPO=$repo IMAGE_ARTIFACT=$artifact
mmdebstrap --mode=root --variant=minbase --arch="$arch" --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --hook-dir="$here/hooks" \
  bookworm "$out/rootfs" "$sources"

step "manifest"
{
  echo "target: $target ($arch)"
  echo "gateway: $(basename "$artifact")"
  echo "source: $(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "SOURCE_DATE_EPOCH: $SOURCE_DATE_EPOCH"
  echo "packages:"
  chroot "$out/rootfs" dpkg-query -W -f='  ${Package} ${Version}\n'
} >"$out/manifest.txt"

if [ "$target" = rpi ]; then
  step "SD-card image (genimage)"
  rm -rf "$out/images" "$out/genimage.tmp"
  mkdir -p "$out/images"
  genimage --rootpath "$out/rootfs" --tmppath "$out/genimage.tmp" --inputpath "$out/images" \
    --outputpath "$out/images" --config "$here/genimage/rpi.cfg"
  rm -rf "$out/genimage.tmp" "$out/images/root-b.ext4"  # slot B is empty: nothing to keep
  sfdisk -l "$out/images/fiscal-gateway-rpi.img"
  step "compress"
  xz -T0 -1 -f "$out/images/fiscal-gateway-rpi.img"
  ls -l "$out/images"
fi
step "done: $out"
