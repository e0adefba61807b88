/* Tests for queues.c on tables, no network: the table (names, weights, replacing, removing,
 * the built-in default), a job's queue checked with the known ones named, and the pass's fair
 * share: hosts started per queue follow the weights, max_running is never passed and the
 * rest say why, priority order within a queue, and a queue that cannot start moves on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/queues.h"

static void table_and_check(void **state) {
  (void)state;
  mu_queue_table t = {0};
  mu_err err = {0};
  assert_non_null(mu_queue_find(&t, ""));
  assert_string_equal(mu_queue_find(&t, NULL)->name, "default");
  assert_int_equal(mu_queue_check(&t, "default", &err), 0);
  assert_int_equal(mu_queue_check(&t, "etl", &err), MU_EINVAL);
  assert_string_equal(err.msg, "queue: no queue 'etl' (known: default)");
  assert_int_equal(mu_queue_table_set(&t, "etl", 3, 4, &err), 0);
  assert_int_equal(mu_queue_table_set(&t, "batch", 0, 0, &err), 0);
  assert_int_equal(mu_queue_find(&t, "batch")->weight, 1);        /* weight 0 is 1 */
  assert_int_equal(mu_queue_table_set(&t, "etl", 2, 5, &err), 0); /* replaced */
  assert_int_equal(t.n, 2);
  assert_int_equal(mu_queue_find(&t, "etl")->max_running, 5);
  assert_int_equal(mu_queue_check(&t, "web", &err), MU_EINVAL);
  assert_string_equal(err.msg, "queue: no queue 'web' (known: default, etl, batch)");
  assert_int_equal(mu_queue_table_set(&t, "bad name", 1, 0, &err), MU_EINVAL);
  assert_int_equal(mu_queue_table_set(&t, "", 1, 0, &err), MU_EINVAL);
  assert_int_equal(mu_queue_table_set(&t, "big", 1001, 0, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "weight must be 1..1000"));
  /* a table naming default replaces the built-in one */
  assert_int_equal(mu_queue_table_set(&t, "default", 5, 2, &err), 0);
  assert_int_equal(mu_queue_find(&t, "")->max_running, 2);
  assert_int_equal(mu_queue_table_rm(&t, "etl"), 0);
  assert_int_equal(mu_queue_table_rm(&t, "etl"), MU_ENOENT);
  assert_null(mu_queue_find(&t, "etl"));
  assert_string_equal(t.q[0].name, "batch");
  for (int i = 0; i < MU_QUEUE_MAX; i++) {
    char name[16];
    snprintf(name, sizeof name, "q%d", i);
    int rc = mu_queue_table_set(&t, name, 1, 0, &err);
    if (rc != 0) {
      assert_int_equal(rc, MU_ENOSPC);
      break;
    }
  }
  assert_int_equal(t.n, MU_QUEUE_MAX);
}

/* --- the pass, on a table of jobs: each has hosts it could start (capacity left) --- */

typedef struct sim {
  size_t want[64];    /* hosts job i would start given room */
  size_t started[64]; /* hosts started per job */
  size_t fleet_free;  /* free slots left in the fleet */
  char why[64][160];  /* what job i's pending hosts were told */
  size_t calls[64];
  size_t order[512]; /* job of each host started, in order */
  size_t n_order;
} sim;

static size_t sim_dispatch(void *ud, size_t job, size_t budget, const char *why) {
  sim *s = ud;
  s->calls[job]++;
  size_t n = 0;
  while (n < budget && s->started[job] < s->want[job] && s->fleet_free > 0) {
    s->started[job]++;
    s->fleet_free--;
    s->order[s->n_order++] = job;
    n++;
  }
  if (why != NULL) snprintf(s->why[job], sizeof s->why[job], "%s", why);
  return n;
}

static void fair_share_by_weights(void **state) {
  (void)state;
  /* etl weight 3, batch weight 1: 40 free slots, both queues with more work than that */
  mu_queue_def etl = {"etl", 3, 0}, batch = {"batch", 1, 0};
  const mu_queue_def *qs[] = {&etl, &batch};
  sim s = {.fleet_free = 40};
  size_t queue[8];
  for (size_t i = 0; i < 8; i++) {
    queue[i] = i % 2; /* jobs alternate: even etl, odd batch */
    s.want[i] = 20;
  }
  uint32_t running[2] = {0, 0};
  assert_int_equal(mu_queue_pass(qs, 2, queue, 8, running, sim_dispatch, &s), 0);
  assert_int_equal(running[0], 30);
  assert_int_equal(running[1], 10);
  /* within a queue, the first (highest priority) job got its hosts first */
  assert_int_equal(s.started[0], 20);
  assert_int_equal(s.started[2], 10);
  assert_int_equal(s.started[1], 10);
  /* interleaved, not one queue after the other: the first 8 starts hold both queues */
  size_t batch_early = 0;
  for (size_t i = 0; i < 8; i++) batch_early += s.order[i] % 2;
  assert_true(batch_early >= 1 && batch_early <= 3);
  /* running tasks count: with etl already at 30 running, batch (10) catches up first */
  sim t = {.fleet_free = 10};
  for (size_t i = 0; i < 8; i++) t.want[i] = 20;
  uint32_t busy[2] = {30, 0};
  assert_int_equal(mu_queue_pass(qs, 2, queue, 8, busy, sim_dispatch, &t), 0);
  assert_int_equal(busy[1], 10); /* 30/3 == 10/1: batch got every free slot */
  assert_int_equal(busy[0], 30);
}

static void max_running_respected(void **state) {
  (void)state;
  mu_queue_def etl = {"etl", 1, 4}, dflt = {"default", 1, 0};
  const mu_queue_def *qs[] = {&etl, &dflt};
  sim s = {.fleet_free = 100};
  size_t queue[] = {0, 0, 0, 1};
  s.want[0] = 3, s.want[1] = 3, s.want[2] = 3, s.want[3] = 5;
  uint32_t running[2] = {0, 0};
  assert_int_equal(mu_queue_pass(qs, 2, queue, 4, running, sim_dispatch, &s), 0);
  assert_int_equal(running[0], 4); /* never past max_running */
  assert_int_equal(s.started[0] + s.started[1] + s.started[2], 4);
  assert_int_equal(s.started[0], 3); /* priority order within the queue */
  assert_int_equal(s.started[1], 1);
  assert_int_equal(s.started[2], 0);
  assert_int_equal(running[1], 5); /* the other queue is not held back */
  assert_string_equal(s.why[1], "waiting: queue 'etl' at its limit of 4 running");
  assert_string_equal(s.why[2], "waiting: queue 'etl' at its limit of 4 running");
  assert_string_equal(s.why[3], "");
  for (size_t i = 0; i < 4; i++) assert_true(s.calls[i] >= 1); /* every job seen (running hosts go on) */
  /* already at its limit from earlier passes: starts nothing */
  sim t = {.fleet_free = 100};
  t.want[0] = 3;
  uint32_t full[2] = {4, 0};
  assert_int_equal(mu_queue_pass(qs, 2, queue, 1, full, sim_dispatch, &t), 0);
  assert_int_equal(t.started[0], 0);
  assert_string_equal(t.why[0], "waiting: queue 'etl' at its limit of 4 running");
}

static void blocked_job_does_not_block_its_queue(void **state) {
  (void)state;
  mu_queue_def a = {"a", 1, 0}, b = {"b", 1, 0};
  const mu_queue_def *qs[] = {&a, &b};
  sim s = {.fleet_free = 6};
  size_t queue[] = {0, 0, 1};
  s.want[0] = 0; /* the first job of queue a cannot start anything (no room for it) */
  s.want[1] = 5;
  s.want[2] = 5;
  uint32_t running[2] = {0, 0};
  assert_int_equal(mu_queue_pass(qs, 2, queue, 3, running, sim_dispatch, &s), 0);
  assert_int_equal(s.started[1], 3);
  assert_int_equal(s.started[2], 3);
  /* one queue alone: a job gets everything it can in one call (no per-host rounds) */
  sim t = {.fleet_free = 100};
  t.want[0] = 50;
  size_t one[] = {0};
  uint32_t r1[1] = {0};
  assert_int_equal(mu_queue_pass(qs, 1, one, 1, r1, sim_dispatch, &t), 0);
  assert_int_equal(t.started[0], 50);
  assert_int_equal(t.calls[0], 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(table_and_check),
      cmocka_unit_test(fair_share_by_weights),
      cmocka_unit_test(max_running_respected),
      cmocka_unit_test(blocked_job_does_not_block_its_queue),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
