/* The Flink task type driven exactly as the agent drives it: the built .so loaded by the plugin
 * host, tasks assigned to the runner, events from its sink, against the JobManager emulator
 * (integration/emulators/flink/jobmanager.py) on loopback. What the end-to-end test cannot
 * time precisely: a stop-with-savepoint that outlasts the agent's grace period still ends with
 * the savepoint (SDK cancel_extend), a failed savepoint hands the cancel back and a second
 * cancel is delivered (SDK cancel_withdraw), and 50 streaming tasks on one loop each own one
 * job and stop cleanly. */
#include <curl/curl.h>
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

#include "agent/exec/runner_testkit.h"

static char flink_so[4096], emulator[4096], tmp[512], spool[600], jar[600];

typedef mu_tk_rec rec;
typedef mu_tk_world world;

#define ASSERT_STATE(r, want)                                                                                    \
  do {                                                                                                           \
    if ((r)->state != (want))                                                                                    \
      fail_msg("%s: state %d, want %d; message \"%s\"; out \"%.600s\" err \"%.600s\"", (r)->task_id, (r)->state, \
               (want), (r)->message, (r)->out, (r)->err);                                                        \
  } while (0)
#define ASSERT_HAS(hay, needle)                                                                           \
  do {                                                                                                    \
    if (strstr((hay), (needle)) == NULL) fail_msg("\"%.800s\" does not contain \"%s\"", (hay), (needle)); \
  } while (0)

typedef struct emu {
  pid_t pid;
  int port;
} emu;

static void emu_start(emu *e, const char *name, const char *polls, const char *mode) {
  char port_file[700];
  snprintf(port_file, sizeof port_file, "%s/%s.port", tmp, name);
  unlink(port_file);
  e->pid = fork();
  if (e->pid == 0) {
    execl("/usr/bin/python3", "python3", emulator, "--port-file", port_file, "--savepoint-polls", polls,
          "--savepoint-mode", mode, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 400; i++) {
    FILE *f = fopen(port_file, "r");
    if (f != NULL) {
      int ok = fscanf(f, "%d", &e->port) == 1;
      fclose(f);
      if (ok) return;
    }
    usleep(25000);
  }
  fail_msg("the emulator did not start");
}

static void emu_stop(emu *e) {
  kill(e->pid, SIGTERM);
  waitpid(e->pid, NULL, 0);
}

/* A blocking call to the emulator's test controls (the test's own thread; no loop involved). */
static char *emu_call(const emu *e, const char *path, const char *post) {
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", e->port, path);
  CURL *c = curl_easy_init();
  FILE *mem;
  char *buf = NULL;
  size_t len = 0;
  mem = open_memstream(&buf, &len);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
  if (post != NULL) curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  fclose(mem);
  if (rc != CURLE_OK) fail_msg("emulator call %s: %s", path, curl_easy_strerror(rc));
  return buf;
}

static void world_init(world *w, int grace_ms) {
  mu_runner_config cfg = {
      .slots = 128, .spool_dir = spool, .agent_id = "agent-1", .grace_ms = grace_ms, .output_limit = 4 * 1024 * 1024};
  mu_tk_world_init(w, flink_so, &cfg, 256 * 1024, 64 * 1024);
}

static void on_wake(uv_timer_t *t) { *(bool *)t->data = true; }

/* Runs the loop for ms. */
static void run_for(world *w, uint64_t ms) {
  bool done = false;
  uv_timer_t t;
  uv_timer_init(&w->loop, &t);
  t.data = &done;
  uv_timer_start(&t, on_wake, ms, 0);
  while (!done) uv_run(&w->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&w->loop, UV_RUN_NOWAIT);
}

/* Runs the loop until r's output contains text (or fails after ms). */
static void run_until_out(world *w, rec *r, const char *text, uint64_t ms) {
  uint64_t end = uv_hrtime() / 1000000 + ms;
  while (r->out == NULL || strstr(r->out, text) == NULL) {
    if (uv_hrtime() / 1000000 > end || r->final) fail_msg("%s: no \"%s\" in \"%.600s\"", r->task_id, text, r->out);
    run_for(w, 20);
  }
}

static rec *assign_stream(world *w, const emu *e, const char *id, const char *on_cancel) {
  char spec[2048];
  snprintf(spec, sizeof spec,
           "{\"name\":\"%s\",\"timeout\":\"120s\",\"flink\":{\"jobmanagerUrl\":\"http://127.0.0.1:%d\",\"jar\":\"%s\","
           "\"entryClass\":\"com.example.Clicks\",\"kind\":\"streaming\",\"onCancel\":\"%s\","
           "\"savepointDir\":\"file:%s/sp\",\"pollInterval\":\"100ms\"}}",
           id, e->port, jar, on_cancel, tmp);
  return mu_tk_assign(w, id, spec, NULL, 0);
}

static void cancel(world *w, const char *id) {
  mu_err err = {0};
  assert_int_equal(mu_runner_cancel(w->runner, id, 1, "operator said stop", &err), 0);
}

/* The agent forces a cancelled task to end grace + 2 s after the cancel; a savepoint that takes
 * longer still completes and is reported. */
static void test_stop_outlasts_the_grace_period(void **state) {
  (void)state;
  emu e;
  emu_start(&e, "slow", "25", "ok"); /* 25 polls of 100 ms: ~2.5 s, past 100 ms + 2 s */
  world w;
  world_init(&w, 100);
  rec *r = assign_stream(&w, &e, "slow-sp", "savepoint");
  run_until_out(&w, r, "RUNNING", 10000);
  uint64_t t0 = uv_hrtime() / 1000000;
  cancel(&w, "slow-sp");
  mu_tk_run_until_final(&w, r);
  ASSERT_STATE(r, MU_TASK_CANCELLED);
  ASSERT_HAS(r->message, "stopped with a savepoint at file:");
  ASSERT_HAS(r->params, "savepoint_path=file:");
  assert_null(strstr(r->message, "did not stop in time"));
  assert_true(r->final_ms - t0 > 2100);
  mu_tk_world_free(&w);
  emu_stop(&e);
}

/* A failed savepoint leaves the job and the task RUNNING; the next cancel is delivered again. */
static void test_failed_savepoint_keeps_running(void **state) {
  (void)state;
  emu e;
  emu_start(&e, "failing", "1", "fail");
  world w;
  world_init(&w, 100);
  rec *r = assign_stream(&w, &e, "sp-fails", "savepoint");
  run_until_out(&w, r, "RUNNING", 10000);
  cancel(&w, "sp-fails");
  run_for(&w, 3000); /* past the agent's forced end (grace + 2 s) */
  assert_false(r->final);
  ASSERT_HAS(r->err, "the savepoint of job ");
  ASSERT_HAS(r->err, "Checkpoint expired before completing.; the job is still RUNNING and so is this task");
  char *st = emu_call(&e, "/emulator/state", NULL);
  ASSERT_HAS(st, "\"state\": \"RUNNING\"");
  free(st);
  free(emu_call(&e, "/emulator/config", "{\"savepoint_mode\": \"ok\"}"));
  cancel(&w, "sp-fails");
  mu_tk_run_until_final(&w, r);
  ASSERT_STATE(r, MU_TASK_CANCELLED);
  ASSERT_HAS(r->message, "stopped with a savepoint at file:");
  mu_tk_world_free(&w);
  emu_stop(&e);
}

/* The task timeout asks for the stop: a failing savepoint then cancels the job without one. */
static void test_timeout_cancels_without_savepoint(void **state) {
  (void)state;
  emu e;
  emu_start(&e, "timeout", "1", "fail");
  world w;
  world_init(&w, 100);
  char spec[2048];
  snprintf(spec, sizeof spec,
           "{\"name\":\"t\",\"timeout\":\"1500ms\",\"flink\":{\"jobmanagerUrl\":\"http://127.0.0.1:%d\",\"jar\":\"%s\","
           "\"entryClass\":\"com.example.Clicks\",\"kind\":\"streaming\",\"onCancel\":\"savepoint\","
           "\"savepointDir\":\"file:%s/sp\",\"pollInterval\":\"100ms\"}}",
           e.port, jar, tmp);
  rec *r = mu_tk_assign(&w, "timeout", spec, NULL, 0);
  mu_tk_run_until_final(&w, r);
  ASSERT_STATE(r, MU_TASK_TIMED_OUT);
  ASSERT_HAS(r->err, "the task timed out, so the job is cancelled without a savepoint");
  ASSERT_HAS(r->out, "CANCELED");
  mu_tk_world_free(&w);
  emu_stop(&e);
}

/* TaskAction "savepoint": a savepoint of the running job without stopping it, reported as
 * params; a second one while it is under way, an unknown action and a batch job are refused
 * (the refusal also goes to the task's stderr). */
static void test_action_savepoint(void **state) {
  (void)state;
  emu e;
  emu_start(&e, "trigger", "2", "ok");
  world w;
  world_init(&w, 100);
  rec *r = assign_stream(&w, &e, "trig", "cancel");
  run_until_out(&w, r, "RUNNING", 10000);
  mu_err err = {0};
  assert_int_equal(mu_runner_action(w.runner, "trig", 1, "savepoint", &err), 0);
  assert_int_not_equal(mu_runner_action(w.runner, "trig", 1, "savepoint", &err), 0);
  ASSERT_HAS(err.msg, "already under way");
  run_until_out(&w, r, "Savepoint completed. Path: file:", 10000);
  ASSERT_HAS(r->params, "savepoint_kind=trigger;");
  ASSERT_HAS(r->params, "savepoint_path=file:");
  assert_false(r->final);
  char *st = emu_call(&e, "/emulator/state", NULL);
  ASSERT_HAS(st, "\"kind\": \"savepoints\"");
  ASSERT_HAS(st, "\"state\": \"RUNNING\"");
  free(st);
  assert_int_not_equal(mu_runner_action(w.runner, "trig", 1, "rescale", &err), 0);
  ASSERT_HAS(err.msg, "unknown action \"rescale\"");
  run_for(&w, 100);
  ASSERT_HAS(r->err, "muster: action rescale refused: unknown action");
  assert_int_equal(mu_runner_action(w.runner, "nosuch", 1, "savepoint", &err), MU_ENOENT);
  cancel(&w, "trig");
  mu_tk_run_until_final(&w, r);
  ASSERT_STATE(r, MU_TASK_CANCELLED);
  mu_tk_world_free(&w);
  emu_stop(&e);
}

/* cancel --force while a stop-with-savepoint hangs: the job is cancelled without one. */
static void test_force_cancel_during_stop(void **state) {
  (void)state;
  emu e;
  emu_start(&e, "force", "1", "hang");
  world w;
  world_init(&w, 100);
  rec *r = assign_stream(&w, &e, "forced", "savepoint");
  run_until_out(&w, r, "RUNNING", 10000);
  cancel(&w, "forced");
  run_until_out(&w, r, "with a savepoint (trigger", 5000);
  mu_err err = {0};
  assert_int_equal(mu_runner_cancel_force(w.runner, "forced", 1, "operator insists", &err), 0);
  mu_tk_run_until_final(&w, r);
  ASSERT_STATE(r, MU_TASK_CANCELLED);
  ASSERT_HAS(r->err, "cancel --force: job ");
  ASSERT_HAS(r->message, "CANCELED");
  assert_null(strstr(r->params, "savepoint_path="));
  mu_tk_world_free(&w);
  emu_stop(&e);
}

/* A graceful agent stop detaches the attempt: no final state is reported and the job runs on. */
static void test_shutdown_detaches(void **state) {
  (void)state;
  emu e;
  emu_start(&e, "detach", "1", "ok");
  world w;
  world_init(&w, 100);
  rec *r = assign_stream(&w, &e, "kept", "savepoint");
  run_until_out(&w, r, "RUNNING", 10000);
  run_for(&w, 300);
  mu_tk_world_free(&w); /* mu_runner_close: MUSTER_CANCEL_SHUTDOWN */
  assert_false(r->final);
  char *st = emu_call(&e, "/emulator/state", NULL);
  ASSERT_HAS(st, "\"state\": \"RUNNING\"");
  assert_null(strstr(st, "\"kind\": \"stop\""));
  free(st);
  emu_stop(&e);
}

/* Cancelled while the run call is on its way (a slow JobManager): the job may exist without our
 * having its reply, so it is cancelled by our JobID, never left running. */
static void test_cancel_while_run_in_flight(void **state) {
  (void)state;
  emu e;
  emu_start(&e, "slowrun", "1", "ok");
  world w;
  world_init(&w, 500);
  rec *r = assign_stream(&w, &e, "inflight", "cancel");
  run_until_out(&w, r, "uploading", 10000);
  free(emu_call(&e, "/emulator/config", "{\"delay_ms\": 700}")); /* every reply from now on is slow */
  run_until_out(&w, r, "as job ", 10000);                        /* the run call is out */
  run_for(&w, 100);
  cancel(&w, "inflight");
  mu_tk_run_until_final(&w, r);
  ASSERT_STATE(r, MU_TASK_CANCELLED);
  assert_null(strstr(r->out, "flink: submitted job")); /* cancelled before the run's reply came */
  free(emu_call(&e, "/emulator/config", "{\"delay_ms\": 0}"));
  char *st = emu_call(&e, "/emulator/state", NULL);
  if (strstr(st, "\"state\": \"RUNNING\"") != NULL || strstr(st, "\"state\": \"CREATED\"") != NULL ||
      strstr(st, "\"state\": \"INITIALIZING\"") != NULL)
    fail_msg("a job was left running: %s; task said \"%s\"", st, r->message);
  free(st);
  mu_tk_world_free(&w);
  emu_stop(&e);
}

/* A job that keeps restarting raises an event every restart_event_threshold restarts, shows its
 * restarts in progress, and stays RUNNING; a plain cancel ends it CANCELED. */
static void test_restart_events(void **state) {
  (void)state;
  emu e;
  emu_start(&e, "flaky", "1", "ok");
  world w;
  world_init(&w, 500);
  char spec[2048];
  snprintf(spec, sizeof spec,
           "{\"name\":\"f\",\"flink\":{\"jobmanagerUrl\":\"http://127.0.0.1:%d\",\"jar\":\"%s\","
           "\"entryClass\":\"com.example.Flaky\",\"kind\":\"streaming\",\"pollInterval\":\"50ms\","
           "\"restartEventThreshold\":2}}",
           e.port, jar);
  rec *r = mu_tk_assign(&w, "flaky", spec, NULL, 0);
  uint64_t end = uv_hrtime() / 1000000 + 20000;
  while ((r->err == NULL || strstr(r->err, "has restarted 2 times") == NULL) && uv_hrtime() / 1000000 < end)
    run_for(&w, 50);
  ASSERT_HAS(r->err, "flink: event: job ");
  ASSERT_HAS(r->err, "has restarted 2 times");
  ASSERT_HAS(r->out, "RESTARTING");
  assert_false(r->final);
  assert_true(r->n_progress > 0);
  cancel(&w, "flaky");
  mu_tk_run_until_final(&w, r);
  ASSERT_STATE(r, MU_TASK_CANCELLED);
  ASSERT_HAS(r->message, "CANCELED");
  mu_tk_world_free(&w);
  emu_stop(&e);
}

/* 50 streaming tasks on one loop: each owns one job; all stop with their savepoints. */
static void test_many_streams(void **state) {
  (void)state;
  emu e;
  emu_start(&e, "many", "1", "ok");
  world w;
  world_init(&w, 500);
  enum { N = 50 };
  rec *r[N];
  char id[N][32];
  for (int i = 0; i < N; i++) {
    snprintf(id[i], sizeof id[i], "s-%02d", i);
    r[i] = assign_stream(&w, &e, id[i], "savepoint");
  }
  for (int i = 0; i < N; i++) run_until_out(&w, r[i], "RUNNING", 30000);
  for (int i = 0; i < N; i++) cancel(&w, id[i]);
  for (int i = 0; i < N; i++) {
    mu_tk_run_until_final(&w, r[i]);
    ASSERT_STATE(r[i], MU_TASK_CANCELLED);
    ASSERT_HAS(r[i]->message, "stopped with a savepoint");
  }
  char *st = emu_call(&e, "/emulator/state", NULL);
  int jobs = 0;
  for (const char *p = st; (p = strstr(p, "\"state\": \"FINISHED\"")) != NULL; p++) jobs++;
  assert_int_equal(jobs, N);
  const char *subs = strstr(st, "\"submissions\": {");
  assert_non_null(subs);
  const char *subs_end = strchr(subs, '}');
  int once = 0;
  for (const char *p = subs; (p = strstr(p, "\": 1")) != NULL && p < subs_end; p++) once++;
  assert_int_equal(once, N); /* each JobID submitted once */
  for (const char *p = subs; (p = strstr(p, ": ")) != NULL && p < subs_end; p++)
    assert_true(p[2] == '1' || p[2] == '{');
  free(st);
  mu_tk_world_free(&w);
  emu_stop(&e);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s LIBMUSTER_FLINK.SO integration/emulators/flink/jobmanager.py\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  unsetenv("http_proxy");
  unsetenv("HTTP_PROXY");
  unsetenv("ALL_PROXY");
  if (realpath(argv[1], flink_so) == NULL || realpath(argv[2], emulator) == NULL) {
    perror("realpath");
    return 2;
  }
  const char *base = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  snprintf(tmp, sizeof tmp, "%s/flink-runner-XXXXXX", base);
  if (mkdtemp(tmp) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  snprintf(spool, sizeof spool, "%s/spool", tmp);
  snprintf(jar, sizeof jar, "%s/app.jar", tmp);
  FILE *f = fopen(jar, "w");
  if (f == NULL) return 2;
  fputs("class com.example.Clicks streaming\nclass com.example.Flaky streaming restart_every=3\n", f);
  fclose(f);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stop_outlasts_the_grace_period),
      cmocka_unit_test(test_failed_savepoint_keeps_running),
      cmocka_unit_test(test_timeout_cancels_without_savepoint),
      cmocka_unit_test(test_restart_events),
      cmocka_unit_test(test_cancel_while_run_in_flight),
      cmocka_unit_test(test_many_streams),
      cmocka_unit_test(test_action_savepoint),
      cmocka_unit_test(test_force_cancel_during_stop),
      cmocka_unit_test(test_shutdown_detaches),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
