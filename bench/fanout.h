/* The pieces of //bench:fanout that fanout.c (our runs and the report) and fanout_peers.c
 * (pdsh, clush and ansible over a private loopback sshd) share: the run's state, child
 * processes whose stdout is read line by line and matched, and run-time samples. Internal to
 * the fanout binary. */
#ifndef MU_BENCH_FANOUT_H
#define MU_BENCH_FANOUT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "bench/pki_setup.h"
#include "lib/base/err.h"
#include "lib/rpc/rpc.h"

#define MAX_SIZES 8
#define MAX_RUNS 1000
#define LINE_MAX_BYTES 4096 /* longer stdout lines are cut (only counted) */

typedef struct opts {
  size_t sizes[MAX_SIZES], n_sizes;
  size_t peer_sizes[MAX_SIZES], n_peer_sizes;
  size_t runs, real_agents, peer_runs;
  int peers;
  int64_t peer_timeout_ms;
  const char *musterd_flag, *cli_flag, *agent_flag, *script_flag;
  int keep_work_dir;
  int tls_modes;             /* MU_BENCH_PLAIN | MU_BENCH_MTLS */
  size_t agents_per_channel; /* plaintext simulated agents */
} opts;

/* One child process; stdout optionally read line by line and matched. */
typedef struct proc {
  uv_process_t h;
  uv_pipe_t out;
  int started, exited, out_open;
  int64_t status;
  int sig;
  uint64_t start_ns, exit_ns, last_result_ns;
  const char *match;    /* a stdout line holding this is one result */
  const char *match_ok; /* ... and a successful one when it also holds this */
  size_t results, ok;
  int seen_flag; /* some line held `match` (used for --help probes) */
  char line[LINE_MAX_BYTES];
  size_t line_len;
} proc;

typedef struct samples {
  double v[MAX_RUNS];
  size_t n;
  size_t incomplete; /* runs that ended without every result, or failed */
} samples;

typedef struct bench {
  opts o;
  uv_loop_t *loop;
  mu_rpc_engine *engine;
  uv_timer_t tick;
  uv_signal_t sigint, sigterm;
  int interrupted;
  char musterd_path[PATH_MAX], cli_path[PATH_MAX], agent_path[PATH_MAX], script_path[PATH_MAX];
  char workdir[PATH_MAX];
  char target[64];
  int no_etcd;             /* musterd --help mentions --no-etcd */
  mu_bench_pki pki;        /* made when --tls asks for mTLS */
  const mu_bench_pki *tls; /* the current case's: NULL plaintext, else &pki */
  proc musterd;
  mu_rpc_channel *admin;
  uint32_t cluster_agents; /* agents_connected from the last GetCluster; -1u: no answer */
  int cluster_inflight;
} bench;

/* ms from a to b (uv_hrtime values). */
double fanout_ms_between(uint64_t a, uint64_t b);
/* Starts argv[0]; stderr (and stdout unless capture) go to WORKDIR/log_name. p's match and
 * match_ok are kept, the rest is reset. */
int fanout_proc_spawn(bench *b, proc *p, char **argv, int capture, const char *log_name, mu_err *err);
/* Waits for the process to exit and its stdout to close; kills it past timeout_ms
 * (MU_ETIMEDOUT) or when the run is interrupted. */
int fanout_proc_wait(bench *b, proc *p, int64_t timeout_ms);
/* Percentile p (0..100, stats.h) of the samples; -1 when there are none. */
double fanout_percentile(const samples *s, double p);
void fanout_add_sample(samples *s, double v);
/* "NAME_median", "_p99", "_min" and "_runs" lines. */
void fanout_print_samples(const char *name, const samples *s);

/* The peers, in the order of peer_med's rows. */
typedef struct peer_tool {
  const char *name, *match, *match_ok;
} peer_tool;
#define N_PEERS 3
extern const peer_tool fanout_peer_tools[N_PEERS];

/* Times each peer running `hostname` on t1..tN through a private sshd for every
 * --peer-sizes N; peer_med[t][s] gets the median wall time, or -1. Prints the figures, or
 * "# peers skipped: why". */
void fanout_peers(bench *b, double peer_med[N_PEERS][MAX_SIZES]);

#endif
