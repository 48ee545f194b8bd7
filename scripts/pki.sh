#!/usr/bin/env bash
# Office CA and per-box client certificates for the MQTT broker (mutual TLS).
#
#   scripts/pki.sh ca DIR                    the office CA: DIR/ca.key (keep it offline), DIR/ca.crt
#   scripts/pki.sh box-key BOX DIR           ON THE BOX: DIR/BOX.key (never leaves it) and DIR/BOX.csr
#   scripts/pki.sh sign CA_DIR CSR [DAYS]    at the office: BOX.crt from the box's CSR (CN = box id)
#   scripts/pki.sh server CA_DIR HOST DIR    the broker's certificate for HOST
#
# The certificate's CN is the box id: Mosquitto's use_identity_as_username makes it the
# username its ACL patterns (%u) key on, so a box reaches only fiscal/v1/<its id>/... .
set -euo pipefail

die() { echo "pki.sh: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: see the comment at the top of this script"

case "$1" in
ca)
    dir=${2:?CA directory}
    mkdir -p "$dir"; umask 077
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key"
    openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 \
        -subj "/CN=fiscal-gateway office CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$dir/ca.crt"
    echo "CA: $dir/ca.crt (give it to boxes and the broker); $dir/ca.key stays offline"
    ;;
box-key)
    box=${2:?box id}; dir=${3:?directory}
    [[ $box =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || die "box id '$box': letters, digits, _ . - only"
    mkdir -p "$dir"; umask 077
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$box.key"
    openssl req -new -key "$dir/$box.key" -subj "/CN=$box" -out "$dir/$box.csr"
    echo "Key $dir/$box.key stays on this box; send $dir/$box.csr to the office"
    ;;
sign)
    ca=${2:?CA directory}; csr=${3:?CSR file}; days=${4:-825}
    cn=$(openssl req -in "$csr" -noout -subject -nameopt multiline | sed -n 's/ *commonName *= *//p')
    [[ $cn =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || die "CSR common name '$cn' is not a box id"
    ext=$(mktemp); trap 'rm -f "$ext"' EXIT
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$ext"
    openssl x509 -req -in "$csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
        -days "$days" -sha256 -extfile "$ext" -out "$(dirname "$csr")/$cn.crt"
    echo "Certificate $(dirname "$csr")/$cn.crt for box $cn"
    ;;
server)
    ca=${2:?CA directory}; host=${3:?host name or IP}; dir=${4:?directory}
    mkdir -p "$dir"; umask 077
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/server.key"
    openssl req -new -key "$dir/server.key" -subj "/CN=$host" -out "$dir/server.csr"
    ext=$(mktemp); trap 'rm -f "$ext"' EXIT
    if [[ $host =~ ^[0-9.]+$ ]]; then san="IP:$host"; else san="DNS:$host"; fi
    printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" >"$ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
        -days 825 -sha256 -extfile "$ext" -out "$dir/server.crt"
    echo "Broker certificate $dir/server.crt for $host"
    ;;
*) die "unknown command '$1'" ;;
esac
