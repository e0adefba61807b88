#!/usr/bin/env bash
# `--version` on the three binaries: "NAME X.Y.Z (commit C)", exit 0, nothing on stderr. In
# this (unstamped) test build the commit is "unknown"; `--config=release` stamps it.
#   version_test.sh MUSTER MUSTERD MUSTER_AGENT
set -uo pipefail
fails=0 passes=0
for pair in "muster:$1" "musterd:$2" "muster-agent:$3"; do
  name=${pair%%:*} bin=${pair#*:}
  out=$("$bin" --version 2>/tmp/version_test_err.$$); rc=$?
  if [ "$rc" -eq 0 ] && [ ! -s /tmp/version_test_err.$$ ] &&
     [[ "$out" =~ ^$name\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\ ([0-9a-f]{40}(-dirty)?|unknown)\)$ ]]; then
    passes=$((passes + 1))
  else
    echo "FAIL $name --version: exit $rc, '$out', stderr: $(cat /tmp/version_test_err.$$)"
    fails=$((fails + 1))
  fi
done
rm -f /tmp/version_test_err.$$
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
