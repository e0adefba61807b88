/* jobcounts: pending is what is left, the text names every non-zero state once, plurals and
 * durations read right at their edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lib/jobcounts/jobcounts.h"

static void fill_and_format(void **state) {
  (void)state;
  Muster__V1__JobCounts c;
  uint32_t by[MU_COUNT_STATES] = {99, 1, 2, 1, 3, 1};
  mu_job_counts_fill(&c, 10, by);
  assert_int_equal(c.pending, 2);
  assert_int_equal(mu_job_counts_problems(&c), 5);
  assert_int_equal(mu_job_counts_ended(&c), 7);
  char buf[200];
  assert_string_equal(mu_job_counts_format(&c, buf, sizeof buf),
                      "10 targets: 2 pending, 1 running, 2 succeeded, 1 failed, 3 cancelled, "
                      "1 unreachable");
  /* skipped targets ended, but are not problems */
  uint32_t skip[MU_COUNT_STATES] = {0, 0, 2, 0, 0, 0, 1};
  mu_job_counts_fill(&c, 3, skip);
  assert_int_equal(c.pending, 0);
  assert_int_equal(c.skipped, 1);
  assert_int_equal(mu_job_counts_problems(&c), 0);
  assert_int_equal(mu_job_counts_ended(&c), 3);
  assert_string_equal(mu_job_counts_format(&c, buf, sizeof buf), "3 targets: 2 succeeded, 1 skipped");
  uint32_t one[MU_COUNT_STATES] = {0, 0, 1, 0, 0, 0};
  mu_job_counts_fill(&c, 1, one);
  assert_string_equal(mu_job_counts_format(&c, buf, sizeof buf), "1 target: 1 succeeded");
  uint32_t none[MU_COUNT_STATES] = {0};
  mu_job_counts_fill(&c, 0, none);
  assert_string_equal(mu_job_counts_format(&c, buf, sizeof buf), "0 targets");
  /* more placed than targets (a racing tally) never wraps pending */
  uint32_t over[MU_COUNT_STATES] = {0, 3, 0, 0, 0, 0};
  mu_job_counts_fill(&c, 2, over);
  assert_int_equal(c.pending, 0);
  /* a short buffer is cut, not overrun */
  char small[8];
  mu_job_counts_format(&c, small, sizeof small);
  assert_int_equal(strlen(small), 7);
}

static void plurals_and_durations(void **state) {
  (void)state;
  char buf[32];
  assert_string_equal(mu_plural(1, "target", buf, sizeof buf), "1 target");
  assert_string_equal(mu_plural(0, "target", buf, sizeof buf), "0 targets");
  assert_string_equal(mu_plural(2, "task run", buf, sizeof buf), "2 task runs");
  assert_string_equal(mu_duration_format(-5, buf, sizeof buf), "0ms");
  assert_string_equal(mu_duration_format(0, buf, sizeof buf), "0ms");
  assert_string_equal(mu_duration_format(850, buf, sizeof buf), "850ms");
  assert_string_equal(mu_duration_format(1000, buf, sizeof buf), "1.00s");
  assert_string_equal(mu_duration_format(1999, buf, sizeof buf), "1.99s");
  assert_string_equal(mu_duration_format(12345, buf, sizeof buf), "12.3s");
  assert_string_equal(mu_duration_format(125000, buf, sizeof buf), "2m05s");
  assert_string_equal(mu_duration_format(3720000, buf, sizeof buf), "1h02m");
  assert_string_equal(mu_count_state_name(MU_COUNT_UNREACHABLE), "unreachable");
  assert_string_equal(mu_count_state_name(MU_COUNT_SKIPPED), "skipped");
  assert_string_equal(mu_count_state_name(MU_COUNT_STATES), "?");
}

static void exit_codes(void **state) {
  (void)state;
  Muster__V1__TaskRun t = MUSTER__V1__TASK_RUN__INIT;
  int code = -1;
  t.state = MUSTER__V1__TASK_STATE__SUCCEEDED;
  assert_int_equal(mu_task_run_exit(&t, &code), 1);
  assert_int_equal(code, 0);
  t.state = MUSTER__V1__TASK_STATE__FAILED;
  t.exit_code = 3;
  assert_int_equal(mu_task_run_exit(&t, &code), 1);
  assert_int_equal(code, 3);
  t.signal = 9; /* killed: no exit code */
  assert_int_equal(mu_task_run_exit(&t, &code), 0);
  t.signal = 0;
  t.exit_code = 0; /* failed before it ran (spawn, run_as) */
  assert_int_equal(mu_task_run_exit(&t, &code), 0);
  t.state = MUSTER__V1__TASK_STATE__CANCELLED;
  assert_int_equal(mu_task_run_exit(&t, &code), 0);
  t.state = MUSTER__V1__TASK_STATE__LOST;
  assert_int_equal(mu_task_run_exit(&t, &code), 0);
  t.state = MUSTER__V1__TASK_STATE__TIMED_OUT;
  assert_int_equal(mu_task_run_exit(&t, &code), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(fill_and_format), cmocka_unit_test(plurals_and_durations),
                                     cmocka_unit_test(exit_codes)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
