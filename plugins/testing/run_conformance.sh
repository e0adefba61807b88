#!/bin/sh
# Runs muster-plugin-test with the arguments Bazel gives (conformance.bzl), after starting the
# fixture a test file asks for by its placeholders:
#   @PORT@        a local HTTP server (testdata/http_fixture.py): /hello at once, /slow after 30 s
#   @FLINK_PORT@  the Flink JobManager emulator (integration/emulators/flink/jobmanager.py), with
#                 @TMP@/app.jar holding a batch class com.example.Count and a streaming
#                 com.example.Clicks
#   @REGISTRY@    a loopback docker-registry with the container tests' run image as t/run:1
#                 (plugins/container/regfixture.py; needs root, docker-registry, busybox-static)
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
if grep -q '@REGISTRY@' "$spec"; then
  why=
  [ "$(id -u)" = 0 ] || why="needs root (user namespaces, mounts)"
  command -v docker-registry > /dev/null || why="needs docker-registry (scripts/setup)"
  [ -x /bin/busybox ] || why="needs busybox-static (scripts/setup)"
  if [ -n "$why" ]; then # as MU_SKIP: said, counted, and a failure under CI=true
    echo "MU_TEST_SKIPPED: $(basename "$spec") conformance: $why"
    case "$CI" in true|1) echo "FAIL: would skip under CI=true" >&2; exit 1 ;; esac
    exit 0
  fi
  mkfifo "$tmp/reg.stdin"
  python3 plugins/container/regfixture.py < "$tmp/reg.stdin" > "$tmp/registry" 2>"$tmp/registry.log" &
  pids="$pids $!"
  sleep 600 > "$tmp/reg.stdin" & # holds its stdin open; killed at exit, which stops the registry
  pids="$! $pids"
  wait_file "$tmp/registry"
  export MUSTER_CONTAINER_STORE="$tmp/images" MUSTER_CONTAINER_INSECURE_REGISTRIES="$(cat "$tmp/registry")"
  sed -i "s/@REGISTRY@/$(cat "$tmp/registry")/g" "$tmp/spec.json"
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
