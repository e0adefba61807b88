/* Plugin schemas: what a section accepts and refuses, with messages in the plugins' own
 * "WHAT.KEY: PROBLEM" style, and the help text `muster run --type X --help` prints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/pschema/pschema.h"

static const char *schema =
    "{\"params\":{\"url\":{\"type\":\"string\",\"required\":true,\"help\":\"where\"},"
    "\"method\":{\"type\":\"string\",\"enum\":[\"GET\",\"POST\"]},\"retries\":{\"type\":\"integer\",\"minimum\":0,"
    "\"maximum\":10},\"ratio\":{\"type\":\"number\"}},"
    "\"config\":{\"userAgent\":{\"type\":\"string\"}}}";

static void expect(const char *section, const char *value, int rc, const char *msg) {
  mu_err err = {0};
  assert_int_equal(mu_pschema_check(schema, section, value, "http", &err), rc);
  if (msg != NULL && strstr(err.msg, msg) == NULL) fail_msg("%s: \"%s\" lacks \"%s\"", value, err.msg, msg);
}

static void test_check(void **state) {
  (void)state;
  expect("params", "{\"url\":\"http://x\"}", 0, NULL);
  expect("params", "{\"url\":\"u\",\"method\":\"POST\",\"retries\":3,\"ratio\":1}", 0, NULL);
  expect("params", "{}", MU_EINVAL, "http.url: required");
  expect("params", "{\"url\":1}", MU_EINVAL, "http.url: want string, got integer");
  expect("params", "{\"url\":\"u\",\"method\":\"PUT\"}", MU_EINVAL, "http.method: not one of [\"GET\",\"POST\"]");
  expect("params", "{\"url\":\"u\",\"retries\":11}", MU_EINVAL, "http.retries: 11 is over the maximum 10");
  expect("params", "{\"url\":\"u\",\"retries\":-1}", MU_EINVAL, "under the minimum 0");
  expect("params", "{\"url\":\"u\",\"retries\":1.5}", MU_EINVAL, "want integer, got number");
  expect("params", "{\"url\":\"u\",\"x\":1}", MU_EINVAL, "http.x: unknown key (known: url, method, retries, ratio)");
  expect("config", "{\"userAgent\":\"a\"}", 0, NULL);
  expect("config", "{\"timeout\":1}", MU_EINVAL, "http.timeout: unknown key (known: userAgent)");
  expect("config", "[1]", MU_EINVAL, "http: want an object, got array");
  expect("config", "{", MU_EINVAL, "http: not JSON");
  expect("nosuch", "{\"any\":1}", 0, NULL); /* no section: anything */
  mu_err err = {0};
  assert_int_equal(mu_pschema_check("nope", "config", "{}", "x", &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "plugin schema: not JSON"));
}

static void test_help(void **state) {
  (void)state;
  char *h = NULL;
  mu_err err = {0};
  assert_int_equal(mu_pschema_help(schema, "params", &h, &err), 0);
  assert_non_null(strstr(h, "  url                  string, required  where\n"));
  assert_non_null(strstr(h, "  method               string, one of [\"GET\",\"POST\"]\n"));
  assert_non_null(strstr(h, "  retries              integer, >= 0\n"));
  free(h);
  assert_int_equal(mu_pschema_help(schema, "nosuch", &h, &err), 0);
  assert_string_equal(h, "");
  free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_check), cmocka_unit_test(test_help)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
