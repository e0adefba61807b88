/* Supervisor tests with real processes: both output streams, the output cap, timeout and
 * cancel killing the whole group (grandchild included), exit codes and signals, the exact
 * environment, the control channel, pids and memory limits, stdin, and run-as nobody. The
 * whole set runs twice: with a one-shot muster-exec per process, and through the exec server
 * (exec_server.h), one per test's loop. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/testing/skip.h"

#include "agent/exec/runner_testkit.h"

#include "agent/exec/exec_server.h"
#include "agent/exec/supervisor.h"

static char helper[4096];
static mu_cgroup_root cg_root;
static char tmpdir[256];
static int leaf_counter;
static bool use_server; /* the second round */

typedef struct run {
  char out[65536];
  size_t out_len;
  char err[65536];
  size_t err_len;
  int n_progress;
  double last_pct;
  char last_progress_msg[256];
  char params[1024];
  int n_bad;
  bool exited;
  mu_proc_result res;
  mu_proc *proc;
  mu_exec_server *xs;
} run;

static void on_output(mu_proc *p, void *arg, int stream, const char *data, size_t len) {
  (void)p;
  run *r = arg;
  char *dst = stream == 1 ? r->out : r->err;
  size_t *n = stream == 1 ? &r->out_len : &r->err_len;
  size_t room = sizeof r->out - 1 - *n;
  if (len > room) len = room;
  memcpy(dst + *n, data, len);
  *n += len;
  dst[*n] = '\0';
}

static void on_control(mu_proc *p, void *arg, const mu_ctl_line *l) {
  (void)p;
  run *r = arg;
  if (l->kind == MU_CTL_PROGRESS) {
    r->n_progress++;
    r->last_pct = l->percent;
    snprintf(r->last_progress_msg, sizeof r->last_progress_msg, "%s", l->message);
  } else if (l->kind == MU_CTL_PARAM) {
    size_t n = strlen(r->params);
    snprintf(r->params + n, sizeof r->params - n, "%s=%s;", l->key, l->value);
  } else {
    r->n_bad++;
  }
}

static void on_exit_cb(mu_proc *p, void *arg, const mu_proc_result *res) {
  (void)p;
  run *r = arg;
  r->exited = true;
  r->res = *res;
  if (r->xs != NULL) mu_exec_server_close(r->xs, NULL, NULL);
  r->xs = NULL;
}

/* mu_proc_spawn, through an exec server of its own on loop in the second round. */
static int spawn(uv_loop_t *loop, mu_proc_opts *o, run *r, mu_err *err) {
  if (use_server && mu_exec_server_new(loop, o->helper_path, &r->xs, err) != 0) r->xs = NULL;
  o->exec_server = r->xs;
  int rc = mu_proc_spawn(loop, o, &r->proc, err);
  if (rc == 0 && r->xs != NULL) {
    mu_exec_server_stats st;
    mu_exec_server_stats_get(r->xs, &st);
    assert_int_equal(st.spawns, 1); /* really through the server, no fallback */
  }
  if (rc != 0 && r->xs != NULL) {
    mu_exec_server_close(r->xs, NULL, NULL);
    r->xs = NULL;
  }
  return rc;
}

static const char *const base_env[] = {"PATH=/usr/bin:/bin", NULL};

static mu_proc_opts make_opts(run *r, const char *const *argv) {
  static char leaf[64];
  snprintf(leaf, sizeof leaf, "suptest-%d-%d", (int)getpid(), leaf_counter++);
  mu_proc_opts o;
  memset(&o, 0, sizeof o);
  o.helper_path = helper;
  o.argv = argv;
  o.env = base_env;
  o.cwd = tmpdir;
  o.cgroup_root = &cg_root;
  o.cgroup_leaf = leaf;
  o.grace_ms = 500;
  o.cb.on_output = on_output;
  o.cb.on_control = on_control;
  o.cb.on_exit = on_exit_cb;
  o.arg = r;
  return o;
}

static void run_to_end(run *r, mu_proc_opts *o) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  mu_err err = {0};
  int rc = spawn(&loop, o, r, &err);
  if (rc != 0) fprintf(stderr, "spawn: %s\n", err.msg);
  assert_int_equal(rc, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(r->exited);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_streams_and_exit_code(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"sh", "-c", "echo out; echo err >&2; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exit 3",
                        NULL};
  mu_proc_opts o = make_opts(r, argv);
  run_to_end(r, &o);
  assert_string_equal(r->out, "out\n");
  assert_string_equal(r->err, "err\n");
  assert_int_equal(r->res.exit_code, 3);
  assert_int_equal(r->res.signal, 0);
  assert_int_equal(r->res.killed_for, MU_KILL_NONE);
  assert_true(r->res.user_cpu_us > 0);
  assert_true(r->res.max_rss_bytes > 0);
  assert_int_equal(r->res.output_bytes, 8);
  assert_non_null(strstr(r->res.message, "exit code 3"));
  free(r);
}

/* Block IO: 1 MiB written and synced shows (rusage ru_oublock, or the cgroup's io.stat). */
static void test_block_io(void **state) {
  (void)state;
  struct statfs fs;
  if (statfs(tmpdir, &fs) == 0 && fs.f_type == 0x01021994 /* TMPFS_MAGIC */) MU_SKIP("tmpdir on tmpfs: no block IO");
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"sh", "-c", "dd if=/dev/zero of=io.bin bs=64k count=16 conv=fsync 2>/dev/null; rm -f io.bin",
                        NULL};
  mu_proc_opts o = make_opts(r, argv);
  run_to_end(r, &o);
  assert_int_equal(r->res.exit_code, 0);
  assert_true(r->res.io_write_bytes >= 1 << 20);
  assert_true(r->res.io_read_bytes >= 0);
  free(r);
}

static void test_stdin(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"cat", NULL};
  mu_proc_opts o = make_opts(r, argv);
  o.stdin_data = "hello stdin";
  o.stdin_len = 11;
  run_to_end(r, &o);
  assert_string_equal(r->out, "hello stdin");
  assert_int_equal(r->res.exit_code, 0);
  free(r);
}

static void test_output_limit(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"sh", "-c", "head -c 5000 /dev/zero | tr '\\0' a; head -c 3000 /dev/zero >&2", NULL};
  mu_proc_opts o = make_opts(r, argv);
  o.output_limit = 1000;
  run_to_end(r, &o);
  assert_int_equal(r->out_len + r->err_len, 1000);
  assert_int_equal(r->res.output_bytes, 1000);
  assert_int_equal(r->res.dropped_bytes, 7000);
  assert_int_equal(r->res.exit_code, 0);
  assert_non_null(strstr(r->res.message, "7000 bytes dropped"));
  free(r);
}

static pid_t read_pid_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  int pid = -1;
  if (fscanf(f, "%d", &pid) != 1) pid = -1;
  fclose(f);
  return pid;
}

static void test_timeout_kills_grandchild(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  char script[512], pidfile[300];
  snprintf(pidfile, sizeof pidfile, "%s/grandchild.pid", tmpdir);
  unlink(pidfile);
  /* The grandchild ignores TERM, so only the group-wide KILL after the grace period ends it. */
  snprintf(script, sizeof script, "(trap '' TERM; exec sleep 1000) & echo $! > %s; sleep 1000", pidfile);
  const char *argv[] = {"sh", "-c", script, NULL};
  mu_proc_opts o = make_opts(r, argv);
  o.timeout_ms = 400;
  o.grace_ms = 300;
  run_to_end(r, &o);
  assert_int_equal(r->res.killed_for, MU_KILL_TIMEOUT);
  assert_true(r->res.signal != 0);
  assert_int_equal(r->res.exit_code, -1);
  assert_non_null(strstr(r->res.message, "timed out"));
  pid_t gc = read_pid_file(pidfile);
  assert_true(gc > 0);
  for (int i = 0; i < 50 && !mu_tk_pid_gone(gc); i++) usleep(20000);
  assert_true(mu_tk_pid_gone(gc));
  free(r);
}

static void test_normal_exit_kills_leftovers(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  char script[512], pidfile[300];
  snprintf(pidfile, sizeof pidfile, "%s/bg.pid", tmpdir);
  unlink(pidfile);
  snprintf(script, sizeof script, "sleep 1000 >/dev/null 2>&1 & echo $! > %s; exit 0", pidfile);
  const char *argv[] = {"sh", "-c", script, NULL};
  mu_proc_opts o = make_opts(r, argv);
  run_to_end(r, &o);
  assert_int_equal(r->res.exit_code, 0);
  pid_t bg = read_pid_file(pidfile);
  assert_true(bg > 0);
  for (int i = 0; i < 50 && !mu_tk_pid_gone(bg); i++) usleep(20000);
  assert_true(mu_tk_pid_gone(bg));
  free(r);
}

static void on_cancel_timer(uv_timer_t *t) {
  run *r = t->data;
  mu_proc_kill(r->proc, MU_KILL_CANCEL);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"sleep", "1000", NULL};
  mu_proc_opts o = make_opts(r, argv);
  uv_loop_t loop;
  uv_loop_init(&loop);
  mu_err err = {0};
  assert_int_equal(spawn(&loop, &o, r, &err), 0);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  t.data = r;
  uv_timer_start(&t, on_cancel_timer, 200, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(r->exited);
  assert_int_equal(r->res.killed_for, MU_KILL_CANCEL);
  assert_int_equal(r->res.signal, SIGTERM);
  assert_true(r->res.wall_ms < 2000);
  assert_int_equal(uv_loop_close(&loop), 0);
  free(r);
}

static void test_signal_recorded(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"sh", "-c", "kill -SEGV $$", NULL};
  mu_proc_opts o = make_opts(r, argv);
  run_to_end(r, &o);
  assert_int_equal(r->res.signal, SIGSEGV);
  assert_int_equal(r->res.exit_code, -1);
  assert_non_null(strstr(r->res.message, "signal 11"));
  free(r);
}

static void test_missing_program(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"no-such-program-xyz", NULL};
  mu_proc_opts o = make_opts(r, argv);
  run_to_end(r, &o);
  assert_int_equal(r->res.exit_code, 127);
  assert_non_null(strstr(r->err, "no-such-program-xyz"));
  free(r);
}

static void test_missing_helper(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"true", NULL};
  mu_proc_opts o = make_opts(r, argv);
  o.helper_path = "/nonexistent/muster-exec";
  uv_loop_t loop;
  uv_loop_init(&loop);
  mu_err err = {0};
  assert_int_equal(spawn(&loop, &o, r, &err), MU_ENOENT);
  assert_non_null(strstr(err.msg, "/nonexistent/muster-exec"));
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_false(r->exited);
  assert_int_equal(uv_loop_close(&loop), 0);
  free(r);
}

static void test_env_exact(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"env", NULL};
  const char *env[] = {"PATH=/usr/bin:/bin", "A=1", "MUSTER_TASK_ID=t", NULL};
  mu_proc_opts o = make_opts(r, argv);
  o.env = env;
  setenv("AGENT_SECRET_LEAK", "x", 1);
  run_to_end(r, &o);
  assert_string_equal(r->out, "PATH=/usr/bin:/bin\nA=1\nMUSTER_TASK_ID=t\nMUSTER_CONTROL=3\n");
  free(r);
}

static void test_control_channel(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"sh", "-c",
                        "echo 'progress 10' >&$MUSTER_CONTROL; echo 'progress 42 copying files' >&3;"
                        " echo 'param out=v 1' >&3; echo 'param bad key=1' >&3; echo garbage >&3;"
                        " echo stdout-only",
                        NULL};
  mu_proc_opts o = make_opts(r, argv);
  run_to_end(r, &o);
  assert_int_equal(r->n_progress, 2);
  assert_true(r->last_pct == 42.0);
  assert_string_equal(r->last_progress_msg, "copying files");
  assert_string_equal(r->params, "out=v 1;");
  assert_int_equal(r->n_bad, 2);
  assert_string_equal(r->out, "stdout-only\n");
  assert_int_equal(r->res.exit_code, 0);
  free(r);
}

static void test_pids_limit(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"sh", "-c", "for i in $(seq 40); do sleep 30 & done; echo all-forked", NULL};
  mu_proc_opts o = make_opts(r, argv);
  o.limits.pids = 10;
  if (!mu_cgroup_root_has(&cg_root, MU_CG_PIDS)) {
    /* as root, RLIMIT_NPROC does not bind; runner_test covers run-as + rlimit */
    MU_SKIP("no pids cgroup controller");
  }
  run_to_end(r, &o);
  assert_string_equal(r->res.limits_via, cg_root.mode == MU_CGROUP_V2 ? "cgroup-v2" : "cgroup-v1");
  assert_null(strstr(r->out, "all-forked"));
  assert_int_not_equal(r->res.exit_code, 0);
  assert_non_null(strstr(r->err, "fork"));
  free(r);
}

static void test_memory_limit(void **state) {
  (void)state;
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"python3", "-c", "b = bytearray(400 * 1024 * 1024); print('allocated')", NULL};
  mu_proc_opts o = make_opts(r, argv);
  o.limits.memory_bytes = 64ull << 20;
  run_to_end(r, &o);
  assert_null(strstr(r->out, "allocated"));
  if (mu_cgroup_root_has(&cg_root, MU_CG_MEMORY)) {
    assert_int_equal(r->res.signal, SIGKILL);
    assert_true(r->res.oom_killed);
    assert_non_null(strstr(r->res.message, "memory limit"));
    assert_true(r->res.cgroup_memory_peak_bytes > 0);
    assert_true(r->res.cgroup_memory_peak_bytes <= (int64_t)(64ull << 20));
  } else {
    assert_int_not_equal(r->res.exit_code, 0); /* RLIMIT_AS: MemoryError */
  }
  free(r);
}

static void test_run_as_nobody(void **state) {
  (void)state;
  if (geteuid() != 0) MU_SKIP("not root: run-as needs root");
  run *r = calloc(1, sizeof *r);
  const char *argv[] = {"sh", "-c", "id -u; id -g; id -G", NULL};
  mu_proc_opts o = make_opts(r, argv);
  mu_err err = {0};
  assert_int_equal(mu_runas_resolve("nobody", NULL, &o.run_as, &err), 0);
  o.cwd = "/";
  run_to_end(r, &o);
  char want[128];
  snprintf(want, sizeof want, "%u\n%u\n%u\n", (unsigned)o.run_as.uid, (unsigned)o.run_as.gid, (unsigned)o.run_as.gid);
  assert_string_equal(r->out, want);
  free(r);
}

static void test_run_as_refused_when_not_root(void **state) {
  (void)state;
  mu_runas ra = {.set = true, .uid = geteuid() + 1, .gid = getegid()};
  snprintf(ra.name, sizeof ra.name, "someone");
  mu_err err = {0};
  if (geteuid() == 0) {
    assert_int_equal(mu_runas_check(&ra, &err), 0);
  } else {
    assert_int_equal(mu_runas_check(&ra, &err), MU_EPERM);
    assert_non_null(strstr(err.msg, "someone"));
  }
  assert_int_equal(mu_runas_resolve("no-such-user-xyz", NULL, &ra, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "no-such-user-xyz"));
}

int main(int argc, char **argv) {
  if (argc < 2 || realpath(argv[1], helper) == NULL) {
    fprintf(stderr, "usage: supervisor_test PATH-TO-muster-exec\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  mu_cgroup_root_detect("/sys/fs/cgroup", "muster-test", &cg_root);
  fprintf(stderr, "cgroup mode: %d\n", (int)cg_root.mode);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/suptest.XXXXXX");
  if (mkdtemp(tmpdir) == NULL) return 2;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_streams_and_exit_code),
      cmocka_unit_test(test_block_io),
      cmocka_unit_test(test_stdin),
      cmocka_unit_test(test_output_limit),
      cmocka_unit_test(test_timeout_kills_grandchild),
      cmocka_unit_test(test_normal_exit_kills_leftovers),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_signal_recorded),
      cmocka_unit_test(test_missing_program),
      cmocka_unit_test(test_missing_helper),
      cmocka_unit_test(test_env_exact),
      cmocka_unit_test(test_control_channel),
      cmocka_unit_test(test_pids_limit),
      cmocka_unit_test(test_memory_limit),
      cmocka_unit_test(test_run_as_nobody),
      cmocka_unit_test(test_run_as_refused_when_not_root),
  };
  int rc = cmocka_run_group_tests_name("one-shot helper", tests, NULL, NULL);
  use_server = true;
  rc |= cmocka_run_group_tests_name("exec server", tests, NULL, NULL);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", tmpdir);
  return rc;
}
