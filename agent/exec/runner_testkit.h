/* Test kit (testonly): drives task-type plugins through the real runner on a private loop and
 * records every event per task, for the plugin tests (http, python, ...). cmocka asserts: a
 * failure ends the test. One world per test; nothing is shared between worlds. */
#ifndef MU_RUNNER_TESTKIT_H
#define MU_RUNNER_TESTKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "agent/exec/plugin_host.h"
#include "agent/exec/runner.h"

#define MU_TK_MAX_TASKS 128
#define MU_TK_MAX_STATES 16

/* Everything one task (id) reported. out/err are NUL-terminated and capped (the world's
 * caps); out_total counts stdout bytes even past the cap. */
typedef struct mu_tk_rec {
  char task_id[64];
  int state; /* the latest state */
  int states[MU_TK_MAX_STATES];
  int n_states;
  char *out, *err; /* owned by the world */
  size_t out_len, err_len, out_total;
  int n_progress;
  double last_pct;
  char params[1024];  /* "key=value;" for each output param */
  char message[1024]; /* the final state's message */
  int exit_code, signal;
  bool final;
  uint64_t final_ms; /* uv_hrtime() in ms at the final state */
} mu_tk_rec;

typedef struct mu_tk_world {
  uv_loop_t loop;
  mu_plugin_host *plugins;
  mu_runner *runner;
  mu_tk_rec recs[MU_TK_MAX_TASKS];
  int n_recs;
  size_t out_cap, err_cap;
  bool closed;
} mu_tk_world;

/* A loop, a plugin host with plugin_so loaded and a runner with cfg (its sink is the world).
 * out_cap/err_cap bound each task's recorded stdout/stderr. */
void mu_tk_world_init(mu_tk_world *w, const char *plugin_so, const mu_runner_config *cfg, size_t out_cap,
                      size_t err_cap);
/* Closes the runner, runs the loop dry (asserting the loop closes) and frees everything. */
void mu_tk_world_free(mu_tk_world *w);
/* The record of task_id (a new one the first time). */
mu_tk_rec *mu_tk_rec_for(mu_tk_world *w, const char *task_id);
/* Assigns attempt 1 of task_id in job "job-1"; fails the test when the runner refuses. */
mu_tk_rec *mu_tk_assign(mu_tk_world *w, const char *task_id, const char *spec, const mu_kv *params, size_t n_params);
/* Runs the loop until r has its final state. */
void mu_tk_run_until_final(mu_tk_world *w, mu_tk_rec *r);

/* True when process pid no longer runs: gone, or a zombie (waiting for its reaper). */
bool mu_tk_pid_gone(pid_t pid);

#endif
