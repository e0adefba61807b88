/* Reused cgroup leaves (cgroup_pool.h) with real processes: a leaf is handed out again only
 * once empty, with its peak memory reset (a big process then a small one: the small one's
 * peak is its own); a process that escapes its session is still killed through the pooled
 * leaf; a process with a limit gets a fresh leaf; leaves past max_idle are removed. On a host
 * without cgroup v1 the pool refuses to start, and that is what is checked. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/exec/cgroup_pool.h"
#include "agent/exec/proc_testkit.h"
#include "agent/exec/runner_testkit.h"
#include "agent/exec/supervisor.h"

static char helper[4096];
static char tmpdir[256];
static mu_cgroup_root root;

typedef mu_tp_run run;

static void run_one(mu_cgroup_pool *pool, run *r, const char *const *argv, const mu_cgroup_limits *lim) {
  static int n;
  char leaf[64];
  snprintf(leaf, sizeof leaf, "pooltest-%d-%d", (int)getpid(), ++n);
  uv_loop_t loop;
  uv_loop_init(&loop);
  mu_proc_opts o = mu_tp_opts(r, helper, tmpdir, argv);
  o.cgroup_root = &root;
  o.cgroup_leaf = leaf;
  o.cgroup_pool = pool;
  if (lim != NULL) o.limits = *lim;
  mu_err err = {0};
  if (mu_proc_spawn(&loop, &o, &r->proc, &err) != 0) fail_msg("spawn: %s", err.msg);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(r->exited);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_pool(void **state) {
  (void)state;
  mu_cgroup_pool *pool = NULL;
  mu_err err = {0};
  int rc = mu_cgroup_pool_new(&root, 1, &pool, &err);
  if (root.mode != MU_CGROUP_V1) {
    assert_int_equal(rc, MU_ENOTSUP); /* v2 or none: fresh leaves, as before */
    return;
  }
  assert_int_equal(rc, 0);
  mu_cgroup_pool_stats st;

  /* a 64 MiB buffer, then a tiny process in the same (reused) leaf */
  run big = {0}, small = {0};
  const char *const dd[] = {"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1", NULL};
  run_one(pool, &big, dd, NULL);
  assert_int_equal(big.res.exit_code, 0);
  assert_true(big.res.cgroup_memory_peak_bytes >= 64ll << 20);
  const char *const tru[] = {"true", NULL};
  run_one(pool, &small, tru, NULL);
  assert_int_equal(small.res.exit_code, 0);
  mu_cgroup_pool_stats_get(pool, &st);
  assert_int_equal(st.made, 1);
  assert_int_equal(st.reused, 1);
  assert_true(small.res.cgroup_memory_peak_bytes >= 0);
  assert_true(small.res.cgroup_memory_peak_bytes < 32ll << 20); /* reset, not the dd's peak */
  assert_string_equal(small.res.limits_via, "cgroup-v1");

  /* a process that leaves its session behind is still killed through the pooled leaf */
  run esc = {0};
  const char *const escape[] = {"sh", "-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!", NULL};
  run_one(pool, &esc, escape, NULL);
  pid_t sleeper = (pid_t)atoi(esc.out);
  assert_true(sleeper > 0);
  for (int i = 0; i < 200 && !mu_tk_pid_gone(sleeper); i++) usleep(10000);
  assert_true(mu_tk_pid_gone(sleeper));
  mu_cgroup_pool_stats_get(pool, &st);
  assert_int_equal(st.made, 1);
  assert_int_equal(st.reused, 2);

  /* with a limit: a fresh leaf, not the pool's */
  run lim = {0};
  mu_cgroup_limits pids = {.pids = 50};
  run_one(pool, &lim, tru, &pids);
  assert_int_equal(lim.res.exit_code, 0);
  mu_cgroup_pool_stats_get(pool, &st);
  assert_int_equal(st.made, 1);
  assert_int_equal(st.reused, 2);
  assert_int_equal(st.idle, 1);

  /* two out at once with max_idle 1: the second is removed when given back */
  mu_cgroup *a = NULL, *b = NULL;
  assert_int_equal(mu_cgroup_pool_take(pool, &a, &err), 0);
  assert_int_equal(mu_cgroup_pool_take(pool, &b, &err), 0);
  mu_cgroup_pool_stats_get(pool, &st);
  assert_int_equal(st.made, 2);
  assert_int_equal(mu_cgroup_pool_give(pool, a), 0);
  assert_int_equal(mu_cgroup_pool_give(pool, b), 0);
  mu_cgroup_pool_stats_get(pool, &st);
  assert_int_equal(st.idle, 1);
  mu_cgroup_pool_free(pool);
}

int main(int argc, char **argv) {
  if (argc < 2 || realpath(argv[1], helper) == NULL) {
    fprintf(stderr, "usage: cgroup_pool_test MUSTER_EXEC\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  mu_cgroup_root_detect("/sys/fs/cgroup", "muster-pooltest", &root);
  fprintf(stderr, "cgroup mode: %d\n", (int)root.mode);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/pooltest.XXXXXX");
  if (mkdtemp(tmpdir) == NULL) return 2;
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_pool)};
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  rmdir(tmpdir);
  return rc;
}
