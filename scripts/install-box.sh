#!/bin/sh
# Install fiscal-gateway as a service on an existing Raspberry Pi OS / Debian 12 box.
# Run as root from a checkout (or an unpacked source release):  sudo scripts/install-box.sh
# Re-running it installs the checkout's version as a new release and switches to it (confirmed
# at once: an operator is present). Remote updates go through `fiscal-gateway update`.
set -eu

ROOT=/opt/fiscal-gateway
SRC=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(python3 -c "import re,sys; print(re.search(r'__version__ = \"(.+)\"', open(sys.argv[1]).read()).group(1))" "$SRC/gateway/__init__.py")
REL="$ROOT/releases/$VERSION"

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

apt-get install -y --no-install-recommends python3 python3-venv
install -D -m 0644 "$SRC/systemd/sysusers.d/fiscal-gateway.conf" /usr/lib/sysusers.d/fiscal-gateway.conf
install -D -m 0644 "$SRC/systemd/tmpfiles.d/fiscal-gateway.conf" /usr/lib/tmpfiles.d/fiscal-gateway.conf
install -D -m 0644 "$SRC/systemd/udev/60-fiscal-register.rules" /etc/udev/rules.d/60-fiscal-register.rules
install -D -m 0644 "$SRC/systemd/fiscal-gateway.service" /etc/systemd/system/fiscal-gateway.service
systemd-sysusers
systemd-tmpfiles --create /usr/lib/tmpfiles.d/fiscal-gateway.conf

# The release: its own venv built from wheels made here (the box's only PyPI access).
rm -rf "$REL"
mkdir -p "$REL/wheels" "$REL/share/doc"
python3 -m venv "$REL/venv"
"$REL/venv/bin/pip" wheel --quiet --wheel-dir "$REL/wheels" "$SRC"
"$REL/venv/bin/pip" install --quiet --no-index --find-links "$REL/wheels" "$REL"/wheels/*.whl
printf '{"version": "%s"}\n' "$VERSION" > "$REL/release.json"
cp "$SRC/docs/box.md" "$REL/share/doc/box.md"
"$REL/venv/bin/fiscal-gateway" --version
touch "$REL/.complete"
chown -R fiscalgw:fiscalgw "$ROOT"
for link in current confirmed; do
    ln -sfn "releases/$VERSION" "$ROOT/.$link.tmp" && mv -T "$ROOT/.$link.tmp" "$ROOT/$link"
done
sync

[ -f /etc/fiscal-gateway/config.yaml ] || {
    install -d -m 0755 /etc/fiscal-gateway
    printf 'box_id: %s\nstate_dir: /var/lib/fiscal-gateway\nregister:\n  port: /dev/fiscal-register\n' \
        "$(hostname)" > /etc/fiscal-gateway/config.yaml
}
for cred in mqtt-client.key mqtt-client.crt api-tokens release-keys; do
    [ -e "/etc/fiscal-gateway/credentials/$cred" ] || install -m 0600 /dev/null "/etc/fiscal-gateway/credentials/$cred"
done
udevadm control --reload && udevadm trigger --subsystem-match=tty
systemctl daemon-reload
systemctl enable --now fiscal-gateway.service
systemctl --no-pager status fiscal-gateway.service || true
