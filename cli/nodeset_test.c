/* Node sets: folds read like clush's, expand reads them back, bad sets are refused with the
 * position, and the bound holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cli/nodeset.h"

static void check_fold(const char *want, const char *const *names, size_t n) {
  char *got = mu_nodeset_fold(names, n);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

static void folds(void **state) {
  (void)state;
  const char *a[] = {"web3", "db-1", "web1", "web7", "web2"};
  check_fold("db-1,web[1-3,7]", a, 5);
  const char *b[] = {"web-2", "web-1"};
  check_fold("web-[1-2]", b, 2);
  const char *c[] = {"n01", "n02", "n10", "n1", "n2", "n3"};
  check_fold("n[1-3,10],n[01-02]", c, 6);
  const char *d[] = {"rack1-node4", "rack1-node5", "rack2-node4", "solo", "solo"};
  check_fold("rack1-node[4-5],rack2-node4,solo", d, 5);
  const char *e[] = {"h1.eu", "h2.eu", "h2.eu", "h1.us"};
  check_fold("h[1-2].eu,h1.us", e, 4);
  const char *f[] = {"a[1]", "b,c"};
  check_fold("a[1],b,c", f, 2);
  check_fold("", NULL, 0);
}

static char *joined(char **names, size_t n) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++) len += strlen(names[i]) + 1;
  char *s = calloc(len, 1);
  for (size_t i = 0; i < n; i++) {
    if (i) strcat(s, " ");
    strcat(s, names[i]);
  }
  return s;
}

static void check_expand(const char *set, const char *want) {
  char **names = NULL;
  size_t n = 0;
  mu_err err = {0};
  assert_int_equal(mu_nodeset_expand(set, 1000, &names, &n, &err), 0);
  char *got = joined(names, n);
  assert_string_equal(got, want);
  free(got);
  mu_nodeset_names_free(names, n);
}

static void expands(void **state) {
  (void)state;
  check_expand("db-1,web[1-3,7]", "db-1 web1 web2 web3 web7");
  check_expand("n[08-10]", "n08 n09 n10");
  check_expand("r[1-2]-n[1,3]", "r1-n1 r1-n3 r2-n1 r2-n3");
  check_expand("x[0-1]y", "x0y x1y");
  check_expand("plain", "plain");
}

static void refuses(void **state) {
  (void)state;
  const char *bad[] = {"web[1-3", "web[3-1]", "a,,b", "web[]", "web[a]", "web1]", "", "web[1-2;]", "w[1234567890]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char **names = NULL;
    size_t n = 0;
    mu_err err = {0};
    assert_int_equal(mu_nodeset_expand(bad[i], 1000, &names, &n, &err), MU_EINVAL);
    assert_non_null(strstr(err.msg, "node set"));
  }
  char **names = NULL;
  size_t n = 0;
  mu_err err = {0};
  assert_int_equal(mu_nodeset_expand("w[1-999999999]", 1000, &names, &n, &err), MU_ENOSPC);
  assert_int_equal(mu_nodeset_expand("a[1-40]b[1-40]", 1000, &names, &n, &err), MU_ENOSPC);
  assert_int_equal(mu_nodeset_expand("a[1-10]b[1-100]", 1000, &names, &n, &err), 0);
  assert_int_equal(n, 1000);
  mu_nodeset_names_free(names, n);
}

static void round_trip(void **state) {
  (void)state;
  const char *hosts[] = {"web01", "web02", "web03", "db-1", "db-2", "cache", "web10", "x9y", "x10y", "x11y"};
  char *folded = mu_nodeset_fold(hosts, 10);
  assert_non_null(folded);
  assert_string_equal(folded, "cache,db-[1-2],web10,web[01-03],x[9-11]y");
  char **names = NULL;
  size_t n = 0;
  mu_err err = {0};
  assert_int_equal(mu_nodeset_expand(folded, 100, &names, &n, &err), 0);
  assert_int_equal(n, 10);
  char *again = mu_nodeset_fold((const char *const *)names, n);
  assert_string_equal(again, folded);
  free(again);
  free(folded);
  mu_nodeset_names_free(names, n);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(folds), cmocka_unit_test(expands), cmocka_unit_test(refuses),
                                     cmocka_unit_test(round_trip)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
