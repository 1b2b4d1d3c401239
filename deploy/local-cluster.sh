#!/usr/bin/env bash
# A 3-node mayfly cluster on this machine, one node per "zone", on loopback.
#
#   deploy/local-cluster.sh start [DIR]   certificates, configs, start, init, unseal
#   deploy/local-cluster.sh stop  [DIR]   stop the nodes (data stays in DIR)
#
# Nodes: 1 (zone a) 127.0.0.1:8270, 2 (zone b) :8370, 3 (zone c) :8470 for
# clients; peers on the port above each. The cluster is initialised with
# Shamir shares (5 shares, threshold 3) and every node is unsealed with three
# of them: the shares and the root token are in DIR/init.json (keep them
# secret; this is a local playground).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-}
dir=$(realpath -m "${2:-/tmp/mayfly-local}")
bin=${MAYFLY_BIN:-build}
ports=(8270 8370 8470)
zones=(a b c)

wait_ready() { # $1 log file
  for _ in $(seq 1 300); do
    grep -q "mayflyd: ready" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "node did not start; see $1" >&2
  return 1
}

start() {
  [ -x "$bin/mayflyd" ] || scripts/build.sh build
  mkdir -p "$dir"
  [ -f "$dir/certs/ca.pem" ] || "$bin/mayflyd" --gen-certs "$dir/certs" --nodes 3 >/dev/null
  for i in 1 2 3; do
    local p=${ports[$((i - 1))]}
    mkdir -p -m 700 "$dir/node-$i"
    {
      echo "{"
      echo "  \"node_id\": $i, \"zone\": \"${zones[$((i - 1))]}\","
      echo "  \"data_dir\": \"$dir/node-$i\","
      echo "  \"listen\": \"127.0.0.1:$p\", \"peer_listen\": \"127.0.0.1:$((p + 1))\", \"metrics_listen\": \"127.0.0.1:$((p + 2))\","
      echo "  \"tls_ca_file\": \"$dir/certs/ca.pem\","
      echo "  \"tls_cert_file\": \"$dir/certs/node-$i.pem\","
      echo "  \"tls_key_file\": \"$dir/certs/node-$i-key.pem\","
      echo "  \"peers\": ["
      local sep=""
      for j in 1 2 3; do
        [ "$j" = "$i" ] && continue
        local q=${ports[$((j - 1))]}
        echo "    $sep{\"id\": $j, \"addr\": \"127.0.0.1:$((q + 1))\", \"api_addr\": \"127.0.0.1:$q\", \"zone\": \"${zones[$((j - 1))]}\"}"
        sep=","
      done
      echo "  ]"
      echo "}"
    } > "$dir/node-$i.json"
    : > "$dir/node-$i.log"
    nohup "$bin/mayflyd" --config "$dir/node-$i.json" >> "$dir/node-$i.log" 2>&1 &
    echo $! > "$dir/node-$i.pid"
  done
  for i in 1 2 3; do wait_ready "$dir/node-$i.log"; done
  export MAYFLY_ADDR="127.0.0.1:8270,127.0.0.1:8370,127.0.0.1:8470"
  export MAYFLY_CACERT="$dir/certs/ca.pem"
  if [ ! -s "$dir/init.json" ]; then
    "$bin/mayfly" -format json -timeout 30s operator init -shares 5 -threshold 3 > "$dir/init.json"
    chmod 600 "$dir/init.json"
  fi
  shares=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["shares"][:3]))' "$dir/init.json")
  for i in 1 2 3; do
    for s in $shares; do
      "$bin/mayfly" -addr "127.0.0.1:${ports[$((i - 1))]}" -timeout 30s operator unseal "$s" >/dev/null || true
    done
  done
  token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root_token"])' "$dir/init.json")
  echo "mayfly: 3 nodes up in $dir (logs: $dir/node-N.log). Paste into a shell:"
  echo
  echo "export MAYFLY_ADDR='$MAYFLY_ADDR'"
  echo "export MAYFLY_CACERT='$MAYFLY_CACERT'"
  echo "export MAYFLY_TOKEN='$token'"
}

stop() {
  for i in 1 2 3; do
    if [ -f "$dir/node-$i.pid" ]; then
      kill "$(cat "$dir/node-$i.pid")" 2>/dev/null || true
      rm -f "$dir/node-$i.pid"
    fi
  done
  echo "stopped (data kept in $dir)"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop [DIR]" >&2; exit 1 ;;
esac
