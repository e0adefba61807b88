/* Tests for bench/fleet against a fake AgentGateway in the same process: each simulated agent
 * says Hello, and answers two Assigns with STARTING, RUNNING, its id as stdout and SUCCEEDED,
 * with sequence numbers increasing per agent across both tasks; Acks are counted. Over mTLS
 * each agent comes on a connection of its own with a certificate naming its id. */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/fleet.h"
#include "bench/setup.h"
#include "lib/pki/pki.h"
#include "muster/v1/agent.pb-c.h"

#define AGENTS 3
#define TASKS 2
#define EVENTS_PER_TASK 4

typedef struct seen_event {
  char task_id[32];
  uint64_t sequence;
  int kind; /* MUSTER__V1__TASK_EVENT__EVENT_* */
  int state;
  int exit_code;
  char output[64];
} seen_event;

typedef struct fake_agent {
  struct fixture *f;
  mu_rpc_call *call;
  char id[64];
  char uri[256]; /* the client certificate's URI SAN (TLS); "" in plaintext */
  int assigned;
  seen_event ev[TASKS * EVENTS_PER_TASK];
  size_t n_ev;
} fake_agent;

typedef struct fixture {
  uv_loop_t loop;
  mu_rpc_engine *engine;
  mu_rpc_server *server;
  char target[64];
  fake_agent agents[AGENTS];
  size_t n_agents;
  size_t total_events;
  char pki_dir[256]; /* TLS fixture: the CA and the server's certificate; "" otherwise */
  char *ca_cert, *ca_key;
} fixture;

static void send_control(fake_agent *a, const Muster__V1__ControlMessage *msg) {
  uint8_t buf[512];
  size_t len = muster__v1__control_message__pack(msg, buf);
  assert_int_equal(mu_rpc_call_send(a->call, buf, len, NULL), 0);
}

static void send_assign(fake_agent *a, int task) {
  char task_id[32];
  snprintf(task_id, sizeof task_id, "%s/t%d", a->id, task);
  Muster__V1__Assign as = MUSTER__V1__ASSIGN__INIT;
  as.job_id = "job-1";
  as.task_id = task_id;
  as.attempt = 1;
  Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
  msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_ASSIGN;
  msg.assign = &as;
  send_control(a, &msg);
  a->assigned++;
}

static int gw_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  fake_agent *a = ud;
  (void)call;
  Muster__V1__AgentMessage *m = muster__v1__agent_message__unpack(NULL, len, data);
  assert_non_null(m);
  if (m->msg_case == MUSTER__V1__AGENT_MESSAGE__MSG_HELLO) {
    snprintf(a->id, sizeof a->id, "%s", m->hello->agent_id);
    Muster__V1__Welcome w = MUSTER__V1__WELCOME__INIT;
    w.session_id = "s";
    Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
    msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_WELCOME;
    msg.welcome = &w;
    send_control(a, &msg);
    send_assign(a, 0);
  } else if (m->msg_case == MUSTER__V1__AGENT_MESSAGE__MSG_EVENT) {
    const Muster__V1__TaskEvent *te = m->event;
    assert_true(a->n_ev < TASKS * EVENTS_PER_TASK);
    seen_event *e = &a->ev[a->n_ev++];
    a->f->total_events++;
    assert_string_equal(te->job_id, "job-1");
    assert_int_equal(te->attempt, 1);
    snprintf(e->task_id, sizeof e->task_id, "%s", te->task_id);
    e->sequence = te->sequence;
    e->kind = te->event_case;
    if (te->event_case == MUSTER__V1__TASK_EVENT__EVENT_STATE) {
      e->state = te->state->state;
      e->exit_code = te->state->exit_code;
    } else if (te->event_case == MUSTER__V1__TASK_EVENT__EVENT_OUTPUT) {
      snprintf(e->output, sizeof e->output, "%.*s", (int)te->output->data.len, (const char *)te->output->data.data);
    }
    if (e->state == MUSTER__V1__TASK_STATE__SUCCEEDED) {
      Muster__V1__Ack ack = MUSTER__V1__ACK__INIT;
      ack.sequence = te->sequence;
      Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
      msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_ACK;
      msg.ack = &ack;
      send_control(a, &msg);
      if (a->assigned < TASKS) send_assign(a, a->assigned);
    }
  }
  protobuf_c_message_free_unpacked(&m->base, NULL);
  return 0;
}

static void gw_on_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  fake_agent *a = ud;
  (void)call;
  (void)st;
  a->call = NULL;
}

static void gw_connect(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  fixture *f = ud;
  (void)md;
  assert_true(f->n_agents < AGENTS);
  fake_agent *a = &f->agents[f->n_agents++];
  a->f = f;
  a->call = call;
  const char *uri = mu_rpc_call_auth(call);
  snprintf(a->uri, sizeof a->uri, "%s", uri ? uri : "");
  mu_rpc_call_handlers h = {.on_message = gw_on_message, .on_done = gw_on_done};
  mu_rpc_call_start(call, &h, a);
}

/* TLS: hands the verified client certificate's URI to gw_connect. */
static int gw_gate(mu_rpc_call *call, const char *method, const mu_rpc_metadata *md, const mu_rpc_peer *peer, char *msg,
                   size_t msg_size, void *ud) {
  (void)method;
  (void)md;
  (void)msg;
  (void)msg_size;
  (void)ud;
  if (peer->verified && peer->n_uris == 1) mu_rpc_call_set_auth(call, strdup(peer->uris[0]), free);
  return MU_RPC_OK;
}

/* A fake gateway, plaintext or (tls) requiring client certificates from a fresh CA. */
static int fixture_new(void **state, int tls) {
  fixture *f = calloc(1, sizeof *f);
  mu_err err = {0};
  int port = 0;
  char ca[300], crt[300], key[300], prefix[300];
  mu_rpc_creds creds = {.tls = 1, .ca_file = ca, .cert_file = crt, .key_file = key, .require_client_cert = 1};
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(mu_rpc_engine_new(&f->loop, &f->engine, &err), 0);
  assert_int_equal(mu_rpc_server_new(f->engine, NULL, &f->server, &err), 0);
  assert_int_equal(mu_rpc_server_add_method(f->server, "/muster.v1.AgentGateway/Connect", gw_connect, f, &err), 0);
  if (tls) {
    const char *tmp = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
    snprintf(f->pki_dir, sizeof f->pki_dir, "%s/fleet_test.XXXXXX", tmp);
    assert_non_null(mkdtemp(f->pki_dir));
    snprintf(prefix, sizeof prefix, "%s/server", f->pki_dir);
    mu_pki_issue_opts o = {.ca_dir = f->pki_dir, .kind = "server", .name = "gw", .out = prefix};
    assert_int_equal(mu_pki_init(f->pki_dir, 0, &err), 0);
    assert_int_equal(mu_pki_issue(&o, &err), 0);
    assert_int_equal(mu_pki_ca_load(f->pki_dir, &f->ca_cert, &f->ca_key, &err), 0);
    snprintf(ca, sizeof ca, "%s/ca.crt", f->pki_dir);
    snprintf(crt, sizeof crt, "%s.crt", prefix);
    snprintf(key, sizeof key, "%s.key", prefix);
    mu_rpc_server_set_gate(f->server, gw_gate, f);
  }
  assert_int_equal(mu_rpc_server_listen(f->server, "127.0.0.1:0", tls ? &creds : NULL, &port, &err), 0);
  assert_int_equal(mu_rpc_server_start(f->server, &err), 0);
  snprintf(f->target, sizeof f->target, "127.0.0.1:%d", port);
  *state = f;
  return 0;
}

static int setup(void **state) { return fixture_new(state, 0); }
static int setup_tls(void **state) { return fixture_new(state, 1); }

static void set_flag(void *ud) { *(int *)ud = 1; }

static int teardown(void **state) {
  fixture *f = *state;
  int closed = 0;
  mu_rpc_engine_close(f->engine, set_flag, &closed);
  while (!closed) uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  if (f->pki_dir[0] != '\0') mu_bench_rm_tree(f->pki_dir);
  free(f->ca_cert);
  free(f->ca_key);
  free(f);
  return 0;
}

/* Connects the fleet, lets every agent run TASKS tasks and checks what the gateway saw. */
static void run_tasks_and_check(fixture *f, mu_fleet *fleet) {
  mu_err err = {0};
  assert_int_equal(mu_fleet_connect(fleet, &err), 0);
  const mu_fleet_stats *st = mu_fleet_stats_get(fleet);
  uint64_t deadline = uv_hrtime() + 10ull * 1000000000ull;
  while ((f->total_events < AGENTS * TASKS * EVENTS_PER_TASK || st->acks < AGENTS * TASKS) && uv_hrtime() < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(f->n_agents, AGENTS);
  assert_int_equal(st->welcomed, AGENTS);
  assert_int_equal(st->assigns, AGENTS * TASKS);
  assert_int_equal(st->task_events, AGENTS * TASKS * EVENTS_PER_TASK);
  assert_int_equal(st->acks, AGENTS * TASKS);
  assert_int_equal(st->send_errors, 0);
  assert_true(st->last_task_done_ns > 0);
  static const int kinds[EVENTS_PER_TASK] = {MUSTER__V1__TASK_EVENT__EVENT_STATE, MUSTER__V1__TASK_EVENT__EVENT_STATE,
                                             MUSTER__V1__TASK_EVENT__EVENT_OUTPUT, MUSTER__V1__TASK_EVENT__EVENT_STATE};
  static const int states[EVENTS_PER_TASK] = {MUSTER__V1__TASK_STATE__STARTING, MUSTER__V1__TASK_STATE__RUNNING, 0,
                                              MUSTER__V1__TASK_STATE__SUCCEEDED};
  for (size_t i = 0; i < AGENTS; i++) {
    fake_agent *a = &f->agents[i];
    assert_int_equal(a->n_ev, TASKS * EVENTS_PER_TASK);
    char want_out[80];
    snprintf(want_out, sizeof want_out, "%s\n", a->id);
    for (size_t k = 0; k < a->n_ev; k++) {
      const seen_event *e = &a->ev[k];
      char want_task[80];
      snprintf(want_task, sizeof want_task, "%s/t%zu", a->id, k / EVENTS_PER_TASK);
      assert_string_equal(e->task_id, want_task);
      assert_int_equal(e->sequence, k + 1); /* per agent, increasing across tasks */
      assert_int_equal(e->kind, kinds[k % EVENTS_PER_TASK]);
      assert_int_equal(e->state, states[k % EVENTS_PER_TASK]);
      assert_int_equal(e->exit_code, 0);
      if (e->kind == MUSTER__V1__TASK_EVENT__EVENT_OUTPUT) assert_string_equal(e->output, want_out);
    }
  }
  int stopped = 0;
  mu_fleet_stop(fleet, set_flag, &stopped);
  while (!stopped) uv_run(&f->loop, UV_RUN_ONCE);
}

static void test_agents_answer_assigns_like_hostname(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  mu_fleet *fleet = NULL;
  mu_fleet_config cfg = {
      .target = f->target, .agents = AGENTS, .agents_per_channel = 2, .heartbeat_interval_ms = 60000, .id_prefix = "t"};
  assert_int_equal(mu_fleet_new(f->engine, &cfg, &fleet, &err), 0);
  run_tasks_and_check(f, fleet);
  assert_int_equal(mu_fleet_stats_get(fleet)->channels, 2);
  assert_string_equal(f->agents[0].uri, "");
  mu_fleet_free(fleet);
}

static void test_tls_agents_have_own_certificate_and_connection(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  mu_fleet *fleet = NULL;
  mu_pki_ca *ca = NULL;
  mu_fleet_config cfg = {.target = f->target,
                         .agents = AGENTS,
                         .agents_per_channel = 2,
                         .heartbeat_interval_ms = 60000,
                         .id_prefix = "tls"};
  assert_int_equal(mu_fleet_new(f->engine, &cfg, &fleet, &err), 0);
  assert_int_equal(mu_pki_ca_parse(f->ca_cert, f->ca_key, &ca, &err), 0);
  assert_int_equal(mu_fleet_use_tls(fleet, ca, f->ca_cert, NULL, &err), 0);
  assert_int_equal(mu_fleet_use_tls(fleet, ca, f->ca_cert, NULL, &err), MU_EINVAL);
  mu_pki_ca_free(ca);
  const mu_fleet_stats *st = mu_fleet_stats_get(fleet);
  assert_int_equal(st->certs, AGENTS);
  assert_true(st->cert_issue_ns > 0);
  run_tasks_and_check(f, fleet);
  assert_int_equal(st->channels, AGENTS); /* one connection per agent, whatever the config */
  for (size_t i = 0; i < AGENTS; i++) {
    char want[128];
    snprintf(want, sizeof want, "muster://agent/%s", f->agents[i].id);
    assert_string_equal(f->agents[i].uri, want);
  }
  mu_fleet_free(fleet);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_agents_answer_assigns_like_hostname, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tls_agents_have_own_certificate_and_connection, setup_tls, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
