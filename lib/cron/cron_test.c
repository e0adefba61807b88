/* Cron parsing and fire times against a table of expressions and zones, DST days in
 * Europe/Berlin and America/New_York included (expected instants computed independently with
 * Python's zoneinfo and a brute-force matcher), plus every refusal naming field and token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/cron/cron.h"

typedef struct fire_case {
  const char *expr;
  const char *zone;
  int64_t after;
  int64_t want[3];
  int n;
  const char *why;
} fire_case;

static const fire_case fire_cases[] = {
#include "lib/cron/cron_cases.inc"
};

static void fire_times(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof fire_cases / sizeof *fire_cases; i++) {
    const fire_case *fc = &fire_cases[i];
    mu_cron *c = NULL;
    mu_tz *tz = NULL;
    mu_err err = {0};
    if (mu_cron_parse(fc->expr, &c, &err) != 0) fail_msg("%s: %s", fc->expr, err.msg);
    if (mu_tz_load(fc->zone, NULL, &tz, &err) != 0) fail_msg("%s: %s", fc->zone, err.msg);
    int64_t t = fc->after;
    for (int k = 0; k < fc->n; k++) {
      t = mu_cron_next(c, tz, t);
      if (t != fc->want[k])
        fail_msg("'%s' in %s (%s): fire %d is %lld, want %lld", fc->expr, fc->zone, fc->why, k, (long long)t,
                 (long long)fc->want[k]);
    }
    mu_cron_free(c);
    mu_tz_free(tz);
  }
}

static void refusals_name_field_and_token(void **state) {
  (void)state;
  static const struct {
    const char *expr, *want;
  } cases[] = {
      {"0 0 32 * *", "cron field 3 (day of month): '32' is out of range 1-31"},
      {"* * *", "cron: expected 5 fields"},
      {"* * * * * * *", "got 7"},
      {"0 0 L * *", "cron field 3 (day of month): 'L': 'L' (last) and 'W'"},
      {"0 0 ? * 1", "cron field 3 (day of month): '?': '?' is not supported; use '*'"},
      {"0 0 * * 1#2", "cron field 5 (day of week): '1#2': '#' (nth weekday)"},
      {"0 0 15W * *", "'15W': 'L' (last) and 'W' (weekday) are not supported"},
      {"0 0 30 2 *", "cron: never fires (no month in '2' has day '30')"},
      {"0 0 31 4,6 *", "never fires"},
      {"@reboot", "cron: unknown macro '@reboot'"},
      {"@daily 5", "unknown macro"},
      {"5-1 * * * *", "cron field 1 (minute): '5-1': a range must go up"},
      {"*/0 * * * *", "cron field 1 (minute): '*/0': the step must be 1-59"},
      {"0 24 * * *", "cron field 2 (hour): '24' is out of range 0-23"},
      {"0 0 * 13 *", "cron field 4 (month): '13' is out of range 1-12"},
      {"0 0 * FOO *", "cron field 4 (month): 'FOO' is not a value, range or step"},
      {"0 0 * * 8", "cron field 5 (day of week): '8' is out of range 0-7"},
      {"1,,2 * * * *", "cron field 1 (minute): '1,,2' has an empty list item"},
      {"60 * * * * *", "cron field 1 (second): '60' is out of range 0-59"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    mu_cron *c = NULL;
    mu_err err = {0};
    if (mu_cron_parse(cases[i].expr, &c, &err) != MU_EINVAL) fail_msg("'%s' accepted", cases[i].expr);
    if (strstr(err.msg, cases[i].want) == NULL)
      fail_msg("'%s': got \"%s\", want \"%s\"", cases[i].expr, err.msg, cases[i].want);
  }
  /* 0 and 7 are both Sunday; Feb 29 alone is a day that comes */
  mu_cron *c = NULL;
  mu_err err = {0};
  assert_int_equal(mu_cron_parse("0 0 * * 7", &c, &err), 0);
  mu_tz *utc = NULL;
  assert_int_equal(mu_tz_load("UTC", NULL, &utc, &err), 0);
  assert_int_equal(mu_cron_next(c, utc, 1777939200LL), 1778371200LL); /* Sunday 2026-05-10 */
  assert_false(mu_cron_has_seconds(c));
  mu_cron_free(c);
  assert_int_equal(mu_cron_parse("0 0 29 2 *", &c, &err), 0);
  mu_cron_free(c);
  mu_tz_free(utc);
}

static void zones(void **state) {
  (void)state;
  mu_tz *tz = NULL;
  mu_err err = {0};
  assert_int_equal(mu_tz_load("Mars/Olympus_Mons", NULL, &tz, &err), MU_ENOENT);
  assert_non_null(strstr(err.msg, "unknown time zone 'Mars/Olympus_Mons'"));
  assert_int_equal(mu_tz_load("../../etc/passwd", NULL, &tz, &err), MU_EINVAL);
  assert_int_equal(mu_tz_load("/etc/localtime", NULL, &tz, &err), MU_EINVAL);
  assert_int_equal(mu_tz_load("", NULL, &tz, &err), MU_EINVAL);
  /* offsets from the transitions and, past them, from the footer rule */
  static const struct {
    const char *zone;
    int64_t t;
    int32_t off;
  } offs[] = {
      {"Europe/Berlin", 1774745940LL, 3600},     {"Europe/Berlin", 1774746000LL, 7200},
      {"Europe/Berlin", 2540246400LL, 7200},     {"America/New_York", 2840140800LL, -18000},
      {"Australia/Sydney", 2524608000LL, 39600}, {"Australia/Sydney", 2540246400LL, 36000},
  };
  for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
    assert_int_equal(mu_tz_load(offs[i].zone, NULL, &tz, &err), 0);
    if (mu_tz_offset(tz, offs[i].t) != offs[i].off)
      fail_msg("%s at %lld: %d, want %d", offs[i].zone, (long long)offs[i].t, mu_tz_offset(tz, offs[i].t), offs[i].off);
    mu_tz_free(tz);
  }
  /* POSIX rules alone, with the three date forms */
  assert_int_equal(mu_tz_from_rule("EST5EDT,M3.2.0,M11.1.0", &tz, &err), 0);
  assert_int_equal(mu_tz_offset(tz, 2840140800LL), -18000);
  assert_int_equal(mu_tz_offset(tz, 2540246400LL), -14400);
  mu_tz_free(tz);
  assert_int_equal(mu_tz_from_rule("<+0330>-3:30", &tz, &err), 0);
  assert_int_equal(mu_tz_offset(tz, 0), 12600);
  mu_tz_free(tz);
  assert_int_equal(mu_tz_from_rule("AAA0BBB,J60/2,300/2", &tz, &err), 0);
  assert_int_equal(mu_tz_offset(tz, 1772323200LL + 86400), 3600);  /* 2026-03-02 */
  assert_int_equal(mu_tz_offset(tz, 1772323200LL - 86400 * 2), 0); /* 2026-02-27 */
  mu_tz_free(tz);
  assert_int_equal(mu_tz_from_rule("EST", &tz, &err), MU_EINVAL);
  assert_int_equal(mu_tz_from_rule("EST5EDT,M13.1.0,M11.1.0", &tz, &err), MU_EINVAL);
  /* a file that is not TZif */
  const uint8_t junk[] = "TZif2 but not really";
  assert_int_equal(mu_tz_parse("junk", junk, sizeof junk, &tz, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "time zone 'junk': not a valid TZif file"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fire_times),
      cmocka_unit_test(refusals_name_field_and_token),
      cmocka_unit_test(zones),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
