/* Selector tests: parsing, globs, negation, presence, and errors naming the bad term. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "lib/selector/selector.h"

static const char *lookup(const void *labels, const char *key) {
  const char *const *kv = labels;
  for (; kv[0] != NULL; kv += 2)
    if (strcmp(kv[0], key) == 0) return kv[1];
  return NULL;
}

static int match(const char *sel_text, const char *const *labels) {
  mu_selector *sel;
  mu_err err = {0};
  assert_int_equal(mu_selector_parse(sel_text, &sel, &err), 0);
  int m = mu_selector_matches(sel, lookup, labels);
  mu_selector_free(sel);
  return m;
}

static void test_matching(void **state) {
  (void)state;
  const char *web_eu[] = {"role", "web", "dc", "eu-west", NULL};
  const char *web_canary[] = {"role", "web", "dc", "eu-1", "canary", "true", NULL};
  const char *db_us[] = {"role", "db", "dc", "us-east", NULL};
  assert_true(match("", web_eu));
  assert_true(match("role=web,dc=eu*,!canary", web_eu));
  assert_false(match("role=web,dc=eu*,!canary", web_canary));
  assert_false(match("role=web", db_us));
  assert_true(match("role!=web", db_us));
  assert_true(match(" canary , role = web ", web_canary));
  assert_false(match("gpu", web_eu));
  assert_true(match("dc=*-east", db_us));
}

static void test_comparisons(void **state) {
  (void)state;
  const char *big[] = {"cpus", "16", "mem_gib", "62.7", "os", "linux", "rack", "r7", NULL};
  const char *small[] = {"cpus", "2", "mem_gib", "3.8", "os", "linux", NULL};
  assert_true(match("cpus>=8,os=linux", big));
  assert_false(match("cpus>=8,os=linux", small));
  assert_true(match("cpus>=2, cpus<=2", small));
  assert_false(match("cpus>2", small));
  assert_true(match("mem_gib>62.5,mem_gib<63", big));
  assert_true(match("mem_gib < 4", small));
  assert_false(match("rack>1", big));  /* not a number: never matches */
  assert_false(match("gpus>=0", big)); /* absent: never matches */
  assert_true(match("cpus!=2", big));
}

static void test_errors(void **state) {
  (void)state;
  mu_selector *sel = NULL;
  mu_err err = {0};
  assert_int_equal(mu_selector_parse("role=web,=x", &sel, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "term 2"));
  assert_int_equal(mu_selector_parse("ro le=web", &sel, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "'ro le'"));
  assert_int_equal(mu_selector_parse("a=b=c", &sel, &err), MU_EINVAL);
  assert_int_equal(mu_selector_parse("os=linux,cpus>=eight", &sel, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "selector term 2: '>=' compares with 'eight', which is not a number"));
  assert_int_equal(mu_selector_parse("cpus>0x10", &sel, &err), MU_EINVAL);
  assert_int_equal(mu_selector_parse("cpus>inf", &sel, &err), MU_EINVAL);
  assert_int_equal(mu_selector_parse(">=3", &sel, &err), MU_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_matching), cmocka_unit_test(test_comparisons),
                                     cmocka_unit_test(test_errors)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
