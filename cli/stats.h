/* `muster stats`: figures and anomaly flags of finished task runs, from the jobs musterd holds
 * (GetJob with tasks). Per task name: runs, percentiles of duration, CPU, peak memory and
 * output, a trend across jobs; per run, flags against that task's earlier runs:
 *   SLOW       duration > median + 4·MAD of at least MU_STATS_MIN_HISTORY earlier runs
 *   MEM_HIGH   peak memory over the same threshold
 *   NEAR_OOM   peak memory within 10 % of resources.memory
 *   TRUNCATED  output past resources.output_limit was dropped
 * (MAD is floored at 5 % of the median and 10 ms / 1 MiB, so identical runs do not flag
 * noise). Pure: the command (cmd_stats.c) fetches, this decides and prints. */
#ifndef MU_CLI_STATS_H
#define MU_CLI_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "muster/v1/job.pb-c.h"

#define MU_STATS_MIN_HISTORY 10

typedef struct mu_stats_run {
  const char *job_id, *task_name, *agent_id;
  Muster__V1__TaskState state;
  int64_t started_ms, finished_ms;
  int64_t cpu_ms;             /* user + system; -1 unknown */
  int64_t peak_bytes;         /* cgroup memory.peak, else max RSS; -1 unknown */
  int64_t output_bytes, dropped_bytes;
  uint64_t memory_limit;      /* resources.memory; 0 none */
  unsigned flags;             /* MU_STATS_* (mu_stats_flag) */
} mu_stats_run;

enum { MU_STATS_SLOW = 1, MU_STATS_MEM_HIGH = 2, MU_STATS_NEAR_OOM = 4, MU_STATS_TRUNCATED = 8 };

/* Adds the finished runs of job (its spec gives the limits) to *runs (grown; caller frees
 * *runs; strings are borrowed from job). task: only runs of that task name (NULL: all).
 * Returns how many were added; 0 on out of memory too. */
size_t mu_stats_collect(const Muster__V1__Job *job, const char *task, mu_stats_run **runs,
                        size_t *n, size_t *cap);
/* Sorts runs by finish time and sets each one's flags against the earlier runs of its task. */
void mu_stats_flag(mu_stats_run *runs, size_t n);
/* "SLOW,NEAR_OOM" (or "-") into buf. */
void mu_stats_flag_names(unsigned flags, char *buf, size_t size);
/* The table: per task name, runs and p50 / p90 / max of duration, CPU, peak memory, output,
 * the trend (median duration of the newer half of its runs against the older half), then the
 * flagged runs. Returns the number of flagged runs. */
size_t mu_stats_print(const mu_stats_run *runs, size_t n, FILE *out);

#endif
