/* Tests for job_retention.c: a burst past max_jobs_kept keeps jobs younger than the minimum
 * age, the hard cap still bounds what is held (oldest finished first, young ones counted),
 * unfinished jobs never go, and an evicted id is answered with when and by which rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/job_retention.h"

#define HOUR 3600000LL
#define NOW (1800000000000LL)

static void burst_keeps_young_jobs(void **state) {
  (void)state;
  mu_retention r = {.max_kept = 3, .min_age_ms = HOUR, .hard_cap = 100};
  mu_retention_job jobs[10];
  bool evict[10];
  size_t young = 99;
  for (size_t i = 0; i < 10; i++) jobs[i] = (mu_retention_job){true, NOW - 1000 * (int64_t)i, false};
  /* ten jobs that finished seconds ago: all kept */
  assert_int_equal(mu_retention_plan(&r, jobs, 10, NOW, evict, &young), 0);
  assert_int_equal(young, 0);
  /* an hour later the ones past the newest three go, and only those */
  assert_int_equal(mu_retention_plan(&r, jobs, 10, NOW + HOUR + 10000, evict, &young), 7);
  for (size_t i = 0; i < 10; i++) assert_int_equal(evict[i], i >= 3);
  assert_int_equal(young, 0);
  /* an unfinished job is never evicted, however old */
  jobs[8].finished = false;
  assert_int_equal(mu_retention_plan(&r, jobs, 10, NOW + 2 * HOUR, evict, NULL), 6);
  assert_false(evict[8]);
}

static void hard_cap_bounds_memory(void **state) {
  (void)state;
  mu_retention r = {.max_kept = 2, .min_age_ms = HOUR, .hard_cap = 4};
  mu_retention_job jobs[7];
  bool evict[7];
  size_t young = 0;
  for (size_t i = 0; i < 7; i++) jobs[i] = (mu_retention_job){true, NOW - 1000 * (int64_t)i, false};
  jobs[6].finished = false; /* the oldest is still running */
  /* 7 held, cap 4: the three oldest finished go (5, 4, 3), young as they are */
  assert_int_equal(mu_retention_plan(&r, jobs, 7, NOW, evict, &young), 3);
  assert_int_equal(young, 3);
  bool want[7] = {false, false, false, true, true, true, false};
  assert_memory_equal(evict, want, sizeof want);
  /* old ones past max_kept go by age first and are not counted as young */
  jobs[5].finished_at_ms = NOW - 2 * HOUR;
  assert_int_equal(mu_retention_plan(&r, jobs, 7, NOW, evict, &young), 3);
  assert_int_equal(young, 2);
}

/* A finished job an unfinished one still needs (a dependency it waits for, a stage's job) is
 * kept past max_kept and past the hard cap, like an unfinished job. */
static void needed_jobs_are_kept(void **state) {
  (void)state;
  mu_retention r = {.max_kept = 1, .min_age_ms = 0, .hard_cap = 2};
  mu_retention_job jobs[4];
  bool evict[4];
  for (size_t i = 0; i < 4; i++) jobs[i] = (mu_retention_job){true, NOW - HOUR, false};
  jobs[2].needed = true;
  assert_int_equal(mu_retention_plan(&r, jobs, 4, NOW, evict, NULL), 2);
  assert_false(evict[0]);
  assert_true(evict[1]);
  assert_false(evict[2]);
  assert_true(evict[3]);
}

static void evicted_ids_answered(void **state) {
  (void)state;
  mu_retention r = {.max_kept = 1000, .min_age_ms = HOUR, .hard_cap = 10000};
  mu_evicted_ring ring = {0};
  char msg[512];
  mu_retention_not_found(&r, &ring, "j-1", msg, sizeof msg);
  assert_string_equal(msg, "no job 'j-1'");
  mu_evicted_ring_add(&ring, "j-1", 1800000000000LL, false);
  mu_retention_not_found(&r, &ring, "j-1", msg, sizeof msg);
  assert_string_equal(msg,
                      "job j-1 was evicted (finished at 2027-01-15T08:00:00Z; retention: "
                      "max_jobs_kept 1000, jobs_kept_min_age 1h, max_jobs_kept_hard 10000)");
  mu_evicted_ring_add(&ring, "j-2", 1800000000000LL, true);
  mu_retention_not_found(&r, &ring, "j-2", msg, sizeof msg);
  assert_non_null(strstr(msg, "before its min age because more than max_jobs_kept_hard"));
  /* bounded: the oldest ids are forgotten */
  for (int i = 0; i < MU_EVICTED_RING_MAX; i++) {
    char id[32];
    snprintf(id, sizeof id, "k-%d", i);
    mu_evicted_ring_add(&ring, id, 0, false);
  }
  assert_int_equal(ring.n, MU_EVICTED_RING_MAX);
  assert_null(mu_evicted_ring_find(&ring, "j-1"));
  assert_non_null(mu_evicted_ring_find(&ring, "k-0"));
  mu_evicted_ring_free(&ring);
}

static void durations(void **state) {
  (void)state;
  char b[32];
  mu_retention_format_duration(0, b, sizeof b);
  assert_string_equal(b, "0s");
  mu_retention_format_duration(HOUR, b, sizeof b);
  assert_string_equal(b, "1h");
  mu_retention_format_duration(90500, b, sizeof b);
  assert_string_equal(b, "1m30s500ms");
  mu_retention_format_duration(2 * 86400000LL + HOUR, b, sizeof b);
  assert_string_equal(b, "2d1h");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(burst_keeps_young_jobs),
      cmocka_unit_test(hard_cap_bounds_memory),
      cmocka_unit_test(needed_jobs_are_kept),
      cmocka_unit_test(evicted_ids_answered),
      cmocka_unit_test(durations),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
