/* What `muster run`/`submit`/`watch` know of a job while they follow it: its task runs (by
 * task id, with the output seen so far, bounded), its hosts (when each started and ended),
 * and the counts musterd sends with every event (lib/jobcounts: the CLI counts nothing
 * itself). Fed the WatchJob stream's JobEvents; read by the text and JSON output and the
 * live panel. */
#ifndef MU_CLI_WATCH_MODEL_H
#define MU_CLI_WATCH_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "muster/v1/admin.pb-c.h"

/* How a task run's output is kept: the first bytes (head), or the last ones (tail). */
typedef enum { MU_KEEP_HEAD = 0, MU_KEEP_TAIL, MU_KEEP_NONE } mu_keep_mode;

typedef struct mu_watch_run {
  char *task_id; /* "<job>/<agent>/<task>" */
  char *task_name;
  size_t host; /* index into hosts */
  Muster__V1__TaskState state;
  int has_exit, exit_code, signal;
  uint32_t attempt;
  char *message;
  int64_t started_at_ms, finished_at_ms;
  char *out; /* kept output (NUL-terminated), out_len bytes */
  size_t out_len;
  uint64_t out_seen; /* every output byte the stream carried for the attempt */
  int out_from_tail; /* out is the control plane's tail: the stream's was missing */
  int ended;         /* final and no retry pending */
} mu_watch_run;

typedef struct mu_watch_host {
  char *agent_id;
  int64_t first_start_mono; /* first seen active (0: never) */
  int64_t ended_mono;       /* host_done seen (0: not yet) */
  uint32_t runs_ended;      /* its task runs that ended */
  int done;
  int failed;  /* ended with a run that was not SUCCEEDED (nor skipped) */
  int skipped; /* UNREACHABLE and skipped (rollout.skip_unreachable) */
} mu_watch_host;

typedef struct mu_watch_model {
  uint32_t targets;
  uint32_t n_tasks; /* tasks per target (the job spec's) */
  mu_keep_mode keep;
  size_t keep_bytes; /* per task run */
  mu_watch_run *runs;
  size_t n_runs, cap_runs;
  mu_watch_host *hosts;
  size_t n_hosts, cap_hosts;
  /* string -> index hashes (open addressing, power-of-two sizes) */
  size_t *run_index, *host_index;
  size_t run_index_cap, host_index_cap;
  Muster__V1__JobCounts counts; /* the last counts musterd sent */
  int have_counts;
  Muster__V1__JobState job_state;
  uint32_t max_running; /* most hosts seen running at once */
  int64_t host_ms_sum;  /* durations of ended hosts that ran, for the ETA */
  uint32_t host_ms_n;
} mu_watch_model;

/* What an event did to a run, for the printers. */
typedef enum {
  MU_EV_NONE = 0,
  MU_EV_OUTPUT,   /* output appended */
  MU_EV_CHANGED,  /* state changed, not final */
  MU_EV_RETRYING, /* ended badly, another attempt follows (output of this one dropped) */
  MU_EV_ENDED,    /* ended for good: print it */
} mu_watch_change;

void mu_watch_model_init(mu_watch_model *m, uint32_t targets, uint32_t n_tasks, mu_keep_mode keep, size_t keep_bytes);
void mu_watch_model_free(mu_watch_model *m);

/* Applies ev at monotonic time now_ms. *ret_run is the run it was about (or NULL). Returns
 * what changed; MU_EV_NONE also when out of memory (the event is then dropped). */
mu_watch_change mu_watch_model_apply(mu_watch_model *m, const Muster__V1__JobEvent *ev, int64_t now_ms,
                                     mu_watch_run **ret_run);

/* Frees r's kept output once it has been printed (out_seen stays): what the CLI holds is then
 * bounded by the runs in flight, not by the fleet. --group keeps it to the end. */
void mu_watch_run_drop_output(mu_watch_run *r);

/* Task runs that ended: every run of a host that is done counts, the ones never started too. */
uint64_t mu_watch_model_runs_ended(const mu_watch_model *m);

/* Estimated milliseconds left, from the mean duration of hosts that ended after running, the
 * hosts still pending and the running ones' elapsed time, over the most hosts seen running at
 * once; -1 while no host has ended. */
int64_t mu_watch_model_eta_ms(const mu_watch_model *m, int64_t now_ms);

#endif
