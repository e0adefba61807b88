/* Control-channel parser tests: the two commands, bad lines as warnings, split reads, and the
 * line-length and line-count bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/exec/control.h"

typedef struct got {
  int progress, params, bad;
  double pct;
  char msg[128], key[160], value[128], error[160];
} got;

static void cb(void *arg, const mu_ctl_line *l) {
  got *g = arg;
  if (l->kind == MU_CTL_PROGRESS) {
    g->progress++;
    g->pct = l->percent;
    snprintf(g->msg, sizeof g->msg, "%s", l->message);
  } else if (l->kind == MU_CTL_PARAM) {
    g->params++;
    snprintf(g->key, sizeof g->key, "%s", l->key);
    snprintf(g->value, sizeof g->value, "%s", l->value);
  } else {
    g->bad++;
    snprintf(g->error, sizeof g->error, "%s", l->error);
  }
}

static void test_commands(void **state) {
  (void)state;
  mu_ctl_reader r;
  got g = {0};
  assert_int_equal(mu_ctl_reader_init(&r, 256, 100), 0);
  const char *in =
      "progress 42 copying files\r\nparam version=1.2=3\n\n# note\nprogress 101\n"
      "param =x\nprogress abc\nhello\nprogress 99.5";
  mu_ctl_reader_feed(&r, in, strlen(in), cb, &g);
  assert_int_equal(g.progress, 1);
  assert_true(g.pct == 42.0);
  assert_string_equal(g.msg, "copying files");
  assert_int_equal(g.params, 1);
  assert_string_equal(g.key, "version");
  assert_string_equal(g.value, "1.2=3");
  assert_int_equal(g.bad, 4);
  mu_ctl_reader_finish(&r, cb, &g);
  assert_int_equal(g.progress, 2);
  assert_true(g.pct == 99.5);
  mu_ctl_reader_free(&r);
}

static void test_split_and_bounds(void **state) {
  (void)state;
  mu_ctl_reader r;
  got g = {0};
  assert_int_equal(mu_ctl_reader_init(&r, 16, 3), 0);
  mu_ctl_reader_feed(&r, "progr", 5, cb, &g);
  mu_ctl_reader_feed(&r, "ess 5\n", 6, cb, &g);
  assert_int_equal(g.progress, 1);
  mu_ctl_reader_feed(&r, "param k=a-value-that-is-too-long\n", 33, cb, &g);
  assert_int_equal(g.params, 0);
  assert_int_equal(g.bad, 1);
  assert_non_null(strstr(g.error, "too long"));
  mu_ctl_reader_feed(&r, "param k=v\nparam k=w\nparam k=z\n", 30, cb, &g);
  assert_int_equal(g.params, 1);
  assert_int_equal(g.bad, 2); /* one "too many lines", then silence */
  assert_non_null(strstr(g.error, "too many"));
  mu_ctl_reader_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_commands),
      cmocka_unit_test(test_split_and_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
