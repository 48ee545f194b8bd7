#!/bin/sh
# Install fiscal-gateway as a service on a Raspberry Pi OS / Debian 12 box, or into a root file
# system being built (the SD-card image).
#   sudo scripts/install-box.sh                      this machine: build a release here, install, start
#   sudo scripts/install-box.sh --artifact FILE      install a release built by scripts/build-release.sh
#   scripts/install-box.sh --root DIR --artifact FILE   into DIR (image build): nothing is started
# Re-running it installs the given version as a new release and switches to it (confirmed at
# once: an operator is present). Remote updates go through `fiscal-gateway update`.
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
R=""
ARTIFACT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --root) R=$(cd "$2" && pwd); shift 2 ;;
        --artifact) ARTIFACT=$2; shift 2 ;;
        *) echo "usage: $0 [--root DIR] [--artifact FILE]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
# Run a command in the target system: the image's own python3 builds the release's venv.
in_target() { if [ -n "$R" ]; then chroot "$R" "$@"; else "$@"; fi; }

ROOT=/opt/fiscal-gateway
if [ -z "$R" ]; then
    apt-get install -y --no-install-recommends python3 python3-venv
fi
if [ -z "$ARTIFACT" ]; then
    ARTIFACT=$("$SRC/scripts/build-release.sh" --out "$(mktemp -d)")
fi

install -D -m 0644 "$SRC/systemd/sysusers.d/fiscal-gateway.conf" "$R/usr/lib/sysusers.d/fiscal-gateway.conf"
install -D -m 0644 "$SRC/systemd/tmpfiles.d/fiscal-gateway.conf" "$R/usr/lib/tmpfiles.d/fiscal-gateway.conf"
install -D -m 0644 "$SRC/systemd/udev/60-fiscal-register.rules" "$R/etc/udev/rules.d/60-fiscal-register.rules"
install -D -m 0644 "$SRC/systemd/fiscal-gateway.service" "$R/etc/systemd/system/fiscal-gateway.service"
if [ -n "$R" ]; then
    # With --root the config file names are still the build machine's paths.
    systemd-sysusers --root="$R" "$R/usr/lib/sysusers.d/fiscal-gateway.conf"
    systemd-tmpfiles --root="$R" --create "$R/usr/lib/tmpfiles.d/fiscal-gateway.conf"
else
    systemd-sysusers /usr/lib/sysusers.d/fiscal-gateway.conf
    systemd-tmpfiles --create /usr/lib/tmpfiles.d/fiscal-gateway.conf
fi

# The release, exactly as an update installs one: unpacked side by side, its own venv built
# offline from the wheels it carries, `fiscal-gateway --version` run before anything switches.
STAGE="$R$ROOT/releases/.install"
rm -rf "$STAGE"
mkdir -p "$STAGE"
tar -xzf "$ARTIFACT" -C "$STAGE" --no-same-owner
VERSION=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$STAGE/release.json")
[ -n "$VERSION" ] || { echo "install-box: $ARTIFACT has no version in release.json" >&2; exit 1; }
REL="$ROOT/releases/$VERSION"
rm -rf "$R$REL"
mv "$STAGE" "$R$REL"
in_target python3 -m venv "$REL/venv"
in_target sh -c "'$REL/venv/bin/python' -m pip install --quiet --no-index --no-cache-dir \
    --disable-pip-version-check --find-links '$REL/wheels' '$REL'/wheels/*.whl"
in_target "$REL/venv/bin/fiscal-gateway" --version
touch "$R$REL/.complete"
in_target chown -R fiscalgw:fiscalgw "$ROOT"
for link in current confirmed; do
    ln -sfn "releases/$VERSION" "$R$ROOT/.$link.tmp" && mv -T "$R$ROOT/.$link.tmp" "$R$ROOT/$link"
done
sync

CONF="$R/etc/fiscal-gateway"
[ -f "$CONF/config.yaml" ] || {
    install -d -m 0755 "$CONF"
    printf 'box_id: %s\nstate_dir: /var/lib/fiscal-gateway\nregister:\n  port: /dev/fiscal-register\n' \
        "$(cat "$R/etc/hostname" 2>/dev/null || hostname)" >"$CONF/config.yaml"
}
for cred in mqtt-client.key mqtt-client.crt api-tokens release-keys; do
    [ -e "$CONF/credentials/$cred" ] || install -D -m 0600 /dev/null "$CONF/credentials/$cred"
done

if [ -n "$R" ]; then
    systemctl --root="$R" enable fiscal-gateway.service
    exit 0
fi
udevadm control --reload && udevadm trigger --subsystem-match=tty
systemctl daemon-reload
systemctl enable --now fiscal-gateway.service
systemctl --no-pager status fiscal-gateway.service || true
