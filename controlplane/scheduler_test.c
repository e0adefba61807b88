/* Tests for scheduler.c on a table of agents and job specs, with no network: the hooks record
 * what would be sent to agents and marked for etcd. Covered: max concurrency and per-agent
 * slots, the error budget (the rest cancelled, with its message), "any" placement on the agent
 * with the most free slots (draining ones skipped), a disconnected target ending UNREACHABLE
 * (its runs UNREACHABLE, counted against max_errors; skipped instead with skip_unreachable),
 * a forgotten agent's target, the agent GC decision, a vanished agent's task going LOST after
 * the grace period, retries with backoff, and cancellation of running and pending hosts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "controlplane/scheduler.h"
#include "controlplane/stage_run.h"
#include "lib/jobcounts/jobcounts.h"
#include "lib/pbjson/pbjson.h"

/* --- the table the hooks write --- */

typedef struct sent {
  Muster__V1__ControlMessage__MsgCase kind;
  char agent[64];
  char task_id[200];
  uint32_t attempt;
} sent;

typedef struct world {
  uv_loop_t loop;
  mu_registry reg;
  mu_scheduler s;
  sent out[256];
  size_t n_out;
  size_t task_marks, job_marks;
  int dummy_session; /* agents "connected" point their session here */
} world;

static int hook_send(void *ud, mu_agent *agent, const Muster__V1__ControlMessage *msg, mu_err *err) {
  world *w = ud;
  if (agent->session == NULL) return mu_err_set(err, MU_EAGAIN, "agent %s is not connected", agent->id);
  assert_true(w->n_out < sizeof w->out / sizeof w->out[0]);
  sent *o = &w->out[w->n_out++];
  memset(o, 0, sizeof *o);
  o->kind = msg->msg_case;
  snprintf(o->agent, sizeof o->agent, "%s", agent->id);
  if (msg->msg_case == MUSTER__V1__CONTROL_MESSAGE__MSG_ASSIGN) {
    snprintf(o->task_id, sizeof o->task_id, "%s", msg->assign->task_id);
    o->attempt = msg->assign->attempt;
  } else if (msg->msg_case == MUSTER__V1__CONTROL_MESSAGE__MSG_CANCEL) {
    snprintf(o->task_id, sizeof o->task_id, "%s", msg->cancel->task_id);
    o->attempt = msg->cancel->attempt;
  }
  return 0;
}

static void hook_task_changed(void *ud, mu_job *job, mu_host_run *h, size_t idx) {
  (void)job, (void)h, (void)idx;
  ((world *)ud)->task_marks++;
}

static void hook_job_changed(void *ud, mu_job *job) {
  (void)job;
  ((world *)ud)->job_marks++;
}

static size_t count_sent(const world *w, Muster__V1__ControlMessage__MsgCase kind) {
  size_t n = 0;
  for (size_t i = 0; i < w->n_out; i++) n += w->out[i].kind == kind;
  return n;
}

static const sent *nth_sent(const world *w, Muster__V1__ControlMessage__MsgCase kind, size_t k) {
  for (size_t i = 0; i < w->n_out; i++)
    if (w->out[i].kind == kind && k-- == 0) return &w->out[i];
  return NULL;
}

/* --- set-up --- */

static world *world_new(int64_t heartbeat_timeout_ms) {
  world *w = calloc(1, sizeof *w);
  assert_non_null(w);
  assert_int_equal(uv_loop_init(&w->loop), 0);
  mu_registry_init(&w->reg, 100);
  mu_sched_config cfg = {.loop = &w->loop,
                         .registry = &w->reg,
                         .heartbeat_timeout_ms = heartbeat_timeout_ms,
                         .tail_bytes = 4096,
                         .history_bytes = 1 << 20,
                         .max_tasks = 64,
                         .max_task_runs = 10000,
                         .retention = {.max_kept = 100, .hard_cap = 200}};
  mu_sched_hooks hooks = {
      .ud = w, .send = hook_send, .task_changed = hook_task_changed, .job_changed = hook_job_changed};
  mu_sched_init(&w->s, &cfg, &hooks);
  return w;
}

static void world_free(world *w) {
  mu_sched_close(&w->s);
  uv_run(&w->loop, UV_RUN_NOWAIT);
  mu_sched_free(&w->s);
  for (size_t i = 0; i < w->reg.n; i++) w->reg.agents[i]->session = NULL;
  mu_registry_free(&w->reg);
  assert_int_equal(uv_loop_close(&w->loop), 0);
  free(w);
}

/* Adds a connected agent with slots and labels ("k=v,k=v"), its Hello built from JSON. */
static mu_agent *add_agent(world *w, const char *id, uint32_t slots, const char *labels) {
  json_t *lab = json_object();
  char buf[200];
  snprintf(buf, sizeof buf, "%s", labels ? labels : "");
  for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(kv, '=');
    *eq = '\0';
    json_object_set_new(lab, kv, json_string(eq + 1));
  }
  json_t *j = json_pack("{s:{s:s,s:s,s:o,s:{s:i},s:[{s:s}]}}", "hello", "agent_id", id, "hostname", id, "labels", lab,
                        "capacity", "slots", (int)slots, "plugins", "type", "shell");
  Muster__V1__AgentMessage *msg = NULL;
  mu_err err = {0};
  if (mu_pbjson_from_json(&muster__v1__agent_message__descriptor, j, (ProtobufCMessage **)&msg, &err) != 0)
    fail_msg("bad hello: %s", err.msg);
  json_decref(j);
  mu_agent *a = NULL;
  assert_int_equal(mu_registry_upsert(&w->reg, id, &a, &err), 0);
  mu_registry_set_connected(&w->reg, a, msg, "test", (mu_agent_session *)&w->dummy_session, 1, 1);
  return a;
}

/* Submits a job from JSON (JobSpec mapping); returns it. */
static mu_job *submit(world *w, const char *json) {
  json_error_t jerr;
  json_t *j = json_loads(json, 0, &jerr);
  if (j == NULL) fail_msg("bad test JSON: %s", jerr.text);
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  if (mu_pbjson_from_json(&muster__v1__job_spec__descriptor, j, (ProtobufCMessage **)&spec, &err) != 0)
    fail_msg("bad test spec: %s", err.msg);
  json_decref(j);
  mu_job *job = NULL;
  if (mu_sched_submit(&w->s, spec, NULL, &job, &err) != 0) fail_msg("submit: %s", err.msg);
  return job;
}

/* Agent reports a state for its current attempt of task_id. */
static void report(world *w, const char *agent_id, mu_job *job, const char *task_id, uint32_t attempt,
                   Muster__V1__TaskState st, int32_t exit_code) {
  static uint64_t seq;
  Muster__V1__TaskEvent ev = MUSTER__V1__TASK_EVENT__INIT;
  Muster__V1__StateChange sc = MUSTER__V1__STATE_CHANGE__INIT;
  sc.state = st;
  sc.exit_code = exit_code;
  sc.message = st == MUSTER__V1__TASK_STATE__FAILED ? "exit 1" : "";
  ev.job_id = job->id;
  ev.task_id = (char *)task_id;
  ev.attempt = attempt;
  ev.sequence = ++seq;
  ev.at_ms = 1000;
  ev.event_case = MUSTER__V1__TASK_EVENT__EVENT_STATE;
  ev.state = &sc;
  mu_sched_on_event(&w->s, mu_registry_find(&w->reg, agent_id), &ev);
}

#define ASSIGN MUSTER__V1__CONTROL_MESSAGE__MSG_ASSIGN
#define CANCEL MUSTER__V1__CONTROL_MESSAGE__MSG_CANCEL

/* --- decisions --- */

static void concurrency_and_slots(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent(w, "a1", 1, NULL);
  add_agent(w, "a2", 1, NULL);
  add_agent(w, "a3", 1, NULL);
  add_agent(w, "a4", 1, NULL);
  mu_job *job = submit(w,
                       "{\"target\":{\"all\":true},\"rollout\":{\"max_concurrency\":\"2\"},"
                       "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"}},"
                       "{\"name\":\"u\",\"shell\":{\"script\":\"true\"}}]}");
  assert_int_equal(job->n_hosts, 4);
  assert_int_equal(job->concurrency, 2);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 2); /* max concurrency 2 */
  const sent *first = nth_sent(w, ASSIGN, 0);
  assert_string_equal(first->agent, "a1");
  assert_int_equal(first->attempt, 1);
  char tid[200];
  snprintf(tid, sizeof tid, "%s/a1/t", job->id);
  assert_string_equal(first->task_id, tid);
  /* a1's first task ends: its second task goes to a1 (the host keeps its place), nothing new */
  report(w, "a1", job, tid, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 3);
  snprintf(tid, sizeof tid, "%s/a1/u", job->id);
  assert_string_equal(nth_sent(w, ASSIGN, 2)->task_id, tid);
  /* a1 done: a third host starts */
  report(w, "a1", job, tid, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 4);
  assert_string_equal(nth_sent(w, ASSIGN, 3)->agent, "a3");
  assert_int_equal(job->succeeded, 1);
  assert_int_equal(job->running, 2);
  assert_true(w->task_marks > 0);
  world_free(w);
}

static void error_budget_cancels_the_rest(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent(w, "b1", 1, NULL);
  add_agent(w, "b2", 1, NULL);
  add_agent(w, "b3", 1, NULL);
  mu_job *job = submit(w,
                       "{\"target\":{\"all\":true},"
                       "\"rollout\":{\"max_concurrency\":\"1\",\"max_errors\":\"0\"},"
                       "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"false\"}}]}");
  assert_int_equal(job->error_budget, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 1);
  report(w, "b1", job, nth_sent(w, ASSIGN, 0)->task_id, 1, MUSTER__V1__TASK_STATE__FAILED, 1);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 1); /* nothing else starts */
  assert_int_equal(job->failed, 1);
  assert_int_equal(job->cancelled, 2);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_FAILED);
  assert_int_equal(job->hosts[1].tasks[0].state, MUSTER__V1__TASK_STATE__CANCELLED);
  assert_string_equal(job->hosts[1].tasks[0].message, "not started: max errors reached (1 failed, 0 allowed)");
  assert_true(w->job_marks > 0);
  world_free(w);
}

static void any_goes_to_the_most_free_slots(void **state) {
  (void)state;
  world *w = world_new(10000);
  mu_agent *x = add_agent(w, "x", 8, "role=web");
  add_agent(w, "y", 2, "role=web");
  add_agent(w, "z", 3, "role=web");
  add_agent(w, "db", 16, "role=db");
  x->draining = 1; /* most slots, but draining */
  mu_job *job = submit(w,
                       "{\"target\":{\"any\":\"role=web\"},"
                       "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"}}]}");
  assert_int_equal(job->n_hosts, 1);
  assert_null(job->hosts[0].agent_id);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 1);
  assert_string_equal(nth_sent(w, ASSIGN, 0)->agent, "z");
  assert_string_equal(job->hosts[0].agent_id, "z");
  world_free(w);
}

static void disconnected_target_is_unreachable(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent(w, "up", 1, NULL);
  mu_agent *gone = add_agent(w, "gone", 1, NULL);
  mu_registry_set_disconnected(&w->reg, gone, "test");
  mu_job *job = submit(w,
                       "{\"target\":{\"hosts\":[\"up\",\"gone\"]},"
                       "\"rollout\":{\"disconnected_wait\":\"0s\"},"
                       "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"}}]}");
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 1);
  mu_host_run *h = mu_job_host(job, "gone");
  assert_non_null(h);
  assert_int_equal(h->state, MU_HOST_UNREACHABLE);
  assert_int_equal(h->tasks[0].state, MUSTER__V1__TASK_STATE__UNREACHABLE); /* not CANCELLED */
  assert_string_equal(h->tasks[0].message, "not started: agent is disconnected (unreachable)");
  assert_int_equal(job->unreachable, 1);
  assert_int_equal(job->cancelled, 0);
  report(w, "up", job, nth_sent(w, ASSIGN, 0)->task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_FAILED);
  Muster__V1__JobCounts c;
  mu_job_counts_of(job, &c);
  assert_int_equal(c.succeeded, 1);
  assert_int_equal(c.unreachable, 1);
  assert_int_equal(c.skipped, 0);
  world_free(w);
}

/* Unreachable targets count against max_errors as their own state: past the budget the rest
 * is cancelled (CANCELLED), the unreachable ones stay UNREACHABLE. */
static void unreachable_counts_against_max_errors(void **state) {
  (void)state;
  world *w = world_new(10000);
  const char *ids[] = {"d1", "d2", "d3"};
  for (size_t i = 0; i < 3; i++) mu_registry_set_disconnected(&w->reg, add_agent(w, ids[i], 1, NULL), "test");
  add_agent(w, "ok", 1, NULL);
  mu_job *job = submit(w,
                       "{\"target\":{\"hosts\":[\"d1\",\"d2\",\"d3\",\"ok\"]},"
                       "\"rollout\":{\"max_errors\":\"1\",\"max_concurrency\":\"1\"},"
                       "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"}}]}");
  mu_sched_pass(&w->s);
  assert_int_equal(job->unreachable, 2); /* the second one is past max_errors 1 */
  assert_int_equal(job->cancelled, 2);
  assert_int_equal(count_sent(w, ASSIGN), 0);
  assert_int_equal(mu_job_host(job, "d1")->tasks[0].state, MUSTER__V1__TASK_STATE__UNREACHABLE);
  assert_int_equal(mu_job_host(job, "d2")->tasks[0].state, MUSTER__V1__TASK_STATE__UNREACHABLE);
  assert_int_equal(mu_job_host(job, "d3")->tasks[0].state, MUSTER__V1__TASK_STATE__CANCELLED);
  assert_string_equal(mu_job_host(job, "ok")->tasks[0].message,
                      "not started: max errors reached (2 failed, 1 allowed)");
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_FAILED);
  world_free(w);
}

/* skip_unreachable: the unreachable target is skipped (not against max_errors 0) and the job
 * succeeds on the reachable ones; a forgotten agent (not in the registry) is unreachable too. */
static void skip_unreachable_skips(void **state) {
  (void)state;
  world *w = world_new(10000);
  mu_agent *gone = add_agent(w, "gone", 1, NULL);
  add_agent(w, "up", 1, NULL);
  mu_registry_set_disconnected(&w->reg, gone, "test");
  mu_job *job = submit(w,
                       "{\"target\":{\"hosts\":[\"gone\",\"up\"]},"
                       "\"rollout\":{\"max_errors\":\"0\",\"skip_unreachable\":true},"
                       "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"}},"
                       "{\"name\":\"u\",\"shell\":{\"script\":\"true\"}}]}");
  mu_registry_remove(&w->reg, gone); /* forgotten after submit: still a target */
  mu_sched_pass(&w->s);
  mu_host_run *h = mu_job_host(job, "gone");
  assert_int_equal(h->state, MU_HOST_SKIPPED);
  for (size_t t = 0; t < 2; t++) {
    assert_int_equal(h->tasks[t].state, MUSTER__V1__TASK_STATE__UNREACHABLE);
    assert_string_equal(h->tasks[t].message, "skipped: agent is disconnected (unreachable)");
  }
  assert_int_equal(job->skipped, 1);
  assert_int_equal(job->unreachable, 0);
  assert_int_equal(job->cancelled, 0);
  assert_int_equal(count_sent(w, ASSIGN), 1); /* up is not cancelled by max_errors 0 */
  report(w, "up", job, nth_sent(w, ASSIGN, 0)->task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  report(w, "up", job, nth_sent(w, ASSIGN, 1)->task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_SUCCEEDED);
  Muster__V1__JobCounts c;
  mu_job_counts_of(job, &c);
  assert_int_equal(c.skipped, 1);
  assert_int_equal(c.pending, 0);
  assert_int_equal(mu_job_counts_problems(&c), 0);
  /* a recount from records (another leader) gives the same */
  mu_sched_recount(job);
  assert_int_equal(job->skipped, 1);
  assert_int_equal(job->succeeded, 1);
  world_free(w);
}

/* The GC decision: only disconnected agents, past after_ms since last heard from (or since the
 * member started, whichever is later); 0 = never. */
static void agent_gc_decision(void **state) {
  (void)state;
  world *w = world_new(10000);
  mu_agent *a = add_agent(w, "g", 1, NULL);
  a->last_heartbeat_ms = 1000;
  assert_false(mu_agent_gc_due(a, 500, 0, 100000)); /* connected */
  mu_registry_set_disconnected(&w->reg, a, "test");
  assert_true(mu_agent_gc_due(a, 500, 0, 100000));
  assert_false(mu_agent_gc_due(a, 0, 0, 100000));       /* 0: never */
  assert_false(mu_agent_gc_due(a, 500, 0, 1400));       /* 400ms: not yet */
  assert_false(mu_agent_gc_due(a, 500, 99800, 100000)); /* started 200ms ago */
  assert_true(mu_agent_gc_due(a, 500, 99000, 100000));
  mu_registry_remove(&w->reg, a);
  assert_null(mu_registry_find(&w->reg, "g"));
  assert_int_equal(w->reg.n, 0);
  world_free(w);
}

static void vanished_agent_task_is_lost(void **state) {
  (void)state;
  world *w = world_new(1); /* grace: 1 ms */
  mu_agent *a = add_agent(w, "v", 1, NULL);
  mu_job *job = submit(w,
                       "{\"target\":{\"hosts\":[\"v\"]},"
                       "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"sleep 9\"}}]}");
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 1);
  mu_registry_set_disconnected(&w->reg, a, "test");
  mu_sched_on_agent_down(&w->s, a);
  usleep(20 * 1000);
  mu_sched_pass(&w->s);
  assert_int_equal(job->hosts[0].tasks[0].state, MUSTER__V1__TASK_STATE__LOST);
  assert_int_equal(job->hosts[0].state, MU_HOST_FAILED);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_FAILED);
  world_free(w);
}

static void failed_attempt_is_retried_after_backoff(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent(w, "r", 1, NULL);
  mu_job *job = submit(w,
                       "{\"target\":{\"hosts\":[\"r\"]},\"tasks\":[{\"name\":\"t\","
                       "\"retries\":1,\"backoff\":{\"initial\":\"10ms\"},"
                       "\"shell\":{\"script\":\"false\"}}]}");
  mu_sched_pass(&w->s);
  const sent *a1 = nth_sent(w, ASSIGN, 0);
  assert_non_null(a1);
  report(w, "r", job, a1->task_id, 1, MUSTER__V1__TASK_STATE__FAILED, 1);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 1); /* still backing off */
  usleep(30 * 1000);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 2);
  assert_int_equal(nth_sent(w, ASSIGN, 1)->attempt, 2);
  assert_false(mu_job_finished(job));
  world_free(w);
}

static void cancel_stops_running_and_pending(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent(w, "c1", 1, NULL);
  add_agent(w, "c2", 1, NULL);
  mu_job *job = submit(w,
                       "{\"target\":{\"all\":true},\"rollout\":{\"max_concurrency\":\"1\"},"
                       "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"sleep 9\"}}]}");
  mu_sched_pass(&w->s);
  uint32_t n = 0;
  mu_err err = {0};
  assert_int_equal(mu_sched_cancel(&w->s, job, "", &n, &err), 0);
  assert_int_equal(n, 2);
  assert_int_equal(count_sent(w, CANCEL), 1); /* the running one is told; CANCELLED comes back */
  assert_string_equal(nth_sent(w, CANCEL, 0)->agent, "c1");
  assert_string_equal(job->hosts[1].tasks[0].message, "cancelled by an operator");
  report(w, "c1", job, nth_sent(w, CANCEL, 0)->task_id, 1, MUSTER__V1__TASK_STATE__CANCELLED, 0);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_CANCELLED);
  assert_int_equal(mu_sched_cancel(&w->s, job, "", &n, &err), MU_EINVAL);
  world_free(w);
}

/* --- resource-aware placement --- */

/* add_agent with a declared CPU capacity (millicores). */
static mu_agent *add_agent_cpu(world *w, const char *id, uint32_t slots, uint32_t cpu_millis, const char *labels) {
  mu_agent *a = add_agent(w, id, slots, labels);
  a->hello_msg->hello->capacity->cpu_millis = cpu_millis;
  return a;
}

/* Submits a one-task job on any role=web agent (target_extra: more target fields) requesting
 * cpu millicores. */
static mu_job *submit_cpu(world *w, const char *target_extra, uint32_t cpu) {
  char json[512];
  snprintf(json, sizeof json,
           "{\"target\":{\"any\":\"role=web\"%s},\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":"
           "\"true\"},\"resources\":{\"requests\":{\"cpu\":%u}}}]}",
           target_extra, cpu);
  return submit(w, json);
}

/* How many ASSIGNs went to agent id so far. */
static uint32_t assigned_to(const world *w, const char *id) {
  uint32_t n = 0;
  for (size_t i = 0; i < w->n_out; i++) n += w->out[i].kind == ASSIGN && strcmp(w->out[i].agent, id) == 0;
  return n;
}

static void placement_never_overcommits_and_waits(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent_cpu(w, "a", 16, 4000, "role=web");
  add_agent_cpu(w, "b", 16, 2000, "role=web");
  add_agent_cpu(w, "c", 16, 1500, "role=web");
  add_agent_cpu(w, "db", 16, 64000, "role=db");
  mu_job *jobs[10];
  for (size_t i = 0; i < 10; i++) jobs[i] = submit_cpu(w, "", 1000);
  mu_sched_pass(&w->s);
  /* 4 + 2 + 1: never more CPU than an agent declares */
  assert_int_equal(count_sent(w, ASSIGN), 7);
  assert_int_equal(assigned_to(w, "a"), 4);
  assert_int_equal(assigned_to(w, "b"), 2);
  assert_int_equal(assigned_to(w, "c"), 1);
  assert_int_equal(assigned_to(w, "db"), 0);
  mu_job *waiting = jobs[7];
  assert_null(waiting->hosts[0].agent_id);
  assert_string_equal(waiting->hosts[0].tasks[0].message,
                      "waiting: no agent with 1 CPU free among 3 matching (best: c with 0.5)");
  /* another pass changes nothing; a task ending on b frees 1 CPU: the oldest waiting starts */
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 7);
  const sent *on_b = NULL;
  for (size_t k = 0; (on_b = nth_sent(w, ASSIGN, k)) != NULL; k++)
    if (strcmp(on_b->agent, "b") == 0) break;
  char job_id[64];
  snprintf(job_id, sizeof job_id, "%.*s", (int)strcspn(on_b->task_id, "/"), on_b->task_id);
  mu_job *done = mu_sched_find(&w->s, job_id);
  assert_non_null(done);
  report(w, "b", done, on_b->task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 8);
  assert_string_equal(nth_sent(w, ASSIGN, 7)->agent, "b");
  assert_string_equal(waiting->hosts[0].agent_id, "b");
  assert_null(waiting->hosts[0].tasks[0].message); /* the reason is gone once placed */
  assert_non_null(jobs[8]->hosts[0].tasks[0].message);
  world_free(w);
}

static void spread_and_binpack_differ(void **state) {
  (void)state;
  for (int binpack = 0; binpack <= 1; binpack++) {
    world *w = world_new(10000);
    add_agent_cpu(w, "w1", 8, 4000, "role=web");
    add_agent_cpu(w, "w2", 8, 4000, "role=web");
    add_agent_cpu(w, "w3", 8, 4000, "role=web");
    add_agent_cpu(w, "w4", 8, 4000, "role=web");
    for (size_t i = 0; i < 4; i++) {
      submit_cpu(w, binpack ? ",\"strategy\":\"binpack\"" : "", 1000);
      mu_sched_pass(&w->s); /* one at a time: each decision sees the last */
    }
    assert_int_equal(count_sent(w, ASSIGN), 4);
    size_t used = (assigned_to(w, "w1") > 0) + (assigned_to(w, "w2") > 0) + (assigned_to(w, "w3") > 0) +
                  (assigned_to(w, "w4") > 0);
    assert_int_equal(used, binpack ? 1 : 4);
    world_free(w);
  }
}

static void count_places_on_distinct_agents(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent_cpu(w, "w1", 8, 4000, "role=web");
  add_agent_cpu(w, "w2", 8, 4000, "role=web");
  add_agent_cpu(w, "w3", 8, 4000, "role=web");
  add_agent_cpu(w, "w4", 8, 4000, "role=web");
  mu_job *job = submit_cpu(w, ",\"count\":3,\"strategy\":\"binpack\"", 500);
  assert_int_equal(job->n_hosts, 3);
  assert_string_not_equal(job->hosts[0].tasks[0].task_id, job->hosts[1].tasks[0].task_id);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 3); /* binpack, yet three distinct agents */
  assert_true(strcmp(job->hosts[0].agent_id, job->hosts[1].agent_id) != 0);
  assert_true(strcmp(job->hosts[0].agent_id, job->hosts[2].agent_id) != 0);
  assert_true(strcmp(job->hosts[1].agent_id, job->hosts[2].agent_id) != 0);
  world_free(w);
}

/* Submits json expecting a refusal containing want. */
static void refused(world *w, const char *json, const char *want) {
  json_t *j = json_loads(json, 0, NULL);
  assert_non_null(j);
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  assert_int_equal(mu_pbjson_from_json(&muster__v1__job_spec__descriptor, j, (ProtobufCMessage **)&spec, &err), 0);
  json_decref(j);
  mu_job *job = NULL;
  assert_int_equal(mu_sched_submit(&w->s, spec, NULL, &job, &err), MU_EINVAL);
  if (strstr(err.msg, want) == NULL) fail_msg("'%s' does not say '%s'", err.msg, want);
}

static void oversized_requests_refused_at_submit(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent_cpu(w, "w1", 8, 4000, "role=web");
  add_agent_cpu(w, "w2", 8, 16000, "role=web");
  add_agent_cpu(w, "db", 8, 64000, "role=db");
  const char *t =
      "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"},"
      "\"resources\":{\"requests\":{\"cpu\":32000}}}]}";
  char json[512];
  snprintf(json, sizeof json, "{\"target\":{\"any\":\"role=web\"},%s", t);
  refused(w, json, "32 CPU is more than any agent matching 'role=web' has (largest: w2 with 16 CPU)");
  snprintf(json, sizeof json, "{\"target\":{\"hosts\":[\"w1\"]},%s", t);
  refused(w, json, "target w1 has 4 CPU in all, a host of this job needs 32 CPU");
  snprintf(json, sizeof json, "{\"target\":{\"any\":\"role=web\",\"count\":3},%s", t);
  refused(w, json, "target.count: 3, but 'role=web' matches 2 agents");
  snprintf(json, sizeof json, "{\"target\":{\"any\":\"role=web\",\"strategy\":\"tight\"},%s", t);
  refused(w, json, "target.strategy: expected spread or binpack, got \"tight\"");
  snprintf(json, sizeof json, "{\"target\":{\"all\":true,\"count\":2},%s", t);
  refused(w, json, "target.count: only with target.any");
  snprintf(json, sizeof json,
           "{\"target\":{\"any\":\"role=web\"},\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":"
           "\"true\"},\"resources\":{\"requests\":{\"devices\":{\"gpu\":1}}}}]}");
  refused(w, json, "1 devices.gpu is more than any agent matching 'role=web' has (largest: w1 with 0 devices.gpu)");
  assert_int_equal(w->s.n_jobs, 0); /* nothing partial */
  world_free(w);
}

static void named_target_waits_for_capacity(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent_cpu(w, "w1", 8, 2000, "role=web");
  mu_job *a = submit(w,
                     "{\"target\":{\"hosts\":[\"w1\"]},\"tasks\":[{\"name\":\"t\",\"shell\":"
                     "{\"script\":\"true\"},\"resources\":{\"requests\":{\"cpu\":1500}}}]}");
  mu_job *b = submit(w,
                     "{\"target\":{\"hosts\":[\"w1\"]},\"tasks\":[{\"name\":\"t\",\"shell\":"
                     "{\"script\":\"true\"},\"resources\":{\"requests\":{\"cpu\":1000}}}]}");
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 1);
  assert_int_equal(b->hosts[0].state, MU_HOST_PENDING);
  assert_string_equal(b->hosts[0].tasks[0].message, "waiting: w1 has 0.5 CPU free, a host of this job needs 1 CPU");
  report(w, "w1", a, nth_sent(w, ASSIGN, 0)->task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 2);
  assert_int_equal(b->hosts[0].state, MU_HOST_RUNNING);
  world_free(w);
}

static void fleet_wide_type_limit(void **state) {
  (void)state;
  world *w = world_new(10000);
  snprintf(w->s.cfg.type_limits[0].type, MU_SCHED_TYPE_NAME, "shell");
  w->s.cfg.type_limits[0].max = 2;
  w->s.cfg.n_type_limits = 1;
  add_agent(w, "a1", 4, NULL);
  add_agent(w, "a2", 4, NULL);
  add_agent(w, "a3", 4, NULL);
  mu_job *job = submit(w,
                       "{\"target\":{\"all\":true},"
                       "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"}}]}");
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 2); /* three agents free, two shell tasks allowed */
  mu_host_run *third = mu_job_host(job, "a3");
  assert_int_equal(third->state, MU_HOST_PENDING);
  assert_string_equal(third->tasks[0].message,
                      "waiting: fleet-wide limit of 2 running shell tasks reached (type_limits)");
  report(w, "a1", job, nth_sent(w, ASSIGN, 0)->task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 3);
  assert_string_equal(nth_sent(w, ASSIGN, 2)->agent, "a3");
  world_free(w);
}

static void priority_with_aging(void **state) {
  (void)state;
  for (int aging = 0; aging <= 1; aging++) {
    world *w = world_new(10000);
    w->s.cfg.priority_aging_ms = aging ? 60000 : 0;
    add_agent(w, "only", 1, NULL);
    mu_job *old_low = submit(w,
                             "{\"target\":{\"all\":true},\"priority\":0,"
                             "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"}}]}");
    mu_job *new_high = submit(w,
                              "{\"target\":{\"all\":true},\"priority\":5,"
                              "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"}}]}");
    old_low->created_at_ms -= 10 * 60000; /* waited 10 minutes: +10 with aging per minute */
    mu_sched_pass(&w->s);
    assert_int_equal(count_sent(w, ASSIGN), 1); /* one slot: the order decides */
    char want[200];
    snprintf(want, sizeof want, "%s/only/t", aging ? old_low->id : new_high->id);
    assert_string_equal(nth_sent(w, ASSIGN, 0)->task_id, want);
    world_free(w);
  }
}

static void low_priority_held_under_saturation(void **state) {
  (void)state;
  world *w = world_new(10000);
  w->s.cfg.hold_above = 50;
  w->s.cfg.hold_priority_floor = 1;
  add_agent(w, "a1", 2, NULL);
  add_agent(w, "a2", 2, NULL);
  mu_job *busy = submit(w,
                        "{\"target\":{\"hosts\":[\"a1\", \"a2\"]},\"priority\":5,"
                        "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"}}]}");
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 2);
  /* half the slots busy: not past 50%: a second high-priority job still starts a host... */
  mu_job *high = submit(w,
                        "{\"target\":{\"hosts\":[\"a1\"]},\"priority\":5,"
                        "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"}}]}");
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 3);
  /* ...now 75% busy: a priority-0 job is held, saying why, though a2 has a free slot */
  mu_job *low = submit(w,
                       "{\"target\":{\"hosts\":[\"a2\"]},\"priority\":0,"
                       "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"}}]}");
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 3);
  assert_int_equal(low->hosts[0].state, MU_HOST_PENDING);
  assert_non_null(strstr(low->hosts[0].tasks[0].message, "held: the fleet is 75% busy (hold_above 50%)"));
  assert_int_equal(low->state, MUSTER__V1__JOB_STATE__JOB_HELD);
  /* load falls: it resumes by itself */
  report(w, "a1", busy, nth_sent(w, ASSIGN, 0)->task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  report(w, "a1", high, nth_sent(w, ASSIGN, 2)->task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 4);
  assert_string_equal(nth_sent(w, ASSIGN, 3)->agent, "a2");
  assert_int_equal(low->hosts[0].state, MU_HOST_RUNNING);
  world_free(w);
}

static mu_job *submit_q(world *w, const char *queue, const char *host, int priority) {
  char json[400];
  snprintf(json, sizeof json,
           "{\"target\":{\"hosts\":[\"%s\"]},\"queue\":\"%s\",\"priority\":%d,"
           "\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"true\"}}]}",
           host, queue, priority);
  return submit(w, json);
}

static void queues_share_and_limit(void **state) {
  (void)state;
  world *w = world_new(10000);
  mu_err err = {0};
  assert_int_equal(mu_queue_table_set(&w->s.cfg.queues, "etl", 3, 0, &err), 0);
  assert_int_equal(mu_queue_table_set(&w->s.cfg.queues, "adhoc", 1, 2, &err), 0);
  add_agent(w, "a1", 8, NULL);
  /* an unknown queue is refused at submit, the known ones named */
  json_t *j = json_loads(
      "{\"target\":{\"all\":true},\"queue\":\"web\",\"tasks\":[{\"name\":\"t\","
      "\"shell\":{\"script\":\"true\"}}]}",
      0, NULL);
  Muster__V1__JobSpec *spec = NULL;
  assert_int_equal(mu_pbjson_from_json(&muster__v1__job_spec__descriptor, j, (ProtobufCMessage **)&spec, &err), 0);
  json_decref(j);
  mu_job *bad = NULL;
  assert_int_equal(mu_sched_submit(&w->s, spec, NULL, &bad, &err), MU_EINVAL);
  assert_string_equal(err.msg, "queue: no queue 'web' (known: default, etl, adhoc)");
  /* 8 slots; etl (weight 3) and default (weight 1) each have 8 one-host jobs, adhoc 4 */
  mu_job *etl[8], *dflt[8], *adhoc[4];
  for (int i = 0; i < 8; i++) etl[i] = submit_q(w, "etl", "a1", 0);
  for (int i = 0; i < 8; i++) dflt[i] = submit_q(w, "", "a1", 0);
  for (int i = 0; i < 4; i++) adhoc[i] = submit_q(w, "adhoc", "a1", 0);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 8);
  int n_etl = 0, n_dflt = 0, n_adhoc = 0;
  for (int i = 0; i < 8; i++) n_etl += etl[i]->running, n_dflt += dflt[i]->running;
  for (int i = 0; i < 4; i++) n_adhoc += adhoc[i]->running;
  /* weights 3:1:1 over 8 slots, adhoc capped at 2 */
  assert_true(n_etl >= 4 && n_etl <= 5);
  assert_true(n_dflt >= 1 && n_dflt <= 2);
  assert_int_equal(n_adhoc, 2);
  assert_int_equal(n_etl + n_dflt + n_adhoc, 8);
  /* adhoc's first two jobs (oldest first) run; the others say why they wait */
  assert_int_equal(adhoc[0]->running + adhoc[1]->running, 2);
  assert_string_equal(adhoc[3]->hosts[0].tasks[0].message, "waiting: queue 'adhoc' at its limit of 2 running");
  /* room frees: a pass never takes adhoc past 2 */
  report(w, "a1", etl[0], etl[0]->hosts[0].tasks[0].task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  n_adhoc = 0;
  for (int i = 0; i < 4; i++) n_adhoc += adhoc[i]->running;
  assert_int_equal(n_adhoc, 2);
  assert_int_equal(count_sent(w, ASSIGN), 9);
  world_free(w);
}

static void priority_within_a_queue_with_aging(void **state) {
  (void)state;
  world *w = world_new(10000);
  mu_err err = {0};
  w->s.cfg.priority_aging_ms = 60000;
  assert_int_equal(mu_queue_table_set(&w->s.cfg.queues, "etl", 1, 1, &err), 0);
  add_agent(w, "a1", 4, NULL);
  mu_job *low = submit_q(w, "etl", "a1", 0);
  mu_job *high = submit_q(w, "etl", "a1", 5);
  mu_job *old = submit_q(w, "etl", "a1", 0);
  old->created_at_ms -= 10 * 60000; /* aged +10: first */
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 1);
  assert_int_equal(old->running, 1);
  report(w, "a1", old, old->hosts[0].tasks[0].task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(high->running, 1); /* then the higher priority */
  assert_int_equal(low->running, 0);
  assert_string_equal(low->hosts[0].tasks[0].message, "waiting: queue 'etl' at its limit of 1 running");
  world_free(w);
}

static void held_state_by_hand_and_by_load(void **state) {
  (void)state;
  world *w = world_new(10000);
  mu_err err = {0};
  add_agent(w, "a1", 2, NULL);
  mu_job *job = submit_q(w, "", "a1", 0);
  assert_int_equal(mu_sched_hold(&w->s, job, 1, &err), 0);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_HELD);
  assert_int_equal(mu_sched_hold(&w->s, job, 1, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "already held"));
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 0);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_HELD);
  assert_false(mu_job_finished(job));
  assert_non_null(strstr(job->hosts[0].tasks[0].message, "held: by an operator"));
  assert_int_equal(mu_sched_hold(&w->s, job, 0, &err), 0);
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 1);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_RUNNING);
  assert_int_equal(mu_sched_hold(&w->s, job, 0, &err), MU_EINVAL);
  /* degradation: the fleet past hold_above makes a low job HELD, and RUNNING when load falls */
  w->s.cfg.hold_above = 40;
  w->s.cfg.hold_priority_floor = 1;
  mu_job *low = submit_q(w, "", "a1", 0);
  mu_sched_pass(&w->s);
  assert_int_equal(low->state, MUSTER__V1__JOB_STATE__JOB_HELD);
  assert_int_equal(count_sent(w, ASSIGN), 1);
  report(w, "a1", job, job->hosts[0].tasks[0].task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(low->state, MUSTER__V1__JOB_STATE__JOB_RUNNING);
  assert_int_equal(count_sent(w, ASSIGN), 2);
  /* a finished job cannot be held */
  report(w, "a1", low, low->hosts[0].tasks[0].task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  assert_int_equal(mu_sched_hold(&w->s, low, 1, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "already finished"));
  world_free(w);
}

/* --- stages (stage_run.h) --- */

#define STAGE_JSON(name, extra, sel, task, script)                                                     \
  "{\"name\":\"" name "\",\"target\":{\"selector\":\"" sel "\"}" extra ",\"tasks\":[{\"name\":\"" task \
  "\",\"shell\":{\"script\":\"" script "\"}}]}"

static mu_job *stage_job(world *w, const mu_job *job, const char *stage) {
  char id[128];
  snprintf(id, sizeof id, "%s.%s", job->id, stage);
  return mu_sched_find(&w->s, id);
}

/* The agent's output param key=value for its current attempt of task_id. */
static void report_param(world *w, const char *agent_id, mu_job *job, const char *task_id, const char *key,
                         const char *value) {
  Muster__V1__TaskEvent ev = MUSTER__V1__TASK_EVENT__INIT;
  Muster__V1__OutputParams op = MUSTER__V1__OUTPUT_PARAMS__INIT;
  Muster__V1__OutputParams__ParamsEntry e = MUSTER__V1__OUTPUT_PARAMS__PARAMS_ENTRY__INIT, *ep = &e;
  e.key = (char *)key;
  e.value = (char *)value;
  op.n_params = 1;
  op.params = &ep;
  ev.job_id = job->id;
  ev.task_id = (char *)task_id;
  ev.attempt = 1;
  ev.sequence = 100000;
  ev.event_case = MUSTER__V1__TASK_EVENT__EVENT_PARAMS;
  ev.params = &op;
  mu_sched_on_event(&w->s, mu_registry_find(&w->reg, agent_id), &ev);
}

static void stages_advance_by_when(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent(w, "lb", 2, "role=lb");
  add_agent(w, "web", 2, "role=web");
  mu_job *job = submit(
      w,
      "{\"name\":\"p\",\"stages\":[" STAGE_JSON("a", "", "role=lb", "t", "x") "," STAGE_JSON(
          "b", "", "role=web", "u",
          "echo ${stages.a.lb.t.port} ${stages.a.ok_hosts}") "," STAGE_JSON("c", "", "role=web", "v",
                                                                            "x") "," STAGE_JSON("d",
                                                                                                ",\"when\":\"always\"",
                                                                                                "role=lb", "w",
                                                                                                "echo "
                                                                                                "${stages.b.failed_"
                                                                                                "hosts}") "]}");
  assert_int_equal(job->n_hosts, 0);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_RUNNING);
  mu_sched_pass(&w->s); /* stage a starts, and is dispatched in the same pass */
  mu_job *a = stage_job(w, job, "a");
  assert_non_null(a);
  assert_null(stage_job(w, job, "b"));
  assert_int_equal(job->stage_runs[0].state, MU_STAGE_RUNNING);
  assert_int_equal(count_sent(w, ASSIGN), 1);
  assert_string_equal(nth_sent(w, ASSIGN, 0)->agent, "lb");
  char tid[200];
  snprintf(tid, sizeof tid, "%s", nth_sent(w, ASSIGN, 0)->task_id);
  report_param(w, "lb", a, tid, "port", "8080");
  report(w, "lb", a, tid, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  assert_int_equal(a->state, MUSTER__V1__JOB_STATE__JOB_SUCCEEDED);
  mu_sched_pass(&w->s); /* a recorded, b started with a's values */
  assert_int_equal(job->stage_runs[0].state, MU_STAGE_SUCCEEDED);
  mu_job *b = stage_job(w, job, "b");
  assert_non_null(b);
  assert_string_equal(b->spec->tasks[0]->shell->script, "echo 8080 lb");
  assert_int_equal(count_sent(w, ASSIGN), 2);
  report(w, "web", b, nth_sent(w, ASSIGN, 1)->task_id, 1, MUSTER__V1__TASK_STATE__FAILED, 1);
  mu_sched_pass(&w->s); /* b failed: c (success) skipped, d (always) started */
  assert_int_equal(job->stage_runs[1].state, MU_STAGE_FAILED);
  assert_int_equal(job->stage_runs[2].state, MU_STAGE_SKIPPED);
  assert_string_equal(job->stage_runs[2].message, "an earlier stage failed");
  assert_null(stage_job(w, job, "c"));
  mu_job *d = stage_job(w, job, "d");
  assert_non_null(d);
  assert_string_equal(d->spec->tasks[0]->shell->script, "echo web");
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_RUNNING);
  report(w, "lb", d, nth_sent(w, ASSIGN, 2)->task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(job->stage_runs[3].state, MU_STAGE_SUCCEEDED);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_FAILED);
  assert_int_equal(count_sent(w, ASSIGN), 3); /* c never ran */

  /* the view names each stage, its state and its job's counts */
  Muster__V1__Job *view = mu_job_view(job, 0);
  mu_stage_run_view(&w->s, job, view);
  assert_int_equal(view->n_stages, 4);
  assert_string_equal(view->stages[1]->state, "failed");
  assert_string_equal(view->stages[1]->job_id, b->id);
  assert_int_equal(view->stages[1]->counts->failed, 1);
  assert_int_equal(view->counts->targets, 3); /* a, b and d: one target each */
  assert_int_equal(view->counts->succeeded, 2);
  assert_int_equal(view->counts->failed, 1);
  assert_string_equal(view->stages[2]->job_id, "");
  mu_job_view_free(view);
  view = mu_job_view(b, 0);
  assert_string_equal(view->parent_job, job->id);
  assert_string_equal(view->stage, "b");
  mu_job_view_free(view);
  world_free(w);
}

static void stages_recover_and_cancel(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent(w, "web", 2, "role=web");
  mu_job *job = submit(w, "{\"stages\":[" STAGE_JSON("a", "", "role=web", "t", "x") "," STAGE_JSON(
                              "b", ",\"when\":\"always\"", "role=web", "u", "x") "]}");
  mu_sched_pass(&w->s);
  mu_job *a = stage_job(w, job, "a");
  assert_non_null(a);
  /* a new leader whose job record lagged: the stage job that exists is the stage running */
  job->stage_runs[0].state = MU_STAGE_PENDING;
  mu_sched_pass(&w->s);
  assert_int_equal(job->stage_runs[0].state, MU_STAGE_RUNNING);
  assert_ptr_equal(stage_job(w, job, "a"), a); /* not started twice */
  assert_int_equal(count_sent(w, ASSIGN), 1);

  uint32_t n = 0;
  mu_err err = {0};
  assert_int_equal(mu_sched_cancel(&w->s, job, "stop", &n, &err), 0);
  assert_int_equal(count_sent(w, CANCEL), 1);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_RUNNING); /* until its stage job ends */
  report(w, "web", a, nth_sent(w, CANCEL, 0)->task_id, 1, MUSTER__V1__TASK_STATE__CANCELLED, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_CANCELLED);
  assert_int_equal(job->stage_runs[0].state, MU_STAGE_CANCELLED);
  assert_int_equal(job->stage_runs[1].state, MU_STAGE_CANCELLED); /* even with when: always */
  assert_null(stage_job(w, job, "b"));
  world_free(w);
}

/* Held, a job with stages starts no further stage until released; cancelled while it waits
 * for its `after`, it ends at once. */
static void stages_hold_and_cancel_while_waiting(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent(w, "web", 2, "role=web");
  mu_job *job = submit(
      w, "{\"stages\":[" STAGE_JSON("a", "", "role=web", "t", "x") "," STAGE_JSON("b", "", "role=web", "u", "x") "]}");
  mu_sched_pass(&w->s);
  mu_job *a = stage_job(w, job, "a");
  mu_err err = {0};
  assert_int_equal(mu_sched_hold(&w->s, job, 1, &err), 0);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_HELD);
  report(w, "web", a, nth_sent(w, ASSIGN, 0)->task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(job->stage_runs[0].state, MU_STAGE_SUCCEEDED);
  assert_null(stage_job(w, job, "b")); /* held: b waits */
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_HELD);
  assert_int_equal(mu_sched_hold(&w->s, job, 0, &err), 0);
  mu_sched_pass(&w->s);
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_RUNNING);
  assert_non_null(stage_job(w, job, "b"));

  char json[600];
  snprintf(json, sizeof json, "{\"after\":[\"%s\"],\"stages\":[" STAGE_JSON("c", "", "role=web", "v", "x") "]}",
           job->id);
  mu_job *later = submit(w, json);
  mu_sched_pass(&w->s);
  assert_int_equal(later->state, MUSTER__V1__JOB_STATE__JOB_PENDING);
  uint32_t n = 0;
  assert_int_equal(mu_sched_cancel(&w->s, later, "not now", &n, &err), 0);
  assert_int_equal(later->state, MUSTER__V1__JOB_STATE__JOB_CANCELLED);
  assert_int_equal(later->stage_runs[0].state, MU_STAGE_CANCELLED);
  assert_null(stage_job(w, later, "c"));
  world_free(w);
}

/* A scoped operator's stage with an `any` target runs inside its scope, later as at submit. */
static void scoped_any_stage_stays_in_scope(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent(w, "in", 2, "role=web,team=a");
  add_agent(w, "out", 4, "role=web,team=b");
  json_t *j = json_loads(
      "{\"stages\":[{\"name\":\"a\",\"target\":{\"any\":\"role=web\"},\"tasks\":[{"
      "\"name\":\"t\",\"shell\":{\"script\":\"x\"}}]}]}",
      0, NULL);
  Muster__V1__JobSpec *spec = NULL;
  mu_err err = {0};
  assert_int_equal(mu_pbjson_from_json(&muster__v1__job_spec__descriptor, j, (ProtobufCMessage **)&spec, &err), 0);
  json_decref(j);
  mu_caller caller = {.kind = MU_CALLER_TOKEN, .role = MU_ACCESS_OPERATOR};
  snprintf(caller.scope, sizeof caller.scope, "team=a");
  mu_job *job = NULL;
  assert_int_equal(mu_sched_submit(&w->s, spec, &caller, &job, &err), 0);
  assert_string_equal(job->spec->stages[0]->target->any, "role=web,team=a");
  mu_sched_pass(&w->s);
  assert_int_equal(count_sent(w, ASSIGN), 1);
  assert_string_equal(nth_sent(w, ASSIGN, 0)->agent, "in"); /* not "out", with more free slots */
  world_free(w);
}

/* A stage that cannot start (its values are missing) fails with the reason; the job goes on. */
static void stage_without_its_values_fails(void **state) {
  (void)state;
  world *w = world_new(10000);
  add_agent(w, "web", 2, "role=web");
  mu_job *job = submit(w, "{\"stages\":[" STAGE_JSON("a", "", "role=web", "t", "x") "," STAGE_JSON(
                              "b", "", "role=web", "u", "echo ${stages.a.web.t.nokey}") "]}");
  mu_sched_pass(&w->s);
  mu_job *a = stage_job(w, job, "a");
  report(w, "web", a, nth_sent(w, ASSIGN, 0)->task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  mu_sched_pass(&w->s);
  assert_int_equal(job->stage_runs[1].state, MU_STAGE_FAILED);
  assert_string_equal(job->stage_runs[1].message,
                      "not started: stages[1].tasks[0].shell.script: ${stages.a.web.t.nokey}: task 't' on web set "
                      "no output 'nokey' in stage 'a'");
  assert_int_equal(job->state, MUSTER__V1__JOB_STATE__JOB_FAILED);
  world_free(w);
}

/* Retention keeps a finished job that a waiting job names in `after`, and the stage jobs of a
 * job with stages that has not ended; once nothing needs them they go like any other. */
static void needed_jobs_survive_retention(void **state) {
  (void)state;
  world *w = world_new(10000);
  w->s.cfg.retention = (mu_retention){.max_kept = 1, .min_age_ms = 0, .hard_cap = 3};
  add_agent(w, "a1", 1, NULL);
  add_agent(w, "b1", 1, "role=b");
  mu_job *dep =
      submit(w, "{\"target\":{\"hosts\":[\"a1\"]},\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"x\"}}]}");
  char dep_id[64];
  snprintf(dep_id, sizeof dep_id, "%s", dep->id);
  char json[400];
  snprintf(json, sizeof json,
           "{\"after\":[\"%s\"],\"target\":{\"hosts\":[\"b1\"]},\"tasks\":[{\"name\":\"t\",\"shell\":{"
           "\"script\":\"x\"}}]}",
           dep_id);
  mu_job *waiter = submit(w, json);
  mu_sched_pass(&w->s);
  w->s.jobs_evicted = 0;
  /* the dependency ends; the waiter's next pass has not run yet: dep is still needed */
  report(w, "a1", dep, nth_sent(w, ASSIGN, 0)->task_id, 1, MUSTER__V1__TASK_STATE__SUCCEEDED, 0);
  for (int i = 0; i < 3; i++) { /* finished filler jobs past max_kept */
    mu_job *f =
        submit(w, "{\"target\":{\"hosts\":[\"a1\"]},\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"x\"}}]}");
    f->state = MUSTER__V1__JOB_STATE__JOB_SUCCEEDED;
  }
  assert_true(w->s.jobs_evicted >= 1); /* fillers went */
  assert_non_null(mu_sched_find(&w->s, dep_id));
  assert_int_equal(waiter->deps_done, 0);
  mu_sched_pass(&w->s); /* the waiter starts: its dependency is no longer needed */
  assert_int_equal(waiter->deps_done, 1);
  submit(w, "{\"target\":{\"hosts\":[\"a1\"]},\"tasks\":[{\"name\":\"t\",\"shell\":{\"script\":\"x\"}}]}");
  assert_null(mu_sched_find(&w->s, dep_id));
  world_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(stages_advance_by_when),
      cmocka_unit_test(needed_jobs_survive_retention),
      cmocka_unit_test(stages_recover_and_cancel),
      cmocka_unit_test(scoped_any_stage_stays_in_scope),
      cmocka_unit_test(stages_hold_and_cancel_while_waiting),
      cmocka_unit_test(stage_without_its_values_fails),
      cmocka_unit_test(concurrency_and_slots),
      cmocka_unit_test(error_budget_cancels_the_rest),
      cmocka_unit_test(any_goes_to_the_most_free_slots),
      cmocka_unit_test(placement_never_overcommits_and_waits),
      cmocka_unit_test(spread_and_binpack_differ),
      cmocka_unit_test(count_places_on_distinct_agents),
      cmocka_unit_test(oversized_requests_refused_at_submit),
      cmocka_unit_test(named_target_waits_for_capacity),
      cmocka_unit_test(fleet_wide_type_limit),
      cmocka_unit_test(priority_with_aging),
      cmocka_unit_test(low_priority_held_under_saturation),
      cmocka_unit_test(queues_share_and_limit),
      cmocka_unit_test(priority_within_a_queue_with_aging),
      cmocka_unit_test(held_state_by_hand_and_by_load),
      cmocka_unit_test(disconnected_target_is_unreachable),
      cmocka_unit_test(unreachable_counts_against_max_errors),
      cmocka_unit_test(skip_unreachable_skips),
      cmocka_unit_test(agent_gc_decision),
      cmocka_unit_test(vanished_agent_task_is_lost),
      cmocka_unit_test(failed_attempt_is_retried_after_backoff),
      cmocka_unit_test(cancel_stops_running_and_pending),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
