#!/bin/sh
# Runs the real `udevadm test` on a umockdev test bed, inside a throw-away mount namespace.
#
#   unshare --mount --propagation private -- sh udevadm-test-in-namespace.sh \
#       RULES_FILE DEVICE_FILE SYSPATH ACTION...
#
# As root, `udevadm test` really creates /dev links, /dev/char entries and /run/udev data, so
# everything it may write (/dev, /run, the rules directories) is a private tmpfs here. Only the
# given rules file is installed, unless KEEP_STOCK_RULES=1 keeps the distribution's rules too.
# The tty's node is a real char node 166:0 in the private /dev, so GROUP/MODE really apply.
# For each ACTION it prints `@@ begin ACTION`, udevadm's output (stdout and stderr), then
# `@@ end ACTION link=<target of /dev/fiscal-register> node=<mode>:<gid of /dev/ttyACM0>`.
set -eu

# Refuse to run in the caller's mount namespace: the mounts below would hide the host's /dev.
if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink "/proc/$PPID/ns/mnt")" ]; then
    echo "not in a private mount namespace; run me under unshare --mount" >&2
    exit 2
fi

rules_file=$1
device_file=$2
syspath=$3
shift 3

# Read the inputs before /run is hidden: they may live under it.
rules_text=$(cat "$rules_file")
device_text=$(cat "$device_file")
rules_name=$(basename "$rules_file")

for dir in /etc/udev/rules.d /usr/local/lib/udev/rules.d /usr/lib/udev/rules.d; do
    if [ -d "$dir" ] && { [ "${KEEP_STOCK_RULES:-0}" != 1 ] || [ "$dir" = /etc/udev/rules.d ]; }; then
        mount -t tmpfs -o mode=0755 tmpfs "$dir"
    fi
done
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/udev/rules.d /run/bed /run/tmp
printf '%s\n' "$rules_text" >"/etc/udev/rules.d/$rules_name"
printf '%s\n' "$device_text" >/run/bed/device.umockdev

# A private /dev with only what a shell and udevadm need, plus the tty's real node.
newdev=/run/bed/dev
mkdir "$newdev"
mount -t tmpfs -o mode=0755 tmpfs "$newdev"
for node in null zero full random urandom tty; do
    touch "$newdev/$node"
    mount --bind "/dev/$node" "$newdev/$node"
done
mkdir "$newdev/pts"
mount --bind /dev/pts "$newdev/pts"
ln -s pts/ptmx "$newdev/ptmx"
mount --move "$newdev" /dev
mknod -m 0600 /dev/ttyACM0 c 166 0

for action in "$@"; do
    echo "@@ begin $action"
    TMPDIR=/run/tmp umockdev-run --device /run/bed/device.umockdev -- \
        udevadm test --action="$action" "$syspath" 2>&1
    echo "@@ end $action link=$(readlink /dev/fiscal-register || true)" \
        "node=$(stat -c '%a:%g' /dev/ttyACM0)"
done
