#!/bin/sh
# The conformance suite catches a plugin that blocks the loop, leaks what start() allocated
# (under --config=asan) and leaves a process behind: muster-plugin-test must exit 1 naming
# each, and still pass the checks the plugin does not break (cancel, timeout).
bin=$1 so=$2 spec=$3
shift 3
out=$(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:exitcode=0" "$bin" "$so" "$spec" --conformance "$@" 2>&1)
rc=$?
echo "$out"
fail() { echo "conformance_selftest: $*" >&2; exit 1; }
[ $rc -eq 1 ] || fail "exit $rc, wanted 1 (not conformant)"
echo "$out" | grep -q "^FAIL stall .*busy [0-9]* ms in one iteration, in each of 3 runs" || fail "the 40 ms block in start() was not caught"
echo "$out" | grep -q '^FAIL run .*still run.* after the task ended' || fail "the orphaned sleep was not caught"
echo "$out" | grep -q '^ok   cancel' || fail "cancel should pass"
echo "$out" | grep -q '^ok   timeout' || fail "timeout should pass"
if echo "$out" | grep -q '^skip cleanup'; then
  echo "MU_TEST_SKIPPED: conformance_selftest: leak check needs --config=asan"
else
  echo "$out" | grep -q '^FAIL cleanup .*LeakSanitizer found memory' || fail "the leak was not caught"
fi
echo "conformance_selftest: ok"
