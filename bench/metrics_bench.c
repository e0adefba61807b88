/* metrics_bench: the cost of musterd's operator metrics in isolation, and their cardinality.
 * Drives controlplane/meters.c as the scheduler's hook does — every task run through
 * ASSIGNED, RUNNING and an end — for 100,000 task runs on 10,000 hosts across 8 task types and
 * 5 kinds of end, then renders the registry as a scrape would. Prints ns per task (the
 * metrics' share of dispatching one task), series held (bounded whatever the fleet size),
 * render time and text size. Figures only (docs/benchmarks.md, "Metrics").
 *   bazel run -c opt //bench:metrics_bench [-- TASKS HOSTS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controlplane/meters.h"
#include "lib/base/clock.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  size_t tasks = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
  size_t hosts = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
  if (tasks == 0 || hosts == 0 || hosts > tasks) {
    fprintf(stderr, "usage: metrics_bench [TASKS HOSTS] (HOSTS <= TASKS)\n");
    return 2;
  }
  static const char *const types[] = {"shell", "http", "python", "spark", "flink", "container", "sleep", "custom"};
  static const Muster__V1__TaskState ends[] = {MUSTER__V1__TASK_STATE__SUCCEEDED, MUSTER__V1__TASK_STATE__SUCCEEDED,
                                               MUSTER__V1__TASK_STATE__FAILED, MUSTER__V1__TASK_STATE__TIMED_OUT,
                                               MUSTER__V1__TASK_STATE__LOST};
  mu_meters *m = NULL;
  mu_err err = {0};
  if (mu_meters_new(&m, &err) != 0) {
    fprintf(stderr, "metrics_bench: %s\n", err.msg);
    return 1;
  }
  /* one job per task type, each with one task; hosts spread over the jobs */
  Muster__V1__TaskSpec specs[8];
  Muster__V1__TaskSpec *spec_ptrs[8];
  Muster__V1__JobSpec jspecs[8];
  mu_job jobs[8];
  memset(jobs, 0, sizeof jobs);
  for (size_t t = 0; t < 8; t++) {
    muster__v1__task_spec__init(&specs[t]);
    specs[t].type = (char *)types[t];
    spec_ptrs[t] = &specs[t];
    muster__v1__job_spec__init(&jspecs[t]);
    jspecs[t].n_tasks = 1;
    jspecs[t].tasks = &spec_ptrs[t];
    jobs[t].spec = &jspecs[t];
    jobs[t].created_at_ms = mu_now_ms();
  }
  mu_host_run *h = calloc(hosts, sizeof *h);
  mu_task_run *runs = calloc(hosts, sizeof *runs);
  if (h == NULL || runs == NULL) return 1;
  for (size_t i = 0; i < hosts; i++) h[i].tasks = &runs[i];
  double t0 = now_ns();
  for (size_t i = 0; i < tasks; i++) {
    size_t hi = i % hosts;
    mu_job *job = &jobs[hi % 8];
    mu_task_run *tr = &runs[hi];
    tr->attempt++;
    tr->state = MUSTER__V1__TASK_STATE__ASSIGNED;
    mu_meters_task(m, job, &h[hi], 0);
    tr->state = MUSTER__V1__TASK_STATE__RUNNING;
    tr->started_at_ms = mu_now_ms();
    mu_meters_task(m, job, &h[hi], 0);
    mu_meters_task(m, job, &h[hi], 0); /* the hook fires more than once per stage */
    tr->state = ends[i % 5];
    tr->exit_code = tr->state == MUSTER__V1__TASK_STATE__FAILED ? 1 : 0;
    tr->finished_at_ms = tr->started_at_ms + (int64_t)(i % 3000);
    mu_meters_task(m, job, &h[hi], 0);
  }
  double per_task = (now_ns() - t0) / (double)tasks;
  mu_metric_set(m->queue_depth, NULL, 1); /* the gauges metrics.c sets */
  size_t series = 0;
  mu_metric *fams[] = {m->tasks_started, m->tasks_finished,   m->task_duration,
                       m->queue_wait,    m->dispatch_latency, m->queue_depth};
  for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) series += mu_metric_series(fams[i]);
  mu_prom p = {0};
  size_t renders = 200;
  double r0 = now_ns();
  for (size_t i = 0; i < renders; i++) {
    p.len = 0;
    mu_metrics_render(m->reg, &p);
  }
  double render_us = (now_ns() - r0) / (double)renders / 1e3;
  size_t samples = 0;
  for (size_t i = 0; i < p.len; i++)
    if (p.buf[i] == '\n' && i + 1 < p.len && p.buf[i + 1] != '#') samples++;
  printf("tasks: %zu on %zu hosts, 8 types, 5 kinds of end\n", tasks, hosts);
  printf("metrics_ns_per_task: %.0f ns (4 hook calls: assigned, running twice, ended)\n", per_task);
  printf("series_held: %zu (task families; bounded by types x states x reasons, not hosts)\n", series);
  printf("render_us: %.0f us per scrape snapshot\n", render_us);
  printf("render_bytes: %zu bytes, %zu samples\n", p.len, samples);
  printf("tasks_finished_total check: %.0f\n",
         mu_metric_value(m->tasks_finished, (const char *[]){"shell", "succeeded", "none"}));
  mu_prom_free(&p);
  mu_meters_free(m);
  free(h);
  free(runs);
  return 0;
}
