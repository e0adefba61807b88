/* lib/base: trace ids (fixed vectors, also computed by the Python in docs/observability.md),
 * job ids found in log text, and JSON log lines. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/base/assert.h"
#include "lib/base/atomic_file.h"
#include "lib/base/err.h"
#include "lib/base/log.h"
#include "lib/base/procstat.h"
#include "lib/base/regex_size.h"
#include "lib/base/trace.h"

static void trace_ids(void **state) {
  (void)state;
  char trace[MU_TRACE_ID_HEX], span[MU_SPAN_ID_HEX], tp[MU_TRACEPARENT_LEN];
  mu_trace_id("j-6b0fdbec-3", trace);
  assert_string_equal(trace, "80ebdf6e27e4e755a6828a3b89e7e332");
  mu_span_id("j-6b0fdbec-3/db-1/run", 1, span);
  assert_string_equal(span, "45a1e72edf160335");
  mu_traceparent("j-6b0fdbec-3", "j-6b0fdbec-3/db-1/run", 1, tp);
  assert_string_equal(tp, "00-80ebdf6e27e4e755a6828a3b89e7e332-45a1e72edf160335-01");
  mu_span_id("j-6b0fdbec-3/db-1/run", 2, span);
  assert_string_not_equal(span, "45a1e72edf160335"); /* a retry is another span */
}

static void job_ids_in_text(void **state) {
  (void)state;
  char job[64];
  assert_int_equal(mu_trace_find_job_id("task j-6b0fdbec-3/db-1/run attempt 1", job, sizeof job), 0);
  assert_string_equal(job, "j-6b0fdbec-3");
  assert_int_equal(mu_trace_find_job_id("abj-12-3 nope j-zz-1 j-1f-", job, sizeof job), -1);
  assert_int_equal(mu_trace_find_job_id("job=j-1f-22,", job, sizeof job), 0);
  assert_string_equal(job, "j-1f-22");
  assert_int_equal(mu_trace_find_job_id("j-1f-22", job, 4), -1);
}

static void json_lines(void **state) {
  (void)state;
  char path[] = "/tmp/mu-log-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  int saved = dup(2);
  dup2(fd, 2);
  mu_log_format f;
  assert_int_equal(mu_log_parse_format("json", &f), 0);
  assert_int_equal(mu_log_parse_format("xml", &f), MU_EINVAL);
  mu_log_set_format(f);
  mu_info("sched", "job %s \"quoted\"\ttab", "j-6b0fdbec-3");
  mu_warn("conn", "no job here");
  mu_log_set_format(MU_LOG_TEXT);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char buf[2048] = "";
  FILE *in = fopen(path, "r");
  size_t n = fread(buf, 1, sizeof buf - 1, in);
  fclose(in);
  close(fd);
  unlink(path);
  buf[n] = '\0';
  assert_non_null(strstr(
      buf,
      "\"level\":\"info\",\"component\":\"sched\",\"msg\":\"job j-6b0fdbec-3 "
      "\\\"quoted\\\"\\u0009tab\",\"job_id\":\"j-6b0fdbec-3\",\"trace_id\":\"80ebdf6e27e4e755a6828a3b89e7e332\"}\n"));
  assert_non_null(strstr(buf, "\"level\":\"warn\",\"component\":\"conn\",\"msg\":\"no job here\"}\n"));
}

/* Patterns people write pass; nested bounded repetitions that glibc would expand into
 * millions of nodes are refused before regcomp() sees them. */
static void regex_sizes(void **state) {
  (void)state;
  char why[160];
  static const char *const ok[] = {
      "^2\\.",
      "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
      "([0-9]{1,3}\\.){3}[0-9]{1,3}",
      "(ok|OK)+$",
      "a{,",
      "[]{}]{20}",
      "[[:alpha:]]{100}",
      ")",
      "((a)",
      "x{1000}",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    why[0] = '\0';
    assert_int_equal(mu_regex_check_size(ok[i], MU_REGEX_MAX_UNITS, why, sizeof why), 0);
  }
  static const char *const big[] = {"(a{1000}){1000}",
                                    "((a{30}){30}){30}",
                                    "a{32767}{32767}",
                                    "(((((x+)+)+)+)+){999}",
                                    "((a{00}){99}){99}",
                                    "(a?){5000}",
                                    "((((((((((((((((a{9}){9}){9}){9}){9}){9}){9}){9})))))))))"};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    why[0] = '\0';
    assert_int_equal(mu_regex_check_size(big[i], MU_REGEX_MAX_UNITS, why, sizeof why), -1);
    assert_non_null(strstr(why, "too large"));
  }
  char deep[200] = "";
  for (int i = 0; i < 70; i++) strcat(deep, "(");
  assert_int_equal(mu_regex_check_size(deep, MU_REGEX_MAX_UNITS, why, sizeof why), -1);
  assert_non_null(strstr(why, "nested more than 64"));
}

/* MU_ASSERT stays on whatever the build: a true condition costs nothing visible, a false one
 * aborts the process with the condition and the place on stderr. */
static void asserts_abort_with_the_condition(void **state) {
  (void)state;
  int count = 1;
  MU_ASSERT(count == 1);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    MU_ASSERT(count < 0);
    _exit(0);
  }
  close(fds[1]);
  char out[512] = "";
  size_t n = 0;
  ssize_t r;
  while (n < sizeof out - 1 && (r = read(fds[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)r;
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGABRT);
  assert_non_null(strstr(out, "assertion failed: count < 0 (lib/base/base_test.c:"));
  assert_non_null(strstr(out, "in asserts_abort_with_the_condition)"));
}

/* A start time names a live process: ours has one, an ended child's is 0 (zombie or reaped). */
static void proc_start_times(void **state) {
  (void)state;
  assert_true(mu_proc_start_time(getpid()) > 0);
  pid_t c = fork();
  if (c == 0) _exit(0);
  for (int i = 0; i < 200 && mu_proc_start_time(c) != 0; i++) usleep(5000); /* a zombie: 0 */
  assert_int_equal(mu_proc_start_time(c), 0);
  waitpid(c, NULL, 0);
  assert_int_equal(mu_proc_start_time(c), 0);
}

/* Written whole, replaced whole, no temporary file left. */
static void atomic_files(void **state) {
  (void)state;
  char dir[] = "/tmp/mu-atomic.XXXXXX", path[64], buf[16] = "";
  assert_non_null(mkdtemp(dir));
  assert_int_equal(mu_atomic_file_write(dir, "f", "one\n"), 0);
  assert_int_equal(mu_atomic_file_write(dir, "f", "two\n"), 0);
  snprintf(path, sizeof path, "%s/f", dir);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  assert_non_null(fgets(buf, sizeof buf, f));
  fclose(f);
  assert_string_equal(buf, "two\n");
  assert_int_equal(mu_atomic_file_write("/nonexistent-dir", "f", "x"), -1);
  unlink(path);
  assert_int_equal(rmdir(dir), 0); /* nothing else (no .tmp) in it */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(trace_ids),
      cmocka_unit_test(proc_start_times),
      cmocka_unit_test(atomic_files),
      cmocka_unit_test(job_ids_in_text),
      cmocka_unit_test(json_lines),
      cmocka_unit_test(regex_sizes),
      cmocka_unit_test(asserts_abort_with_the_condition),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
