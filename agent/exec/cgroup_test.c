/* The restart sweep's exceptions and finding a process's group (cgroup.h), with real groups
 * and processes: a sweep that keeps one pid leaves that group (and its process) alone and
 * kills and removes the other; mu_cgroup_find gives the kept group back, which then kills and
 * removes like any. Needs root and a writable hierarchy; says so and passes otherwise. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/exec/cgroup.h"

/* A `sleep` in its own new group leaf; its pid. */
static pid_t sleeper_in(const mu_cgroup_root *root, const char *leaf) {
  mu_cgroup *cg = NULL;
  mu_err err = {0};
  if (mu_cgroup_create(root, leaf, NULL, &cg, &err) != 0) fail_msg("create %s: %s", leaf, err.msg);
  const char *procs[8];
  int n = mu_cgroup_procs_files(cg, procs, 8);
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < n; i++) {
      FILE *f = fopen(procs[i], "we");
      if (f == NULL) _exit(2);
      fprintf(f, "%d\n", (int)getpid());
      fclose(f);
    }
    execlp("sleep", "sleep", "600", (char *)NULL);
    _exit(127);
  }
  mu_cgroup_free(cg);
  usleep(100000);
  return pid;
}

static bool alive(pid_t pid) { return waitpid(pid, NULL, WNOHANG) == 0; }

static void test_sweep_except_and_find(void **state) {
  (void)state;
  mu_cgroup_root root;
  char name[64];
  snprintf(name, sizeof name, "muster-cgtest-%d", (int)getpid());
  if (geteuid() != 0 || mu_cgroup_root_detect(NULL, name, &root) != 0 || root.mode == MU_CGROUP_NONE) {
    printf("SKIP: needs root and a writable cgroup hierarchy\n");
    return;
  }
  pid_t kept = sleeper_in(&root, "kept.1.1"), swept = sleeper_in(&root, "swept.1.1");
  int groups = -1, procs = -1;
  assert_int_equal(mu_cgroup_sweep_except(&root, &kept, 1, &groups, &procs), 0);
  assert_true(groups >= 1); /* one per v1 hierarchy the leaf is in */
  assert_true(procs >= 1);
  for (int i = 0; i < 100 && alive(swept); i++) usleep(10000);
  assert_false(alive(swept));
  assert_true(alive(kept));

  mu_cgroup *cg = NULL;
  mu_err err = {0};
  assert_int_equal(mu_cgroup_find(&root, kept, &cg, &err), 0);
  assert_false(mu_cgroup_is_empty(cg));
  assert_true(mu_cgroup_kill_all(cg) >= 1);
  for (int i = 0; i < 100 && alive(kept); i++) usleep(10000);
  assert_false(alive(kept));
  int rc = MU_EAGAIN;
  for (int i = 0; i < 100 && rc != 0; i++) {
    rc = mu_cgroup_remove(cg);
    if (rc != 0) usleep(10000);
  }
  assert_int_equal(rc, 0);
  mu_cgroup_free(cg);
  /* gone: nothing finds it, and a plain sweep has nothing left to do */
  assert_int_equal(mu_cgroup_find(&root, kept, &cg, &err), MU_ENOENT);
  assert_int_equal(mu_cgroup_sweep(&root, &groups, &procs), 0);
  assert_int_equal(groups, 0);
  if (root.mode == MU_CGROUP_V2) rmdir(root.v2_parent);
  for (int i = 0; i < MU_CG_COUNT; i++)
    if (root.v1_parent[i][0] != '\0') rmdir(root.v1_parent[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sweep_except_and_find),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
