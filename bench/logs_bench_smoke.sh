#!/bin/sh
# Smoke run of logs_bench at a toy size: `muster logs` gives back the task's output byte-exact,
# also to a slow reader, and every figure is printed.
set -eu
out=$("$1" --bytes 8000000 --runs 1 --slow-mbps 40)
echo "$out"
echo "$out" | grep -q '^byte_exact: yes'
echo "$out" | grep -q '^run_1: logs [0-9]* MB/s .* 8000000 bytes, exit 0'
echo "$out" | grep -q '^slow_reader: 40 MB/s asked, .* byte-exact'
echo "$out" | grep -q '^agent_rss_growth_serving: [0-9.-]* MiB'
echo "$out" | grep -q '^logs_vs_cat: [0-9.]* x'
