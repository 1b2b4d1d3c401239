#!/usr/bin/env bash
# Installs every Debian package that the build, the tests and the dev server
# need. Safe to run twice (apt-get skips what is installed). Needs root or sudo.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang        # compilers, build, fuzzing
  libssl-dev                                    # TLS 1.3, AES-256-GCM, SHA-256, X.509
  libuv1-dev                                    # event loop, TCP, timers, threads
  liblmdb-dev lmdb-utils                        # storage (Raft log and state)
  libprotobuf-c-dev protobuf-c-compiler         # wire format (client API, peers, commands)
  libjansson-dev                                # JSON config and CLI output
  libcmocka-dev                                 # unit tests
  libgfshare-dev                                # Shamir shares for the root key
  libpq-dev postgresql                          # PostgreSQL engine and its tests
  libmicrohttpd-dev                             # /metrics and health endpoint
  iproute2 iptables faketime                    # partitions and clock skew in tests
  procps psmisc openssl ca-certificates python3 # process control, integration test harness
  python3-yaml                                  # deploy/ checks: the k8s manifests parsed
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# promtool (tests/integration/test_metrics.py runs `promtool check metrics`):
# Debian's prometheus package unpacked into /opt/promtool, not installed (no
# service). Optional: without it the test relies on its own strict parser.
install_promtool() {
  [ -x /opt/promtool/usr/bin/promtool ] && return 0
  local tmp
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
    $SUDO mkdir -p /opt/promtool && $SUDO dpkg-deb -x "$tmp"/prometheus_*.deb /opt/promtool
  else
    echo "setup: promtool not installed (apt-get download prometheus failed)"
  fi
  rm -rf "$tmp"
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  install_promtool
  exit 0
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_promtool
