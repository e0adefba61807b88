/* fanout's peers: pdsh, clush and ansible running `hostname` over SSH to t1..tN, all on a
 * private sshd on a loopback port (bench/peers/ssh_peers.sh starts and stops it), each tool
 * with a fan-out of N, timed from spawn to exit; what our CLI's times are compared with. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "bench/fanout.h"
#include "lib/base/log.h"

const peer_tool fanout_peer_tools[N_PEERS] = {
    {"pdsh", ": ", NULL}, {"clush", ": ", NULL}, {"ansible", " | ", " | CHANGED"}};

void fanout_peers(bench *b, double peer_med[N_PEERS][MAX_SIZES]) {
  for (size_t t = 0; t < N_PEERS; t++)
    for (size_t s = 0; s < MAX_SIZES; s++) peer_med[t][s] = -1;
  size_t max_n = 0;
  for (size_t s = 0; s < b->o.n_peer_sizes; s++)
    if (b->o.peer_sizes[s] > max_n) max_n = b->o.peer_sizes[s];
  char dir[PATH_MAX + 8], count[32];
  snprintf(dir, sizeof dir, "%s/ssh", b->workdir);
  snprintf(count, sizeof count, "%zu", max_n);
  mkdir(dir, 0700);
  proc setup = {0};
  char *start[] = {b->script_path, "start", dir, count, NULL};
  mu_err err = {0};
  if (fanout_proc_spawn(b, &setup, start, 0, "ssh_peers.log", &err) != 0 || fanout_proc_wait(b, &setup, 120000) != 0 ||
      setup.status != 0) {
    printf("# peers skipped: %s (see %s/ssh_peers.log)\n",
           err.msg[0] ? err.msg : "bench/peers/ssh_peers.sh start failed", b->workdir);
    return;
  }
  char cfg[PATH_MAX + 32], env_pdsh[PATH_MAX + 64];
  snprintf(cfg, sizeof cfg, "%s/ssh_config", dir);
  snprintf(env_pdsh, sizeof env_pdsh, "-F %s %%h", cfg);
  /* The peers' own settings; only their children read these. */
  setenv("PDSH_SSH_ARGS", env_pdsh, 1);
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/ansible-cp", dir);
  setenv("ANSIBLE_SSH_CONTROL_PATH_DIR", path, 1);
  snprintf(path, sizeof path, "%s/ansible-local", dir);
  setenv("ANSIBLE_LOCAL_TEMP", path, 1);
  snprintf(path, sizeof path, "%s/ansible-remote", dir);
  setenv("ANSIBLE_REMOTE_TEMP", path, 1);
  setenv("ANSIBLE_HOST_KEY_CHECKING", "False", 1);
  setenv("ANSIBLE_NOCOLOR", "1", 1);
  char inventory[PATH_MAX + 32], sshopt[PATH_MAX + 16];
  snprintf(inventory, sizeof inventory, "%s/inventory", dir);
  snprintf(sshopt, sizeof sshopt, "-F %s", cfg);
  for (size_t s = 0; s < b->o.n_peer_sizes && !b->interrupted; s++) {
    size_t n = b->o.peer_sizes[s];
    char hosts[64], fanout[32];
    snprintf(hosts, sizeof hosts, "t[1-%zu]", n);
    snprintf(fanout, sizeof fanout, "%zu", n);
    for (size_t t = 0; t < N_PEERS && !b->interrupted; t++) {
      char *pdsh[] = {"/usr/bin/pdsh", "-R", "ssh", "-f", fanout, "-w", hosts, "hostname", NULL};
      char *clush[] = {"/usr/bin/clush", "-f", fanout, "-o", sshopt, "-w", hosts, "hostname", NULL};
      char limit[80];
      snprintf(limit, sizeof limit, "all[0:%zu]", n - 1); /* the first n (ends inclusive) */
      char *ansible[] = {"/usr/bin/ansible", "all", "-i",       inventory, "-l", limit, "-f", fanout, "-m",
                         "command",          "-a",  "hostname", NULL};
      char **argv = t == 0 ? pdsh : t == 1 ? clush : ansible;
      samples sm = {0};
      for (size_t k = 0; k < b->o.peer_runs && !b->interrupted; k++) {
        proc p = {.match = fanout_peer_tools[t].match, .match_ok = fanout_peer_tools[t].match_ok};
        char log[32];
        snprintf(log, sizeof log, "%s.log", fanout_peer_tools[t].name);
        if (fanout_proc_spawn(b, &p, argv, 1, log, &err) != 0) {
          printf("# %s skipped: %s\n", fanout_peer_tools[t].name, err.msg);
          break;
        }
        int rc = fanout_proc_wait(b, &p, b->o.peer_timeout_ms);
        size_t ok = p.match_ok ? p.ok : p.results;
        if (rc != 0 || p.status != 0 || ok != n) {
          mu_warn("fanout", "%s to %zu hosts: exit %lld, %zu of %zu ok%s; see %s/%s", argv[0], n, (long long)p.status,
                  ok, n, rc ? " (killed at the timeout)" : "", b->workdir, log);
          sm.incomplete++;
        }
        fanout_add_sample(&sm, fanout_ms_between(p.start_ns, p.exit_ns));
      }
      char name[64];
      snprintf(name, sizeof name, "peer_%s_%zu_wall", fanout_peer_tools[t].name, n);
      fanout_print_samples(name, &sm);
      peer_med[t][s] = fanout_percentile(&sm, 50);
    }
  }
  /* The private sshd must go even after Ctrl-C: run the stop step uninterrupted. */
  int interrupted = b->interrupted;
  b->interrupted = 0;
  char *stop[] = {b->script_path, "stop", dir, NULL};
  proc down = {0};
  if (fanout_proc_spawn(b, &down, stop, 0, "ssh_peers.log", &err) == 0) fanout_proc_wait(b, &down, 30000);
  b->interrupted = b->interrupted || interrupted;
}
