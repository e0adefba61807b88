/* Tests for skip.h: a skip says why (in the log, for scripts/test's summary line), and under
 * CI=true it fails. The cases run this binary again as a child (MU_SKIP_TEST_CHILD=1) with and
 * without CI set, and read what it printed and how it ended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/testing/skip.h"

static void needs_root_here(void **state) {
  (void)state;
  MU_SKIP("not root (%s)", "demo");
}

/* Runs the child with env (e.g. "CI=true") set; returns its exit status, output in out. */
static int run_child(const char *env, char *out, size_t size) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "env -u CI %s MU_SKIP_TEST_CHILD=1 /proc/%d/exe 2>&1", env, (int)getpid());
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, size - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void a_skip_says_why(void **state) {
  (void)state;
  char out[8192];
  int rc = run_child("", out, sizeof out);
  if (rc != 0 || strstr(out,
                        "MU_TEST_SKIPPED"
                        ": needs_root_here: not root (demo)") == NULL)
    fail_msg("exit %d: %s", rc, out);
  assert_non_null(strstr(out, "SKIPPED"));
}

static void under_ci_a_skip_fails(void **state) {
  (void)state;
  char out[8192];
  int rc = run_child("CI=true", out, sizeof out);
  if (rc == 0 || strstr(out, "would skip under CI=true (root, cgroups expected): not root (demo)") == NULL)
    fail_msg("exit %d: %s", rc, out);
}

int main(void) {
  if (getenv("MU_SKIP_TEST_CHILD") != NULL) {
    const struct CMUnitTest child[] = {cmocka_unit_test(needs_root_here)};
    return cmocka_run_group_tests(child, NULL, NULL);
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_skip_says_why),
      cmocka_unit_test(under_ci_a_skip_fails),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
