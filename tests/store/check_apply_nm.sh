#!/bin/sh
# Build check: the object files of the state machine's apply path reference
# no clock and no random source (apply must be deterministic: time and ids
# come in the command). Usage: check_apply_nm.sh ARCHIVE_OR_OBJECT [MEMBER...]
# With members, only those members of the archive are checked.
set -eu
if [ "$1" = "--expect-violation" ]; then
    # Self-test: succeed only if the check finds a violation (exit 1), not on
    # any other failure (a missing file would otherwise pass).
    shift
    rc=0
    sh "$0" "$@" || rc=$?
    [ "$rc" -eq 1 ] && { echo "violation found, as expected"; exit 0; }
    echo "expected a violation (exit 1), got exit $rc"
    exit 1
fi
lib=$1
shift
syms=$(nm -A --undefined-only "$lib" 2>/dev/null) || { echo "nm failed on $lib"; exit 2; }
if [ $# -gt 0 ]; then
    pat=$(printf '%s\n' "$@" | sed 's/[.]/[.]/g' | paste -sd'|' -)
    syms=$(printf '%s\n' "$syms" | grep -E ":($pat):" || true)
    # Every named member must be present, or the check proves nothing.
    for m in "$@"; do
        nm -A "$lib" 2>/dev/null | grep -q ":$m:" || { echo "member $m not in $lib"; exit 2; }
    done
fi
bad=$(printf '%s\n' "$syms" | awk '{print $1, $NF}' |
      grep -E ' (time|clock|clock_gettime|__clock_gettime|__clock_gettime64|gettimeofday|ftime|times|rand|random|srand|srandom|rand_r|drand48|lrand48|mrand48|getrandom|getentropy|arc4random|arc4random_buf|RAND_bytes|RAND_priv_bytes|RAND_bytes_ex|RAND_priv_bytes_ex|RAND_pseudo_bytes|uv_now|uv_hrtime|mf_now_[a-z_]*|mf_rand_[a-z_0-9]*|mf_env_[a-z_]*)$' || true)
if [ -n "$bad" ]; then
    echo "apply path references clock or random symbols:"
    printf '%s\n' "$bad"
    exit 1
fi
echo "apply path: no clock or random symbols in $lib $*"
