#!/usr/bin/env bash
# Boot the Raspberry Pi SD-card image's arm64 system under qemu (-M virt, emulated CPU): the
# image's own partitions and kernel command line, with the Debian arm64 kernel and initrd taken
# from its boot partition in place of the Pi firmware. Shows on a build machine that a card
# comes up as in a shop: settings put on the card are imported, the data partition grows to the
# card, the root is read-only, the gateway is READY and prints a receipt over its HTTP API.
#   image/boot-qemu.sh [OUT]     OUT of `image/build.sh rpi` (default build/image-rpi)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$(dirname "$here")/build/image-rpi}
image=$out/images/fiscal-gateway-rpi.img.xz
[ -f "$image" ] || { echo "boot-qemu: no $image; run image/build.sh rpi first" >&2; exit 2; }
command -v qemu-system-aarch64 >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-arm
}
work=$(mktemp -d)
qemu_pid=""
cleanup() { [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
started=$(date +%s)
step() { echo "== $(($(date +%s) - started)) s: $*"; }

step "card: the image on a card 1 GB larger than the image"
xz -dc "$image" >"$work/card.img"
truncate -s +1G "$work/card.img"
boot_start=$(sfdisk --dump "$work/card.img" | sed -n 's/.*card.img1 : start= *\([0-9]*\),.*/\1/p')
fat="$work/card.img@@$((boot_start * 512))"

step "settings on the boot partition, as a technician puts them (mtools, no mount)"
token=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
mkdir -p "$work/settings/credentials"
printf '%s\n' "$token" >"$work/settings/credentials/api-tokens"
cat >"$work/settings/config.yaml" <<EOF
box_id: qemu-box
state_dir: /var/lib/fiscal-gateway
register:
  port: emulator
http:
  listen: 0.0.0.0:16732
  tokens:
    - name: check
      token_file: credential:api-tokens
EOF
mcopy -i "$fat" -s -o "$work/settings/config.yaml" "$work/settings/credentials" ::fiscal-gateway/
mcopy -i "$fat" "::cmdline.txt" "$work/cmdline.txt"
kernel=$(mdir -i "$fat" -b :: | sed -n 's|^::/||p' | grep '^vmlinuz-' | sort -V | tail -n 1)
initrd=$(mdir -i "$fat" -b :: | sed -n 's|^::/||p' | grep '^initrd.img-' | sort -V | tail -n 1)
mcopy -i "$fat" "::$kernel" "$work/vmlinuz"
mcopy -i "$fat" "::$initrd" "$work/initrd"
cmdline="$(tr -d '\n' <"$work/cmdline.txt") console=ttyAMA0"
echo "kernel $kernel; cmdline: $cmdline"

step "boot (qemu-system-aarch64 -M virt -cpu cortex-a72, 1 GB, 2 CPUs)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -nographic -no-reboot \
  -kernel "$work/vmlinuz" -initrd "$work/initrd" -append "$cmdline" \
  -drive "file=$work/card.img,if=virtio,format=raw" \
  -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:16732" -device virtio-net-pci,netdev=net0 \
  </dev/null >"$out/qemu-console.log" 2>&1 &
qemu_pid=$!
api="http://127.0.0.1:$port"
for _ in $(seq 1 600); do
  curl -sf "$api/health" >"$work/health.json" 2>/dev/null && break
  kill -0 "$qemu_pid" 2>/dev/null || { tail -n 40 "$out/qemu-console.log"; exit 1; }
  sleep 1
done
[ -s "$work/health.json" ] || { tail -n 40 "$out/qemu-console.log"; echo "boot-qemu: no /health" >&2; exit 1; }
step "/health answers"
python3 -m json.tool "$work/health.json"

step "a receipt over the HTTP API, with the imported token"
curl -sf -X POST "$api/api/v2/requests" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"uuid": "qemu-0001", "request": [{
      "type": "sell", "taxationType": "osn", "operator": {"name": "Иванова А."},
      "items": [{"type": "position", "name": "Хлеб", "price": 45, "quantity": 1,
                 "amount": 45, "tax": {"type": "vat10"}}],
      "payments": [{"type": "cash", "sum": 45}], "total": 45}]}'
echo
for _ in $(seq 1 120); do
  curl -sf -H "Authorization: Bearer $token" "$api/api/v2/requests/qemu-0001" >"$work/result.json"
  grep -q '"ready"' "$work/result.json" && break
  sleep 1
done
python3 -m json.tool "$work/result.json"
grep -q '"fiscalDocumentNumber"' "$work/result.json"

step "power off, then the card as a PC would see it"
kill "$qemu_pid"; wait "$qemu_pid" 2>/dev/null || true; qemu_pid=""
sfdisk -l "$work/card.img" | tail -n 5
mdir -i "$fat" ::fiscal-gateway/
mtype -i "$fat" ::fiscal-gateway/IMPORTED.txt | tr -d '\r'
echo "console log: $out/qemu-console.log"
grep -E "fiscal-gateway|Grow|FGDATA|Read-only" "$out/qemu-console.log" | tail -n 20 || true
step "done"
