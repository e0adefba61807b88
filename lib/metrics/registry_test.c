/* The metrics registry: what it renders for counters, gauges and histograms (exact text),
 * label escaping and cleaning, the series bound and its dropped counter, the checks on
 * names and buckets, and the checker's verdicts on good and bad exposition text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/metrics/expo_check.h"
#include "lib/metrics/registry.h"

static char *render(mu_metrics *m) {
  mu_prom p = {0};
  mu_metrics_render(m, &p);
  mu_err err = {0};
  size_t samples = 0;
  if (mu_prom_check(p.buf, p.len, &samples, &err) != 0) fail_msg("%s\n%s", err.msg, p.buf);
  return p.buf;
}

static void test_counter_and_gauge(void **state) {
  (void)state;
  mu_metrics *m = mu_metrics_new();
  mu_metric *c = NULL, *g = NULL;
  mu_err err = {0};
  mu_metric_desc dc = {.name = "t_tasks_total",
                       .help = "Tasks.\nSecond \\ line.",
                       .type = MU_METRIC_COUNTER,
                       .labels = {"type", "state"}};
  mu_metric_desc dg = {.name = "t_jobs", .help = "Jobs.", .type = MU_METRIC_GAUGE};
  assert_int_equal(mu_metrics_add(m, &dc, &c, &err), 0);
  assert_int_equal(mu_metrics_add(m, &dg, &g, &err), 0);
  mu_metric_add(c, (const char *[]){"shell", "SUCCEEDED"}, 1);
  mu_metric_add(c, (const char *[]){"shell", "SUCCEEDED"}, 2);
  mu_metric_add(c, (const char *[]){"a\"b\\c\nd\xff", NULL}, 1);
  mu_metric_add(c, (const char *[]){"shell", "SUCCEEDED"}, -5); /* counters never go down */
  mu_metric_set(g, NULL, 7);
  mu_metric_add(g, NULL, -2.5);
  assert_true(mu_metric_value(c, (const char *[]){"shell", "SUCCEEDED"}) == 3);
  char *text = render(m);
  assert_string_equal(text,
                      "# HELP t_tasks_total Tasks.\\nSecond \\\\ line.\n"
                      "# TYPE t_tasks_total counter\n"
                      "t_tasks_total{type=\"shell\",state=\"SUCCEEDED\"} 3\n"
                      "t_tasks_total{type=\"a\\\"b\\\\c_d_\",state=\"\"} 1\n"
                      "# HELP t_jobs Jobs.\n# TYPE t_jobs gauge\nt_jobs 4.5\n"
                      "# HELP muster_metrics_series_dropped_total Updates dropped because their "
                      "metric already held its maximum number of label sets.\n"
                      "# TYPE muster_metrics_series_dropped_total counter\n"
                      "muster_metrics_series_dropped_total{metric=\"t_tasks_total\"} 0\n"
                      "muster_metrics_series_dropped_total{metric=\"t_jobs\"} 0\n");
  free(text);
  mu_metric_clear(g);
  assert_int_equal(mu_metric_series(g), 0);
  mu_metrics_free(m);
}

static void test_histogram(void **state) {
  (void)state;
  mu_metrics *m = mu_metrics_new();
  mu_metric *h = NULL;
  mu_err err = {0};
  static const double b[] = {0.005, 0.1, 1};
  mu_metric_desc d = {.name = "t_seconds",
                      .help = "Durations.",
                      .type = MU_METRIC_HISTOGRAM,
                      .labels = {"type"},
                      .buckets = b,
                      .n_buckets = 3};
  assert_int_equal(mu_metrics_add(m, &d, &h, &err), 0);
  const char *shell[] = {"shell"};
  mu_metric_observe(h, shell, 0.005); /* on a bound: that bucket (le is "<=") */
  mu_metric_observe(h, shell, 0.05);
  mu_metric_observe(h, shell, 3);
  char *text = render(m);
  assert_non_null(strstr(text,
                         "# TYPE t_seconds histogram\n"
                         "t_seconds_bucket{type=\"shell\",le=\"0.005\"} 1\n"
                         "t_seconds_bucket{type=\"shell\",le=\"0.1\"} 2\n"
                         "t_seconds_bucket{type=\"shell\",le=\"1\"} 2\n"
                         "t_seconds_bucket{type=\"shell\",le=\"+Inf\"} 3\n"
                         "t_seconds_sum{type=\"shell\"} 3.055\n"
                         "t_seconds_count{type=\"shell\"} 3\n"));
  free(text);
  mu_metrics_free(m);
}

static void test_series_bound(void **state) {
  (void)state;
  mu_metrics *m = mu_metrics_new();
  mu_metric *c = NULL;
  mu_err err = {0};
  mu_metric_desc d = {
      .name = "t_by_host_total", .help = "x", .type = MU_METRIC_COUNTER, .labels = {"host"}, .max_series = 100};
  assert_int_equal(mu_metrics_add(m, &d, &c, &err), 0);
  for (int i = 0; i < 10000; i++) {
    char host[32];
    snprintf(host, sizeof host, "h%d", i % 1000);
    mu_metric_add(c, (const char *[]){host}, 1);
  }
  assert_int_equal(mu_metric_series(c), 100);
  assert_true(mu_metric_value(c, (const char *[]){"h5"}) == 10);
  assert_true(mu_metric_value(c, (const char *[]){"h500"}) == 0);
  char *text = render(m);
  assert_non_null(strstr(text, "muster_metrics_series_dropped_total{metric=\"t_by_host_total\"} 9000\n"));
  free(text);
  mu_metrics_free(m);
}

static void test_bad_descs(void **state) {
  (void)state;
  mu_metrics *m = mu_metrics_new();
  mu_metric *f = NULL;
  mu_err err = {0};
  static const double down[] = {1, 0.5};
  struct {
    mu_metric_desc d;
    const char *says;
  } cases[] = {
      {{.name = "1bad", .type = MU_METRIC_GAUGE}, "metric name '1bad'"},
      {{.name = "c_count", .type = MU_METRIC_COUNTER}, "ends in _total"},
      {{.name = "g", .type = MU_METRIC_GAUGE, .labels = {"__x"}}, "label name '__x'"},
      {{.name = "g", .type = MU_METRIC_GAUGE, .labels = {"a", "a"}}, "label 'a' given twice"},
      {{.name = "h", .type = MU_METRIC_HISTOGRAM, .labels = {"le"}, .buckets = down, .n_buckets = 1},
       "'le' is the bucket label"},
      {{.name = "h", .type = MU_METRIC_HISTOGRAM, .buckets = down, .n_buckets = 2}, "strictly ascending"},
      {{.name = "h", .type = MU_METRIC_HISTOGRAM}, "1 to 24 buckets"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(mu_metrics_add(m, &cases[i].d, &f, &err), MU_EINVAL);
    if (strstr(err.msg, cases[i].says) == NULL) fail_msg("case %zu: %s", i, err.msg);
  }
  mu_metric_desc ok = {.name = "g", .type = MU_METRIC_GAUGE};
  assert_int_equal(mu_metrics_add(m, &ok, &f, &err), 0);
  assert_int_equal(mu_metrics_add(m, &ok, &f, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "registered twice"));
  /* the wrong update for a family, and a NULL family, do nothing */
  mu_metric_observe(f, NULL, 1);
  mu_metric_add(NULL, NULL, 1);
  assert_int_equal(mu_metric_series(f), 0);
  mu_metrics_free(m);
}

static void test_checker(void **state) {
  (void)state;
  mu_err err = {0};
  const char *good =
      "# HELP a_total x \\\\ y\n# TYPE a_total counter\na_total{x=\"1\",} 2 17\n"
      "# free comment\nb -Inf\nc{a=\"\\n\\\"\"} 1e-3\n\n";
  size_t n = 0;
  assert_int_equal(mu_prom_check(good, strlen(good), &n, &err), 0);
  assert_int_equal(n, 3);
  const char *bad[] = {
      "a 1",                                /* no final newline */
      "a{x=1} 1\n",                         /* unquoted value */
      "a{x=\"\\t\"} 1\n",                   /* bad escape */
      "a one\n",                            /* not a number */
      "# TYPE a counter\n# TYPE a gauge\n", /* TYPE twice */
      "# TYPE a countr\n",                  /* unknown type */
      "a{x=\"1\" 1\n",                      /* unclosed labels */
      "{x=\"1\"} 1\n",                      /* no name */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (mu_prom_check(bad[i], strlen(bad[i]), NULL, &err) != MU_EINVAL)
      fail_msg("accepted bad text %zu: %s", i, bad[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counter_and_gauge), cmocka_unit_test(test_histogram), cmocka_unit_test(test_series_bound),
      cmocka_unit_test(test_bad_descs),         cmocka_unit_test(test_checker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
