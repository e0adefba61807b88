#!/bin/sh
# Runs muster-plugin-test with the arguments Bazel gives (conformance.bzl). A test file that
# says @PORT@ gets a local HTTP fixture (testdata/http_fixture.py) and its port put in.
set -e
bin=$1 so=$2 spec=$3
shift 3
if grep -q '@PORT@' "$spec"; then
  fixture=$(dirname "$0")/testdata/http_fixture.py
  [ -f "$fixture" ] || fixture=plugins/testing/testdata/http_fixture.py
  tmp=${TEST_TMPDIR:-/tmp}
  python3 "$fixture" > "$tmp/port" &
  server=$!
  trap 'kill $server 2>/dev/null' EXIT
  for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
  sed "s/@PORT@/$(cat "$tmp/port")/g" "$spec" > "$tmp/spec.json"
  spec=$tmp/spec.json
  "$bin" "$so" "$spec" "$@"
  exit $?
fi
exec "$bin" "$so" "$spec" "$@"
