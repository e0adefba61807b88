/* Tests for rollout.c: parsing (every problem named by its field), concurrency and the error
 * budget against a target count, batches, and the one "max errors reached" message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/rollout.h"
#include "lib/base/count_or_pct.h"

static char problems[1024];

static void collect(void *ud, const char *msg) {
  (void)ud;
  size_t n = strlen(problems);
  snprintf(problems + n, sizeof problems - n, "%s%s", n ? "; " : "", msg);
}

static int parse(const char *conc, const char *errors, uint32_t batch, const char *wait, mu_rollout *r) {
  Muster__V1__Rollout ro = MUSTER__V1__ROLLOUT__INIT;
  ro.max_concurrency = (char *)conc;
  ro.max_errors = (char *)errors;
  ro.batch = batch;
  ro.disconnected_wait = (char *)wait;
  problems[0] = '\0';
  return mu_rollout_parse(&ro, r, collect, NULL);
}

static void parses_and_resolves(void **state) {
  (void)state;
  mu_rollout r;
  assert_int_equal(mu_rollout_parse(NULL, &r, collect, NULL), 0);
  assert_int_equal(r.max_errors, -1);
  assert_int_equal(mu_rollout_concurrency(&r, 40), 40); /* unlimited: every target */
  assert_int_equal(mu_rollout_error_budget(&r, 40), -1);
  assert_int_equal(parse("25%", "10%", 0, "30s", &r), 0);
  assert_int_equal(mu_rollout_concurrency(&r, 40), 10);
  assert_int_equal(mu_rollout_concurrency(&r, 2), 1); /* a percentage runs at least one */
  assert_int_equal(mu_rollout_error_budget(&r, 40), 4);
  assert_int_equal(r.disconnected_wait_ms, 30000);
  assert_int_equal(parse("", "0", 5, "", &r), 0);
  assert_int_equal(mu_rollout_concurrency(&r, 40), 5); /* a batch is its own concurrency */
  assert_int_equal(mu_rollout_error_budget(&r, 40), 0);
  assert_int_equal(mu_rollout_batch_of(&r, 4), 0);
  assert_int_equal(mu_rollout_batch_of(&r, 5), 1);
  assert_int_equal(mu_rollout_batch_of(&r, 12), 2);
}

static void every_problem_is_named(void **state) {
  (void)state;
  mu_rollout r;
  assert_int_equal(parse("0", "x", 3, "soon", &r), 4);
  assert_string_equal(problems,
                      "rollout.max_concurrency: must be at least 1; "
                      "rollout.max_errors: expected a count like \"10\" or a percentage like "
                      "\"25%\", got \"x\"; "
                      "rollout: batch and max_concurrency conflict (a batch is its own "
                      "concurrency); rollout.disconnected_wait: "
                      "bad duration \"soon\" (expected e.g. \"30s\", \"5m\", \"1h30m\", \"250ms\")");
  assert_int_equal(parse("101%", "", 0, "", &r), 2); /* as before: both are said */
  assert_string_equal(problems,
                      "rollout.max_concurrency: percentage must be 1%..100%, got "
                      "\"101%\"; rollout.max_concurrency: must be at least 1");
}

static void the_one_budget_message(void **state) {
  (void)state;
  char why[160] = "";
  assert_false(mu_rollout_over_budget(-1, 1000, why, sizeof why)); /* unlimited */
  assert_false(mu_rollout_over_budget(2, 2, why, sizeof why));
  assert_true(mu_rollout_over_budget(2, 3, why, sizeof why));
  assert_string_equal(why, "not started: max errors reached (3 failed, 2 allowed)");
  uint32_t c = 9, p = 9;
  mu_err err = {0};
  assert_int_equal(mu_count_or_pct_parse("7", &c, &p, &err), 0);
  assert_int_equal(c, 7);
  assert_int_equal(p, 0);
  assert_int_equal(mu_count_or_pct_parse("1000001", &c, &p, &err), MU_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parses_and_resolves),
      cmocka_unit_test(every_problem_is_named),
      cmocka_unit_test(the_one_budget_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
