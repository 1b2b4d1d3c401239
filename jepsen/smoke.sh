#!/usr/bin/env bash
# Short chaos smoke test for CI (about 90 s on 2 cores): the checker self-tests,
# then 20 s of kill + partition faults on each workload (3 nodes).
#
#   jepsen/smoke.sh [BINARY_DIR]        (default: $MF_BINARY_DIR, else build/)
#
# Needs root (iptables, setpriv). Exit 0 only if every step passes. It removes
# its processes, temp dirs and iptables chains whatever happens; results of a
# failed run are kept and their path printed.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
export MF_BINARY_DIR="${1:-${MF_BINARY_DIR:-$ROOT/build}}"
MF_BINARY_DIR="$(cd "$MF_BINARY_DIR" && pwd)" || exit 2
SEED="${MF_JEPSEN_SEED:-$(( $(date +%s) % 100000 ))}"
TIME="${MF_JEPSEN_TIME:-20}"
OUT="$(mktemp -d /tmp/mayfly-jepsen-smoke-XXXXXX)"
status=0
pids=()

cleanup() {
    # A runner that died hard (SIGKILL) cannot clean up after itself: do it here,
    # only for what this script started (its runner pids and their cluster dirs).
    for pid in "${pids[@]}"; do
        kill -INT "$pid" 2>/dev/null && sleep 2
        chain="MFJ$pid"
        if iptables -w -S "$chain" >/dev/null 2>&1; then
            iptables -w -D OUTPUT -j "$chain" 2>/dev/null
            iptables -w -F "$chain" 2>/dev/null
            iptables -w -X "$chain" 2>/dev/null
        fi
    done
    for f in "$OUT"/*/cluster_dir; do
        [ -f "$f" ] || continue
        dir="$(cat "$f")"
        case "$dir" in /tmp/mayfly-it-*) ;; *) continue ;; esac
        for p in /proc/[0-9]*; do
            if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "--config $dir/"; then
                kill -9 "${p#/proc/}" 2>/dev/null
            fi
        done
        rm -rf "$dir"
    done
    if [ "$status" = 0 ]; then rm -rf "$OUT"; else echo "smoke: results kept in $OUT"; fi
}
trap cleanup EXIT
trap 'status=130; exit 130' INT TERM

# Python runs the jepsen package as modules from the root (how it finds the
# harness, tests/harness/__init__.py); paths above are absolute already.
cd "$ROOT" || exit 2

echo "== checker self-tests"
python3 -m jepsen.test_checker 2>&1 | tail -3 || status=1
python3 -m jepsen.test_checker >/dev/null 2>&1 || status=1

run() {
    local name="$1"; shift
    echo "== $name (seed $SEED)"
    timeout -s INT 110 python3 -m jepsen.run --time "$TIME" --seed "$SEED" --concurrency 4 \
        --healthy 1.5 3 --faulty 2 4 --results "$OUT/$name" "$@" &
    local pid=$!
    pids+=("$pid")
    wait "$pid"
    local rc=$?
    if [ "$rc" != 0 ]; then
        echo "smoke: $name failed (exit $rc)"
        status=1
    fi
}
run register --workload register --nemesis kill,partition
# MF_JEPSEN_BOUND_MS widens the revocation bound (scripts/test.sh, for nodes
# under the sanitizers, which run 3-5x slower: that run hunts memory errors).
run lease --workload lease --nemesis kill,partition ${MF_JEPSEN_BOUND_MS:+--bound-ms "$MF_JEPSEN_BOUND_MS"}
[ "$status" = 0 ] && echo "smoke: OK" || echo "smoke: FAILED"
exit "$status"
