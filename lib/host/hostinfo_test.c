/* Tests for lib/host: the facts and metrics of the machine running the test are sane. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/host/hostinfo.h"

static void facts(void **state) {
  (void)state;
  mu_host_facts f;
  mu_err err = {0};
  assert_int_equal(mu_host_facts_get(&f, &err), 0);
  assert_true(strlen(f.hostname) > 0);
  assert_string_equal(f.os_name, "Linux");
  assert_true(strlen(f.os_release) > 0);
  assert_true(strncmp(f.os, "Linux ", 6) == 0);
  assert_string_equal(f.os + 6, f.os_release);
  assert_true(strlen(f.arch) > 0);
  assert_true(f.cpu_count >= 1);
  assert_int_equal(f.cpu_count, (uint32_t)sysconf(_SC_NPROCESSORS_ONLN));
  assert_true(f.memory_bytes > 16ull * 1024 * 1024);
}

static void metrics(void **state) {
  (void)state;
  mu_host_facts f;
  mu_host_metrics m;
  mu_err err = {0};
  const char *tmp = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  assert_int_equal(mu_host_facts_get(&f, &err), 0);
  assert_int_equal(mu_host_metrics_get(tmp, &m, &err), 0);
  assert_true(m.load1 >= 0 && m.load5 >= 0 && m.load15 >= 0);
  assert_true(m.memory_available_bytes > 0);
  assert_true(m.memory_available_bytes <= f.memory_bytes);
  assert_true(m.disk_total_bytes > 0);
  assert_true(m.disk_free_bytes <= m.disk_total_bytes);
  assert_true(m.rss_bytes > 0);
  /* Without a path the disk figures are left at zero. */
  assert_int_equal(mu_host_metrics_get(NULL, &m, &err), 0);
  assert_int_equal(m.disk_total_bytes, 0);
}

/* RSS follows what the process touches. */
static void rss_grows(void **state) {
  (void)state;
  uint64_t before, after;
  mu_err err = {0};
  assert_int_equal(mu_host_rss(&before, &err), 0);
  size_t n = 64 * 1024 * 1024;
  char *p = malloc(n);
  assert_non_null(p);
  memset(p, 1, n);
  assert_int_equal(mu_host_rss(&after, &err), 0);
  assert_true(after >= before + n / 2);
  free(p);
}

static void disk_errors(void **state) {
  (void)state;
  uint64_t total = 0, avail = 0;
  mu_err err = {0};
  assert_int_equal(mu_host_disk_usage("/nonexistent/spool", &total, &avail, &err), MU_ENOENT);
  assert_string_equal(err.msg, "/nonexistent/spool: statvfs: No such file or directory");
  mu_host_metrics m;
  assert_int_equal(mu_host_metrics_get("/nonexistent/spool", &m, &err), MU_ENOENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(facts),
      cmocka_unit_test(metrics),
      cmocka_unit_test(rss_grows),
      cmocka_unit_test(disk_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
