/* muster stats' decisions: a steady task's outlier is SLOW only with 10 earlier runs, memory
 * near the limit is NEAR_OOM, dropped output TRUNCATED, identical runs flag nothing; and the
 * table's percentiles and trend, from Job views built by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/stats.h"

static mu_stats_run run(const char *task, int64_t finished, int64_t dur_ms, int64_t peak) {
  mu_stats_run r = {.job_id = "j-1",
                    .task_name = task,
                    .agent_id = "web-1",
                    .state = MUSTER__V1__TASK_STATE__SUCCEEDED,
                    .started_ms = finished - dur_ms,
                    .finished_ms = finished,
                    .cpu_ms = dur_ms / 2,
                    .peak_bytes = peak};
  return r;
}

static void test_flags(void **state) {
  (void)state;
  mu_stats_run r[16];
  size_t n = 0;
  for (int i = 0; i < 10; i++) /* ten steady runs: 1.0 s ± 20 ms, 100 MiB */
    r[n++] = run("build", 1000 * (i + 1), 990 + (i % 3) * 10, (100 + i % 2) << 20);
  r[n++] = run("build", 20000, 5000, 101 << 20); /* 5x slower: SLOW */
  r[n++] = run("build", 21000, 1000, 400 << 20); /* 4x the memory: MEM_HIGH */
  r[n] = run("build", 22000, 1000, 95 << 20);    /* 95 of 100 MiB: NEAR_OOM */
  r[n++].memory_limit = 100 << 20;
  r[n] = run("build", 23000, 1010, 100 << 20); /* output dropped */
  r[n++].dropped_bytes = 4096;
  r[n++] = run("lint", 500, 5000, 1 << 20); /* another task, no history */
  mu_stats_flag(r, n);
  unsigned want[16] = {0};
  for (size_t i = 0; i < n; i++) {
    if (strcmp(r[i].task_name, "lint") == 0) continue;
    if (r[i].finished_ms == 20000) want[i] = MU_STATS_SLOW;
    if (r[i].finished_ms == 21000) want[i] = MU_STATS_MEM_HIGH;
    if (r[i].finished_ms == 22000) want[i] = MU_STATS_NEAR_OOM;
    if (r[i].finished_ms == 23000) want[i] = MU_STATS_TRUNCATED;
    if (r[i].flags != want[i])
      fail_msg("run finished at %lld: flags %u, want %u", (long long)r[i].finished_ms, r[i].flags, want[i]);
  }
  char buf[64];
  mu_stats_flag_names(MU_STATS_SLOW | MU_STATS_TRUNCATED, buf, sizeof buf);
  assert_string_equal(buf, "SLOW,TRUNCATED");
  mu_stats_flag_names(0, buf, sizeof buf);
  assert_string_equal(buf, "-");

  /* nine earlier runs are not enough history */
  n = 0;
  for (int i = 0; i < 9; i++) r[n++] = run("build", 1000 * (i + 1), 1000, 1 << 20);
  r[n++] = run("build", 20000, 9000, 1 << 20);
  mu_stats_flag(r, n);
  assert_int_equal(r[n - 1].flags, 0);
}

static void test_collect_and_print(void **state) {
  (void)state;
  Muster__V1__TaskSpec ts = MUSTER__V1__TASK_SPEC__INIT;
  Muster__V1__Resources res = MUSTER__V1__RESOURCES__INIT;
  ts.name = "build";
  res.memory = "64M";
  ts.resources = &res;
  Muster__V1__TaskSpec *tsp[] = {&ts};
  Muster__V1__JobSpec spec = MUSTER__V1__JOB_SPEC__INIT;
  spec.n_tasks = 1;
  spec.tasks = tsp;
  Muster__V1__TaskRun runs[4];
  Muster__V1__TaskMetrics m[4];
  Muster__V1__TaskRun *rp[4];
  for (int i = 0; i < 4; i++) {
    muster__v1__task_run__init(&runs[i]);
    muster__v1__task_metrics__init(&m[i]);
    runs[i].task_name = "build";
    runs[i].agent_id = i % 2 ? "web-2" : "web-1";
    runs[i].state = MUSTER__V1__TASK_STATE__SUCCEEDED;
    runs[i].started_at_ms = 1000 * (i + 1);
    runs[i].finished_at_ms = 1000 * (i + 1) + 100 * (i + 1); /* 100, 200, 300, 400 ms */
    m[i].cgroup_memory_peak_bytes = (int64_t)(10 + 25 * i) << 20;
    m[i].output_bytes = 1000;
    runs[i].metrics = &m[i];
    rp[i] = &runs[i];
  }
  runs[3].state = MUSTER__V1__TASK_STATE__RUNNING; /* not finished: left out */
  Muster__V1__Job job = MUSTER__V1__JOB__INIT;
  job.id = "j-7";
  job.spec = &spec;
  job.n_tasks = 4;
  job.tasks = rp;
  mu_stats_run *out = NULL;
  size_t n = 0, cap = 0;
  assert_int_equal(mu_stats_collect(&job, NULL, &out, &n, &cap), 3);
  assert_int_equal(mu_stats_collect(&job, "other", &out, &n, &cap), 0);
  assert_int_equal(out[2].memory_limit, 64u << 20);
  mu_stats_flag(out, n);
  assert_int_equal(out[2].flags, MU_STATS_NEAR_OOM); /* 60 MiB of 64 MiB */
  char text[4096] = "";
  FILE *f = fmemopen(text, sizeof text, "w");
  assert_int_equal(mu_stats_print(out, n, f), 1);
  fclose(f);
  if (strstr(text, "build: 3 runs\n") == NULL || strstr(text, "duration     p50 200ms") == NULL ||
      strstr(text, "NEAR_OOM") == NULL || strstr(text, "j-7 web-1/build") == NULL)
    fail_msg("%s", text);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_flags), cmocka_unit_test(test_collect_and_print)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
