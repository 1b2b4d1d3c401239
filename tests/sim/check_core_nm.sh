#!/bin/sh
# Build check: the pure Raft core's objects (src/raft: core.c, memstorage.c)
# reference nothing but memory and string helpers and the assertion hook: no
# I/O, no clock, no random source, no libuv, OpenSSL, LMDB or protobuf.
# An allowlist, so a new kind of dependency fails until it is looked at.
# Usage: check_core_nm.sh ARCHIVE [--expect-violation]
set -eu
lib=$1
expect=${2:-}
syms=$(nm --undefined-only "$lib" 2>/dev/null) || { echo "nm failed on $lib"; exit 2; }
# A symbol one of the archive's objects defines (core.c's, for driver.c) is its own.
defs=$(nm --defined-only "$lib" 2>/dev/null | awk 'NF == 3 {print "D", $3}')
bad=$({ printf '%s\n' "$defs"; printf '%s\n' "$syms"; } |
      awk '$1 == "D" {own[$2] = 1; next} NF == 2 && $1 == "U" && !($2 in own) {print $2}' |
      grep -vE '^(calloc|malloc|realloc|free|memcpy|memmove|memset|memcmp|qsort|strlen|mf_assert_fail|__stack_chk_fail|__asan_.*|__ubsan_.*|__sanitizer_.*|__lsan_.*)$' || true)
if [ "$expect" = "--expect-violation" ]; then
    [ -n "$bad" ] && { echo "violation found, as expected: $bad"; exit 0; }
    echo "expected a violation in $lib, found none"
    exit 1
fi
if [ -n "$bad" ]; then
    echo "the pure Raft core references symbols outside its allowlist:"
    printf '%s\n' "$bad"
    exit 1
fi
echo "raft core: only memory, string and assertion symbols in $lib"
