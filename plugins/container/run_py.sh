#!/bin/sh
# Runs an end-to-end test script with Debian's python3 (which has python3-grpcio), whatever
# python3 comes first on PATH.
set -e
script="$1"
shift
exec /usr/bin/python3 -u "$script" "$@"
