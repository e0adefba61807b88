/* The schedule decisions of plan.h against tables: due slots on time and missed, catch-up
 * none/latest/all with a window, the per-call cap, jitter, overlap, and the refusals of
 * rules that are wrong (no network, no clock: "now" is given). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/schedules/plan.h"

#define T0 1767225600LL /* 2026-01-01T00:00:00Z, a multiple of 10 and 60 */

static mu_schedule_rules rules(const char *cron, const char *catch_up, const char *window, const char *jitter) {
  Muster__V1__ScheduleSpec spec = MUSTER__V1__SCHEDULE_SPEC__INIT;
  spec.name = "nightly";
  spec.cron = (char *)cron;
  if (catch_up) spec.catch_up = (char *)catch_up;
  if (window) spec.catch_up_window = (char *)window;
  if (jitter) spec.jitter = (char *)jitter;
  mu_schedule_rules r;
  mu_err err = {0};
  int rc = mu_schedule_rules_parse(&spec, NULL, &r, &err);
  if (rc != 0) fail_msg("%s: %s", cron, err.msg);
  /* defaults were strdup'ed into spec: free those this test did not give */
  if (!catch_up) free(spec.catch_up);
  if (!window) free(spec.catch_up_window);
  if (!jitter) free(spec.jitter);
  free(spec.tz);
  free(spec.overlap);
  return r;
}

typedef struct due_case {
  const char *what;
  const char *cron, *catch_up, *window;
  int64_t cursor_s, now_ms;
  size_t max_fire;
  int64_t want[8];     /* offsets from T0, -1 ends */
  int64_t want_cursor; /* offset from T0 */
  size_t want_skipped;
} due_case;

static const due_case due_cases[] = {
    {"every second, on time", "* * * * * *", NULL, NULL, T0 - 1, T0 * 1000 + 50, 8, {0, -1}, 0, 0},
    {"not due yet", "* * * * * *", NULL, NULL, T0, T0 * 1000 + 500, 8, {-1}, 0, 0},
    {"none: after 100 s down only the on-time slot",
     "* * * * * *",
     "none",
     NULL,
     T0 - 100,
     T0 * 1000 + 10,
     8,
     {0, -1},
     0,
     1},
    /* the cursor may pass the last slot: everything before now - on time is decided */
    {"none: every 10 s, all missed", "*/10 * * * * *", "none", NULL, T0, T0 * 1000 + 65500, 8, {-1}, 63, 0},
    {"latest: the newest missed one", "*/10 * * * * *", "latest", NULL, T0, T0 * 1000 + 65500, 8, {60, -1}, 60, 5},
    {"latest: an on-time slot supersedes the missed ones",
     "*/10 * * * * *",
     "latest",
     NULL,
     T0,
     T0 * 1000 + 60200,
     8,
     {60, -1},
     60,
     5},
    {"latest: missed slots past the window are dropped",
     "*/10 * * * * *",
     "latest",
     "4s",
     T0,
     T0 * 1000 + 65500,
     8,
     {-1},
     60,
     0},
    {"all: every missed slot within the window",
     "*/10 * * * * *",
     "all",
     "30s",
     T0,
     T0 * 1000 + 65500,
     8,
     {40, 50, 60, -1},
     60,
     0},
    {"all: at most max_fire, the rest next call",
     "*/10 * * * * *",
     "all",
     "1h",
     T0,
     T0 * 1000 + 65500,
     2,
     {10, 20, -1},
     20,
     0},
    {"all: the next call goes on from the cursor",
     "*/10 * * * * *",
     "all",
     "1h",
     T0 + 20,
     T0 * 1000 + 65500,
     8,
     {30, 40, 50, 60, -1},
     60,
     0},
    {"minutes: the slot of this minute, once", "* * * * *", NULL, NULL, T0 - 60, T0 * 1000 + 200, 8, {0, -1}, 0, 0},
    {"a handled slot is not due again", "* * * * *", NULL, NULL, T0, T0 * 1000 + 30000, 8, {-1}, 28, 0},
};

static void due_slots(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof due_cases / sizeof due_cases[0]; i++) {
    const due_case *c = &due_cases[i];
    mu_schedule_rules r = rules(c->cron, c->catch_up, c->window, NULL);
    int64_t fire[16], cursor = 0;
    size_t skipped = 99;
    size_t n = mu_schedule_due(&r, "nightly", c->cursor_s, c->now_ms, 1000, fire, c->max_fire, &cursor, &skipped);
    size_t want_n = 0;
    while (c->want[want_n] != -1) want_n++;
    if (n != want_n) fail_msg("%s: %zu slots fired, want %zu", c->what, n, want_n);
    for (size_t k = 0; k < n; k++)
      if (fire[k] != T0 + c->want[k])
        fail_msg("%s: slot %zu is T0%+lld, want T0%+lld", c->what, k, (long long)(fire[k] - T0), (long long)c->want[k]);
    if (cursor != T0 + c->want_cursor)
      fail_msg("%s: cursor T0%+lld, want T0%+lld", c->what, (long long)(cursor - T0), (long long)c->want_cursor);
    if (skipped != c->want_skipped) fail_msg("%s: %zu skipped, want %zu", c->what, skipped, c->want_skipped);
    mu_schedule_rules_free(&r);
  }
}

/* Calling again and again as time passes fires every slot exactly once. */
static void every_slot_once_over_time(void **state) {
  (void)state;
  mu_schedule_rules r = rules("*/3 * * * * *", "all", "1m", "900ms");
  int64_t cursor = T0, seen[64];
  size_t n_seen = 0;
  for (int64_t now = T0 * 1000; now < (T0 + 60) * 1000; now += 137) {
    int64_t fire[4];
    size_t skipped;
    size_t n = mu_schedule_due(&r, "nightly", cursor, now, 1000, fire, 4, &cursor, &skipped);
    for (size_t k = 0; k < n; k++) {
      assert_true(now >= fire[k] * 1000);             /* never early */
      assert_true(now - fire[k] * 1000 <= 900 + 137); /* late by jitter + the step at most */
      assert_true(n_seen < 64);
      seen[n_seen++] = fire[k];
    }
    assert_int_equal(skipped, 0);
  }
  assert_int_equal(n_seen, 19); /* T0+3 .. T0+57: T0+60 is not due before the loop ends */
  for (size_t k = 0; k < n_seen; k++) assert_int_equal(seen[k], T0 + 3 * (int64_t)(k + 1));
  mu_schedule_rules_free(&r);
}

static void jitter_is_fixed_per_slot(void **state) {
  (void)state;
  int differs = 0;
  for (int64_t s = T0; s < T0 + 100; s++) {
    int64_t j = mu_schedule_jitter_ms("nightly", s, 30000);
    assert_true(j >= 0 && j <= 30000);
    assert_int_equal(j, mu_schedule_jitter_ms("nightly", s, 30000));
    differs |= j != mu_schedule_jitter_ms("nightly", T0, 30000);
  }
  assert_true(differs);
  assert_int_equal(mu_schedule_jitter_ms("nightly", T0, 0), 0);
  /* a slot is not due before its jitter has passed */
  mu_schedule_rules r = rules("* * * * *", NULL, NULL, "30s");
  int64_t j = mu_schedule_jitter_ms("nightly", T0, 30000), fire[2], cursor;
  size_t skipped;
  if (j > 0)
    assert_int_equal(mu_schedule_due(&r, "nightly", T0 - 60, T0 * 1000 + j - 1, 1000, fire, 2, &cursor, &skipped), 0);
  assert_int_equal(mu_schedule_due(&r, "nightly", T0 - 60, T0 * 1000 + j, 1000, fire, 2, &cursor, &skipped), 1);
  assert_int_equal(fire[0], T0);
  mu_schedule_rules_free(&r);
}

static void overlap_decisions(void **state) {
  (void)state;
  static const struct {
    mu_overlap o;
    int running, queued;
    mu_slot_action want;
  } t[] = {
      {MU_OVERLAP_SKIP, 0, 0, MU_SLOT_FIRE},
      {MU_OVERLAP_SKIP, 1, 0, MU_SLOT_SKIP},
      {MU_OVERLAP_QUEUE, 0, 0, MU_SLOT_FIRE},
      {MU_OVERLAP_QUEUE, 1, 0, MU_SLOT_QUEUE},
      {MU_OVERLAP_QUEUE, 1, 1, MU_SLOT_SKIP},
      {MU_OVERLAP_CANCEL_PREVIOUS, 0, 0, MU_SLOT_FIRE},
      {MU_OVERLAP_CANCEL_PREVIOUS, 1, 0, MU_SLOT_CANCEL_AND_FIRE},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (mu_schedule_overlap(t[i].o, t[i].running, t[i].queued) != t[i].want)
      fail_msg("case %zu: overlap %s running=%d queued=%d", i, mu_overlap_name(t[i].o), t[i].running, t[i].queued);
}

static void refusals_name_the_problem(void **state) {
  (void)state;
  static const struct {
    const char *name, *cron, *tz, *jitter, *overlap, *catch_up, *window;
    const char *want;
  } t[] = {
      {"a", "61 * * * *", NULL, NULL, NULL, NULL, NULL, "cron field 1 (minute): '61'"},
      {"a", "* * *", NULL, NULL, NULL, NULL, NULL, "got 3"},
      {"a", "", NULL, NULL, NULL, NULL, NULL, "cron: required"},
      {"a", "* * * * *", "Mars/Olympus", NULL, NULL, NULL, NULL, "unknown time zone 'Mars/Olympus'"},
      {"a", "* * * * *", NULL, "soon", NULL, NULL, NULL, "jitter"},
      {"a", "* * * * *", NULL, "48h", NULL, NULL, NULL, "jitter: '48h' is out of range"},
      {"a", "* * * * *", NULL, NULL, "sometimes", NULL, NULL,
       "overlap: 'sometimes' is not one of skip, queue, cancel-previous"},
      {"a", "* * * * *", NULL, NULL, NULL, "some", NULL, "catch-up: 'some' is not one of"},
      {"a", "* * * * *", NULL, NULL, NULL, "all", "forever", "catch-up-window"},
      {"bad name", "* * * * *", NULL, NULL, NULL, NULL, NULL, "character 4 (' ')"},
      {"", "* * * * *", NULL, NULL, NULL, NULL, NULL, "schedule name: required"},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    Muster__V1__ScheduleSpec spec = MUSTER__V1__SCHEDULE_SPEC__INIT;
    spec.name = (char *)t[i].name;
    spec.cron = (char *)t[i].cron;
    if (t[i].tz) spec.tz = (char *)t[i].tz;
    if (t[i].jitter) spec.jitter = (char *)t[i].jitter;
    if (t[i].overlap) spec.overlap = (char *)t[i].overlap;
    if (t[i].catch_up) spec.catch_up = (char *)t[i].catch_up;
    if (t[i].window) spec.catch_up_window = (char *)t[i].window;
    mu_schedule_rules r;
    mu_err err = {0};
    if (mu_schedule_rules_parse(&spec, NULL, &r, &err) == 0) fail_msg("case %zu accepted", i);
    if (strstr(err.msg, t[i].want) == NULL) fail_msg("case %zu: '%s' does not say '%s'", i, err.msg, t[i].want);
    /* defaults filled before the refusal are the caller's to free */
    char **fields[] = {&spec.tz, &spec.jitter, &spec.overlap, &spec.catch_up, &spec.catch_up_window};
    const char *given[] = {t[i].tz, t[i].jitter, t[i].overlap, t[i].catch_up, t[i].window};
    for (size_t f = 0; f < 5; f++)
      if (given[f] == NULL && *fields[f] != protobuf_c_empty_string) free(*fields[f]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(due_slots),
      cmocka_unit_test(every_slot_once_over_time),
      cmocka_unit_test(jitter_is_fixed_per_slot),
      cmocka_unit_test(overlap_decisions),
      cmocka_unit_test(refusals_name_the_problem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
