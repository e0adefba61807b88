/* Test kit (testonly) for tests that run single processes through the supervisor: a record of
 * one process (stdout, exit) and the options that fill it. */
#ifndef MU_PROC_TESTKIT_H
#define MU_PROC_TESTKIT_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/exec/supervisor.h"

typedef struct mu_tp_run {
  bool exited;
  mu_proc_result res;
  mu_proc *proc;
  char out[256]; /* stdout, NUL-terminated, capped */
  size_t out_len;
} mu_tp_run;

/* Options for argv run by helper in cwd with PATH=/usr/bin:/bin only, recording into r. */
mu_proc_opts mu_tp_opts(mu_tp_run *r, const char *helper, const char *cwd, const char *const *argv);

/* Runs uv_run until *flag is set (at most 20,000 turns); fails the test otherwise. */
void mu_tp_run_until(uv_loop_t *loop, const bool *flag);

#endif
