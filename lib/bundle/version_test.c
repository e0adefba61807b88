/* Version ordering and the rollback rule (version.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "lib/bundle/version.h"

static int sign(int x) { return x < 0 ? -1 : (x > 0 ? 1 : 0); }

static void test_version_cmp(void **state) {
  (void)state;
  static const struct {
    const char *a, *b;
    int want;
  } cases[] = {
      {"1.0.0", "1.0.0", 0},
      {"1.0", "1.0.0", 0},
      {"1", "1.0.0.0", 0},
      {"1.2.3", "1.2.10", -1},
      {"1.10", "1.9", 1},
      {"2", "1.99.99", 1},
      {"01.2", "1.2", 0},
      {"1.0.0-rc.1", "1.0.0", -1},
      {"1.0.0", "1.0.0-rc.1", 1},
      {"1.0-alpha", "1.0-beta", -1},
      {"1.0-rc.2", "1.0-rc.10", -1},
      {"1.0-rc.1", "1.0-rc.1.1", -1},
      {"1.0-1", "1.0-alpha", -1},
      {"1.0+build.5", "1.0+build.9", 0},
      {"1.0-rc.1+b", "1.0-rc.1", 0},
      {"12345678901234567890123.1", "12345678901234567890122.9", 1},
      {"not-a-version", "0.0.1", -1},
      {"0.0.1", "", 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int got = sign(mu_bundle_version_cmp(cases[i].a, cases[i].b));
    if (got != cases[i].want) {
      fail_msg("cmp(%s, %s) = %d, want %d", cases[i].a, cases[i].b, got, cases[i].want);
    }
    assert_int_equal(sign(mu_bundle_version_cmp(cases[i].b, cases[i].a)), -cases[i].want);
  }
}

static void test_version_check(void **state) {
  (void)state;
  mu_err err = {0};
  const char *good[] = {"0", "1.2.3", "1.0.0-rc.1", "2.0+git.abc", "1.0-x-y.2+b-1"};
  const char *bad[] = {"", "v1", "1.", ".1", "1..2", "1.0-", "1.0-rc..1", "1.0+", "1.0 ", "1.0-r@c"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    assert_int_equal(mu_bundle_version_check(good[i], &err), 0);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (mu_bundle_version_check(bad[i], &err) != MU_EINVAL) fail_msg("'%s' accepted", bad[i]);
    assert_non_null(strstr(err.msg, "version"));
  }
}

static void test_rollback(void **state) {
  (void)state;
  mu_err err = {0};
  assert_int_equal(mu_bundle_rollback_check("web", NULL, "1.0", &err), 0);
  assert_int_equal(mu_bundle_rollback_check("web", "1.0", "1.0", &err), 0);
  assert_int_equal(mu_bundle_rollback_check("web", "1.0", "1.1", &err), 0);
  assert_int_equal(mu_bundle_rollback_check("web", "1.3", "1.2", &err), MU_EPERM);
  assert_non_null(strstr(err.msg, "bundle 'web': version 1.2 is lower than 1.3"));
  assert_non_null(strstr(err.msg, "rollback refused"));
  assert_int_equal(mu_bundle_rollback_check("web", "1.0", "1.0-rc.1", &err), MU_EPERM);
  assert_int_equal(mu_bundle_rollback_check("web", "1.0", "x", &err), MU_EINVAL);
}

int mu_test_version(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version_cmp),
      cmocka_unit_test(test_version_check),
      cmocka_unit_test(test_rollback),
  };
  return cmocka_run_group_tests_name("version", tests, NULL, NULL);
}
