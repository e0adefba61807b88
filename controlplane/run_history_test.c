/* The run history without a network: the bounds per task name and in all (the oldest go, their
 * keys queued for deletion when this member writes), one record per key, a run judged against
 * its task name's records only, and the listing's order and filter. etcd, WatchJob and a
 * restart: //integration:anomaly_test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/run_history.h"
#include "lib/anomaly/anomaly.h"

static void add_run(mu_run_history *c, const char *name, const char *job, int64_t at, int64_t dur_ms,
                    int queue_delete) {
  Muster__V1__RunHistoryEntry e = MUSTER__V1__RUN_HISTORY_ENTRY__INIT;
  e.task_name = (char *)name;
  e.job_id = (char *)job;
  e.task_id = "t";
  e.agent_id = "web-1";
  e.attempt = 1;
  e.finished_at_ms = at;
  e.duration_ms = dur_ms;
  e.state = MUSTER__V1__TASK_STATE__SUCCEEDED;
  e.peak_memory_bytes = -1;
  char key[200];
  snprintf(key, sizeof key, "runhistory/%s/%013lld-%s-0-1", name, (long long)at, job);
  assert_int_equal(mu_run_history_add(c, key, &e, 1, queue_delete), 0);
}

static size_t count(const mu_run_history *c, const char *name) {
  size_t n = 0;
  for (size_t i = 0; i < c->n; i++) n += strcmp(c->items[i].run->task_name, name) == 0;
  return n;
}

static void test_bounds(void **state) {
  (void)state;
  mu_run_history c = {.keep = 10, .max = 15};
  for (int i = 0; i < 12; i++) add_run(&c, "a", "j-a", 1000 + i, 100, 1);
  assert_int_equal(count(&c, "a"), 10); /* per task name */
  assert_int_equal(c.deleted.n, 2);
  assert_string_equal(c.deleted.keys[0], "runhistory/a/0000000001000-j-a-0-1"); /* oldest first */
  for (int i = 0; i < 8; i++) add_run(&c, "b", "j-b", 2000 + i, 100, 1);
  assert_int_equal(c.n, 15); /* in all: the oldest (of a) went */
  assert_int_equal(count(&c, "a"), 7);
  assert_int_equal(count(&c, "b"), 8);
  for (size_t i = 0; i < c.n; i++) assert_true(c.items[i].run->finished_at_ms >= 1005);
  /* the same key again replaces, it does not add */
  add_run(&c, "b", "j-b", 2007, 100, 1);
  assert_int_equal(c.n, 15);
  /* a follower (queue_delete 0) trims without queueing */
  size_t queued = c.deleted.n;
  add_run(&c, "b", "j-b", 3000, 100, 0);
  assert_int_equal(c.deleted.n, queued);
  mu_run_history_reset(&c);
  assert_int_equal(c.n, 0);
  assert_int_equal(c.keep, 10); /* the bounds stay */
  /* a snapshot load appends as records come (any order), then bounds everything at once */
  assert_true(c.loading);
  for (int i = 11; i >= 0; i--) add_run(&c, "a", "j-a", 1000 + i, 100, 0);
  for (int i = 0; i < 8; i++) add_run(&c, "b", "j-b", 500 + i, 100, 0);
  assert_int_equal(c.n, 20);
  size_t queued_before = c.deleted.n;
  mu_run_history_trim_all(&c, 1);
  assert_int_equal(count(&c, "a"), 10);
  assert_int_equal(c.n, 15); /* then the oldest overall: b's (500..502) */
  assert_int_equal(count(&c, "b"), 5);
  assert_int_equal(c.deleted.n - queued_before, 5);
  for (size_t i = 0; i < c.n; i++)
    if (strcmp(c.items[i].run->task_name, "a") == 0) assert_true(c.items[i].run->finished_at_ms >= 1002);
  mu_run_history_reset(&c);
}

static void test_judge(void **state) {
  (void)state;
  mu_run_history c = {0};
  for (int i = 0; i < 9; i++) add_run(&c, "build", "j-1", 1000 + i, 100 + i % 3, 0);
  for (int i = 0; i < 20; i++) add_run(&c, "other", "j-2", 1000 + i, 10000, 0);
  Muster__V1__RunHistoryEntry run = MUSTER__V1__RUN_HISTORY_ENTRY__INIT;
  run.task_name = "build";
  run.agent_id = "web-2";
  run.duration_ms = 900;
  run.state = MUSTER__V1__TASK_STATE__FAILED;
  run.peak_memory_bytes = -1;
  char detail[256];
  /* nine runs of build (the other task name's twenty do not count): no history yet */
  assert_int_equal(mu_run_history_judge(&c, &run, detail, sizeof detail), 0);
  add_run(&c, "build", "j-1", 1010, 101, 0);
  assert_int_equal(mu_run_history_judge(&c, &run, detail, sizeof detail), MU_ANOMALY_SLOW);
  assert_non_null(strstr(detail, "took 900ms"));
  assert_non_null(strstr(detail, "10 earlier runs"));
  /* a run that timed out or was cancelled is reported as such, not judged SLOW */
  run.state = MUSTER__V1__TASK_STATE__TIMED_OUT;
  assert_int_equal(mu_run_history_judge(&c, &run, detail, sizeof detail), 0);
  run.state = MUSTER__V1__TASK_STATE__SUCCEEDED;
  run.duration_ms = 104;
  assert_int_equal(mu_run_history_judge(&c, &run, detail, sizeof detail), 0);
  run.output_dropped_bytes = 10;
  run.peak_memory_bytes = 95 << 20;
  run.memory_limit_bytes = 100u << 20;
  assert_int_equal(mu_run_history_judge(&c, &run, detail, sizeof detail), MU_ANOMALY_TRUNCATED | MU_ANOMALY_NEAR_OOM);
  assert_non_null(strstr(detail, "10 output bytes dropped"));
  mu_run_history_reset(&c);
}

static void test_list(void **state) {
  (void)state;
  mu_run_history c = {0};
  add_run(&c, "build", "j-2", 3000, 1, 0);
  add_run(&c, "build", "j-1", 1000, 1, 0);
  add_run(&c, "lint", "j-1", 2000, 1, 0);
  add_run(&c, "build", "j-1", 2000, 1, 0);
  Muster__V1__RunHistoryEntry **out = NULL;
  size_t n = 0;
  mu_err err = {0};
  assert_int_equal(mu_run_history_list(&c, "build", NULL, &out, &n, &err), 0);
  assert_int_equal(n, 3);
  assert_true(out[0]->finished_at_ms == 1000 && out[2]->finished_at_ms == 3000);
  free(out);
  assert_int_equal(mu_run_history_list(&c, "build", "j-1", &out, &n, &err), 0);
  assert_int_equal(n, 2);
  free(out);
  mu_run_history_reset(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bounds),
      cmocka_unit_test(test_judge),
      cmocka_unit_test(test_list),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
