/* Runner tests, end to end through the built plugins and real processes: the shell plugin's
 * events in order, the exact environment, fresh and cleaned task dirs, timeout and cancel,
 * exit codes and signals, output cap, pids and memory limits (cgroup and rlimit), run-as
 * nobody, dedup of a repeated assign, slots, refusals, the example plugin, close; the local
 * queue (priority order, bound, per-type caps, cancel and dedup while queued); and the shell
 * plugin's interpreter allow-list and command policy through the runner. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/testing/skip.h"

#include "agent/exec/runner_testkit.h"

#include "agent/exec/runner.h"

static char helper[4096], shell_so[4096], echo_so[4096];
static char spool[256];

#define MAX_TASKS 32

typedef struct rec {
  char task_id[64];
  uint32_t attempt;
  int states[16];
  int n_states;
  char out[8192], err[8192];
  size_t out_len, err_len;
  int n_progress;
  double last_pct;
  char params[512];
  char message[1024];
  int exit_code, signal;
  mu_task_metrics m;
  uint64_t last_seq;
  bool final;
} rec;

typedef struct world {
  uv_loop_t loop;
  mu_plugin_host *plugins;
  mu_runner *runner;
  rec recs[MAX_TASKS];
  int n_recs;
  bool closed;
  char order[1024]; /* task ids in the order they got STARTING, space-separated */
  int active;       /* attempts between STARTING and their final state */
  int active_echo;  /* ... of type sleep-echo (ids starting "e") */
  int active_sh;    /* ... of ids starting "s" */
  int max_active, max_echo, max_sh;
} world;

static rec *rec_for(world *w, const char *task_id, uint32_t attempt) {
  for (int i = 0; i < w->n_recs; i++)
    if (w->recs[i].attempt == attempt && strcmp(w->recs[i].task_id, task_id) == 0) return &w->recs[i];
  assert_true(w->n_recs < MAX_TASKS);
  rec *r = &w->recs[w->n_recs++];
  memset(r, 0, sizeof *r);
  snprintf(r->task_id, sizeof r->task_id, "%s", task_id);
  r->attempt = attempt;
  return r;
}

static void on_event(void *arg, const mu_task_event *ev) {
  world *w = arg;
  rec *r = rec_for(w, ev->task_id, ev->attempt);
  assert_int_equal(ev->seq, r->last_seq + 1); /* per-attempt sequence, no gaps */
  r->last_seq = ev->seq;
  assert_false(r->final);
  switch (ev->kind) {
    case MU_EV_STATE:
      r->states[r->n_states++] = ev->state.state;
      if (ev->state.state == MU_TASK_STARTING) {
        size_t n = strlen(w->order);
        snprintf(w->order + n, sizeof w->order - n, "%s%s", n ? " " : "", ev->task_id);
        w->active++;
        if (ev->task_id[0] == 'e') w->active_echo++;
        if (ev->task_id[0] == 's') w->active_sh++;
        if (w->active > w->max_active) w->max_active = w->active;
        if (w->active_echo > w->max_echo) w->max_echo = w->active_echo;
        if (w->active_sh > w->max_sh) w->max_sh = w->active_sh;
      }
      if (mu_task_state_final(ev->state.state) && r->n_states > 1) {
        w->active--;
        if (ev->task_id[0] == 'e') w->active_echo--;
        if (ev->task_id[0] == 's') w->active_sh--;
      }
      if (mu_task_state_final(ev->state.state)) {
        r->final = true;
        r->exit_code = ev->state.exit_code;
        r->signal = ev->state.signal;
        snprintf(r->message, sizeof r->message, "%s", ev->state.message);
        assert_non_null(ev->state.metrics);
        r->m = *ev->state.metrics;
      }
      break;
    case MU_EV_OUTPUT: {
      char *dst = ev->output.stream == 1 ? r->out : r->err;
      size_t *n = ev->output.stream == 1 ? &r->out_len : &r->err_len;
      size_t len = ev->output.len < sizeof r->out - 1 - *n ? ev->output.len : sizeof r->out - 1 - *n;
      memcpy(dst + *n, ev->output.data, len);
      *n += len;
      dst[*n] = '\0';
      break;
    }
    case MU_EV_PROGRESS:
      r->n_progress++;
      r->last_pct = ev->progress.percent;
      break;
    case MU_EV_PARAM: {
      size_t n = strlen(r->params);
      snprintf(r->params + n, sizeof r->params - n, "%s=%s;", ev->param.key, ev->param.value);
      break;
    }
  }
}

static void world_init(world *w, mu_runner_config *cfg_in) {
  memset(w, 0, sizeof *w);
  uv_loop_init(&w->loop);
  mu_err err = {0};
  assert_int_equal(mu_plugin_host_new(&w->plugins, &err), 0);
  assert_int_equal(mu_plugin_host_load(w->plugins, shell_so, &err), 0);
  assert_int_equal(mu_plugin_host_load(w->plugins, echo_so, &err), 0);
  mu_runner_config cfg = {.slots = 4,
                          .spool_dir = spool,
                          .agent_id = "agent-1",
                          .helper_path = helper,
                          .grace_ms = 500,
                          .cgroup_name = "muster-test"};
  if (cfg_in != NULL) {
    cfg_in->spool_dir = spool;
    cfg_in->agent_id = "agent-1";
    cfg_in->helper_path = helper;
    if (cfg_in->grace_ms == 0) cfg_in->grace_ms = 500;
    cfg_in->cgroup_name = "muster-test";
    cfg = *cfg_in;
  }
  mu_runner_sink sink = {on_event, w};
  int rc = mu_runner_new(&w->loop, w->plugins, &cfg, &sink, &w->runner, &err);
  if (rc != 0) fail_msg("runner: %s", err.msg);
}

static void on_closed(void *arg) { ((world *)arg)->closed = true; }

static void world_free(world *w) {
  mu_runner_close(w->runner, on_closed, w);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  assert_true(w->closed);
  assert_int_equal(uv_loop_close(&w->loop), 0);
  mu_plugin_host_free(w->plugins);
}

static rec *assign(world *w, const char *task_id, uint32_t attempt, const char *spec) {
  mu_err err = {0};
  int rc = mu_runner_assign(w->runner, "job-1", task_id, attempt, spec, NULL, 0, &err);
  if (rc != 0) fail_msg("assign %s: %s", task_id, err.msg);
  return rec_for(w, task_id, attempt);
}

static void run_until_final(world *w, rec *r) {
  while (!r->final) uv_run(&w->loop, UV_RUN_ONCE);
}

static rec *run_spec(world *w, const char *task_id, const char *spec) {
  rec *r = assign(w, task_id, 1, spec);
  run_until_final(w, r);
  return r;
}

static void test_shell_end_to_end(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  rec *r = run_spec(&w, "web1/hello",
                    "{\"name\":\"t\",\"timeout\":\"30s\",\"env\":{\"A\":\"1\"},"
                    "\"resources\":{\"memory\":\"64M\",\"pids\":50,\"outputLimit\":\"1M\"},"
                    "\"shell\":{\"interpreter\":\"bash\",\"script\":\"echo hi $A $1; echo progress 50 half >&3;"
                    " echo param v=42 >&$MUSTER_CONTROL; echo err >&2\",\"args\":[\"a\"]}}");
  assert_int_equal(r->n_states, 3);
  assert_int_equal(r->states[0], MU_TASK_STARTING);
  assert_int_equal(r->states[1], MU_TASK_RUNNING);
  assert_int_equal(r->states[2], MU_TASK_SUCCEEDED);
  assert_string_equal(r->out, "hi 1 a\n");
  assert_string_equal(r->err, "err\n");
  assert_int_equal(r->n_progress, 1);
  assert_true(r->last_pct == 50.0);
  assert_string_equal(r->params, "v=42;");
  assert_int_equal(r->exit_code, 0);
  assert_int_equal(r->m.output_bytes, 11);
  assert_int_equal(r->m.output_dropped_bytes, 0);
  assert_true(r->m.wall_ms >= 0);
  assert_true(r->m.max_rss_bytes > 0);
  assert_int_equal(mu_runner_running_count(w.runner), 0);
  world_free(&w);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_env_has_only_spec_and_context(void **state) {
  (void)state;
  setenv("AGENT_SECRET_SHOULD_NOT_LEAK", "x", 1);
  world w;
  world_init(&w, NULL);
  rec *r = run_spec(&w, "env",
                    "{\"env\":{\"A\":\"1\"},\"secrets\":[{\"name\":\"TOKEN\",\"value\":\"s3\"}],"
                    "\"shell\":{\"command\":[\"env\"]}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_SUCCEEDED);
  char *lines[32];
  int n = 0;
  for (char *save = NULL, *l = strtok_r(r->out, "\n", &save); l && n < 32; l = strtok_r(NULL, "\n", &save))
    lines[n++] = l;
  qsort(lines, (size_t)n, sizeof *lines, cmp_str);
  assert_int_equal(n, 11);
  assert_string_equal(lines[0], "A=1");
  assert_string_equal(lines[1], "MUSTER_AGENT_ID=agent-1");
  assert_string_equal(lines[2], "MUSTER_ATTEMPT=1");
  assert_string_equal(lines[3], "MUSTER_CONTROL=3");
  assert_string_equal(lines[4], "MUSTER_JOB_ID=job-1");
  assert_true(strncmp(lines[5], "MUSTER_TASK_DIR=", 16) == 0);
  assert_string_equal(lines[6], "MUSTER_TASK_ID=env");
  assert_string_equal(lines[7], "MUSTER_TRACE_ID=fed2e199023f945066bc0db46c17e870");
  assert_string_equal(lines[8], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  assert_string_equal(lines[9], "TOKEN=s3");
  assert_string_equal(lines[10], "TRACEPARENT=00-fed2e199023f945066bc0db46c17e870-d2f28f47864589f8-01");
  world_free(&w);
}

/* Secret values never leave the runner: output split mid-value, the file form, a param and
 * the final message are redacted; the file is 0400 in a memory-only dir that is gone after. */
static void test_secrets_redacted_and_wiped(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  rec *r = run_spec(&w, "sec",
                    "{\"secrets\":[{\"name\":\"PW\",\"value\":\"hunter2-pw-x\"},"
                    "{\"name\":\"pw\",\"value\":\"hunter2-pw-x\",\"as\":\"file\"}],"
                    "\"shell\":{\"interpreter\":\"bash\",\"script\":"
                    "\"printf %s ${PW:0:4}; sleep 0.1; printf '%s\\\\n' ${PW:4}; "
                    "cat $MUSTER_SECRETS_DIR/pw; echo; echo dir=$MUSTER_SECRETS_DIR; "
                    "stat -c %a $pw_FILE; echo 'param p=hunter2-pw-x' >&3; "
                    "echo hunter2-pw-x >&2; exit 3\"}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_FAILED);
  assert_null(strstr(r->out, "hunter2"));
  assert_null(strstr(r->err, "hunter2"));
  assert_null(strstr(r->params, "hunter2"));
  assert_non_null(strstr(r->out, "***\n***\n"));
  assert_non_null(strstr(r->out, "\n400\n"));
  assert_non_null(strstr(r->params, "p=***"));
  assert_string_equal(r->err, "***\n");
  char dir[512] = "";
  const char *d = strstr(r->out, "dir=");
  assert_non_null(d);
  assert_int_equal(sscanf(d, "dir=%511s", dir), 1);
  struct stat st;
  assert_int_not_equal(stat(dir, &st), 0); /* wiped with the task */
  /* a secret without a delivered value is refused, not run with an empty one */
  mu_err err = {0};
  assert_int_equal(mu_runner_assign(w.runner, "job-1", "novalue", 1,
                                    "{\"secrets\":[{\"name\":\"PW\",\"from\":\"x\"}],"
                                    "\"shell\":{\"script\":\"true\"}}",
                                    NULL, 0, &err),
                   MU_EINVAL);
  assert_non_null(strstr(err.msg, "no value came with the assignment"));
  world_free(&w);
}

static void test_task_dir_fresh_and_cleaned(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  const char *spec = "{\"shell\":{\"script\":\"pwd; ls -A | wc -l; touch junk; exit $(( $MUSTER_ATTEMPT - 1 ))\"}}";
  rec *r1 = assign(&w, "dirs", 1, spec);
  run_until_final(&w, r1);
  rec *r2 = assign(&w, "dirs", 2, spec);
  run_until_final(&w, r2);
  char d1[512], d2[512];
  int c1 = -1, c2 = -1;
  assert_int_equal(sscanf(r1->out, "%511s %d", d1, &c1), 2);
  assert_int_equal(sscanf(r2->out, "%511s %d", d2, &c2), 2);
  assert_int_equal(c1, 0);
  assert_int_equal(c2, 0);
  assert_string_not_equal(d1, d2);
  assert_true(strncmp(d1, spool, strlen(spool)) == 0);
  world_free(&w); /* waits for the removals */
  struct stat sb;
  assert_int_not_equal(stat(d1, &sb), 0);
  assert_int_not_equal(stat(d2, &sb), 0);

  mu_runner_config cfg = {.retention = MU_RETAIN_ON_FAILURE};
  world_init(&w, &cfg);
  r1 = assign(&w, "keep", 1, spec);
  run_until_final(&w, r1);
  r2 = assign(&w, "keep", 2, spec); /* exits 1: kept */
  run_until_final(&w, r2);
  assert_int_equal(r2->states[r2->n_states - 1], MU_TASK_FAILED);
  assert_int_equal(sscanf(r1->out, "%511s", d1), 1);
  assert_int_equal(sscanf(r2->out, "%511s", d2), 1);
  world_free(&w);
  assert_int_not_equal(stat(d1, &sb), 0);
  assert_int_equal(stat(d2, &sb), 0);
}

static void test_timeout_kills_group(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  char spec[512], pidfile[300];
  snprintf(pidfile, sizeof pidfile, "%s/gc.pid", spool);
  unlink(pidfile);
  snprintf(
      spec, sizeof spec,
      "{\"timeout\":\"400ms\",\"shell\":{\"script\":\"(trap '' TERM; exec sleep 1000) & echo $! > %s; sleep 1000\"}}",
      pidfile);
  rec *r = run_spec(&w, "slow", spec);
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_TIMED_OUT);
  assert_non_null(strstr(r->message, "timed out after 0.4s; "));
  FILE *f = fopen(pidfile, "r");
  assert_non_null(f);
  int gc = -1;
  assert_int_equal(fscanf(f, "%d", &gc), 1);
  fclose(f);
  for (int i = 0; i < 50 && !mu_tk_pid_gone(gc); i++) usleep(20000);
  assert_true(mu_tk_pid_gone(gc));
  world_free(&w);
}

static void on_cancel_timer(uv_timer_t *t) {
  world *w = t->data;
  mu_err err = {0};
  assert_int_equal(mu_runner_cancel(w->runner, "long", 1, "operator said stop", &err), 0);
  assert_int_equal(mu_runner_cancel(w->runner, "nope", 1, "x", &err), MU_ENOENT);
  uv_close((uv_handle_t *)t, NULL);
}

/* A script over what one exec argument takes (128 KiB) reaches its interpreter in a file, one
 * a run_as user can read; its args are still $1... */
static void test_large_script(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  size_t n = 300000;
  char *spec = malloc(n + 256);
  int len = snprintf(spec, 64, "{\"shell\":{\"script\":\"s='");
  memset(spec + len, 'x', n);
  snprintf(spec + len + n, 192, "'\\necho ${#s} $1 $(id -un)\",\"args\":[\"one\"]}%s}",
           geteuid() == 0 ? ",\"runAs\":\"nobody\"" : "");
  rec *r = run_spec(&w, "big", spec);
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_SUCCEEDED);
  assert_non_null(strstr(r->out, "300000 one "));
  if (geteuid() == 0) assert_string_equal(r->out, "300000 one nobody\n");
  free(spec);
  world_free(&w);
}

static void test_cancel(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  rec *r = assign(&w, "long", 1, "{\"shell\":{\"command\":[\"sleep\",\"1000\"]}}");
  uv_timer_t t;
  uv_timer_init(&w.loop, &t);
  t.data = &w;
  uv_timer_start(&t, on_cancel_timer, 200, 0);
  run_until_final(&w, r);
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_CANCELLED);
  assert_non_null(strstr(r->message, "operator said stop"));
  assert_int_equal(r->signal, SIGTERM);
  world_free(&w);
}

static void test_exit_code_and_signal(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  rec *r = run_spec(&w, "exit7", "{\"shell\":{\"script\":\"exit 7\"}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_FAILED);
  assert_int_equal(r->exit_code, 7);
  assert_non_null(strstr(r->message, "exit code 7"));
  r = run_spec(&w, "kill9", "{\"shell\":{\"script\":\"kill -9 $$\"}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_FAILED);
  assert_int_equal(r->signal, SIGKILL);
  world_free(&w);
}

/* A script without shell syntax runs without sh (plugins/shell/plain_words.h): the same
 * output, exit code and PATH lookup as through a shell, for a found, a failing and a missing
 * program. */
static void test_plain_script_same_as_shell(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  const char *scripts[] = {"expr  2 + 3", "ls /no-such-dir-here", "no-such-program-here x", "false"};
  for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++) {
    char spec[256], id_plain[32], id_sh[32];
    snprintf(id_plain, sizeof id_plain, "plain%zu", i);
    snprintf(id_sh, sizeof id_sh, "sh%zu", i);
    snprintf(spec, sizeof spec, "{\"shell\":{\"script\":\"%s\"}}", scripts[i]);
    rec *plain = run_spec(&w, id_plain, spec);
    snprintf(spec, sizeof spec, "{\"shell\":{\"interpreter\":\"bash\",\"script\":\"%s\"}}", scripts[i]);
    rec *sh = run_spec(&w, id_sh, spec);
    assert_int_equal(plain->states[plain->n_states - 1], sh->states[sh->n_states - 1]);
    assert_int_equal(plain->exit_code, sh->exit_code);
    assert_int_equal(plain->out_len, sh->out_len);
    if (plain->out_len > 0) assert_memory_equal(plain->out, sh->out, plain->out_len);
    assert_int_equal(plain->err_len > 0, sh->err_len > 0);
  }
  rec *r = run_spec(&w, "plain-missing", "{\"shell\":{\"script\":\"no-such-program-here\"}}");
  assert_int_equal(r->exit_code, 127);
  world_free(&w);
}

static void test_output_limit(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  rec *r = run_spec(&w, "loud",
                    "{\"resources\":{\"output_limit\":\"100\"},"
                    "\"shell\":{\"script\":\"head -c 1000 /dev/zero | tr '\\\\0' x\"}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_SUCCEEDED);
  assert_int_equal(r->out_len, 100);
  assert_int_equal(r->m.output_bytes, 100);
  assert_int_equal(r->m.output_dropped_bytes, 900);
  assert_non_null(strstr(r->message, "900 bytes dropped"));
  world_free(&w);
}

static void test_limits_enforced(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  rec *r = run_spec(&w, "forky",
                    "{\"resources\":{\"pids\":\"10\"},"
                    "\"shell\":{\"script\":\"for i in $(seq 40); do sleep 30 & done; echo all-forked\"}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_FAILED);
  assert_null(strstr(r->out, "all-forked"));
  assert_non_null(strstr(r->err, "fork"));
  r = run_spec(&w, "hungry",
               "{\"resources\":{\"memory\":\"64M\"},\"shell\":{\"command\":[\"python3\",\"-c\","
               "\"b = bytearray(400 * 1024 * 1024); print('allocated')\"]}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_FAILED);
  assert_null(strstr(r->out, "allocated"));
  if (strcmp(mu_runner_limits_mode(w.runner), "rlimit") != 0) {
    assert_int_equal(r->signal, SIGKILL);
    assert_non_null(strstr(r->message, "memory limit"));
    assert_true(r->m.cgroup_memory_peak_bytes > 0);
  }
  world_free(&w);
}

static void test_run_as_nobody_and_rlimits(void **state) {
  (void)state;
  if (geteuid() != 0) MU_SKIP("not root: run-as needs root");
  mu_runner_config cfg = {.no_cgroups = true};
  world w;
  world_init(&w, &cfg);
  assert_string_equal(mu_runner_limits_mode(w.runner), "rlimit");
  rec *r = run_spec(&w, "nobody", "{\"runAs\":\"nobody\",\"shell\":{\"script\":\"id -un; touch x && echo wrote\"}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_SUCCEEDED);
  assert_string_equal(r->out, "nobody\nwrote\n");
  /* RLIMIT_NPROC binds a non-root user: a fork loop fails. */
  r = run_spec(&w, "nobody-forky",
               "{\"run_as\":\"nobody\",\"resources\":{\"pids\":5},"
               "\"shell\":{\"script\":\"for i in $(seq 40); do sleep 30 & done; echo all-forked\"}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_FAILED);
  assert_null(strstr(r->out, "all-forked"));
  /* RLIMIT_AS: the allocation fails inside the process. */
  r = run_spec(&w, "nobody-hungry",
               "{\"runAs\":\"nobody\",\"resources\":{\"memory\":\"200M\"},\"shell\":{\"command\":"
               "[\"python3\",\"-c\",\"b = bytearray(400 * 1024 * 1024); print('allocated')\"]}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_FAILED);
  assert_null(strstr(r->out, "allocated"));
  assert_non_null(strstr(r->err, "MemoryError"));
  world_free(&w);
}

static void test_dedup_slots_and_refusals(void **state) {
  (void)state;
  mu_runner_config cfg = {.slots = 1};
  world w;
  world_init(&w, &cfg);
  const char *spec = "{\"shell\":{\"script\":\"sleep 0.3; echo once\"}}";
  rec *r = assign(&w, "dup", 1, spec);
  mu_err err = {0};
  assert_int_equal(mu_runner_assign(w.runner, "job-1", "dup", 1, spec, NULL, 0, &err), 0);
  assert_int_equal(mu_runner_running_count(w.runner), 1);
  assert_int_equal(mu_runner_queued_count(w.runner), 0);
  run_until_final(&w, r);
  assert_int_equal(mu_runner_assign(w.runner, "job-1", "dup", 1, spec, NULL, 0, &err), 0); /* after the end too */
  assert_int_equal(mu_runner_running_count(w.runner), 0);
  assert_int_equal(r->n_states, 3);
  assert_string_equal(r->out, "once\n");

  assert_int_equal(mu_runner_assign(w.runner, "j", "t", 1, "{\"type\":\"spark\",\"spark\":{}}", NULL, 0, &err),
                   MU_ENOTSUP);
  assert_non_null(strstr(err.msg, "no plugin serves task type \"spark\""));
  assert_int_equal(
      mu_runner_assign(w.runner, "j", "t", 1, "{\"timeout\":\"soon\",\"shell\":{\"script\":\"x\"}}", NULL, 0, &err),
      MU_EINVAL);
  assert_non_null(strstr(err.msg, "timeout: bad duration"));
  assert_int_equal(
      mu_runner_assign(w.runner, "j", "t", 1, "{\"shell\":{\"interpreter\":\"fish\",\"script\":\"x\"}}", NULL, 0, &err),
      MU_EINVAL);
  assert_non_null(strstr(err.msg, "shell.interpreter"));
  assert_int_equal(
      mu_runner_assign(w.runner, "j", "t", 1, "{\"resources\":{\"memory\":\"lots\"},\"shell\":{\"script\":\"x\"}}",
                       NULL, 0, &err),
      MU_EINVAL);
  assert_non_null(strstr(err.msg, "resources.memory"));
  assert_int_equal(mu_runner_assign(w.runner, "j", "t", 1, "{\"shell\":", NULL, 0, &err), MU_EINVAL);
  assert_int_equal(mu_runner_assign(w.runner, "j", "t", 1,
                                    "{\"runAs\":\"no-such-user-q\",\"shell\":{\"script\":\"x\"}}", NULL, 0, &err),
                   MU_EINVAL);
  assert_non_null(strstr(err.msg, "run_as: user 'no-such-user-q' does not exist on agent-1"));
  assert_int_equal(mu_runner_running_count(w.runner), 0);
  world_free(&w);
}

static void test_example_plugin(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  rec *r = run_spec(&w, "echo",
                    "{\"plugin\":{\"type\":\"sleep-echo\","
                    "\"configJson\":\"{\\\"message\\\":\\\"hey\\\",\\\"count\\\":3,\\\"intervalMs\\\":20}\"}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_SUCCEEDED);
  assert_string_equal(r->out, "hey\nhey\nhey\n");
  assert_int_equal(r->n_progress, 3);
  assert_true(r->last_pct == 100.0);
  assert_string_equal(r->params, "echoed=3;");
  r = run_spec(&w, "echo-slow",
               "{\"timeout\":\"150ms\",\"plugin\":{\"type\":\"sleep-echo\","
               "\"config_json\":\"{\\\"message\\\":\\\"m\\\",\\\"count\\\":100,\\\"intervalMs\\\":50}\"}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_TIMED_OUT);
  assert_true(r->n_progress >= 1 && r->n_progress < 100);
  world_free(&w);
}

static void test_close_cancels_running(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  rec *a = assign(&w, "c1", 1, "{\"shell\":{\"command\":[\"sleep\",\"1000\"]}}");
  rec *b = assign(&w, "c2", 1,
                  "{\"plugin\":{\"type\":\"sleep-echo\",\"configJson\":\"{\\\"message\\\":\\\"m\\\",\\\"count\\\":1000,"
                  "\\\"intervalMs\\\":1000}\"}}");
  for (int i = 0; i < 20; i++) uv_run(&w.loop, UV_RUN_NOWAIT);
  world_free(&w);
  assert_true(a->final && b->final);
  assert_int_equal(a->states[a->n_states - 1], MU_TASK_CANCELLED);
  assert_int_equal(b->states[b->n_states - 1], MU_TASK_CANCELLED);
  assert_non_null(strstr(a->message, "shutting down"));
}

static const char *const quick = "{\"shell\":{\"command\":[\"true\"]}}";
static const char *const blocker = "{\"shell\":{\"command\":[\"sleep\",\"1000\"]}}";

static void assign_prio(world *w, const char *task_id, int prio) {
  char spec[256];
  snprintf(spec, sizeof spec, "{\"priority\":%d,\"shell\":{\"command\":[\"true\"]}}", prio);
  rec *r = assign(w, task_id, 1, spec);
  assert_int_equal(r->n_states, 0); /* queued: nothing sent until it starts */
}

static void run_until_idle(world *w) {
  while (mu_runner_running_count(w->runner) > 0 || mu_runner_queued_count(w->runner) > 0) uv_run(&w->loop, UV_RUN_ONCE);
}

static void cancel_now(world *w, const char *task_id, const char *why) {
  mu_err err = {0};
  assert_int_equal(mu_runner_cancel(w->runner, task_id, 1, why, &err), 0);
}

static void test_queue_priority_order(void **state) {
  (void)state;
  mu_runner_config cfg = {.slots = 1};
  world w;
  world_init(&w, &cfg);
  rec *b = assign(&w, "block", 1, "{\"shell\":{\"command\":[\"sleep\",\"0.2\"]}}");
  assign_prio(&w, "low-a", 0);
  assign_prio(&w, "high-a", 5);
  assign_prio(&w, "low-b", 0);
  assign_prio(&w, "neg", -3);
  assign_prio(&w, "high-b", 5);
  rec *mid = assign(&w, "mid", 1, "{\"priority\":\"2\",\"shell\":{\"command\":[\"true\"]}}"); /* string form */
  assert_int_equal(mid->n_states, 0);
  assert_int_equal(mu_runner_running_count(w.runner), 1);
  assert_int_equal(mu_runner_queued_count(w.runner), 6);
  run_until_final(&w, b);
  run_until_idle(&w);
  assert_string_equal(w.order, "block high-a high-b mid low-a low-b neg");
  assert_int_equal(w.max_active, 1);
  for (int i = 0; i < w.n_recs; i++) {
    assert_true(w.recs[i].final);
    assert_int_equal(w.recs[i].states[0], MU_TASK_STARTING);
    assert_int_equal(w.recs[i].states[w.recs[i].n_states - 1], MU_TASK_SUCCEEDED);
  }
  mu_err err = {0};
  assert_int_equal(
      mu_runner_assign(w.runner, "j", "p", 1, "{\"priority\":1.5,\"shell\":{\"script\":\"x\"}}", NULL, 0, &err),
      MU_EINVAL);
  assert_non_null(strstr(err.msg, "priority: must be a whole number"));
  world_free(&w);
}

static void test_queue_bound(void **state) {
  (void)state;
  mu_runner_config cfg = {.slots = 1, .queue_max = 2};
  world w;
  world_init(&w, &cfg);
  rec *b = assign(&w, "block", 1, "{\"shell\":{\"command\":[\"sleep\",\"0.2\"]}}");
  assign(&w, "q1", 1, quick);
  assign(&w, "q2", 1, quick);
  mu_err err = {0};
  assert_int_equal(mu_runner_assign(w.runner, "job-1", "q3", 1, quick, NULL, 0, &err), MU_ENOSPC);
  assert_non_null(strstr(err.msg, "queue full: 2 attempts waiting (queue_max 2), 1 of 1 slots busy"));
  assert_int_equal(mu_runner_queued_count(w.runner), 2);
  run_until_final(&w, b);
  run_until_idle(&w);
  assert_string_equal(w.order, "block q1 q2");
  /* q3 was refused, not remembered: assigned again once there is room, it runs */
  rec *r3 = assign(&w, "q3", 1, quick);
  run_until_final(&w, r3);
  assert_int_equal(r3->states[r3->n_states - 1], MU_TASK_SUCCEEDED);
  world_free(&w);
}

static void test_type_limits(void **state) {
  (void)state;
  mu_runner_type_slot caps[] = {{"sleep-echo", 1}, {"shell", 2}};
  mu_runner_config cfg = {.slots = 4, .type_slots = caps, .n_type_slots = 2};
  world w;
  world_init(&w, &cfg);
  const char *echo =
      "{\"plugin\":{\"type\":\"sleep-echo\","
      "\"configJson\":\"{\\\"message\\\":\\\"m\\\",\\\"count\\\":2,\\\"intervalMs\\\":40}\"}}";
  const char *sh = "{\"shell\":{\"command\":[\"sleep\",\"0.1\"]}}";
  assign(&w, "e1", 1, echo);
  assign(&w, "e2", 1, echo);
  assign(&w, "e3", 1, echo);
  rec *s1 = assign(&w, "s1", 1, sh); /* not held back by the queued echo tasks */
  assert_int_equal(s1->n_states, 1);
  assign(&w, "s2", 1, sh);
  assign(&w, "s3", 1, sh);
  assign(&w, "s4", 1, sh);
  assert_int_equal(mu_runner_running_count(w.runner), 3); /* e1, s1, s2 */
  assert_int_equal(mu_runner_queued_count(w.runner), 4);
  run_until_idle(&w);
  assert_int_equal(w.max_echo, 1);
  assert_int_equal(w.max_sh, 2);
  assert_true(w.max_active <= 3);
  for (int i = 0; i < w.n_recs; i++) assert_int_equal(w.recs[i].states[w.recs[i].n_states - 1], MU_TASK_SUCCEEDED);
  world_free(&w);

  mu_runner_type_slot bad[] = {{"shell", 0}};
  mu_runner_config bcfg = {.spool_dir = spool, .agent_id = "a", .type_slots = bad, .n_type_slots = 1};
  mu_runner_sink sink = {on_event, &w};
  mu_runner *r = NULL;
  mu_err err = {0};
  assert_int_equal(mu_runner_new(&w.loop, NULL, &bcfg, &sink, &r, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "type_slots[0] (shell): max must be at least 1"));
}

static void test_cancel_and_dedup_while_queued(void **state) {
  (void)state;
  mu_runner_config cfg = {.slots = 1};
  world w;
  world_init(&w, &cfg);
  rec *b = assign(&w, "block", 1, blocker);
  rec *q1 = assign(&w, "q1", 1, "{\"shell\":{\"script\":\"echo ran\"}}");
  rec *q2 = assign(&w, "q2", 1, "{\"shell\":{\"script\":\"echo once\"}}");
  rec *q3 = assign(&w, "q3", 1, quick);
  mu_err err = {0};
  /* dedup: a repeated assign of a queued attempt is ignored */
  assert_int_equal(mu_runner_assign(w.runner, "job-1", "q2", 1, quick, NULL, 0, &err), 0);
  assert_int_equal(mu_runner_queued_count(w.runner), 3);
  /* cancel while queued: CANCELLED at once, nothing ran */
  cancel_now(&w, "q1", "operator changed their mind");
  assert_true(q1->final);
  assert_int_equal(q1->n_states, 1);
  assert_int_equal(q1->states[0], MU_TASK_CANCELLED);
  assert_non_null(strstr(q1->message, "operator changed their mind"));
  assert_non_null(strstr(q1->message, "while queued"));
  assert_int_equal(q1->m.output_bytes, 0);
  assert_int_equal(mu_runner_queued_count(w.runner), 2);
  /* a cancelled queued attempt is remembered: assigned again, it does not run */
  assert_int_equal(mu_runner_assign(w.runner, "job-1", "q1", 1, quick, NULL, 0, &err), 0);
  assert_int_equal(mu_runner_queued_count(w.runner), 2);
  cancel_now(&w, "block", "make room");
  run_until_final(&w, b);
  run_until_final(&w, q2);
  assert_string_equal(q2->out, "once\n");
  assert_int_equal(q2->n_states, 3);
  run_until_final(&w, q3);
  assert_int_equal(q1->n_states, 1);
  assert_string_equal(q1->out, "");
  assert_string_equal(w.order, "block q2 q3");

  /* close cancels what is still queued */
  rec *b2 = assign(&w, "block2", 1, blocker);
  rec *q4 = assign(&w, "q4", 1, quick);
  for (int i = 0; i < 5; i++) uv_run(&w.loop, UV_RUN_NOWAIT);
  world_free(&w);
  assert_int_equal(b2->states[b2->n_states - 1], MU_TASK_CANCELLED);
  assert_int_equal(q4->n_states, 1);
  assert_int_equal(q4->states[0], MU_TASK_CANCELLED);
  assert_non_null(strstr(q4->message, "shutting down"));
}

/* The started hook: the attempts it named, and the states each had reported by then. */
static char started_log[512];

static void on_started(void *arg, const char *task_id, uint32_t attempt) {
  world *w = arg;
  rec *r = rec_for(w, task_id, attempt);
  size_t n = strlen(started_log);
  snprintf(started_log + n, sizeof started_log - n, "%s%s#%u:%d", n ? " " : "", task_id, attempt, r->n_states);
}

/* Called once an attempt really started (after RUNNING, before its end); never for one whose
 * plugin refused to start or that was cancelled while queued. */
static void test_started_hook_only_for_started_attempts(void **state) {
  (void)state;
  world w;
  mu_runner_config cfg = {.slots = 1, .started = on_started, .prepare_arg = &w};
  world_init(&w, &cfg);
  started_log[0] = '\0';
  rec *ok = run_spec(&w, "ok", "{\"shell\":{\"script\":\"true\"}}");
  assert_int_equal(ok->states[ok->n_states - 1], MU_TASK_SUCCEEDED);
  rec *bad = run_spec(&w, "nofile", "{\"shell\":{\"scriptFile\":\"missing.sh\"}}");
  assert_int_equal(bad->states[bad->n_states - 1], MU_TASK_FAILED);
  rec *busy = assign(&w, "busy", 1, "{\"shell\":{\"script\":\"sleep 0.3\"}}");
  rec *queued = assign(&w, "queued", 1, "{\"shell\":{\"script\":\"true\"}}");
  mu_err err = {0};
  assert_int_equal(mu_runner_cancel(w.runner, "queued", 1, "no", &err), 0);
  run_until_final(&w, busy);
  run_until_final(&w, queued);
  assert_int_equal(queued->states[queued->n_states - 1], MU_TASK_CANCELLED);
  /* 2 states (STARTING, RUNNING) when each started */
  assert_string_equal(started_log, "ok#1:2 busy#1:2");
  world_free(&w);
}

static void test_shell_policy_and_interpreters(void **state) {
  (void)state;
  world w;
  world_init(&w, NULL);
  rec *r =
      run_spec(&w, "abs-bash", "{\"shell\":{\"interpreter\":\"/bin/bash\",\"script\":\"echo ${BASH_VERSION%%.*}\"}}");
  assert_int_equal(r->states[r->n_states - 1], MU_TASK_SUCCEEDED);
  assert_true(r->out_len >= 2); /* a bash major version */
  mu_err err = {0};
  assert_int_equal(mu_runner_assign(w.runner, "j", "abs-sh", 1,
                                    "{\"shell\":{\"interpreter\":\"/bin/sh\",\"script\":\"true\"}}", NULL, 0, &err),
                   MU_EINVAL);
  assert_non_null(strstr(err.msg, "task abs-sh: shell.interpreter: \"/bin/sh\" is not on the interpreter allow-list"));
  assert_int_equal(mu_runner_assign(w.runner, "j", "mk", 1, "{\"shell\":{\"script\":\"echo a\\nmkfs.ext4 /dev/null\"}}",
                                    NULL, 0, &err),
                   MU_EINVAL);
  assert_string_equal(err.msg, "task mk: shell policy: deny rule 1 \"*mkfs*\" matches line 2 \"mkfs.ext4 /dev/null\"");
  assert_int_equal(mu_runner_running_count(w.runner), 0);
  world_free(&w);
}

int main(int argc, char **argv) {
  if (argc < 4 || !realpath(argv[1], helper) || !realpath(argv[2], shell_so) || !realpath(argv[3], echo_so)) {
    fprintf(stderr, "usage: runner_test MUSTER-EXEC SHELL.so ECHO.so\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  snprintf(spool, sizeof spool, "/tmp/runner_test.XXXXXX");
  if (mkdtemp(spool) == NULL) return 2;
  chmod(spool, 0755); /* the run-as user must reach its task dir */
  /* The shell plugin reads its configuration from the environment when it is loaded. */
  char policy[300];
  snprintf(policy, sizeof policy, "%s/shell-policy.json", spool);
  FILE *pf = fopen(policy, "w");
  if (pf == NULL) return 2;
  fputs("{\"deny\": [\"*mkfs*\"]}\n", pf);
  fclose(pf);
  setenv("MUSTER_SHELL_POLICY", policy, 1);
  setenv("MUSTER_SHELL_INTERPRETERS", "/bin/bash", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shell_end_to_end),
      cmocka_unit_test(test_env_has_only_spec_and_context),
      cmocka_unit_test(test_secrets_redacted_and_wiped),
      cmocka_unit_test(test_task_dir_fresh_and_cleaned),
      cmocka_unit_test(test_timeout_kills_group),
      cmocka_unit_test(test_large_script),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_exit_code_and_signal),
      cmocka_unit_test(test_output_limit),
      cmocka_unit_test(test_plain_script_same_as_shell),
      cmocka_unit_test(test_limits_enforced),
      cmocka_unit_test(test_run_as_nobody_and_rlimits),
      cmocka_unit_test(test_dedup_slots_and_refusals),
      cmocka_unit_test(test_example_plugin),
      cmocka_unit_test(test_close_cancels_running),
      cmocka_unit_test(test_queue_priority_order),
      cmocka_unit_test(test_queue_bound),
      cmocka_unit_test(test_type_limits),
      cmocka_unit_test(test_cancel_and_dedup_while_queued),
      cmocka_unit_test(test_shell_policy_and_interpreters),
      cmocka_unit_test(test_started_hook_only_for_started_attempts),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", spool);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", spool);
  return rc;
}
