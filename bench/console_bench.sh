#!/bin/sh
# Runs bench/console_bench.py with Debian's python3 from the runfiles tree.
set -e
[ -d "$0.runfiles/muster" ] && cd "$0.runfiles/muster"
script="$1"
shift
exec /usr/bin/python3 -u "$script" "$@"
