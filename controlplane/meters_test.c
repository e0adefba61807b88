/* The control plane's task metrics through the scheduler's hook, as the scheduler calls it:
 * each stage of an attempt counted once however often the hook fires, a retry counted as a
 * second attempt, waits measured only when the assignment itself is seen (not for a run a
 * new leader loaded already running), reason classes and flags, and RPC / etcd updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/meters.h"
#include "lib/base/clock.h"

typedef struct fixture {
  Muster__V1__TaskSpec ts;
  Muster__V1__Resources res;
  Muster__V1__TaskSpec *tsp[1];
  Muster__V1__JobSpec spec;
  mu_job job;
  mu_task_run tr;
  mu_host_run h;
  mu_meters *m;
} fixture;

static void setup_fixture(fixture *f) {
  memset(f, 0, sizeof *f);
  muster__v1__task_spec__init(&f->ts);
  muster__v1__resources__init(&f->res);
  f->ts.type = "shell";
  f->res.memory = "100M";
  f->ts.resources = &f->res;
  f->tsp[0] = &f->ts;
  muster__v1__job_spec__init(&f->spec);
  f->spec.n_tasks = 1;
  f->spec.tasks = f->tsp;
  f->job.spec = &f->spec;
  f->job.created_at_ms = mu_now_ms() - 250;
  f->h.tasks = &f->tr;
  mu_err err = {0};
  assert_int_equal(mu_meters_new(&f->m, &err), 0);
}

static void to(fixture *f, Muster__V1__TaskState s, int calls) {
  f->tr.state = s;
  if (s == MUSTER__V1__TASK_STATE__RUNNING && f->tr.started_at_ms == 0) f->tr.started_at_ms = mu_now_ms();
  if (s >= MUSTER__V1__TASK_STATE__SUCCEEDED) f->tr.finished_at_ms = f->tr.started_at_ms + 1500;
  for (int i = 0; i < calls; i++) mu_meters_task(f->m, &f->job, &f->h, 0);
}

static double v(mu_metric *fam, const char *a, const char *b, const char *c) {
  return mu_metric_value(fam, (const char *[]){a, b, c});
}

static void test_stages_once_and_retries(void **state) {
  (void)state;
  fixture f;
  setup_fixture(&f);
  f.tr.attempt = 1;
  to(&f, MUSTER__V1__TASK_STATE__ASSIGNED, 2);
  to(&f, MUSTER__V1__TASK_STATE__RUNNING, 3);
  f.tr.exit_code = 3;
  to(&f, MUSTER__V1__TASK_STATE__FAILED, 2);
  assert_true(v(f.m->tasks_started, "shell", NULL, NULL) == 1);
  assert_true(v(f.m->tasks_finished, "shell", "failed", "exit_code") == 1);
  assert_true(v(f.m->task_duration, "shell", NULL, NULL) == 1);
  assert_true(v(f.m->queue_wait, "shell", NULL, NULL) == 1);
  assert_true(v(f.m->dispatch_latency, "assign", NULL, NULL) == 1);
  assert_true(v(f.m->dispatch_latency, "start", NULL, NULL) == 1);
  /* the retry: a second attempt, OOM-killed near its limit with output dropped */
  f.tr.attempt = 2;
  f.tr.started_at_ms = 0;
  f.tr.exit_code = 137;
  to(&f, MUSTER__V1__TASK_STATE__ASSIGNED, 1);
  to(&f, MUSTER__V1__TASK_STATE__RUNNING, 1);
  f.tr.has_metrics = 1;
  f.tr.metrics.cgroup_memory_peak_bytes = 99 << 20;
  f.tr.metrics.output_dropped_bytes = 10;
  to(&f, MUSTER__V1__TASK_STATE__FAILED, 1);
  assert_true(v(f.m->tasks_started, "shell", NULL, NULL) == 2);
  assert_true(v(f.m->tasks_finished, "shell", "failed", "oom") == 1);
  assert_true(v(f.m->flagged, "shell", "near_oom", NULL) == 1);
  assert_true(v(f.m->flagged, "shell", "truncated", NULL) == 1);
  /* first attempts only wait in the queue; every attempt has an assign-to-start */
  assert_true(v(f.m->queue_wait, "shell", NULL, NULL) == 1);
  assert_true(v(f.m->dispatch_latency, "start", NULL, NULL) == 2);
  mu_prom p = {0};
  mu_metrics_render(f.m->reg, &p);
  assert_non_null(strstr(p.buf, "muster_task_duration_seconds_bucket{type=\"shell\",le=\"2.5\"} 2\n"));
  assert_non_null(strstr(p.buf, "muster_task_duration_seconds_bucket{type=\"shell\",le=\"1\"} 0\n"));
  mu_prom_free(&p);
  mu_meters_free(f.m);
}

static void test_loaded_running_run(void **state) {
  (void)state;
  fixture f;
  setup_fixture(&f);
  /* a new leader loaded this run RUNNING: its end counts, no wait is invented */
  f.tr.attempt = 1;
  f.tr.started_at_ms = mu_now_ms() - 4000;
  to(&f, MUSTER__V1__TASK_STATE__RUNNING, 1);
  to(&f, MUSTER__V1__TASK_STATE__SUCCEEDED, 1);
  assert_true(v(f.m->tasks_finished, "shell", "succeeded", "none") == 1);
  assert_true(v(f.m->tasks_started, "shell", NULL, NULL) == 1);
  assert_true(v(f.m->queue_wait, "shell", NULL, NULL) == 0);
  assert_true(v(f.m->dispatch_latency, "start", NULL, NULL) == 0);
  /* a pending run cancelled before it ran ends without starting */
  fixture g;
  setup_fixture(&g);
  g.tr.message = "agent web-9 unreachable (disconnected)";
  to(&g, MUSTER__V1__TASK_STATE__CANCELLED, 2);
  assert_true(v(g.m->tasks_finished, "shell", "cancelled", "unreachable") == 1);
  assert_true(v(g.m->tasks_started, "shell", NULL, NULL) == 0);
  assert_true(v(g.m->task_duration, "shell", NULL, NULL) == 0);
  /* RPCs by service and method; unregistered paths as "unknown"; etcd by op */
  mu_meters_rpc("/muster.v1.Admin/SubmitJob", 0, 0.004, g.m);
  mu_meters_rpc("/muster.v1.Admin/SubmitJob", 5, 0.002, g.m);
  mu_meters_rpc("", 12, 0.001, g.m);
  assert_true(v(g.m->rpc_requests, "muster.v1.Admin", "SubmitJob", "OK") == 1);
  assert_true(v(g.m->rpc_requests, "muster.v1.Admin", "SubmitJob", "NOT_FOUND") == 1);
  assert_true(v(g.m->rpc_requests, "", "unknown", "UNIMPLEMENTED") == 1);
  assert_true(v(g.m->rpc_duration, "muster.v1.Admin", "SubmitJob", NULL) == 2);
  mu_meters_etcd(g.m, "txn", 0.01, 0);
  mu_meters_etcd(g.m, "txn", 5.0, 1);
  assert_true(v(g.m->etcd_duration, "txn", NULL, NULL) == 2);
  assert_true(v(g.m->etcd_errors, "txn", NULL, NULL) == 1);
  mu_meters_leader_changed(g.m);
  mu_meters_leader_changed(NULL); /* no metrics: nothing */
  assert_true(mu_metric_value(g.m->leader_changes, NULL) == 1);
  mu_meters_free(f.m);
  mu_meters_free(g.m);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_stages_once_and_retries),
                                     cmocka_unit_test(test_loaded_running_run)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
