/* Tests for lib/host: the facts and metrics of the machine running the test are sane. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/host/facts.h"
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

static void os_release(void **state) {
  (void)state;
  char id[16], version[16];
  const char *debian =
      "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian\"\n"
      "VERSION_ID=\"12\"\nID=debian\n";
  mu_host_os_release_parse(debian, strlen(debian), id, sizeof id, version, sizeof version);
  assert_string_equal(id, "debian");
  assert_string_equal(version, "12");
  const char *odd = "ID='Ubuntu'\nVERSION_ID=22.04\nID_LIKE=debian\nVERSION_ID\n=x\nID=";
  mu_host_os_release_parse(odd, strlen(odd) - 3, id, sizeof id, version, sizeof version);
  assert_string_equal(id, "ubuntu");
  assert_string_equal(version, "22.04");
  const char *long_id = "ID=\"a-very-long-distribution-name\"";
  mu_host_os_release_parse(long_id, strlen(long_id), id, sizeof id, version, sizeof version);
  assert_string_equal(id, "a-very-long-dis"); /* cut to the buffer */
  assert_string_equal(version, "");
}

static void fact_list(void **state) {
  (void)state;
  mu_host_facts f = {.hostname = "web-1",
                     .os_name = "Linux",
                     .os_release = "6.1.0-18-amd64",
                     .arch = "x86_64",
                     .cpu_count = 16,
                     .memory_bytes = 67317313536ull};
  mu_host_fact list[MU_HOST_FACT_PAIRS];
  char path[] = "/tmp/mu-os-release-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "ID=debian\nVERSION_ID=\"12\"\n";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  size_t n = mu_host_fact_list(&f, path, list);
  unlink(path);
  const char *want[][2] = {
      {"os", "linux"}, {"kernel", "6.1.0-18-amd64"}, {"arch", "x86_64"},   {"hostname", "web-1"},
      {"cpus", "16"},  {"mem_gib", "62.7"},          {"distro", "debian"}, {"distro_version", "12"}};
  assert_int_equal(n, 8);
  for (size_t i = 0; i < n; i++) {
    assert_string_equal(list[i].name, want[i][0]);
    assert_string_equal(list[i].value, want[i][1]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(facts),       cmocka_unit_test(metrics),    cmocka_unit_test(rss_grows),
      cmocka_unit_test(disk_errors), cmocka_unit_test(os_release), cmocka_unit_test(fact_list),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
