/* The followed job's model, the panel and the text forms, fed JobEvents by hand: counts come
 * from musterd's events only, a retry drops its attempt's output, a host that ended early
 * counts all its task runs, the ETA waits for a finished host, and the panel ticks with the
 * clock alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/output_text.h"
#include "cli/panel.h"
#include "cli/watch_model.h"

typedef struct feed {
  Muster__V1__JobEvent ev;
  Muster__V1__TaskRun run;
  Muster__V1__JobCounts counts;
  Muster__V1__OutputChunk out;
} feed;

static mu_watch_change apply_state(mu_watch_model *m, int64_t now, const char *agent, const char *task,
                                   Muster__V1__TaskState st, int exit_code, int retry, int host_done,
                                   const uint32_t c[7]) {
  feed f;
  muster__v1__job_event__init(&f.ev);
  muster__v1__task_run__init(&f.run);
  muster__v1__job_counts__init(&f.counts);
  char id[128];
  snprintf(id, sizeof id, "j-1/%s/%s", agent, task);
  f.run.task_id = id;
  f.run.task_name = (char *)task;
  f.run.agent_id = (char *)agent;
  f.run.state = st;
  f.run.exit_code = exit_code;
  f.run.attempt = 1;
  f.run.message = exit_code ? "exit code 3" : "";
  f.run.started_at_ms = 1000;
  f.run.finished_at_ms = st >= MUSTER__V1__TASK_STATE__SUCCEEDED ? 2250 : 0;
  f.run.retry_pending = retry;
  f.ev.task = &f.run;
  f.ev.host_done = host_done;
  f.counts.targets = c[0];
  f.counts.pending = c[1];
  f.counts.running = c[2];
  f.counts.succeeded = c[3];
  f.counts.failed = c[4];
  f.counts.cancelled = c[5];
  f.counts.unreachable = c[6];
  f.ev.counts = &f.counts;
  mu_watch_run *r = NULL;
  return mu_watch_model_apply(m, &f.ev, now, &r);
}

static void apply_output(mu_watch_model *m, const char *agent, const char *task, const char *text) {
  feed f;
  muster__v1__job_event__init(&f.ev);
  muster__v1__task_run__init(&f.run);
  muster__v1__output_chunk__init(&f.out);
  char id[128];
  snprintf(id, sizeof id, "j-1/%s/%s", agent, task);
  f.run.task_id = id;
  f.run.task_name = (char *)task;
  f.run.agent_id = (char *)agent;
  f.out.data.data = (uint8_t *)text;
  f.out.data.len = strlen(text);
  f.ev.task = &f.run;
  f.ev.output = &f.out;
  mu_watch_run *r = NULL;
  assert_int_equal(mu_watch_model_apply(m, &f.ev, 0, &r), MU_EV_OUTPUT);
}

static char *print_to_string(void (*fn)(FILE *, const mu_text_opts *, const mu_watch_model *, const mu_watch_run *),
                             const mu_text_opts *o, const mu_watch_model *m, size_t run) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  fn(f, o, m, &m->runs[run]);
  fclose(f);
  return buf;
}

static void two_tasks_with_a_retry(void **state) {
  (void)state;
  mu_watch_model m;
  mu_watch_model_init(&m, 2, 2, MU_KEEP_HEAD, 64);
  const uint32_t c0[7] = {2, 0, 2, 0, 0, 0, 0};
  assert_int_equal(apply_state(&m, 100, "web-1", "build", MUSTER__V1__TASK_STATE__RUNNING, 0, 0, 0, c0), MU_EV_CHANGED);
  apply_state(&m, 100, "web-2", "build", MUSTER__V1__TASK_STATE__RUNNING, 0, 0, 0, c0);
  apply_output(&m, "web-1", "build", "attempt one\n");
  /* web-1's build fails and is retried: its output goes, nothing is printed */
  assert_int_equal(apply_state(&m, 200, "web-1", "build", MUSTER__V1__TASK_STATE__FAILED, 3, 1, 0, c0), MU_EV_RETRYING);
  apply_state(&m, 250, "web-1", "build", MUSTER__V1__TASK_STATE__RUNNING, 0, 0, 0, c0);
  apply_output(&m, "web-1", "build", "one\ntwo\nthree\n");
  assert_int_equal(apply_state(&m, 300, "web-1", "build", MUSTER__V1__TASK_STATE__SUCCEEDED, 0, 0, 0, c0), MU_EV_ENDED);
  assert_int_equal(mu_watch_model_runs_ended(&m), 1);
  assert_int_equal(mu_watch_model_eta_ms(&m, 300), -1); /* no host has ended yet */
  /* web-2's build fails for good: the host is done, both its task runs count as ended */
  const uint32_t c1[7] = {2, 0, 1, 0, 1, 0, 0};
  assert_int_equal(apply_state(&m, 1100, "web-2", "build", MUSTER__V1__TASK_STATE__FAILED, 3, 0, 1, c1), MU_EV_ENDED);
  assert_int_equal(mu_watch_model_runs_ended(&m), 3);
  assert_int_equal(m.counts.failed, 1);
  /* one host took 1000 ms; web-1 has run 1000 ms of it: nothing left, ETA 0 */
  assert_true(mu_watch_model_eta_ms(&m, 1100) >= 0);

  mu_text_opts o = {.job_id = "j-1", .lines = 2};
  char *text = print_to_string(mu_text_print_run, &o, &m, 0);
  assert_string_equal(text,
                      "web-1/build              SUCCEEDED  exit 0      1.25s\n"
                      "web-1/build: one\n"
                      "web-1/build: two\n"
                      "web-1/build: ... 1 more line; see all: muster logs j-1 web-1/build\n");
  free(text);
  o.lines = 0;
  text = print_to_string(mu_text_print_run, &o, &m, 1);
  assert_string_equal(text, "web-2/build              FAILED     exit 3      1.25s\n");
  free(text);

  /* the panel: two bars, the counts as sent, the running host, the failed one */
  char panel[4096];
  mu_panel_opts po = {.job_id = "j-1", .color = 0, .width = 100};
  int n = mu_panel_render(&po, &m, 0, 1500, panel, sizeof panel);
  assert_int_equal(n, 5);
  assert_non_null(strstr(panel, "job j-1 ["));
  assert_non_null(strstr(panel, "] 1/2 hosts  50%  1.50s  ETA "));
  assert_non_null(strstr(panel, "] 3/4 task runs\n"));
  assert_non_null(strstr(panel, "  2 targets: 1 running, 1 failed\n"));
  assert_non_null(strstr(panel, "  failed: web-2 (1)\n"));
  /* with no event, only the clock moves */
  char later[4096];
  mu_panel_render(&po, &m, 0, 2600, later, sizeof later);
  assert_non_null(strstr(later, " 2.60s "));
  /* every line fits a narrow terminal */
  po.width = 40;
  n = mu_panel_render(&po, &m, 0, 2600, later, sizeof later);
  for (char *line = later, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) assert_true(nl - line <= 39);
  mu_watch_model_free(&m);
}

static void groups_fold_hosts(void **state) {
  (void)state;
  mu_watch_model m;
  mu_watch_model_init(&m, 4, 1, MU_KEEP_HEAD, 1024);
  const uint32_t c[7] = {4, 0, 0, 3, 1, 0, 0};
  const char *hosts[] = {"web-3", "web-1", "db-1", "web-2"};
  for (size_t i = 0; i < 4; i++) {
    apply_output(&m, hosts[i], "run", strcmp(hosts[i], "db-1") ? "same\n" : "other\n");
    apply_state(&m, 10, hosts[i], "run",
                strcmp(hosts[i], "db-1") ? MUSTER__V1__TASK_STATE__SUCCEEDED : MUSTER__V1__TASK_STATE__FAILED,
                strcmp(hosts[i], "db-1") ? 0 : 3, 0, 1, c);
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  mu_text_opts o = {.job_id = "j-1"};
  mu_text_print_groups(f, &o, &m);
  m.job_state = MUSTER__V1__JOB_STATE__JOB_FAILED;
  mu_text_print_summary(f, &o, &m, 1500);
  fclose(f);
  assert_string_equal(buf,
                      "---------------\nweb-[1-3] (3): SUCCEEDED exit 0\n---------------\nsame\n"
                      "---------------\ndb-1 (1): FAILED exit 3\n---------------\nother\n"
                      "job j-1 failed: 4 targets: 3 succeeded, 1 failed (1.50s)\n"
                      "  not succeeded: db-1\n");
  free(buf);
  mu_watch_model_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(two_tasks_with_a_retry), cmocka_unit_test(groups_fold_hosts)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
