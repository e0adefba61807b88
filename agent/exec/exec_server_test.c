/* The exec server with real processes (the supervisor's own tests also run through it): a
 * server killed under a running task fails that task (its process group killed too) and the
 * next task starts a new server and runs; a kill asked for before the server has reported the
 * pid still reaches the process; the runner's tasks go through the server and it is gone
 * after the runner closes. */
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

#include "agent/exec/exec_server.h"
#include "agent/exec/proc_testkit.h"
#include "agent/exec/runner_testkit.h"
#include "agent/exec/task_int.h"
#include "agent/exec/supervisor.h"

static char helper[4096], shell_so[4096];
static char tmpdir[256];

typedef mu_tp_run run;

static void start(uv_loop_t *loop, mu_exec_server *xs, run *r, const char *const *argv) {
  mu_proc_opts o = mu_tp_opts(r, helper, tmpdir, argv);
  o.exec_server = xs;
  mu_err err = {0};
  if (mu_proc_spawn(loop, &o, &r->proc, &err) != 0) fail_msg("spawn: %s", err.msg);
}

static void run_until(uv_loop_t *loop, const bool *flag) { mu_tp_run_until(loop, flag); }

static void on_closed(void *arg) { *(bool *)arg = true; }

static mu_exec_server *new_server(uv_loop_t *loop) {
  uv_loop_init(loop);
  mu_exec_server *xs = NULL;
  mu_err err = {0};
  if (mu_exec_server_new(loop, helper, &xs, &err) != 0) fail_msg("exec server: %s", err.msg);
  return xs;
}

/* Closes xs and runs the loop dry: the server is reaped and every handle closed. */
static void close_all(uv_loop_t *loop, mu_exec_server *xs) {
  bool closed = false;
  mu_exec_server_close(xs, on_closed, &closed);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_true(closed);
  assert_int_equal(uv_loop_close(loop), 0);
}

static bool gone(pid_t pid) { return kill(pid, 0) != 0 || mu_tk_pid_gone(pid); }

static void test_server_crash_fails_running_task_and_restarts(void **state) {
  (void)state;
  uv_loop_t loop;
  mu_exec_server *xs = new_server(&loop);
  assert_int_equal(mu_exec_server_pid(xs), 0); /* none before the first spawn */

  run *r = calloc(1, sizeof *r);
  const char *sleeper[] = {"sleep", "1000", NULL};
  start(&loop, xs, r, sleeper);
  pid_t first = mu_exec_server_pid(xs);
  assert_true(first > 0);
  while (mu_proc_pid(r->proc) <= 0) uv_run(&loop, UV_RUN_ONCE); /* STARTED arrived */
  pid_t task = mu_proc_pid(r->proc);
  assert_int_equal(kill(first, SIGKILL), 0);
  run_until(&loop, &r->exited);
  assert_int_equal(r->res.signal, SIGKILL);
  assert_non_null(strstr(r->res.message, "exec server died"));
  for (int i = 0; i < 200 && !gone(task); i++) usleep(10000);
  assert_true(gone(task)); /* not left running as an orphan */

  run *r2 = calloc(1, sizeof *r2);
  const char *echo[] = {"echo", "again", NULL};
  start(&loop, xs, r2, echo);
  run_until(&loop, &r2->exited);
  assert_int_equal(r2->res.exit_code, 0);
  assert_string_equal(r2->out, "again\n");
  pid_t second = mu_exec_server_pid(xs);
  assert_true(second > 0 && second != first);
  mu_exec_server_stats st;
  mu_exec_server_stats_get(xs, &st);
  assert_int_equal(st.starts, 2);
  assert_int_equal(st.spawns, 2);
  assert_int_equal(st.lost, 1);
  assert_int_equal(st.fallbacks, 0);

  close_all(&loop, xs);
  assert_int_equal(kill(second, 0), -1); /* exited and reaped */
  free(r);
  free(r2);
}

/* mu_proc_kill right after spawn, before STARTED came back: the TERM is sent once the pid is
 * known. */
static void test_kill_before_pid_known(void **state) {
  (void)state;
  uv_loop_t loop;
  mu_exec_server *xs = new_server(&loop);
  run *r = calloc(1, sizeof *r);
  const char *sleeper[] = {"sleep", "1000", NULL};
  start(&loop, xs, r, sleeper);
  assert_int_equal(mu_proc_pid(r->proc), 0);
  mu_proc_kill(r->proc, MU_KILL_CANCEL);
  run_until(&loop, &r->exited);
  assert_int_equal(r->res.killed_for, MU_KILL_CANCEL);
  assert_true(r->res.signal == SIGTERM || r->res.signal == SIGKILL);
  assert_true(r->res.wall_ms < 5000);
  close_all(&loop, xs);
  free(r);
}

/* A request too big for one message goes through the one-shot helper, and still runs. */
static void test_large_request_falls_back(void **state) {
  (void)state;
  uv_loop_t loop;
  mu_exec_server *xs = new_server(&loop);
  size_t big = 100 * 1024; /* two of these: over MU_XS_MAX_REQ, each under exec's 128 KiB */
  char *arg = malloc(big + 1);
  memset(arg, 'x', big);
  arg[big] = '\0';
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"true", arg, arg, NULL};
  start(&loop, xs, r, argv);
  run_until(&loop, &r->exited);
  assert_int_equal(r->res.exit_code, 0);
  mu_exec_server_stats st;
  mu_exec_server_stats_get(xs, &st);
  assert_int_equal(st.fallbacks, 1);
  assert_int_equal(st.spawns, 0);
  close_all(&loop, xs);
  free(arg);
  free(r);
}

/* A helper that is no exec server (here /bin/false; in life an older muster-exec): the task
 * sent to it fails with a clear message, nothing runs twice, later ones use the one-shot
 * helper. */
static void test_helper_without_server_mode(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  mu_exec_server *xs = NULL;
  mu_err err = {0};
  assert_int_equal(mu_exec_server_new(&loop, "/bin/false", &xs, &err), 0);
  run *r = calloc(1, sizeof *r), *r2 = calloc(1, sizeof *r2);
  const char *echo[] = {"echo", "once", NULL};
  start(&loop, xs, r, echo);
  run_until(&loop, &r->exited);
  /* usually sent before /bin/false is gone, and refused; if it was already gone, the send
   * failed and the one-shot helper ran it */
  bool refused = r->res.exit_code == 126;
  if (refused) {
    assert_non_null(strstr(r->res.message, "could not start it"));
    assert_int_equal(r->out_len, 0);
  } else {
    assert_int_equal(r->res.exit_code, 0);
    assert_string_equal(r->out, "once\n");
  }
  for (int i = 0; i < 2000 && mu_exec_server_pid(xs) != 0; i++) uv_run(&loop, UV_RUN_ONCE);
  start(&loop, xs, r2, echo);
  run_until(&loop, &r2->exited);
  assert_int_equal(r2->res.exit_code, 0);
  assert_string_equal(r2->out, "once\n");
  mu_exec_server_stats st;
  mu_exec_server_stats_get(xs, &st);
  assert_int_equal(st.starts, 1); /* not started again */
  assert_int_equal(st.fallbacks, refused ? 1 : 2);
  assert_int_equal(st.lost, 0);
  close_all(&loop, xs);
  free(r);
  free(r2);
}

/* Through the runner: a killed server is replaced and later tasks succeed. */
static void test_runner_tasks_survive_server_crash(void **state) {
  (void)state;
  char spool[] = "/tmp/xstest-spool.XXXXXX";
  assert_non_null(mkdtemp(spool));
  mu_runner_config cfg = {.spool_dir = spool, .agent_id = "a1", .helper_path = helper, .no_cgroups = true};
  mu_tk_world w;
  mu_tk_world_init(&w, shell_so, &cfg, 4096, 4096);
  mu_tk_rec *a = mu_tk_assign(&w, "before", "{\"shell\":{\"script\":\"echo one\"}}", NULL, 0);
  mu_tk_run_until_final(&w, a);
  assert_int_equal(a->state, MU_TASK_SUCCEEDED);
  mu_exec_server *xs = w.runner->exec_server;
  assert_non_null(xs);
  assert_int_equal(kill(mu_exec_server_pid(xs), SIGKILL), 0);
  /* Once the agent has seen it go (a request sent into a dying server's socket is failed, not
   * retried: it may have started), the next task starts a new server. */
  for (int i = 0; i < 20000 && mu_exec_server_pid(xs) != 0; i++) uv_run(&w.loop, UV_RUN_ONCE);
  assert_int_equal(mu_exec_server_pid(xs), 0);
  mu_tk_rec *b = mu_tk_assign(&w, "after", "{\"shell\":{\"script\":\"echo two\"}}", NULL, 0);
  mu_tk_run_until_final(&w, b);
  assert_int_equal(b->state, MU_TASK_SUCCEEDED);
  assert_string_equal(b->out, "two\n");
  mu_tk_world_free(&w);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", spool);
  assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv) {
  if (argc < 3 || realpath(argv[1], helper) == NULL || realpath(argv[2], shell_so) == NULL) {
    fprintf(stderr, "usage: exec_server_test MUSTER_EXEC SHELL_SO\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/xstest.XXXXXX");
  if (mkdtemp(tmpdir) == NULL) return 2;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_server_crash_fails_running_task_and_restarts),
      cmocka_unit_test(test_kill_before_pid_known),
      cmocka_unit_test(test_large_request_falls_back),
      cmocka_unit_test(test_helper_without_server_mode),
      cmocka_unit_test(test_runner_tasks_survive_server_crash),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  rmdir(tmpdir);
  return rc;
}
