#!/bin/bash
# Audit throughput A/B (README "Audit figures"): mayfly-bench put and get-l
# with audit off, then on, interleaved for two builds on two dev servers.
#   [TOTAL=5000] [CLIENTS="64"] bench/audit_ab.sh BEFORE_BUILD_DIR AFTER_BUILD_DIR [ROUNDS=3]
# Each build dir holds mayflyd, mayfly and bench/mayfly-bench (TOTAL ops a
# run, for each client count in CLIENTS). Prints one line a run:
# BUILD off|on WORKLOAD c=CLIENTS ops/s=N.
set -u
ROUNDS=${3:-3}; TOTAL=${TOTAL:-5000}; CLIENTS=${CLIENTS:-64}
start() {
    local d port
    d=$(mktemp -d /tmp/audit-ab.XXXXXX)
    port=$((20000 + RANDOM % 20000))
    "$1/mayflyd" --dev --dev-listen "127.0.0.1:$port" > "$d/dev.log" 2>&1 &
    echo $! > "$d/pid"
    for _ in $(seq 300); do grep -q MAYFLY_TOKEN "$d/dev.log" && break; sleep 0.2; done
    grep '^export' "$d/dev.log" > "$d/env"
    echo "$d"
}
run() { # server-dir build-dir tag workload clients
    ( . "$1/env"
      b() { "$2/bench/mayfly-bench" -workload "$4" -clients "$5" -total "$TOTAL" 2>&1 |
            grep -o 'ops/s=[0-9]*'; }
      "$2/mayfly" audit disable ab > /dev/null 2>&1
      echo "$3 off $4 c=$5 $(b "$@")"
      "$2/mayfly" audit enable -type file -path "$1/audit.log" ab > /dev/null || echo "enable failed"
      echo "$3 on  $4 c=$5 $(b "$@")" )
}
A=$(start "$1"); B=$(start "$2")
for _ in $(seq "$ROUNDS"); do
    for w in put get-l; do
        for c in $CLIENTS; do
            run "$A" "$1" before "$w" "$c"
            run "$B" "$2" after "$w" "$c"
        done
    done
done
kill "$(cat "$A/pid")" "$(cat "$B/pid")"
sleep 1
rm -rf "$A" "$B"
