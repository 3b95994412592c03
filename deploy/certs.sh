#!/usr/bin/env bash
# Makes a development CA and node certificates for mutual TLS between Cnn.Distributed nodes, with openssl.
#
#   deploy/certs.sh [--out DIR] [--days N] [--password P] [NAME...]
#
# NAME defaults to "coordinator worker". In DIR (default deploy/certs) it writes:
#   ca.pem, ca.key          the CA (made once; a later call signs new names with the same CA)
#   NAME.pem, NAME.key      the node's certificate and private key (PEM, key unencrypted)
#   NAME.p12                certificate + key + the CA, in one PKCS#12 file (password P, default empty)
# Every node certificate is valid for both ends of a connection (EKU serverAuth and clientAuth), for the DNS
# names NAME and localhost and the loopback addresses, though the cluster does not check names: a peer is
# accepted when its certificate chains to the CA (see src/Messages/NodeTls.cs).
#
# One setting turns TLS on:   CNN_TLS_CERT=DIR/NAME.p12   (the CA inside it is the one trusted)
# or, with PEM files:         CNN_TLS_CERT=DIR/NAME.pem CNN_TLS_KEY=DIR/NAME.key CNN_TLS_CA=DIR/ca.pem
# A second CA (for testing refusals) is just another --out directory.
#
# Dev only: the CA key sits next to the certificates, unencrypted. Keep ca.key off the nodes.
set -euo pipefail

out="$(dirname "$0")/certs"
days=365
password=""
names=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    --password) password="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "certs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
[[ ${#names[@]} -gt 0 ]] || names=(coordinator worker)
command -v openssl >/dev/null || { echo "certs.sh: openssl not found; install it (apt-get install openssl)" >&2; exit 2; }
[[ "$days" =~ ^[0-9]+$ && "$days" -gt 0 ]] || { echo "certs.sh: --days $days is not a positive number" >&2; exit 2; }
for name in "${names[@]}"; do
  [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9.-]*$ ]] || { echo "certs.sh: '$name' is not a host-name-like node name" >&2; exit 2; }
done

mkdir -p "$out"
umask 077
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [[ ! -f "$out/ca.pem" || ! -f "$out/ca.key" ]]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$out/ca.key"
  openssl req -x509 -new -key "$out/ca.key" -sha256 -days "$days" -subj "/CN=Cnn.Distributed dev CA $(date -u +%Y%m%d%H%M%S)" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$out/ca.pem"
  echo "certs.sh: new CA $out/ca.pem"
fi

for name in "${names[@]}"; do
  openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/key.sec1"
  openssl pkcs8 -topk8 -nocrypt -in "$tmp/key.sec1" -out "$out/$name.key"
  openssl req -new -key "$out/$name.key" -subj "/CN=$name" -out "$tmp/$name.csr"
  cat > "$tmp/$name.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1,IP:::1
EOF
  openssl x509 -req -in "$tmp/$name.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -CAcreateserial -days "$days" -sha256 \
    -extfile "$tmp/$name.ext" -out "$out/$name.pem" 2>/dev/null
  openssl pkcs12 -export -in "$out/$name.pem" -inkey "$out/$name.key" -certfile "$out/ca.pem" -name "$name" \
    -passout "pass:$password" -out "$out/$name.p12"
  echo "certs.sh: $out/$name.pem, $out/$name.key, $out/$name.p12"
done
# Certificates are public; keys and PKCS#12 files stay readable by their owner only (0600, from the umask).
chmod 0644 "$out/ca.pem"
for name in "${names[@]}"; do chmod 0644 "$out/$name.pem"; done
