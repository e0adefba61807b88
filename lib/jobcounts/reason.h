/* Why a task attempt ended the way it did, as one word from a fixed set: the reason class
 * of issue 21 that musterd's and the agents' metrics label runs with (a bounded label), and
 * that `muster explain` names in words. One definition for every surface. */
#ifndef MU_JOBCOUNTS_REASON_H
#define MU_JOBCOUNTS_REASON_H

#include <stdint.h>

#include "muster/v1/task.pb-c.h"

/* What is known of an attempt's end. message may be NULL; memory figures 0 when unknown. */
typedef struct mu_run_end {
  Muster__V1__TaskState state;
  int32_t exit_code;
  int32_t signal;
  const char *message;
  uint64_t memory_peak_bytes;  /* cgroup memory.peak */
  uint64_t memory_limit_bytes; /* resources.memory */
} mu_run_end;

/* One of: "none" (succeeded), "exit_code", "signal", "oom", "timeout", "lost",
 * "unreachable", "skipped" (unreachable, and the job said skip_unreachable), "cancelled", "refused" (failed without running: exit 0 and no signal),
 * "waiting" (pending), "running" (assigned, starting, running). A static string. */
const char *mu_run_reason(const mu_run_end *e);

/* The state's label form: "pending", "assigned", "starting", "running", "succeeded",
 * "failed", "timed_out", "cancelled", "lost", "unreachable" ("unknown" otherwise). */
const char *mu_task_state_label(Muster__V1__TaskState state);

#endif
