#!/usr/bin/env bash
# The cluster's certificates with the openssl CLI, for real hosts.
#
#   deploy/certs.sh [-d DIR] [-days N] [-force] ca
#   deploy/certs.sh [-d DIR] [-days N] [-force] node ID NAME...
#   deploy/certs.sh [-d DIR] [-days N] [-force] client NAME
#
#   ca      DIR/ca.pem and DIR/ca-key.pem: a cluster CA (ECDSA P-256, 10 years).
#           An existing CA is kept (exit 0, "kept"); -force makes a new one,
#           which invalidates every certificate it signed.
#   node    DIR/node-ID.pem and DIR/node-ID-key.pem: a node certificate with
#           the node-id SAN URI:mayfly://node/ID (what src/net/tls.h reads; a
#           peer whose certificate names another id is refused), serverAuth and
#           clientAuth, and each NAME as a SAN: an IPv4/IPv6 literal becomes an
#           IP SAN, anything else a DNS SAN. Name every address peers and
#           clients dial (they check it), e.g. `node 1 db1.example.com 10.0.1.10`.
#           Add 127.0.0.1 and localhost if you run the CLI on the host itself.
#   client  DIR/client-NAME.pem and DIR/client-NAME-key.pem: clientAuth only,
#           no node id (for the cert auth method; CN=NAME).
#
# Keys are 0600 (made under umask 077), certificates 0644, DIR 0700. Running
# the same command twice changes nothing: an existing node or client
# certificate is kept unless -force (reissue it when its names change). The
# CA key signs node identities: keep it off the nodes (only ca.pem, node-ID.pem
# and node-ID-key.pem go to node ID). Defaults: DIR ./mayfly-certs, -days 365
# for leaves.
set -euo pipefail

dir=./mayfly-certs
days=365
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    -d) dir=$2; shift 2 ;;
    -days) days=$2; shift 2 ;;
    -force) force=1; shift ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "certs.sh: unknown flag $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
cmd=${1:-}
[ -n "$cmd" ] || { echo "usage: $0 [-d DIR] [-days N] [-force] ca|node ID NAME...|client NAME" >&2; exit 2; }
shift
case "$days" in ''|*[!0-9]*) echo "certs.sh: -days must be a number" >&2; exit 2 ;; esac
command -v openssl >/dev/null || { echo "certs.sh: openssl is not installed" >&2; exit 1; }

umask 077
mkdir -p "$dir"
chmod 700 "$dir"
ca=$dir/ca.pem
ca_key=$dir/ca-key.pem

is_ip() { # an IPv4 dotted quad or anything with a ':' (IPv6)
  [[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ || $1 == *:* ]]
}

valid_name() { # what a SAN may hold; refuses spaces, commas and shell junk
  [[ $1 =~ ^[A-Za-z0-9.:*-]+$ ]]
}

# Signs a leaf: $1 base path (without .pem), $2 subject CN, $3 the
# extension text. The key and CSR are made in DIR, the CSR removed after.
sign_leaf() {
  local base=$1 cn=$2 ext=$3
  local tmp_ext
  tmp_ext=$(mktemp "$dir/.ext.XXXXXX")
  printf '%s\n' "$ext" > "$tmp_ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$base-key.pem.tmp" -subj "/O=mayfly/CN=$cn" -out "$base.csr" 2>/dev/null
  openssl x509 -req -in "$base.csr" -CA "$ca" -CAkey "$ca_key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
    -extfile "$tmp_ext" -out "$base.pem.tmp" 2>/dev/null
  rm -f "$base.csr" "$tmp_ext"
  chmod 600 "$base-key.pem.tmp"
  chmod 644 "$base.pem.tmp"
  mv -f "$base-key.pem.tmp" "$base-key.pem"
  mv -f "$base.pem.tmp" "$base.pem"
}

need_ca() {
  [ -s "$ca" ] && [ -s "$ca_key" ] || { echo "certs.sh: no CA in $dir: run '$0 -d $dir ca' first" >&2; exit 1; }
}

make_ca() {
  if [ -s "$ca" ] && [ $force -eq 0 ]; then
    echo "certs.sh: CA $ca exists, kept (-force makes a new one and invalidates every certificate it signed)"
    return 0
  fi
  local ext
  ext=$(mktemp "$dir/.ext.XXXXXX")
  cat > "$ext" <<'EOF'
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$ca_key.tmp" -subj "/O=mayfly/CN=mayfly cluster CA" -days 3650 -sha256 \
    -config "$ext" -extensions v3_ca -out "$ca.tmp" 2>/dev/null
  rm -f "$ext"
  chmod 600 "$ca_key.tmp"
  chmod 644 "$ca.tmp"
  mv -f "$ca_key.tmp" "$ca_key"
  mv -f "$ca.tmp" "$ca"
  echo "certs.sh: wrote $ca and $ca_key (keep the key off the nodes)"
}

make_node() {
  local id=${1:-}
  shift || true
  [[ $id =~ ^[1-9][0-9]{0,18}$ ]] || { echo "certs.sh: node ID must be a positive number" >&2; exit 2; }
  [ $# -gt 0 ] || { echo "certs.sh: node $id needs at least one DNS name or IP (what peers dial)" >&2; exit 2; }
  need_ca
  local base=$dir/node-$id
  if [ -s "$base.pem" ] && [ $force -eq 0 ]; then
    echo "certs.sh: $base.pem exists, kept (-force reissues it)"
    return 0
  fi
  local sans=() n
  for n in "$@"; do
    valid_name "$n" || { echo "certs.sh: '$n' is not a DNS name or IP address" >&2; exit 2; }
    if is_ip "$n"; then sans+=("IP:$n"); else sans+=("DNS:$n"); fi
  done
  sans+=("URI:mayfly://node/$id")
  local IFS=,
  sign_leaf "$base" "node-$id" "basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = ${sans[*]}"
  echo "certs.sh: wrote $base.pem (${sans[*]})"
}

make_client() {
  local name=${1:-}
  [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || { echo "certs.sh: client NAME: letters, digits, '.', '_' and '-'" >&2; exit 2; }
  need_ca
  local base=$dir/client-$name
  if [ -s "$base.pem" ] && [ $force -eq 0 ]; then
    echo "certs.sh: $base.pem exists, kept (-force reissues it)"
    return 0
  fi
  sign_leaf "$base" "$name" "basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always"
  echo "certs.sh: wrote $base.pem"
}

case "$cmd" in
  ca) make_ca ;;
  node) make_node "$@" ;;
  client) make_client "$@" ;;
  *) echo "certs.sh: unknown command '$cmd' (ca, node, client)" >&2; exit 2 ;;
esac
