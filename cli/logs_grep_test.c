/* logs --grep: lines assembled across chunks per task, matched, grouped by identical matching
 * lines with the biggest group first and the hosts without a match named; --hosts filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/logs_grep.h"

static char *print(mu_logs_grep *g, size_t *matched) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  *matched = mu_logs_grep_print(g, f);
  fclose(f);
  return buf;
}

static void groups_odd_host_last(void **state) {
  (void)state;
  mu_logs_grep *g = NULL;
  mu_err err = {0};
  assert_int_equal(mu_logs_grep_new("ERROR|disk", NULL, &g, &err), 0);
  const char *ok = "starting\nERROR: disk full\nok\n";
  mu_logs_grep_feed(g, "j-1/web-2/run", ok, strlen(ok));
  mu_logs_grep_feed(g, "j-1/web-1/run", "starting\nERROR: di", 18); /* split mid-line */
  mu_logs_grep_feed(g, "j-1/web-1/run", "sk full\nok\n", 11);
  mu_logs_grep_feed(g, "j-1/web-3/run", "starting\nERROR: disk full\n", 26);
  mu_logs_grep_feed(g, "j-1/db-1/run", "ERROR: replica lag\ndisk ok", 26); /* no final newline */
  mu_logs_grep_feed(g, "j-1/db-2/run", "all good\n", 9);
  size_t matched = 0;
  char *out = print(g, &matched);
  assert_int_equal(matched, 5);
  assert_string_equal(out,
                      "---------------\n"
                      "web-1,web-2,web-3 (3)\n"
                      "---------------\n"
                      "run: ERROR: disk full\n"
                      "---------------\n"
                      "db-1 (1)\n"
                      "---------------\n"
                      "run: ERROR: replica lag\n"
                      "run: disk ok\n"
                      "no match on: db-2\n");
  free(out);
  mu_logs_grep_free(g);
}

static void hosts_filter_and_bad_regex(void **state) {
  (void)state;
  mu_logs_grep *g = NULL;
  mu_err err = {0};
  assert_int_equal(mu_logs_grep_new("(", NULL, &g, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "--grep '('"));
  assert_int_equal(mu_logs_grep_new("x", "web-1,db-1", &g, &err), 0);
  mu_logs_grep_feed(g, "j/web-1/a", "x1\n", 3);
  mu_logs_grep_feed(g, "j/web-2/a", "x2\n", 3);
  mu_logs_grep_feed(g, "j/db-1/b", "y\n", 2);
  size_t matched = 0;
  char *out = print(g, &matched);
  assert_int_equal(matched, 1);
  assert_string_equal(out, "---------------\nweb-1 (1)\n---------------\na: x1\nno match on: db-1\n");
  free(out);
  mu_logs_grep_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(groups_odd_host_last),
      cmocka_unit_test(hosts_filter_and_bad_regex),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
