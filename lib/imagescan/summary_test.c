/* mu_scan_summary: unfixed findings by severity, the oldest published age, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/imagescan/summary.h"

/* 2026-12-02T12:00:00Z */
#define NOW ((int64_t)20789 * 86400 + 43200)

static void test_dates(void **state) {
  (void)state;
  int64_t d = -1;
  assert_true(mu_scan_date_days("1970-01-01", &d));
  assert_int_equal(d, 0);
  assert_true(mu_scan_date_days("2026-12-02T10:00:00Z", &d));
  assert_int_equal(d, 20789);
  assert_true(mu_scan_date_days("2000-03-01", &d));
  assert_int_equal(d, 11017);
  assert_false(mu_scan_date_days("", &d));
  assert_false(mu_scan_date_days("2026-13-01", &d));
  assert_false(mu_scan_date_days("20x6-01-01", &d));
  assert_false(mu_scan_date_days(NULL, &d));
}

static void test_counts_and_ages(void **state) {
  (void)state;
  json_error_t je;
  json_t *f = json_loads(
      "["
      "{\"severity\":\"CRITICAL\",\"id\":\"A\",\"fixedIn\":\"\",\"published\":\"2026-11-22\"},"
      "{\"severity\":\"CRITICAL\",\"id\":\"B\",\"fixedIn\":\"\",\"published\":\"2026-09-03\"},"
      "{\"severity\":\"CRITICAL\",\"id\":\"C\",\"fixedIn\":\"1.2-3\",\"published\":\"2020-01-01\"},"
      "{\"severity\":\"HIGH\",\"id\":\"D\",\"fixedIn\":\"\",\"published\":\"2027-01-01\"},"
      "{\"severity\":\"LOW\",\"id\":\"E\",\"published\":\"\"},"
      "{\"severity\":\"unknown\",\"id\":\"F\",\"fixedIn\":\"\",\"published\":\"2026-12-01\"}"
      "]",
      0, &je);
  assert_non_null(f);
  mu_imgscan_summary s;
  mu_err err = {0};
  assert_int_equal(mu_scan_summary(f, NOW, &s, &err), 0);
  assert_int_equal(s.unfixed[MU_SEV_CRITICAL], 2); /* C has a fix */
  assert_int_equal(s.oldest_days[MU_SEV_CRITICAL], 90);
  assert_int_equal(s.unfixed[MU_SEV_HIGH], 1);
  assert_int_equal(s.oldest_days[MU_SEV_HIGH], 0); /* a future date: 0 days */
  assert_int_equal(s.unfixed[MU_SEV_MEDIUM], 0);
  assert_int_equal(s.unfixed[MU_SEV_LOW], 1);
  assert_int_equal(s.oldest_days[MU_SEV_LOW], 20789); /* no date: as old as 1970 */
  assert_int_equal(s.unfixed[MU_SEV_UNKNOWN], 1);
  assert_int_equal(s.oldest_days[MU_SEV_UNKNOWN], 1);
  json_decref(f);
}

static void test_bad_input(void **state) {
  (void)state;
  mu_imgscan_summary s;
  mu_err err = {0};
  json_t *o = json_object();
  assert_int_equal(mu_scan_summary(o, NOW, &s, &err), MU_EINVAL);
  json_decref(o);
  json_t *f = json_loads("[{\"severity\":\"SEVERE\",\"id\":\"CVE-1\"}]", 0, NULL);
  assert_int_equal(mu_scan_summary(f, NOW, &s, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "CVE-1"));
  json_decref(f);
  json_t *empty = json_array();
  assert_int_equal(mu_scan_summary(empty, NOW, &s, &err), 0);
  for (int i = 0; i < MU_SEV_COUNT; i++) assert_int_equal(s.unfixed[i], 0);
  json_decref(empty);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dates),
      cmocka_unit_test(test_counts_and_ages),
      cmocka_unit_test(test_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
