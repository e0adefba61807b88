#!/bin/sh
# Smoke run of the mTLS comparisons at toy sizes: fleet_load and fanout each start musterd
# plaintext (--insecure) and then over mTLS with a CA they make, and every simulated agent
# (its own certificate), the real agent and the CLI get through both.
set -eu
out=$("$1" --agents 5 --hold 500ms --idle-wait 200ms --heartbeat-interval 1s)
echo "$out"
for p in "" mtls_; do
  echo "$out" | grep -q "^${p}welcomed: 5 agents"
  echo "$out" | grep -q "^${p}streams_failed: 0 agents"
  echo "$out" | grep -q "^${p}channels: 5 channels"
  echo "$out" | grep -q "^${p}agent_rss: [0-9]"
done
echo "$out" | grep -q '^mtls_agent_certs_issued: 5 certificates'
echo "$out" | grep -q '^mtls_vs_plain_register_all_listed: [0-9.]* x'
out=$("$2" --sizes 5 --runs 2 --real-agents 1 --no-peers)
echo "$out"
for c in sim_5 mtls_sim_5 real_1 mtls_real_1; do
  echo "$out" | grep -q "^${c}_cli_total_runs: 2 runs (0 incomplete)"
done
echo "$out" | grep -q '^mtls_vs_plain_sim_5_cli_total_median: '
