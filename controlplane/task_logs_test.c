/* Unit tests of task_logs.c (muster.v1.Admin/TaskLogs) over a real loopback gRPC server: the
 * refusals name what is wrong (no job id, an unknown job, a task the job does not have), and
 * a task whose agent is not connected is served from the tail the control plane keeps, with
 * a note saying so and "muster-log-source: tail" in the trailers. The agent-read path (a
 * LogRequest over the agent's stream, eviction, resumes) needs a connected agent and is
 * covered end to end by integration/logs_test.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "controlplane/daemon.h"
#include "controlplane/scheduler.h"
#include "controlplane/schedules/schedules.h"
#include "controlplane/task_logs.h"
#include "controlplane/wiring.h"
#include "lib/pbjson/pbjson.h"
#include "lib/rpc/rpc.h"

typedef struct fixture {
  uv_loop_t loop;
  mu_daemon d;
  mu_rpc_channel *channel;
  /* the last call's outcome */
  int done, code;
  char message[512], source[32];
  char data[4096]; /* every chunk's bytes, in order */
  char notes[2048];
  size_t n_chunks;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  mu_daemon *d = &f->d;
  mu_err err = {0};
  assert_int_equal(uv_loop_init(&f->loop), 0);
  mu_server_config_init(&d->cfg);
  d->loop = &f->loop;
  mu_registry_init(&d->registry, 100);
  if (mu_wiring_new(d, 1, &err) != 0) fail_msg("wiring: %s", err.msg);
  mu_wiring_start_scheduler(d);
  assert_int_equal(mu_rpc_engine_new(&f->loop, &d->engine, &err), 0);
  assert_int_equal(mu_rpc_server_new(d->engine, NULL, &d->server, &err), 0);
  assert_int_equal(mu_task_logs_register(d, &err), 0);
  int port = 0;
  assert_int_equal(mu_rpc_server_listen(d->server, "127.0.0.1:0", NULL, &port, &err), 0);
  assert_int_equal(mu_rpc_server_start(d->server, &err), 0);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);
  assert_int_equal(mu_rpc_channel_new(d->engine, target, NULL, NULL, &f->channel, &err), 0);
  *state = f;
  return 0;
}

static void engine_closed(void *ud) { *(int *)ud = 1; }

static int teardown(void **state) {
  fixture *f = *state;
  mu_daemon *d = &f->d;
  int closed = 0;
  d->stopping = 1;
  mu_sched_close(d->sched);
  mu_schedules_close(d);
  mu_rpc_engine_close(d->engine, engine_closed, &closed);
  while (!closed) uv_run(&f->loop, UV_RUN_ONCE);
  mu_wiring_free(d);
  mu_registry_free(&d->registry);
  mu_server_config_free(&d->cfg);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static int on_chunk(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  fixture *f = ud;
  (void)call;
  Muster__V1__LogChunk *lc = muster__v1__log_chunk__unpack(NULL, len, data);
  assert_non_null(lc);
  if (lc->output != NULL && lc->output->data.len > 0) {
    size_t have = strlen(f->data);
    snprintf(f->data + have, sizeof f->data - have, "%.*s", (int)lc->output->data.len,
             (const char *)lc->output->data.data);
    f->n_chunks++;
  }
  if (lc->note[0] != '\0') {
    size_t have = strlen(f->notes);
    snprintf(f->notes + have, sizeof f->notes - have, "%s\n", lc->note);
  }
  muster__v1__log_chunk__free_unpacked(lc, NULL);
  return 0;
}

static void on_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  fixture *f = ud;
  (void)call;
  f->done = 1;
  f->code = st->code;
  snprintf(f->message, sizeof f->message, "%s", st->message);
  const char *src = mu_rpc_metadata_get(st->trailers, "muster-log-source");
  snprintf(f->source, sizeof f->source, "%s", src ? src : "");
}

static void on_timeout(uv_timer_t *t) { uv_stop(t->loop); }

/* Calls TaskLogs with req and runs the loop until the call ends (10 s at most). */
static void task_logs(fixture *f, const char *job_id, const char *task_id) {
  f->done = 0;
  f->code = -1;
  f->message[0] = f->source[0] = f->data[0] = f->notes[0] = '\0';
  f->n_chunks = 0;
  Muster__V1__TaskLogsRequest req = MUSTER__V1__TASK_LOGS_REQUEST__INIT;
  req.job_id = (char *)job_id;
  req.task_id = (char *)task_id;
  uint8_t buf[512];
  size_t len = muster__v1__task_logs_request__pack(&req, buf);
  mu_rpc_call_handlers h = {.on_message = on_chunk, .on_done = on_done};
  mu_rpc_call *call = NULL;
  mu_err err = {0};
  assert_int_equal(mu_rpc_call_new(f->channel, "/muster.v1.Admin/TaskLogs", 10000, NULL, &h, f, &call, &err), 0);
  assert_int_equal(mu_rpc_call_send(call, buf, len, &err), 0);
  mu_rpc_call_close_send(call);
  uv_timer_t t;
  uv_timer_init(&f->loop, &t);
  uv_timer_start(&t, on_timeout, 10000, 0);
  while (!f->done && uv_is_active((uv_handle_t *)&t)) uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  if (!f->done) fail_msg("TaskLogs %s %s: no answer in 10 s", job_id, task_id);
}

/* A finished job of one task on host "web-1", its output kept here as a tail. */
static mu_job *finished_job(mu_daemon *d, const char *id, const char *tail) {
  json_t *j = json_pack("{s:s,s:{s:[s]},s:[{s:s,s:{s:s}}]}", "name", "t", "target", "hosts", "web-1", "tasks", "name",
                        "build", "shell", "script", "make");
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  if (mu_pbjson_from_json(&muster__v1__job_spec__descriptor, j, (ProtobufCMessage **)&spec, &err) != 0)
    fail_msg("spec: %s", err.msg);
  json_decref(j);
  char *ids[] = {"web-1"};
  mu_rollout ro = {.max_errors = -1};
  mu_job *job = mu_job_new(id, spec, &ro, ids, 1, 4096);
  assert_non_null(job);
  job->ready = 1;
  mu_task_run *tr = &job->hosts[0].tasks[0];
  tr->attempt = 1;
  tr->state = MUSTER__V1__TASK_STATE__SUCCEEDED;
  mu_tail_append(&tr->tail, tail, strlen(tail));
  job->hosts[0].state = MU_HOST_SUCCEEDED;
  job->hosts[0].current = 1;
  job->state = MUSTER__V1__JOB_STATE__JOB_SUCCEEDED;
  mu_sched_recount(job);
  mu_sched_insert(d->sched, job);
  return job;
}

static void refusals_name_the_problem(void **state) {
  fixture *f = *state;
  finished_job(&f->d, "j-1", "hello\n");
  task_logs(f, "", "");
  assert_int_equal(f->code, MU_RPC_INVALID_ARGUMENT);
  assert_string_equal(f->message, "job_id: required");
  task_logs(f, "j-404", "");
  assert_int_equal(f->code, MU_RPC_NOT_FOUND);
  assert_non_null(strstr(f->message, "j-404"));
  task_logs(f, "j-1", "web-2/build");
  assert_int_equal(f->code, MU_RPC_NOT_FOUND);
  assert_string_equal(f->message, "job j-1 has no task 'web-2/build' (task ids are AGENT/TASK)");
}

/* The agent is gone: the output comes from the kept tail, and the caller is told. */
static void disconnected_agent_served_from_the_tail(void **state) {
  fixture *f = *state;
  finished_job(&f->d, "j-2", "compiling\nlinking\ndone\n");
  task_logs(f, "j-2", "web-1/build");
  assert_int_equal(f->code, MU_RPC_OK);
  assert_string_equal(f->source, "tail");
  assert_string_equal(f->data, "compiling\nlinking\ndone\n");
  assert_true(f->n_chunks >= 1);
  assert_non_null(strstr(f->notes, "web-1/build"));
  assert_non_null(strstr(f->notes, "kept by the control plane"));
  /* a task id may name the task alone when one host runs it */
  task_logs(f, "j-2", "");
  assert_int_equal(f->code, MU_RPC_OK);
  assert_string_equal(f->data, "compiling\nlinking\ndone\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(refusals_name_the_problem, setup, teardown),
      cmocka_unit_test_setup_teardown(disconnected_agent_served_from_the_tail, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
