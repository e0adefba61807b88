/* MU_SKIP(why...): cmocka's skip() for a test that cannot check here (not root, no cgroup
 * controller), which cannot happen quietly:
 * - the test log gets "MU_TEST_SKIPPED: <test>: <why>", which scripts/test counts into its
 *   summary line ("tests: N passed, N failed, N skipped: ...");
 * - with CI=true in the environment (CI runs as root with cgroups: a skip there means a
 *   check silently went missing) the test fails instead, saying why.
 * Include after <cmocka.h>. */
#ifndef MU_TESTING_SKIP_H
#define MU_TESTING_SKIP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int mu_test_in_ci(void) {
  const char *ci = getenv("CI");
  return ci != NULL && (strcmp(ci, "true") == 0 || strcmp(ci, "1") == 0);
}

#define MU_SKIP(...)                                                                                 \
  do {                                                                                               \
    char mu_skip_why_[256];                                                                          \
    snprintf(mu_skip_why_, sizeof mu_skip_why_, __VA_ARGS__);                                        \
    if (mu_test_in_ci())                                                                             \
      fail_msg("%s: would skip under CI=true (root, cgroups expected): %s", __func__, mu_skip_why_); \
    printf("MU_TEST_SKIPPED: %s: %s\n", __func__, mu_skip_why_);                                     \
    fflush(stdout);                                                                                  \
    skip();                                                                                          \
  } while (0)

#endif
