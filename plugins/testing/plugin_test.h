/* The plugin authors' test library: drives a task-type plugin (.so) through the agent's real
 * runner and supervisor on a private loop, exactly as the agent would (assign, start, output,
 * progress, params, cancel, timeout, cleanup), records everything a task reported, and checks
 * scripted assertions against it. muster-plugin-test (main.c) is its command line;
 * conformance.h is the suite every plugin must pass. See docs/plugins.md, Testing plugins.
 *
 * One world per plugin under test; one task at a time. Not thread-safe. */
#ifndef MU_PLUGIN_TEST_H
#define MU_PLUGIN_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/exec/runner.h"
#include "lib/base/err.h"

#define MUSTER_PT_MAX_PARAMS 256
#define MUSTER_PT_MAX_STATES 16

typedef struct muster_pt_opts {
  const char *helper_path;   /* muster-exec; required for plugins that run processes */
  const char *host_path;     /* muster-plugin-host: run the plugin out of process; NULL = in-process */
  uint64_t output_limit;     /* per task; 0 = the runner's default (16 MiB) */
  size_t capture_max;        /* bytes of stdout/stderr kept per task; 0 = 1 MiB */
  int64_t grace_ms;          /* TERM -> KILL; 0 = 1000 */
  const char *bundle_dir;    /* copied into every task dir, as the agent unpacks a task's
                                * bundle there (files the spec names: a jar, a script); NULL = none */
  const char *plugin_config; /* SDK v2: handed to configure() as the agent does; NULL = "{}" */
} muster_pt_opts;

typedef struct muster_pt_world muster_pt_world;

/* Everything one task reported, plus what the world measured around it. */
typedef struct muster_pt_result {
  char task_id[64];
  int state;                        /* final mu_task_state */
  int states[MUSTER_PT_MAX_STATES]; /* every state event in order */
  int n_states;
  int exit_code, signal;
  char message[1024];
  char *out, *err; /* NUL-terminated, capped at capture_max; owned (muster_pt_result_free) */
  size_t out_len, err_len;
  uint64_t out_total, err_total; /* bytes reported, also past the cap */
  int n_progress;
  double last_pct;
  size_t max_progress_msg; /* longest progress message */
  size_t n_params;
  char *param_keys[MUSTER_PT_MAX_PARAMS], *param_values[MUSTER_PT_MAX_PARAMS];
  uint64_t n_events;
  bool event_after_final; /* a broken contract the runner should never allow */
  int64_t wall_ms;        /* assign to final state */
  int64_t max_stall_ms;   /* longest stretch the loop spent busy in one iteration */
  int leftover_pids;      /* processes left after it ended (killed once counted): carrying its
                                * MUSTER_TASK_ID, or children of this process but the plugin host */
  int leftover_pid;       /* one of them, for the report */
} muster_pt_result;

typedef struct muster_pt_run_opts {
  const char *spec_json; /* a muster.v1.TaskSpec in proto3 JSON; required */
  const mu_kv *params;   /* earlier tasks' output params ("task.key") */
  size_t n_params;
  int64_t cancel_after_ms; /* cancel the task this long after assign; < 0 = never */
  int64_t deadline_ms;     /* give up (cancel, then fail the run) after this; 0 = 120000 */
} muster_pt_run_opts;

/* Loads plugin_so (in-process, or in a muster-plugin-host when o->host_path is set) and makes
 * a runner on a private loop with a fresh spool dir. *ret: muster_pt_world_free. */
int muster_pt_world_new(const char *plugin_so, const muster_pt_opts *o, muster_pt_world **ret, mu_err *err);

/* Stops the runner (and the host process), runs the loop dry, removes the spool dir. */
void muster_pt_world_free(muster_pt_world *w);

/* The plugin's type, version, isolation ("in-process" or "process"). */
const mu_plugin_info *muster_pt_world_plugin(const muster_pt_world *w);

/* Runs one task to its final state. MU_EINVAL/MU_ENOTSUP/...: the runner refused the assign
 * (err says why; *ret holds state 0); MU_ETIMEDOUT: no final state before deadline_ms.
 * *ret is filled in every case: muster_pt_result_free. */
int muster_pt_run(muster_pt_world *w, const muster_pt_run_opts *ro, muster_pt_result *ret, mu_err *err);

void muster_pt_result_free(muster_pt_result *r);

/* Checks one assertion against a result. Returns 0 when it holds, 1 when it does not (why
 * says what was seen), MU_EINVAL when the assertion cannot be parsed. The forms:
 *   state=SUCCEEDED|FAILED|TIMED_OUT|CANCELLED   exit=N        signal=N
 *   stdout=TEXT   stdout~TEXT (contains)   stderr=TEXT   stderr~TEXT   message~TEXT
 *   param.KEY=VALUE   param.KEY~TEXT   noparam.KEY   progress>=N   pct=N
 *   ms<=N (wall time)   stall<=N (loop stall, ms)   leftover=0
 * TEXT takes \n and \t escapes. */
int muster_pt_expect(const muster_pt_result *r, const char *assertion, char *why, size_t why_cap);

/* "SUCCEEDED" for MU_TASK_SUCCEEDED, ...; "NONE" for 0. */
const char *muster_pt_state_name(int state);

#endif
