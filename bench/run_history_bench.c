/* The run history's cost on musterd's loop thread: loading N records (a new leader or a
 * restart reads them all), and judging one ended run against a full history. Prints figures;
 * never fails. Usage: run_history_bench [N total] [task names]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controlplane/run_history.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  int total = argc > 1 ? atoi(argv[1]) : 10000, names = argc > 2 ? atoi(argv[2]) : 100;
  if (total < 1 || names < 1) return 2;
  mu_run_history c = {.keep = (uint32_t)(total / names + 1), .max = (uint32_t)total};
  char name[32], job[32], key[128];
  Muster__V1__RunHistoryEntry e = MUSTER__V1__RUN_HISTORY_ENTRY__INIT;
  e.task_id = "j/web-1/t";
  e.agent_id = "web-1";
  e.peak_memory_bytes = 100 << 20;
  c.loading = 1; /* as a snapshot load does: appended, bounded once at its end */
  double t0 = now_s();
  for (int i = 0; i < total; i++) {
    snprintf(name, sizeof name, "task-%d", i % names);
    snprintf(job, sizeof job, "j-%d", i);
    e.task_name = name;
    e.job_id = job;
    e.finished_at_ms = 1000000 + i;
    e.duration_ms = 1000 + i % 17;
    snprintf(key, sizeof key, "runhistory/%s/%013d-%s-0-1", name, 1000000 + i, job);
    if (mu_run_history_add(&c, key, &e, 0, 0) != 0) return 1;
  }
  mu_run_history_trim_all(&c, 0);
  c.loading = 0;
  double load = now_s() - t0;
  /* one more ended run, as the leader adds it (dedup, bounds) */
  e.task_name = "task-1";
  e.job_id = "j-new";
  e.finished_at_ms = 9000000;
  double t1 = now_s();
  if (mu_run_history_add(&c, "runhistory/task-1/9000000-j-new-0-1", &e, 0, 0) != 0) return 1;
  double add = now_s() - t1;
  e.task_name = "task-0";
  e.duration_ms = 5000;
  char detail[256];
  int rounds = 200;
  unsigned flags = 0;
  t0 = now_s();
  for (int i = 0; i < rounds; i++) flags = mu_run_history_judge(&c, &e, detail, sizeof detail);
  double judge = (now_s() - t0) / rounds;
  printf(
      "run_history: %d records over %d task names: load %.1f ms (%.2f us/record), "
      "add one run %.1f us, judge one run %.1f us (flags %#x)\n",
      total, names, load * 1e3, load * 1e6 / total, add * 1e6, judge * 1e6, flags);
  mu_run_history_reset(&c);
  return 0;
}
