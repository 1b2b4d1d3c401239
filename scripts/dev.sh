#!/usr/bin/env bash
# Sets up this machine, builds mayfly and starts a dev server (mayflyd --dev):
# a single-node cluster in a temporary directory, initialised, unsealed, TLS on
# loopback. It prints the export lines to paste into another shell.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
exec build/mayflyd --dev "$@"
