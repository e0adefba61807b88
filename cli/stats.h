/* `muster stats`: figures and anomaly flags of finished task runs, from musterd's run history
 * (ListRunHistory) or the jobs it holds (GetJob with tasks). Per task name: runs, percentiles
 * of duration, CPU, peak memory and output, a trend across jobs; per run, flags against that
 * task's earlier runs, decided by lib/anomaly (the definition musterd uses too): SLOW,
 * MEM_HIGH, NEAR_OOM, TRUNCATED, SLOW_HOST. Pure: the command (cmd_stats.c) fetches, this
 * decides and prints. */
#ifndef MU_CLI_STATS_H
#define MU_CLI_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/anomaly/anomaly.h"
#include "muster/v1/admin.pb-c.h"
#include "muster/v1/job.pb-c.h"

#define MU_STATS_MIN_HISTORY MU_ANOMALY_MIN_HISTORY

typedef struct mu_stats_run {
  const char *job_id, *task_name, *agent_id;
  Muster__V1__TaskState state;
  int64_t started_ms, finished_ms;
  int64_t cpu_ms;     /* user + system; -1 unknown */
  int64_t peak_bytes; /* cgroup memory.peak, else max RSS; -1 unknown */
  int64_t output_bytes, dropped_bytes;
  uint64_t memory_limit; /* resources.memory; 0 none */
  unsigned flags;        /* MU_ANOMALY_* (mu_stats_flag, or as musterd decided) */
  int decided;           /* flags came from musterd: mu_stats_flag keeps them */
} mu_stats_run;

enum {
  MU_STATS_SLOW = MU_ANOMALY_SLOW,
  MU_STATS_MEM_HIGH = MU_ANOMALY_MEM_HIGH,
  MU_STATS_NEAR_OOM = MU_ANOMALY_NEAR_OOM,
  MU_STATS_TRUNCATED = MU_ANOMALY_TRUNCATED,
  MU_STATS_SLOW_HOST = MU_ANOMALY_SLOW_HOST,
};

/* Adds the finished runs of job (its spec gives the limits) to *runs (grown; caller frees
 * *runs; strings are borrowed from job). task: only runs of that task name (NULL: all).
 * Returns how many were added; 0 on out of memory too. */
size_t mu_stats_collect(const Muster__V1__Job *job, const char *task, mu_stats_run **runs, size_t *n, size_t *cap);
/* Adds musterd's run history entries (borrowed strings; their flags as decided there) to
 * *runs, like mu_stats_collect. */
size_t mu_stats_collect_history(Muster__V1__RunHistoryEntry *const *entries, size_t n_entries, mu_stats_run **runs,
                                size_t *n, size_t *cap);
/* Sorts runs by finish time and sets each one's flags against the earlier runs of its task
 * (runs whose flags musterd decided keep them). */
void mu_stats_flag(mu_stats_run *runs, size_t n);
/* "SLOW,NEAR_OOM" (or "-") into buf. */
void mu_stats_flag_names(unsigned flags, char *buf, size_t size);
/* The table: per task name, runs and p50 / p90 / max of duration, CPU, peak memory, output,
 * the trend (median duration of the newer half of its runs against the older half), then the
 * flagged runs. Returns the number of flagged runs. */
size_t mu_stats_print(const mu_stats_run *runs, size_t n, FILE *out);

#endif
