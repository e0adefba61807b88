#!/bin/sh
# Smoke run of bundle_bench at toy sizes: it completes and finds the bundle read from etcd once.
set -eu
out=$("$1" --dir-size 2M --runs 1 --bundle-size 1M --agents 3 --agents-per-channel 2 --timeout 60s)
echo "$out"
echo "$out" | grep -q '^pack_sign_ours: '
echo "$out" | grep -q '^dist_agents_done: 3 of 3 (errors 0)'
echo "$out" | grep -q '^dist_etcd_read: .*target 1 x: met'
