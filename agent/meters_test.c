/* The agent's task metrics from runner events: the type comes from the Assign, a start and an
 * end count once, CPU / memory / output add up, an OOM end counts an OOM kill, a refused
 * attempt is counted by its type, and past the tracking bound attempts count as "unknown". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/meters.h"

static mu_task_event state_ev(const char *task, uint32_t attempt, mu_task_state s, const mu_task_metrics *m) {
  mu_task_event e;
  memset(&e, 0, sizeof e);
  e.kind = MU_EV_STATE;
  e.job_id = "j-1";
  e.task_id = task;
  e.attempt = attempt;
  e.state.state = s;
  e.state.metrics = m;
  e.state.message = "";
  return e;
}

static char *render(mu_agent_meters *m) {
  mu_prom p = {0};
  mu_metrics_render(mu_agent_meters_registry(m), &p);
  return p.buf;
}

static void test_attempts(void **state) {
  (void)state;
  mu_agent_meters *m = NULL;
  mu_err err = {0};
  assert_int_equal(mu_agent_meters_new(&m, &err), 0);
  mu_agent_meters_assigned(m, "j-1/web-1/build", 1, "shell", 100u << 20);
  mu_agent_meters_assigned(m, "j-1/web-1/build", 1, "shell", 100u << 20); /* a resend */
  mu_task_event e = state_ev("j-1/web-1/build", 1, MU_TASK_RUNNING, NULL);
  mu_agent_meters_event(m, &e);
  mu_agent_meters_event(m, &e);
  mu_task_metrics tm = {.wall_ms = 1200,
                        .user_cpu_ms = 700,
                        .sys_cpu_ms = 300,
                        .max_rss_bytes = 50 << 20,
                        .cgroup_memory_peak_bytes = 99 << 20,
                        .output_bytes = 4096,
                        .output_dropped_bytes = 0,
                        .io_read_bytes = 0,
                        .io_write_bytes = 1 << 20};
  e = state_ev("j-1/web-1/build", 1, MU_TASK_FAILED, &tm);
  e.state.signal = 9;
  mu_agent_meters_event(m, &e);
  mu_agent_meters_assigned(m, "j-1/web-1/fetch", 1, "http", 0);
  mu_agent_meters_refused(m, "j-1/web-1/fetch", 1);
  mu_agent_meters_plugin_failures(m, 2);
  char *t = render(m);
  const char *want[] = {
      "muster_agent_tasks_started_total{type=\"shell\"} 1\n",
      "muster_agent_tasks_finished_total{type=\"shell\",state=\"failed\",reason=\"oom\"} 1\n",
      "muster_agent_task_oom_kills_total{type=\"shell\"} 1\n",
      "muster_agent_task_cpu_seconds_total{type=\"shell\"} 1\n",
      "muster_agent_task_output_bytes_total{type=\"shell\"} 4096\n",
      "muster_agent_task_written_bytes_total{type=\"shell\"} 1048576\n",
      "muster_agent_task_duration_seconds_bucket{type=\"shell\",le=\"2.5\"} 1\n",
      "muster_agent_task_peak_memory_bytes_bucket{type=\"shell\",le=\"268435456\"} 1\n",
      "muster_agent_task_queue_wait_seconds_count{type=\"shell\"} 1\n",
      "muster_agent_tasks_refused_total{type=\"http\"} 1\n",
      "muster_agent_plugin_load_failures_total 2\n",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    if (strstr(t, want[i]) == NULL) fail_msg("missing %s in:\n%s", want[i], t);
  free(t);
  mu_agent_meters_free(m);
}

static void test_tracking_bound(void **state) {
  (void)state;
  mu_agent_meters *m = NULL;
  mu_err err = {0};
  assert_int_equal(mu_agent_meters_new(&m, &err), 0);
  char id[64];
  for (int i = 0; i <= MU_AGENT_METERS_TRACKED; i++) {
    snprintf(id, sizeof id, "j-1/h/t%d", i);
    mu_agent_meters_assigned(m, id, 1, "shell", 0);
  }
  /* the one past the bound ends as "unknown"; the tracked ones by their type */
  mu_task_metrics tm = {.wall_ms = 10};
  mu_task_event e = state_ev(id, 1, MU_TASK_SUCCEEDED, &tm);
  mu_agent_meters_event(m, &e);
  e = state_ev("j-1/h/t0", 1, MU_TASK_SUCCEEDED, &tm);
  mu_agent_meters_event(m, &e);
  char *t = render(m);
  assert_non_null(strstr(t, "muster_agent_meters_untracked_total 1\n"));
  assert_non_null(
      strstr(t, "muster_agent_tasks_finished_total{type=\"unknown\",state=\"succeeded\",reason=\"none\"} 1\n"));
  assert_non_null(
      strstr(t, "muster_agent_tasks_finished_total{type=\"shell\",state=\"succeeded\",reason=\"none\"} 1\n"));
  free(t);
  mu_agent_meters_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_attempts), cmocka_unit_test(test_tracking_bound)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
