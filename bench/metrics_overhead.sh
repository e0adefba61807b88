#!/usr/bin/env bash
# Metrics overhead on dispatch: bench/dispatch alternately without and with musterd's
# --metrics-listen (the operator metrics of controlplane/meters.c on, a snapshot every
# 500 ms) while a scraper reads /metrics every second like Prometheus, and the scrape's time
# and size with the 1,000 simulated agents connected and 100k task runs held. Prints figures,
# never pass/fail (docs/benchmarks.md, "Metrics").
#   bazel build -c opt //bench:dispatch //controlplane:musterd
#   bench/metrics_overhead.sh [ROUNDS] [-- dispatch flags...]
set -uo pipefail
rounds=${1:-2}
shift || true
[ "${1:-}" = "--" ] && shift
dispatch=${DISPATCH:-bazel-bin/bench/dispatch}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
trap 'kill $scraper 2>/dev/null; rm -rf "$work"' EXIT
scraper=
for r in $(seq 1 "$rounds"); do
  for mode in off on; do
    args=()
    if [ $mode = on ]; then
      args=(--musterd-arg "--metrics-listen=127.0.0.1:$port")
      : > "$work/scrapes"
      ( while sleep 1; do
          curl -s -o "$work/last.txt" -w '%{time_total} %{size_download}\n' \
            "http://127.0.0.1:$port/metrics" >> "$work/scrapes" 2>/dev/null
          [ -s "$work/last.txt" ] && cp "$work/last.txt" "$work/kept.txt"
        done ) &
      scraper=$!
    fi
    out=$("$dispatch" --no-submit "${args[@]}" "$@" 2>&1)
    tps=$(echo "$out" | sed -n 's/^dispatch_100k_tasks_per_s: \([0-9.]*\).*/\1/p' | head -1)
    echo "round $r metrics=$mode dispatch_tasks_per_s: ${tps:-?}"
    if [ $mode = on ]; then
      kill $scraper 2>/dev/null; wait $scraper 2>/dev/null
      # scrapes that answered with a body (musterd up): time and size, median and max
      awk '$2 > 0 {print $1, $2}' "$work/scrapes" | sort -n > "$work/s"
      n=$(wc -l < "$work/s")
      if [ "$n" -gt 0 ]; then
        med=$(awk -v n="$n" 'NR == int((n + 1) / 2) {print $1 * 1000}' "$work/s")
        max=$(tail -1 "$work/s" | awk '{print $1 * 1000}')
        size=$(sort -k2 -n "$work/s" | tail -1 | awk '{print $2}')
        series=$(grep -vc '^#' "$work/kept.txt")
        echo "round $r scrape_ms median/max: $med / $max over $n scrapes; body $size bytes, $series samples"
      fi
    fi
  done
done
