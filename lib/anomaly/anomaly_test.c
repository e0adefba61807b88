/* Anomaly flags on tables: each case is a history (durations, peaks, this host's durations)
 * and a run, and the flags it must get; below the history minimum nothing is SLOW. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "lib/anomaly/anomaly.h"

#define MiB (1024.0 * 1024.0)

typedef struct {
  const char *what;
  double dur[16];
  size_t n_dur;
  double mem[16];
  size_t n_mem;
  double host[16];
  size_t n_host;
  mu_anomaly_run run;
  unsigned want;
} flag_case;

static void test_flag_table(void **state) {
  (void)state;
  static const flag_case cases[] = {
      {"steady run", {100, 101, 99, 100, 102, 98, 100, 101, 99, 100}, 10, {0}, 0, {0}, 0, {105, -1, 0, 0}, 0},
      {"slow run",
       {100, 101, 99, 100, 102, 98, 100, 101, 99, 100},
       10,
       {0},
       0,
       {0},
       0,
       {500, -1, 0, 0},
       MU_ANOMALY_SLOW},
      {"slow but 9 earlier runs only",
       {100, 101, 99, 100, 102, 98, 100, 101, 99},
       9,
       {0},
       0,
       {0},
       0,
       {500, -1, 0, 0},
       0},
      /* identical runs: MAD 0 is floored at 5 % of the median, so +15 % is not slow */
      {"identical history, +15%",
       {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000},
       10,
       {0},
       0,
       {0},
       0,
       {1150, -1, 0, 0},
       0},
      {"identical history, +25%",
       {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000},
       10,
       {0},
       0,
       {0},
       0,
       {1250, -1, 0, 0},
       MU_ANOMALY_SLOW},
      /* the 10 ms floor: 2 ms runs taking 30 ms are noise, 60 ms is slow */
      {"tiny runs, 10 ms floor", {2, 2, 2, 2, 2, 2, 2, 2, 2, 2}, 10, {0}, 0, {0}, 0, {30, -1, 0, 0}, 0},
      {"tiny runs, past floor", {2, 2, 2, 2, 2, 2, 2, 2, 2, 2}, 10, {0}, 0, {0}, 0, {60, -1, 0, 0}, MU_ANOMALY_SLOW},
      {"memory high",
       {100, 100, 100, 100, 100, 100, 100, 100, 100, 100},
       10,
       {10 * MiB, 10 * MiB, 10 * MiB, 10 * MiB, 10 * MiB, 10 * MiB, 10 * MiB, 10 * MiB, 10 * MiB, 10 * MiB},
       10,
       {0},
       0,
       {100, (int64_t)(40 * MiB), 0, 0},
       MU_ANOMALY_MEM_HIGH},
      {"near oom at 90%", {0}, 0, {0}, 0, {0}, 0, {100, 90 << 20, 100u << 20, 0}, MU_ANOMALY_NEAR_OOM},
      {"not near oom at 89%", {0}, 0, {0}, 0, {0}, 0, {100, 89 << 20, 100u << 20, 0}, 0},
      {"truncated", {0}, 0, {0}, 0, {0}, 0, {100, -1, 0, 1}, MU_ANOMALY_TRUNCATED},
      /* this host's runs (2 earlier + this) are all slow: the host is, not just this run */
      {"slow host",
       {100, 101, 99, 100, 102, 98, 100, 101, 400, 410},
       10,
       {0},
       0,
       {400, 410},
       2,
       {420, -1, 0, 0},
       MU_ANOMALY_SLOW | MU_ANOMALY_SLOW_HOST},
      {"one slow run on a fast host",
       {100, 101, 99, 100, 102, 98, 100, 101, 99, 100},
       10,
       {0},
       0,
       {100, 101},
       2,
       {500, -1, 0, 0},
       MU_ANOMALY_SLOW},
      {"host with too few runs",
       {100, 101, 99, 100, 102, 98, 100, 101, 99, 400},
       10,
       {0},
       0,
       {400},
       1,
       {420, -1, 0, 0},
       MU_ANOMALY_SLOW},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    flag_case c = cases[i]; /* a copy: the call sorts the arrays */
    mu_anomaly_history h = {c.dur, c.n_dur, c.mem, c.n_mem, c.host, c.n_host};
    double scratch[17];
    unsigned got = mu_anomaly_flags(&c.run, &h, scratch);
    if (got != c.want) fail_msg("case '%s': flags %#x, want %#x", c.what, got, c.want);
  }
}

static void test_names(void **state) {
  (void)state;
  char buf[64];
  mu_anomaly_flag_names(0, buf, sizeof buf);
  assert_string_equal(buf, "-");
  mu_anomaly_flag_names(MU_ANOMALY_SLOW | MU_ANOMALY_NEAR_OOM | MU_ANOMALY_SLOW_HOST, buf, sizeof buf);
  assert_string_equal(buf, "SLOW,NEAR_OOM,SLOW_HOST");
  mu_anomaly_flag_names(MU_ANOMALY_SLOW | MU_ANOMALY_TRUNCATED, buf, 6);
  assert_string_equal(buf, "SLOW,"); /* cut, still terminated */
  assert_int_equal(mu_anomaly_flag_of("TRUNCATED"), MU_ANOMALY_TRUNCATED);
  assert_int_equal(mu_anomaly_flag_of("slow"), 0);
  assert_string_equal(mu_anomaly_flag_name(4), "SLOW_HOST");
}

static void test_threshold(void **state) {
  (void)state;
  double v[] = {10, 12, 11, 13, 100}, s[5];
  /* median 12, deviations 2,0,1,1,88 → MAD 1, floored at 5 % of 12 = 0.6 → stays 1 */
  assert_true(mu_anomaly_threshold(v, 5, s, 0.5) == 16.0);
  assert_true(mu_anomaly_threshold(v, 0, s, 0.5) != mu_anomaly_threshold(v, 0, s, 0.5)); /* NAN */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_flag_table),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_threshold),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
