#!/usr/bin/env bash
# A 5-node mayfly cluster in 3 zones on one machine, in network namespaces,
# with WAN-like latency between the zones. ROOT ONLY (ip netns, iptables, tc).
#
#   deploy/zones.sh start [DIR]      namespaces, latency, certificates, configs,
#                                    start, init (5 shares, threshold 3), unseal
#   deploy/zones.sh stop  [DIR]      stop the nodes, delete the namespaces
#                                    (idempotent; safe after a failed start)
#   deploy/zones.sh cut ZONE [DIR]   cut a whole zone off (its links go down)
#   deploy/zones.sh heal ZONE [DIR]  bring that zone's links back
#   deploy/zones.sh cli [ARGS...]    run `mayfly ARGS` in the client namespace
#                                    with MAYFLY_ADDR/CACERT/TOKEN set
#
# Layout (namespaces are named $MF_ZONES_PREFIX-*, default mfz; nothing is
# added to the root namespace):
#   mfz-hub   a router: one veth per node (hub side nI 10.93.I.1/24) and one
#             to the client (cli 10.93.100.1/24); the latency is applied here
#   mfz-nI    node I at 10.93.I.2 (clients :8270, peers :8271, metrics
#             127.0.0.1:8272 on the namespace's own loopback)
#   mfz-cli   the client at 10.93.100.2 (no added latency to any node)
# Zones: a = nodes 1 and 4, b = nodes 2 and 5, c = node 3 (2/2/1: the
# cluster survives the loss of any one zone).
#
# Latency, one way, per packet: MF_ZONES_INTRA_MS (1) inside a zone,
# MF_ZONES_CROSS_MS (20) +- MF_ZONES_JITTER_MS (5) across zones (so about
# 40 ms round trip between zones). With `tc qdisc netem` where the kernel has
# sch_netem; where it has not (MF_ZONES_DELAY=auto finds out, or force netem
# or nfqueue), forwarded packets go through NFQUEUE to deploy/netdelay.py,
# which applies the same rule in user space.
#
# Timing suited to 40 ms round trips: heartbeat 100 ms, election timeout
# 600 ms (MF_ZONES_HEARTBEAT_TICKS 10, MF_ZONES_ELECTION_TICKS 60).
# Certificates: `mayflyd --gen-certs --hosts` (each node's namespace IP).
# DIR (default /tmp/mayfly-zones) holds certs/, node-I.json, node-I/ (data),
# node-I.log, init.json (the shares and root token: a playground only).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cmd=${1:-}
shift || true

P=${MF_ZONES_PREFIX:-mfz}
bin=$(realpath -m "${MAYFLY_BIN:-build}")
intra=${MF_ZONES_INTRA_MS:-1}
cross=${MF_ZONES_CROSS_MS:-20}
jitter=${MF_ZONES_JITTER_MS:-5}
delay_mode=${MF_ZONES_DELAY:-auto}
hb_ticks=${MF_ZONES_HEARTBEAT_TICKS:-10}
el_ticks=${MF_ZONES_ELECTION_TICKS:-60}
NODES=(1 2 3 4 5)
declare -A ZONE=([1]=a [2]=b [3]=c [4]=a [5]=b)
HUB=$P-hub
CLI=$P-cli
QUEUE=${MF_ZONES_QUEUE:-7}

ip_of() { echo "10.93.$1.2"; }
addrs() { local s="" i; for i in "${NODES[@]}"; do s+="${s:+,}$(ip_of "$i"):8270"; done; echo "$s"; }
die() { echo "zones.sh: $*" >&2; exit 1; }
log() { echo "zones.sh: $*"; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, veth pairs, iptables/tc)"
  command -v ip >/dev/null || die "needs ip (iproute2)"
  command -v tc >/dev/null || die "needs tc (iproute2)"
}

dir_arg() { dir=$(realpath -m "${1:-/tmp/mayfly-zones}"); }

# --- network ---------------------------------------------------------------

netns_up() {
  local ns
  for ns in "$HUB" "$CLI" $(for i in "${NODES[@]}"; do echo "$P-n$i"; done); do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip netns exec "$HUB" sysctl -qw net.ipv4.ip_forward=1
  local i
  for i in "${NODES[@]}"; do
    ip -n "$HUB" link add "n$i" type veth peer name eth0 netns "$P-n$i"
    ip -n "$HUB" addr add "10.93.$i.1/24" dev "n$i"
    ip -n "$HUB" link set "n$i" up
    ip -n "$P-n$i" addr add "$(ip_of "$i")/24" dev eth0
    ip -n "$P-n$i" link set eth0 up
    ip -n "$P-n$i" route add default via "10.93.$i.1"
  done
  ip -n "$HUB" link add cli type veth peer name eth0 netns "$CLI"
  ip -n "$HUB" addr add 10.93.100.1/24 dev cli
  ip -n "$HUB" link set cli up
  ip -n "$CLI" addr add 10.93.100.2/24 dev eth0
  ip -n "$CLI" link set eth0 up
  ip -n "$CLI" route add default via 10.93.100.1
}

have_netem() {
  tc -n "$HUB" qdisc add dev cli root netem delay 0ms 2>/dev/null || return 1
  tc -n "$HUB" qdisc del dev cli root 2>/dev/null || true
}

# netem on the hub's egress toward node J: packets from J's zone get the intra
# delay, from other nodes the cross delay, anything else (client, ARP) none.
latency_netem() {
  local j i
  for j in "${NODES[@]}"; do
    local dev=n$j
    tc -n "$HUB" qdisc add dev "$dev" root handle 1: prio bands 3 priomap 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2
    tc -n "$HUB" qdisc add dev "$dev" parent 1:1 handle 10: netem delay "${intra}ms"
    tc -n "$HUB" qdisc add dev "$dev" parent 1:2 handle 20: netem delay "${cross}ms" "${jitter}ms"
    for i in "${NODES[@]}"; do
      [ "$i" = "$j" ] && continue
      local band=1:2
      [ "${ZONE[$i]}" = "${ZONE[$j]}" ] && band=1:1
      tc -n "$HUB" filter add dev "$dev" parent 1: protocol ip prio 1 u32 \
        match ip src "$(ip_of "$i")/32" flowid "$band"
    done
  done
}

latency_nfqueue() {
  command -v iptables >/dev/null || die "no netem in this kernel and no iptables for the NFQUEUE fallback"
  local zones=() i
  for i in "${NODES[@]}"; do zones+=(--zone "$(ip_of "$i")/32=${ZONE[$i]}"); done
  ip netns exec "$HUB" iptables -A FORWARD -j NFQUEUE --queue-num "$QUEUE" --queue-bypass
  : > "$dir/netdelay.log"
  ip netns exec "$HUB" python3 "$root/deploy/netdelay.py" --queue "$QUEUE" "${zones[@]}" \
    --intra-ms "$intra" --cross-ms "$cross" --jitter-ms "$jitter" >> "$dir/netdelay.log" 2>&1 &
  echo $! > "$dir/netdelay.pid"
  wait_line "$dir/netdelay.log" "netdelay: ready" 100 || die "netdelay did not start: $(cat "$dir/netdelay.log")"
}

latency_up() {
  local mode=$delay_mode
  if [ "$mode" = auto ]; then
    if have_netem; then mode=netem; else mode=nfqueue; fi
  fi
  case "$mode" in
    netem) latency_netem ;;
    nfqueue) latency_nfqueue ;;
    *) die "MF_ZONES_DELAY must be auto, netem or nfqueue" ;;
  esac
  echo "$mode" > "$dir/delay-mode"
  log "latency: ${intra} ms inside a zone, ${cross} +- ${jitter} ms across (one way, $mode)"
}

# --- nodes -------------------------------------------------------------------

wait_line() { # FILE TEXT TENTHS
  for _ in $(seq 1 "$3"); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

write_config() {
  local i=$1 j sep=""
  {
    echo "{"
    echo "  \"node_id\": $i, \"zone\": \"${ZONE[$i]}\","
    echo "  \"data_dir\": \"$dir/node-$i\","
    echo "  \"listen\": \"$(ip_of "$i"):8270\", \"peer_listen\": \"$(ip_of "$i"):8271\","
    echo "  \"metrics_listen\": \"127.0.0.1:8272\","
    echo "  \"tls_ca_file\": \"$dir/certs/ca.pem\","
    echo "  \"tls_cert_file\": \"$dir/certs/node-$i.pem\","
    echo "  \"tls_key_file\": \"$dir/certs/node-$i-key.pem\","
    echo "  \"heartbeat_ticks\": $hb_ticks, \"election_ticks\": $el_ticks,"
    echo "  \"peers\": ["
    for j in "${NODES[@]}"; do
      [ "$j" = "$i" ] && continue
      echo "    $sep{\"id\": $j, \"addr\": \"$(ip_of "$j"):8271\", \"api_addr\": \"$(ip_of "$j"):8270\", \"zone\": \"${ZONE[$j]}\"}"
      sep=","
    done
    echo "  ]"
    echo "}"
  } > "$dir/node-$i.json"
}

cli_env() {
  export MAYFLY_ADDR=${MAYFLY_ADDR:-$(addrs)}
  export MAYFLY_CACERT=$dir/certs/ca.pem
  if [ -z "${MAYFLY_TOKEN:-}" ] && [ -s "$dir/init.json" ]; then
    MAYFLY_TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root_token"])' "$dir/init.json")
    export MAYFLY_TOKEN
  fi
}

mayfly_in_cli() { ip netns exec "$CLI" "$bin/mayfly" "$@"; }

nodes_up() {
  local hosts="" i
  for i in "${NODES[@]}"; do hosts+="${hosts:+;}$i=$(ip_of "$i")"; done
  "$bin/mayflyd" --gen-certs "$dir/certs" --nodes "${#NODES[@]}" --hosts "$hosts" >/dev/null
  for i in "${NODES[@]}"; do
    mkdir -p "$dir/node-$i"
    chmod 700 "$dir/node-$i"
    write_config "$i"
    : > "$dir/node-$i.log"
    ip netns exec "$P-n$i" "$bin/mayflyd" --config "$dir/node-$i.json" >> "$dir/node-$i.log" 2>&1 &
    echo $! > "$dir/node-$i.pid"
  done
  for i in "${NODES[@]}"; do
    wait_line "$dir/node-$i.log" "mayflyd: ready" 300 || die "node $i did not start; see $dir/node-$i.log"
  done
}

init_unseal() {
  cli_env
  local i s
  for _ in $(seq 1 60); do
    if mayfly_in_cli -format json -timeout 10s operator init -shares 5 -threshold 3 > "$dir/init.json.tmp" 2>>"$dir/cli.log"; then
      break
    fi
    sleep 0.5 # no leader yet: the first election across zones
  done
  [ -s "$dir/init.json.tmp" ] || die "operator init failed; see $dir/cli.log"
  chmod 600 "$dir/init.json.tmp"
  mv "$dir/init.json.tmp" "$dir/init.json"
  local shares
  shares=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["shares"][:3]))' "$dir/init.json")
  for i in "${NODES[@]}"; do
    for s in $shares; do
      mayfly_in_cli -addr "$(ip_of "$i"):8270" -timeout 10s operator unseal "$s" >/dev/null 2>>"$dir/cli.log" || true
    done
  done
  unset MAYFLY_TOKEN
  cli_env
  for i in "${NODES[@]}"; do
    for _ in $(seq 1 100); do
      mayfly_in_cli -addr "$(ip_of "$i"):8270" -format json -timeout 5s status 2>/dev/null |
        grep -q '"sealed": *false' && break
      sleep 0.2
    done
  done
}

start() {
  need_root
  [ -x "$bin/mayflyd" ] && [ -x "$bin/mayfly" ] || die "build mayflyd and mayfly first (MAYFLY_BIN=$bin)"
  command -v python3 >/dev/null || die "needs python3"
  stop quiet
  # DIR: new, empty, or one an earlier start made (then wiped: a playground).
  if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
    [ -f "$dir/.mayfly-zones" ] || die "$dir is not empty and not a zones.sh directory; pick another DIR"
    find "$dir" -mindepth 1 -delete
  fi
  mkdir -p "$dir"
  chmod 700 "$dir"
  touch "$dir/.mayfly-zones"
  # shellcheck disable=SC2154 # rc is set inside the trap
  trap 'rc=$?; if [ $rc -ne 0 ]; then echo "zones.sh: start failed; cleaning up" >&2; stop quiet; fi' EXIT
  netns_up
  latency_up
  nodes_up
  init_unseal
  trap - EXIT
  log "5 nodes up in 3 zones (a: 1,4  b: 2,5  c: 3), logs in $dir/node-N.log"
  echo "export MAYFLY_ADDR='$MAYFLY_ADDR'"
  echo "export MAYFLY_CACERT='$MAYFLY_CACERT'"
  echo "export MAYFLY_TOKEN='$MAYFLY_TOKEN'"
  echo "# run the CLI inside the client namespace: ip netns exec $CLI mayfly status"
  echo "# or: deploy/zones.sh cli status"
}

# Stops what this script started and deletes its namespaces. Each step
# tolerates its object being gone, so it is safe after any failure.
stop() {
  local quiet=${1:-}
  local f pid ns
  for f in "$dir"/node-*.pid "$dir"/netdelay.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  # Anything still running inside our namespaces is ours (started by start).
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$P-(hub|cli|n[0-9]+)$" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  done
  for _ in $(seq 1 50); do
    local left=0
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$P-(hub|cli|n[0-9]+)$" || true); do
      [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && left=1
    done
    [ $left -eq 0 ] && break
    sleep 0.1
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$P-(hub|cli|n[0-9]+)$" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  [ -n "$quiet" ] || log "stopped; namespaces $P-* deleted (data kept in $dir)"
}

zone_links() { # ZONE up|down
  local z=$1 i found=0
  for i in "${NODES[@]}"; do
    [ "${ZONE[$i]}" = "$z" ] || continue
    ip -n "$HUB" link set "n$i" "$2"
    found=1
  done
  [ $found -eq 1 ] || die "no zone '$z' (zones: a b c)"
  log "zone $z links $2"
}

case "$cmd" in
  start) dir_arg "${1:-}"; start ;;
  stop) need_root; dir_arg "${1:-}"; stop ;;
  cut) need_root; [ -n "${1:-}" ] || die "cut ZONE"; dir_arg "${2:-}"; zone_links "$1" down ;;
  heal) need_root; [ -n "${1:-}" ] || die "heal ZONE"; dir_arg "${2:-}"; zone_links "$1" up ;;
  cli) need_root; dir_arg "${MF_ZONES_DIR:-}"; cli_env; mayfly_in_cli "$@" ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
