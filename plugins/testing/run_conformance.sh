#!/bin/sh
# Runs muster-plugin-test with the arguments Bazel gives (conformance.bzl), after starting the
# fixture a test file asks for by its placeholders:
#   @PORT@        a local HTTP server (testdata/http_fixture.py): /hello at once, /slow after 30 s
#   @FLINK_PORT@  the Flink JobManager emulator (integration/emulators/flink/jobmanager.py), with
#                 @TMP@/app.jar holding a batch class com.example.Count and a streaming
#                 com.example.Clicks
#   @SPARK_HOME@  a Spark home whose spark-submit is the emulator's fake one
#                 (integration/emulators/spark; local masters need no cluster), and a bundle
#                 dir @TMP@/bundle holding lib/etl.jar
set -e
bin=$1 so=$2 spec=$3
shift 3
tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/conformance.XXXXXX")
pids=
trap 'for p in $pids; do kill $p 2>/dev/null; done; rm -rf "$tmp"' EXIT
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; echo "fixture did not start" >&2; exit 2; }
cp "$spec" "$tmp/spec.json"
if grep -q '@PORT@' "$spec"; then
  python3 plugins/testing/testdata/http_fixture.py > "$tmp/port" &
  pids="$pids $!"
  wait_file "$tmp/port"
  sed -i "s/@PORT@/$(cat "$tmp/port")/g" "$tmp/spec.json"
fi
if grep -q '@FLINK_PORT@' "$spec"; then
  printf 'class com.example.Count batch finish_after=2\nclass com.example.Clicks streaming\n' > "$tmp/app.jar"
  python3 integration/emulators/flink/jobmanager.py --port-file "$tmp/flink.port" > "$tmp/flink.log" 2>&1 &
  pids="$pids $!"
  wait_file "$tmp/flink.port"
  sed -i "s/@FLINK_PORT@/$(cat "$tmp/flink.port")/g" "$tmp/spec.json"
fi
if grep -q '@SPARK_HOME@' "$spec"; then
  mkdir -p "$tmp/spark-home/bin" "$tmp/spark-home/conf" "$tmp/spark-state"
  ln -s "$PWD/integration/emulators/spark/bin/spark-submit" "$tmp/spark-home/bin/spark-submit"
  echo '{}' > "$tmp/spark-home/conf/emulator.json"
  mkdir -p "$tmp/bundle/lib"
  printf 'PK\003\004 an application jar' > "$tmp/bundle/lib/etl.jar"
  export MUSTER_SPARK_STATE_DIR="$tmp/spark-state"
  sed -i "s|@SPARK_HOME@|$tmp/spark-home|g" "$tmp/spec.json"
fi
sed -i "s|@TMP@|$tmp|g" "$tmp/spec.json"
unset http_proxy HTTP_PROXY ALL_PROXY
"$bin" "$so" "$tmp/spec.json" "$@"
