#!/usr/bin/env bash
# Runs the whole test suite: the normal build, a compile-only Release build,
# then the ASan+UBSan build of the unit tests, the cluster tests and the chaos
# smoke, then a short run of every fuzz target. Fails if any test fails.
# Long chaos, fuzz and benchmark runs have their own commands (see README);
# here they run as short smoke tests.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

# On a fresh machine this is the only command needed (safe to run twice).
scripts/setup.sh

echo "== build (RelWithDebInfo)"
scripts/build.sh build
echo "== tests"
(cd build && ctest --output-on-failure -j "$jobs" --timeout 900)

echo "== chaos smoke (jepsen/smoke.sh: checker self-tests, kill + partition on both workloads)"
if [ "$(id -u)" -eq 0 ]; then
  MF_JEPSEN_SEED="${MF_JEPSEN_SEED:-1}" jepsen/smoke.sh build
else
  echo "chaos smoke needs root (iptables partitions); run: sudo jepsen/smoke.sh build" >&2
  exit 1
fi

echo "== compile-only Release build (what packagers build; warnings stay errors)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j "$jobs" --target mayflyd mayfly mf_client

echo "== build (ASan + UBSan)"
scripts/build.sh build-asan -DMAYFLY_SANITIZE=ON
echo "== tests under ASan + UBSan (unit, simulator, and the cluster integration test)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j "$jobs" --timeout 900 -L 'unit|sim')
# Real server processes under the sanitizers (the timing-sensitive integration
# tests stay in the normal build: sanitizers slow everything 3-5x).
(cd build-asan && ctest --output-on-failure --timeout 900 -R '^it_test_cluster$')
# LeakSanitizer on a 3-node cluster stopped gracefully, the secure-defaults
# proofs, and the chaos smoke with every node under the sanitizers.
(cd build-asan && ctest --output-on-failure --timeout 900 -R '^it_test_hardening$')
echo "== chaos smoke under ASan + UBSan (revocation bound 6 s: sanitized nodes are slow)"
MF_JEPSEN_SEED="${MF_JEPSEN_SEED:-1}" MF_JEPSEN_BOUND_MS=6000 jepsen/smoke.sh build-asan
# Every libFuzzer target in turn, 170 s in all (the CI budget is 3 minutes).
targets=$(find tests/fuzz/corpus -mindepth 1 -maxdepth 1 -type d | wc -l)
echo "== fuzz smoke (scripts/fuzz.sh: $targets targets, $((170 / targets)) s each)"
if command -v clang >/dev/null 2>&1; then
  scripts/fuzz.sh $((170 / targets))
else
  echo "fuzz smoke skipped: clang is not installed (scripts/setup.sh installs it)"
fi
echo "== all tests passed"
