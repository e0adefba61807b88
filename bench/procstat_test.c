/* bench/procstat tests: the field parser on fixed /proc text, and real reads of this very
 * process (its RSS grows when it touches memory; it holds the socket it opens). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench/procstat.h"

static const char status_text[] =
    "Name:\tmusterd\n"
    "VmPeak:\t  123456 kB\n"
    "VmRSS:\t    6152 kB\n"
    "RssAnon:\t    2048 kB\n"
    "Threads:\t5\n";

static const char rollup_text[] =
    "55d1c0a8e000-7ffd5a1f2000 ---p 00000000 00:00 0    [rollup]\n"
    "Rss:                6152 kB\n"
    "Pss:                3021 kB\n"
    "Pss_Anon:           1900 kB\n"
    "Private_Dirty:      1880 kB\n";

static void test_field_parses_the_exact_key(void **state) {
  (void)state;
  uint64_t v = 0;
  mu_err err = {0};
  assert_int_equal(mu_proc_field(status_text, "VmRSS:", &v, &err), 0);
  assert_int_equal(v, 6152);
  assert_int_equal(mu_proc_field(status_text, "Threads:", &v, &err), 0);
  assert_int_equal(v, 5);
  /* "Pss:" must not match "Pss_Anon:" nor the "Rss:" line. */
  assert_int_equal(mu_proc_field(rollup_text, "Pss:", &v, &err), 0);
  assert_int_equal(v, 3021);
  assert_int_equal(mu_proc_field(rollup_text, "Private_Dirty:", &v, &err), 0);
  assert_int_equal(v, 1880);
}

static void test_field_missing_or_bad(void **state) {
  (void)state;
  uint64_t v = 77;
  mu_err err = {0};
  assert_int_equal(mu_proc_field(status_text, "VmSwap:", &v, &err), MU_ENOENT);
  assert_non_null(strstr(err.msg, "VmSwap:"));
  assert_int_equal(mu_proc_field("Name:\tx\n", "Name:", &v, &err), MU_EINVAL);
  assert_int_equal(v, 77);
}

static void test_reads_self(void **state) {
  (void)state;
  mu_proc_mem before = {0}, after = {0};
  mu_err err = {0};
  assert_int_equal(mu_proc_mem_read(getpid(), &before, &err), 0);
  assert_true(before.rss_kib > 0);
  assert_true(before.pss_kib > 0);
  assert_true(before.threads >= 1);
  /* Touch 32 MiB: RSS and private dirty pages grow by most of it. */
  size_t size = 32u << 20;
  char *block = malloc(size);
  assert_non_null(block);
  memset(block, 1, size);
  assert_int_equal(mu_proc_mem_read(getpid(), &after, &err), 0);
  assert_true(after.rss_kib >= before.rss_kib + 24 * 1024);
  assert_true(after.private_dirty_kib >= before.private_dirty_kib + 24 * 1024);
  free(block);

  uint64_t cpu = 0;
  assert_int_equal(mu_proc_cpu_ms(getpid(), &cpu, &err), 0);

  uint32_t socks_before = 0, socks_after = 0;
  assert_int_equal(mu_proc_socket_count(getpid(), &socks_before, &err), 0);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  assert_int_equal(mu_proc_socket_count(getpid(), &socks_after, &err), 0);
  assert_int_equal(socks_after, socks_before + 1);
  close(fd);
}

static void test_gone_process(void **state) {
  (void)state;
  mu_proc_mem m;
  mu_err err = {0};
  assert_int_equal(mu_proc_mem_read(0x7ffffff0, &m, &err), MU_ENOENT);
  assert_non_null(strstr(err.msg, "/proc/"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_field_parses_the_exact_key),
      cmocka_unit_test(test_field_missing_or_bad),
      cmocka_unit_test(test_reads_self),
      cmocka_unit_test(test_gone_process),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
