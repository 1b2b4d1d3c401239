#!/bin/sh
# Build check: the pure Raft core's objects (src/raft/*.c)
# reference nothing but memory and string helpers and the assertion hook: no
# I/O, no clock, no random source, no libuv, OpenSSL, LMDB or protobuf.
# An allowlist, so a new kind of dependency fails until it is looked at.
# Usage: check_core_nm.sh ARCHIVE [--expect-violation]
set -eu
lib=$1
expect=${2:-}
syms=$(nm --undefined-only "$lib" 2>/dev/null) || { echo "nm failed on $lib"; exit 2; }
# Symbols one object of the archive defines for another (the core's files
# calling each other) are not dependencies.
defined=$(nm --defined-only "$lib" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u)
bad=$(printf '%s\n' "$syms" | awk 'NF == 2 && $1 == "U" {print $2}' | sort -u |
      { if [ -n "$defined" ]; then grep -vxF "$defined"; else cat; fi; } |
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
