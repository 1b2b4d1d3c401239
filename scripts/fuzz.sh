#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz) for SECONDS each (default 60), one
# after the other, on its seed corpus, under ASan + UBSan, and prints
# executions, executions per second and coverage per target. Needs clang;
# configures and builds build-fuzz first (CC=clang, MAYFLY_FUZZ=ON,
# MAYFLY_SANITIZE=ON).
# New inputs go to build-fuzz/fuzz-work/TARGET (kept between runs, so runs
# build on each other), crash inputs to build-fuzz/fuzz-crashes/. Fails if a
# target crashed: replay the input with build/tests/fuzz/TARGET FILE, fix the
# bug, and add the input to tests/fuzz/corpus/TARGET as a regression case.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
root=$PWD
dir=build-fuzz

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for d in tests/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi
echo "fuzz: building ${#targets[@]} target(s) in $dir"
CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAYFLY_FUZZ=ON \
  -DMAYFLY_SANITIZE=ON >/dev/null
cmake --build "$dir" -j 2 --target "${targets[@]}" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$dir/fuzz-crashes"
failed=()
echo "fuzz: ${secs} s per target"
printf '%-18s %12s %8s %6s %6s  %s\n' target execs exec/s cov ft result
for t in "${targets[@]}"; do
  work="$dir/fuzz-work/$t"
  log="$dir/fuzz-work/$t.log"
  mkdir -p "$work"
  rc=0
  "$dir/tests/fuzz/$t" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$root/$dir/fuzz-crashes/$t-" "$work" "tests/fuzz/corpus/$t" \
    >"$log" 2>&1 || rc=$?
  # libFuzzer's last status line: "#N DONE cov: C ft: F corp: ... exec/s: E".
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
  eps=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -1)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="CRASH (exit $rc): $log, $dir/fuzz-crashes/$t-*"
    failed+=("$t")
  fi
  printf '%-18s %12s %8s %6s %6s  %s\n' "$t" "${execs:--}" "${eps:--}" "${cov:--}" "${ft:--}" \
    "$result"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crash"
