/* Process isolation end to end: real muster-plugin-host processes, the real runner and
 * supervisor. A plugin that segfaults in start(), in a timer callback, in a process exit
 * callback and at unload takes down only its host: the test process (the agent) lives on, a
 * shell task beside it finishes untouched, the crashed type's tasks fail with
 * "plugin 'crasher' crashed (SIGSEGV); restarted", their processes are killed, and the host
 * comes back. The example plugin works the same out of process (output, progress, params,
 * cancel, validate). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/exec/plugin_env.h"
#include "agent/exec/runner_testkit.h"
#include "agent/plugin/remote.h"
#include "lib/testing/skip.h"

static const char *host_bin, *helper, *shell_so, *echo_so, *crash_so, *bad_abi_so, *greet_so, *v1_so;
static char spool[256];

typedef struct fixture {
  mu_tk_world w;
  mu_plugin_remote *crasher, *echo;
  int closed;
} fixture;

static mu_plugin_remote *open_remote(fixture *f, const char *so) {
  mu_plugin_remote_opts o = {.host_path = host_bin, .so_path = so, .backoff_min_ms = 50, .hang_ms = 400};
  mu_plugin_remote *r = NULL;
  mu_err err = {0};
  if (mu_plugin_remote_open(&f->w.loop, &o, &r, &err) != 0) fail_msg("open %s: %s", so, err.msg);
  if (mu_plugin_host_register_as(f->w.plugins, mu_plugin_remote_descriptor(r), so, "process", &err) != 0)
    fail_msg("register: %s", err.msg);
  return r;
}

static void fixture_init(fixture *f) {
  memset(f, 0, sizeof *f);
  mu_runner_config cfg = {.slots = 8,
                          .spool_dir = spool,
                          .agent_id = "agent-1",
                          .helper_path = helper,
                          .grace_ms = 300,
                          .cgroup_name = "muster-test"};
  mu_tk_world_init(&f->w, shell_so, &cfg, 4096, 4096);
  f->crasher = open_remote(f, crash_so);
  f->echo = open_remote(f, echo_so);
}

static void on_remote_closed(void *arg) { ((fixture *)arg)->closed++; }

static void fixture_free(fixture *f) {
  mu_plugin_remote_close(f->crasher, on_remote_closed, f);
  mu_plugin_remote_close(f->echo, on_remote_closed, f);
  mu_tk_world_free(&f->w); /* runs the loop dry: both hosts stopped and reaped */
  assert_int_equal(f->closed, 2);
}

static mu_tk_rec *crasher_task(fixture *f, const char *id, const char *cfg_json) {
  char spec[1024], esc[512];
  size_t n = 0;
  for (const char *c = cfg_json; *c && n + 2 < sizeof esc; c++) {
    if (*c == '"') esc[n++] = '\\';
    esc[n++] = *c;
  }
  esc[n] = '\0';
  snprintf(spec, sizeof spec, "{\"timeout\":\"20s\",\"plugin\":{\"type\":\"crasher\",\"configJson\":\"%s\"}}", esc);
  return mu_tk_assign(&f->w, id, spec, NULL, 0);
}

/* Runs the loop until the host of r is up again (a ping answered). */
static void on_pong(void *arg, int64_t rtt) { *(int64_t *)arg = rtt; }
static void wait_host_up(fixture *f, mu_plugin_remote *r) {
  for (int i = 0; i < 2000; i++) {
    int64_t rtt = -2;
    if (mu_plugin_remote_ping(r, on_pong, &rtt) == 0) {
      while (rtt == -2) uv_run(&f->w.loop, UV_RUN_ONCE);
      if (rtt >= 0) return;
    }
    uv_run(&f->w.loop, UV_RUN_NOWAIT);
    usleep(5000);
  }
  fail_msg("host never came back");
}

static void assert_crash_message(const mu_tk_rec *r) {
  assert_int_equal(r->state, MU_TASK_FAILED);
  if (strstr(r->message, "plugin 'crasher' crashed (SIGSEGV); restarted") == NULL) fail_msg("message: %s", r->message);
}

static void test_crash_in_start(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f);
  mu_tk_rec *sh = mu_tk_assign(&f.w, "sh", "{\"shell\":{\"script\":\"sleep 0.4; echo still here\"}}", NULL, 0);
  mu_tk_rec *echo = mu_tk_assign(&f.w, "echo",
                                 "{\"plugin\":{\"type\":\"sleep-echo\",\"configJson\":"
                                 "\"{\\\"message\\\":\\\"hi\\\",\\\"count\\\":4,\\\"intervalMs\\\":100}\"}}",
                                 NULL, 0);
  mu_tk_rec *c = crasher_task(&f, "c1", "{\"crash\":\"start\"}");
  mu_tk_run_until_final(&f.w, c);
  assert_crash_message(c);
  mu_tk_run_until_final(&f.w, sh);
  if (sh->state != MU_TASK_SUCCEEDED) fail_msg("shell task: %d %s; stderr %s", sh->state, sh->message, sh->err);
  assert_string_equal(sh->out, "still here\n");
  mu_tk_run_until_final(&f.w, echo);
  assert_int_equal(echo->state, MU_TASK_SUCCEEDED); /* another out-of-process type, untouched */
  assert_string_equal(echo->out, "hi\nhi\nhi\nhi\n");
  mu_plugin_remote_stats st;
  mu_plugin_remote_stats_get(f.crasher, &st);
  assert_int_equal(st.crashes, 1);
  assert_int_equal(st.tasks_failed, 1);
  wait_host_up(&f, f.crasher);
  mu_plugin_remote_stats_get(f.crasher, &st);
  assert_int_equal(st.restarts, 1);
  assert_true(st.pid > 0);
  mu_tk_rec *ok = crasher_task(&f, "c2", "{\"crash\":\"none\",\"ms\":10}");
  mu_tk_run_until_final(&f.w, ok);
  assert_int_equal(ok->state, MU_TASK_SUCCEEDED); /* the restarted host serves tasks */
  fixture_free(&f);
}

static void test_crash_in_timer_kills_processes(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f);
  char pidfile[512], cfg[700];
  snprintf(pidfile, sizeof pidfile, "%s/sleep.pid", spool);
  unlink(pidfile);
  snprintf(cfg, sizeof cfg, "{\"crash\":\"timer\",\"ms\":300,\"pidFile\":\"%s\"}", pidfile);
  mu_tk_rec *c = crasher_task(&f, "c-timer", cfg);
  mu_tk_rec *other = crasher_task(&f, "c-other", "{\"crash\":\"none\",\"ms\":5000}");
  mu_tk_run_until_final(&f.w, c);
  assert_crash_message(c);
  mu_tk_run_until_final(&f.w, other);
  assert_crash_message(other); /* every running task of the type fails */
  FILE *pf = fopen(pidfile, "r");
  assert_non_null(pf);
  int pid = 0;
  assert_int_equal(fscanf(pf, "%d", &pid), 1);
  fclose(pf);
  assert_true(pid > 0);
  for (int i = 0; i < 200 && !mu_tk_pid_gone(pid); i++) {
    uv_run(&f.w.loop, UV_RUN_NOWAIT);
    usleep(10000);
  }
  assert_true(mu_tk_pid_gone(pid)); /* the crashed task's `sleep 30` was killed */
  wait_host_up(&f, f.crasher);
  fixture_free(&f);
}

static void test_crash_in_exit_callback(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f);
  mu_tk_rec *c = crasher_task(&f, "c-exit", "{\"crash\":\"exit\"}");
  mu_tk_run_until_final(&f.w, c);
  assert_crash_message(c);
  fixture_free(&f);
}

static void test_hang_is_killed(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f);
  mu_tk_rec *sh = mu_tk_assign(&f.w, "sh2", "{\"shell\":{\"script\":\"sleep 0.2; echo fine\"}}", NULL, 0);
  mu_tk_rec *c = crasher_task(&f, "c-hang", "{\"crash\":\"hang\",\"ms\":50}");
  mu_tk_run_until_final(&f.w, c);
  assert_int_equal(c->state, MU_TASK_FAILED);
  if (strstr(c->message, "plugin 'crasher' stopped responding (no answer in 400 ms); restarted") == NULL)
    fail_msg("message: %s", c->message);
  assert_true(c->final_ms > 0);
  mu_tk_run_until_final(&f.w, sh);
  assert_int_equal(sh->state, MU_TASK_SUCCEEDED); /* the agent's loop never waited on the hung host */
  wait_host_up(&f, f.crasher);
  mu_tk_rec *ok = crasher_task(&f, "c-after-hang", "{\"crash\":\"none\",\"ms\":10}");
  mu_tk_run_until_final(&f.w, ok);
  assert_int_equal(ok->state, MU_TASK_SUCCEEDED);
  fixture_free(&f);
}

static void test_crash_at_unload(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f);
  mu_tk_rec *c = crasher_task(&f, "c-unload", "{\"crash\":\"unload\",\"ms\":10}");
  mu_tk_run_until_final(&f.w, c);
  assert_int_equal(c->state, MU_TASK_SUCCEEDED);
  mu_plugin_remote_stats st;
  mu_plugin_remote_stats_get(f.crasher, &st);
  int pid = st.pid;
  fixture_free(&f); /* the host segfaults in dlclose; we stop cleanly all the same */
  assert_true(mu_tk_pid_gone(pid));
}

static void test_example_out_of_process(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f);
  mu_tk_rec *r = mu_tk_assign(&f.w, "e1",
                              "{\"plugin\":{\"type\":\"sleep-echo\",\"configJson\":"
                              "\"{\\\"message\\\":\\\"hey\\\",\\\"count\\\":3,\\\"intervalMs\\\":20}\"}}",
                              NULL, 0);
  mu_tk_run_until_final(&f.w, r);
  assert_int_equal(r->state, MU_TASK_SUCCEEDED);
  assert_string_equal(r->out, "hey\nhey\nhey\n");
  assert_int_equal(r->n_progress, 3);
  assert_true(r->last_pct == 100.0);
  assert_string_equal(r->params, "echoed=3;");
  /* timeout reaches cancel() in the host */
  r = mu_tk_assign(&f.w, "e2",
                   "{\"timeout\":\"150ms\",\"plugin\":{\"type\":\"sleep-echo\",\"configJson\":"
                   "\"{\\\"message\\\":\\\"m\\\",\\\"count\\\":100,\\\"intervalMs\\\":50}\"}}",
                   NULL, 0);
  mu_tk_run_until_final(&f.w, r);
  assert_int_equal(r->state, MU_TASK_TIMED_OUT);
  /* validate() runs in the host at start */
  r = mu_tk_assign(&f.w, "e3", "{\"plugin\":{\"type\":\"sleep-echo\",\"configJson\":\"{}\"}}", NULL, 0);
  mu_tk_run_until_final(&f.w, r);
  assert_int_equal(r->state, MU_TASK_FAILED);
  assert_non_null(strstr(r->message, "config.message: required string"));
  mu_plugin_remote_stats st;
  mu_plugin_remote_stats_get(f.echo, &st);
  assert_int_equal(st.crashes, 0);
  fixture_free(&f);
}

static const char *greet_spec = "{\"plugin\":{\"type\":\"greet\",\"configJson\":\"{\\\"name\\\":\\\"bob\\\"}\"}}";

/* Runs the loop until the plugin's health, asked again each round, is want. */
static int wait_health(fixture *f, muster_plugin_env *env, int want, char *reason, size_t cap) {
  int h = -1;
  for (int i = 0; i < 400 && h != want; i++) {
    h = mu_plugin_env_health(env, reason, cap);
    uv_run(&f->w.loop, UV_RUN_NOWAIT);
    usleep(5000);
  }
  return h;
}

/* SDK v2 out of process: the schema comes with HELLO, configure() reaches the plugin in its
 * host before the next task and live again later, health is asked over the socket, and the
 * plugin's metrics land in the agent's registry under muster_plugin_greet_*. */
static void test_sdk_v2_out_of_process(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f);
  mu_plugin_remote *g = open_remote(&f, greet_so);
  mu_err err = {0};
  muster_plugin_env *env = mu_plugin_host_env(f.w.plugins, "greet");
  assert_non_null(env);
  assert_non_null(strstr(mu_plugin_env_describe(env), "\"name\":{\"type\":\"string\",\"required\":true"));
  assert_int_equal(mu_plugin_host_configure(f.w.plugins, "greet", "{\"greeting\":\"hi\"}", &err), 0);
  mu_tk_rec *r = mu_tk_assign(&f.w, "g1", greet_spec, NULL, 0);
  mu_tk_run_until_final(&f.w, r);
  if (r->state != MU_TASK_SUCCEEDED) fail_msg("greet: %d %s", r->state, r->message);
  assert_string_equal(r->out, "hi, bob!\n");
  assert_string_equal(r->params, "greeting=hi;");
  /* live: a new configuration reaches the running host */
  assert_int_equal(mu_plugin_host_configure(f.w.plugins, "greet", "{\"greeting\":\"yo\",\"punctuation\":\".\"}", &err),
                   0);
  r = mu_tk_assign(&f.w, "g2", greet_spec, NULL, 0);
  mu_tk_run_until_final(&f.w, r);
  assert_string_equal(r->out, "yo, bob.\n");
  char reason[MUSTER_ERRBUF_SIZE];
  assert_int_equal(wait_health(&f, env, MUSTER_HEALTH_OK, reason, sizeof reason), MUSTER_HEALTH_OK);
  assert_int_equal(mu_plugin_host_configure(f.w.plugins, "greet", "{\"greeting\":\"\"}", &err), 0);
  assert_int_equal(wait_health(&f, env, MUSTER_HEALTH_WARN, reason, sizeof reason), MUSTER_HEALTH_WARN);
  assert_non_null(strstr(reason, "greeting is empty"));
  /* the two greetings were counted in the agent's registry */
  mu_prom p = {0};
  mu_metrics_render_as(mu_plugin_host_metrics(f.w.plugins), "muster_agent_plugin_series_dropped_total", &p);
  if (strstr(p.buf, "muster_plugin_greet_greetings_total{outcome=\"ok\"} 2") == NULL) fail_msg("metrics:\n%s", p.buf);
  assert_non_null(strstr(p.buf, "muster_plugin_greet_name_length_bytes_count 2"));
  mu_prom_free(&p);
  /* a crash and restart: the host gets the configuration again and re-registers its metrics */
  mu_plugin_remote_stats st;
  mu_plugin_remote_stats_get(g, &st);
  kill(st.pid, SIGKILL);
  for (int i = 0; i < 400; i++) {
    mu_plugin_remote_stats_get(g, &st);
    if (st.crashes == 1) break;
    uv_run(&f.w.loop, UV_RUN_NOWAIT);
    usleep(5000);
  }
  wait_host_up(&f, g);
  assert_int_equal(mu_plugin_host_configure(f.w.plugins, "greet", "{\"greeting\":\"back\"}", &err), 0);
  r = mu_tk_assign(&f.w, "g3", greet_spec, NULL, 0);
  mu_tk_run_until_final(&f.w, r);
  assert_string_equal(r->out, "back, bob!\n");
  memset(&p, 0, sizeof p);
  mu_metrics_render_as(mu_plugin_host_metrics(f.w.plugins), "muster_agent_plugin_series_dropped_total", &p);
  if (strstr(p.buf, "muster_plugin_greet_greetings_total{outcome=\"ok\"} 3") == NULL) fail_msg("metrics:\n%s", p.buf);
  mu_prom_free(&p);
  mu_plugin_remote_close(g, on_remote_closed, &f);
  f.closed--; /* fixture_free counts its own two */
  fixture_free(&f);
}

/* A plugin built against the frozen SDK v1 header runs out of process: its host never reads an
 * SDK v2 member of the short descriptor (ASan in the host would abort it: the task would fail). */
static void test_true_v1_binary_out_of_process(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f);
  mu_plugin_remote *v1 = open_remote(&f, v1_so);
  mu_err err = {0};
  assert_int_equal(mu_plugin_host_configure(f.w.plugins, "v1-old", "{}", &err), 0);
  mu_tk_rec *r = mu_tk_assign(&f.w, "v1", "{\"plugin\":{\"type\":\"v1-old\",\"configJson\":\"{}\"}}", NULL, 0);
  mu_tk_run_until_final(&f.w, r);
  if (r->state != MU_TASK_SUCCEEDED) fail_msg("v1: %d %s", r->state, r->message);
  assert_string_equal(r->out, "v1 ok\n");
  assert_string_equal(mu_plugin_env_describe(mu_plugin_host_env(f.w.plugins, "v1-old")), "");
  mu_plugin_remote_stats st;
  mu_plugin_remote_stats_get(v1, &st);
  assert_int_equal(st.crashes, 0);
  mu_plugin_remote_close(v1, on_remote_closed, &f);
  f.closed--;
  fixture_free(&f);
}

/* The same binary in process: loaded, configured (a no-op) and run by the real runner. */
static void test_true_v1_binary_in_process(void **state) {
  (void)state;
  fixture f;
  fixture_init(&f);
  mu_err err = {0};
  assert_int_equal(mu_plugin_host_load(f.w.plugins, v1_so, &err), 0);
  assert_int_equal(mu_plugin_host_configure(f.w.plugins, "v1-old", "{}", &err), 0);
  mu_tk_rec *r = mu_tk_assign(&f.w, "v1", "{\"plugin\":{\"type\":\"v1-old\",\"configJson\":\"{}\"}}", NULL, 0);
  mu_tk_run_until_final(&f.w, r);
  if (r->state != MU_TASK_SUCCEEDED) fail_msg("v1: %d %s", r->state, r->message);
  assert_string_equal(r->out, "v1 ok\n");
  fixture_free(&f);
}

static void test_load_refused(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  mu_plugin_remote_opts o = {.host_path = host_bin, .so_path = bad_abi_so};
  mu_plugin_remote *r = NULL;
  mu_err err = {0};
  assert_int_equal(mu_plugin_remote_open(&loop, &o, &r, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "ABI version"));
  o.so_path = "/nonexistent/libx.so";
  assert_int_equal(mu_plugin_remote_open(&loop, &o, &r, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "cannot load"));
  uv_run(&loop, UV_RUN_DEFAULT); /* the refused hosts are reaped and freed */
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(int argc, char **argv) {
  if (argc != 9) {
    fprintf(stderr, "usage: remote_test HOST EXEC SHELL_SO ECHO_SO CRASH_SO BAD_ABI_SO GREET_SO V1_SO\n");
    return 2;
  }
  const char **paths[] = {&host_bin, &helper, &shell_so, &echo_so, &crash_so, &bad_abi_so, &greet_so, &v1_so};
  for (int i = 0; i < 8; i++) { /* absolute: processes start in their task dirs */
    *paths[i] = realpath(argv[i + 1], NULL);
    if (*paths[i] == NULL) return 2;
  }
  /* The hosts inherit this: under ASan a segfault must stay a SIGSEGV (not ASan's report and
   * abort) for the message check, and a crashed host's leaks are not this test's. */
  setenv("ASAN_OPTIONS", "handle_segv=0:detect_leaks=0:allow_user_segv_handler=1", 1);
  snprintf(spool, sizeof spool, "/tmp/remote_test.XXXXXX");
  if (mkdtemp(spool) == NULL) return 2;
  chmod(spool, 0755);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crash_in_start),
      cmocka_unit_test(test_crash_in_timer_kills_processes),
      cmocka_unit_test(test_crash_in_exit_callback),
      cmocka_unit_test(test_hang_is_killed),
      cmocka_unit_test(test_crash_at_unload),
      cmocka_unit_test(test_example_out_of_process),
      cmocka_unit_test(test_load_refused),
      cmocka_unit_test(test_sdk_v2_out_of_process),
      cmocka_unit_test(test_true_v1_binary_out_of_process),
      cmocka_unit_test(test_true_v1_binary_in_process),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", spool);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", spool);
  return rc;
}
