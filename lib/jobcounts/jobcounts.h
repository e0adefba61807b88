/* lib/jobcounts: the one definition of a job's counts (protos: JobCounts). A job's targets
 * are counted by state, each target in exactly one state, so the seven states add up to the
 * targets; task runs are not counted here (a job of three tasks on two hosts has 2 targets).
 * musterd fills JobCounts from its per-state tallies with mu_job_counts_fill; every surface
 * of the CLI (run, watch, status, jobs, JSON) prints what it received through
 * mu_job_counts_format and mu_job_counts_problems, never counts of its own.
 * Also the wording shared by those surfaces: durations and plurals. */
#ifndef MU_JOBCOUNTS_H
#define MU_JOBCOUNTS_H

#include <stddef.h>
#include <stdint.h>

#include "muster/v1/job.pb-c.h"

/* A target's state, in the order the counts are printed. */
typedef enum {
  MU_COUNT_PENDING = 0,
  MU_COUNT_RUNNING,
  MU_COUNT_SUCCEEDED,
  MU_COUNT_FAILED,
  MU_COUNT_CANCELLED,
  MU_COUNT_UNREACHABLE,
  MU_COUNT_SKIPPED, /* unreachable, and the job said skip_unreachable: not a problem */
  MU_COUNT_STATES
} mu_count_state;

/* The state's name as printed and as the JSON field: "pending", "running", ... */
const char *mu_count_state_name(mu_count_state s);

/* Fills c (initialised here) for targets targets of which by_state[s] are in state s for
 * every s but MU_COUNT_PENDING (ignored): pending is what is left, never below 0. */
void mu_job_counts_fill(Muster__V1__JobCounts *c, uint32_t targets, const uint32_t by_state[MU_COUNT_STATES]);

/* c's count for state s. */
uint32_t mu_job_counts_get(const Muster__V1__JobCounts *c, mu_count_state s);

/* Targets that ended other than succeeded: failed + cancelled + unreachable (skipped ones
 * are not problems: the job asked for them to be skipped). */
uint32_t mu_job_counts_problems(const Muster__V1__JobCounts *c);
/* Targets that ended, whatever the outcome. */
uint32_t mu_job_counts_ended(const Muster__V1__JobCounts *c);

/* "3 targets: 2 succeeded, 1 failed" into buf: the targets, then every state that is not
 * zero, in the order above ("0 targets" alone for none). Returns buf. */
const char *mu_job_counts_format(const Muster__V1__JobCounts *c, char *buf, size_t size);

/* Whether task run t ended with an exit code to show: 1 with *ret_code set (0 for SUCCEEDED,
 * the code for a FAILED run that exited non-zero), 0 for every other run (cancelled, lost,
 * unreachable, timed out or killed by a signal, failed before it ran, not ended yet). */
int mu_task_run_exit(const Muster__V1__TaskRun *t, int *ret_code);

/* "1 target", "2 targets": n and the noun, with an s unless n is 1. Returns buf. */
const char *mu_plural(uint64_t n, const char *noun, char *buf, size_t size);

/* A duration with the precision a reader wants: "0ms", "850ms", "1.25s", "12.3s", "2m05s",
 * "1h02m". Negative durations print as "0ms". Returns buf. */
const char *mu_duration_format(int64_t ms, char *buf, size_t size);

#endif
