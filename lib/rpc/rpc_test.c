/* lib/rpc tests: a real gRPC server and client on one loop, over a loopback TCP port, for
 * every call kind, metadata, error statuses, deadlines, cancellation and unknown methods, and
 * mTLS with the client's certificate given as PEM text instead of files (and extra pollers). */
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/pki/pki.h"
#include "lib/rpc/rpc.h"

typedef struct fixture {
  uv_loop_t loop;
  mu_rpc_engine *engine;
  mu_rpc_server *server;
  mu_rpc_channel *channel;
  int port;
  /* results */
  int done;
  int code;
  char message[256];
  char trailer[64];
  int n_msgs;
  char last[64];
  int server_saw_cancel;
  int server_calls;
} fixture;

/* ---- server handlers ---- */

static int echo_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  (void)ud;
  mu_rpc_call_send(call, data, len, NULL);
  return 0;
}

static void echo_on_read_end(mu_rpc_call *call, void *ud) {
  (void)ud;
  mu_rpc_metadata tr = {0};
  mu_rpc_metadata_add(&tr, "x-trailer", "bye");
  mu_rpc_call_finish(call, MU_RPC_OK, "", &tr);
}

static void server_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  fixture *f = ud;
  (void)call;
  if (st->code == MU_RPC_CANCELLED) f->server_saw_cancel = 1;
}

static void m_bidi(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  (void)md;
  mu_rpc_call_handlers h = {.on_message = echo_on_message, .on_read_end = echo_on_read_end, .on_done = server_done};
  mu_rpc_call_start(call, &h, ud);
}

static int count_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  (void)data;
  (void)len;
  (void)ud;
  int *n = (int *)mu_rpc_call_method(call); /* not used: count kept in a static per call below */
  (void)n;
  return 0;
}

typedef struct counter {
  int n;
  fixture *f;
} counter;

static int cs_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  counter *c = ud;
  (void)call;
  (void)data;
  (void)len;
  c->n++;
  return 0;
}

static void cs_on_read_end(mu_rpc_call *call, void *ud) {
  counter *c = ud;
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%d", c->n);
  mu_rpc_call_send(call, (const uint8_t *)buf, (size_t)n, NULL);
  mu_rpc_call_finish(call, MU_RPC_OK, "", NULL);
}

static void cs_on_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  (void)call;
  (void)st;
  free(ud);
}

static void m_client_stream(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  (void)md;
  counter *c = calloc(1, sizeof *c);
  c->f = ud;
  mu_rpc_call_handlers h = {.on_message = cs_on_message, .on_read_end = cs_on_read_end, .on_done = cs_on_done};
  mu_rpc_call_start(call, &h, c);
}

static int ss_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  (void)ud;
  char buf[16] = {0};
  memcpy(buf, data, len < 15 ? len : 15);
  int n = atoi(buf);
  for (int i = 0; i < n; i++) {
    char m[16];
    int l = snprintf(m, sizeof m, "%d", i);
    mu_rpc_call_send(call, (const uint8_t *)m, (size_t)l, NULL);
  }
  mu_rpc_call_finish(call, MU_RPC_OK, "", NULL);
  return 1;
}

static void m_server_stream(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  (void)md;
  mu_rpc_call_handlers h = {.on_message = ss_on_message};
  mu_rpc_call_start(call, &h, ud);
}

static int unary_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  (void)ud;
  mu_rpc_call_send(call, data, len, NULL);
  mu_rpc_call_finish(call, MU_RPC_OK, "", NULL);
  return 1;
}

static void m_unary(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  const char *who = mu_rpc_metadata_get(md, "x-who");
  mu_rpc_metadata hdr = {0};
  mu_rpc_metadata_add(&hdr, "x-hello", who ? who : "nobody");
  mu_rpc_call_set_headers(call, &hdr, NULL);
  mu_rpc_call_handlers h = {.on_message = unary_on_message};
  mu_rpc_call_start(call, &h, ud);
}

static void m_fail(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  (void)md;
  (void)ud;
  mu_rpc_call_finish(call, MU_RPC_INVALID_ARGUMENT, "field 'x': bad thing", NULL);
}

static void m_never(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  (void)md;
  ((fixture *)ud)->server_calls++;
  mu_rpc_call_handlers h = {.on_message = count_on_message, .on_done = server_done};
  mu_rpc_call_start(call, &h, ud);
}

/* ---- client side helpers ---- */

static void on_timeout(uv_timer_t *t) { uv_stop(t->loop); }

/* Runs the loop until *flag is set or 10 s pass. */
static void run_until(fixture *f, const int *flag) {
  uv_timer_t t;
  uv_timer_init(&f->loop, &t);
  uv_timer_start(&t, on_timeout, 10000, 0);
  while (!*flag && uv_loop_alive(&f->loop)) {
    if (uv_run(&f->loop, UV_RUN_ONCE) == 0) break;
    if (!uv_is_active((uv_handle_t *)&t)) break;
  }
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void run_until_done(fixture *f) { run_until(f, &f->done); }

static void c_unary_cb(const uint8_t *reply, size_t len, const mu_rpc_status *st, void *ud) {
  fixture *f = ud;
  f->done = 1;
  f->code = st->code;
  snprintf(f->message, sizeof f->message, "%s", st->message);
  if (reply != NULL) snprintf(f->last, sizeof f->last, "%.*s", (int)len, (const char *)reply);
}

static int c_on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  fixture *f = ud;
  (void)call;
  f->n_msgs++;
  snprintf(f->last, sizeof f->last, "%.*s", (int)len, (const char *)data);
  return 0;
}

static void c_on_headers(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  fixture *f = ud;
  (void)call;
  const char *v = mu_rpc_metadata_get(md, "x-hello");
  if (v) snprintf(f->trailer, sizeof f->trailer, "%s", v);
}

static void c_on_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  fixture *f = ud;
  (void)call;
  f->done = 1;
  f->code = st->code;
  snprintf(f->message, sizeof f->message, "%s", st->message);
  const char *t = mu_rpc_metadata_get(st->trailers, "x-trailer");
  if (t) snprintf(f->trailer, sizeof f->trailer, "%s", t);
}

static const mu_rpc_call_handlers client_handlers = {
    .on_message = c_on_message, .on_headers = c_on_headers, .on_done = c_on_done};

static void reset(fixture *f) {
  f->done = 0;
  f->code = -1;
  f->message[0] = f->trailer[0] = f->last[0] = '\0';
  f->n_msgs = 0;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  mu_err err = {0};
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(mu_rpc_engine_new(&f->loop, &f->engine, &err), 0);
  /* every test runs with calls spread over three queues (all of a call's tags on one) */
  assert_int_equal(mu_rpc_engine_add_queues(f->engine, 2, &err), 0);
  assert_int_equal(mu_rpc_server_new(f->engine, NULL, &f->server, &err), 0);
  mu_rpc_server_add_method(f->server, "/test.Echo/Unary", m_unary, f, &err);
  mu_rpc_server_add_method(f->server, "/test.Echo/Bidi", m_bidi, f, &err);
  mu_rpc_server_add_method(f->server, "/test.Echo/ClientStream", m_client_stream, f, &err);
  mu_rpc_server_add_method(f->server, "/test.Echo/ServerStream", m_server_stream, f, &err);
  mu_rpc_server_add_method(f->server, "/test.Echo/Fail", m_fail, f, &err);
  mu_rpc_server_add_method(f->server, "/test.Echo/Never", m_never, f, &err);
  assert_int_equal(mu_rpc_server_add_method(f->server, "/test.Echo/Fail", m_fail, f, &err), MU_EEXIST);
  assert_int_equal(mu_rpc_server_listen(f->server, "127.0.0.1:0", NULL, &f->port, &err), 0);
  assert_true(f->port > 0);
  assert_int_equal(mu_rpc_server_start(f->server, &err), 0);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", f->port);
  assert_int_equal(mu_rpc_channel_new(f->engine, target, NULL, NULL, &f->channel, &err), 0);
  *state = f;
  return 0;
}

static void engine_closed(void *ud) { *(int *)ud = 1; }

static int teardown(void **state) {
  fixture *f = *state;
  int closed = 0;
  mu_rpc_engine_close(f->engine, engine_closed, &closed);
  while (!closed) uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static void test_unary_with_metadata(void **state) {
  fixture *f = *state;
  mu_rpc_metadata md = {0};
  assert_int_equal(mu_rpc_metadata_add(&md, "x-who", "alice"), 0);
  assert_int_equal(mu_rpc_metadata_add(&md, "Bad Key", "v"), MU_EINVAL);
  reset(f);
  mu_rpc_call *call;
  assert_int_equal(mu_rpc_call_new(f->channel, "/test.Echo/Unary", 5000, &md, &client_handlers, f, &call, NULL), 0);
  mu_rpc_call_send(call, (const uint8_t *)"ping", 4, NULL);
  mu_rpc_call_close_send(call);
  run_until_done(f);
  assert_int_equal(f->code, MU_RPC_OK);
  assert_string_equal(f->last, "ping");
  assert_string_equal(f->trailer, "alice"); /* the header echoed our metadata */

  reset(f);
  assert_int_equal(
      mu_rpc_unary(f->channel, "/test.Echo/Unary", 5000, NULL, (const uint8_t *)"hello", 5, c_unary_cb, f, NULL), 0);
  run_until_done(f);
  assert_int_equal(f->code, MU_RPC_OK);
  assert_string_equal(f->last, "hello");
}

static void test_server_stream(void **state) {
  fixture *f = *state;
  reset(f);
  mu_rpc_call *call;
  mu_rpc_call_new(f->channel, "/test.Echo/ServerStream", 5000, NULL, &client_handlers, f, &call, NULL);
  mu_rpc_call_send(call, (const uint8_t *)"100", 3, NULL);
  mu_rpc_call_close_send(call);
  run_until_done(f);
  assert_int_equal(f->code, MU_RPC_OK);
  assert_int_equal(f->n_msgs, 100);
  assert_string_equal(f->last, "99"); /* in order */
}

static void test_client_stream(void **state) {
  fixture *f = *state;
  reset(f);
  mu_rpc_call *call;
  mu_rpc_call_new(f->channel, "/test.Echo/ClientStream", 5000, NULL, &client_handlers, f, &call, NULL);
  for (int i = 0; i < 250; i++) mu_rpc_call_send(call, (const uint8_t *)"x", 1, NULL);
  mu_rpc_call_close_send(call);
  run_until_done(f);
  assert_int_equal(f->code, MU_RPC_OK);
  assert_int_equal(f->n_msgs, 1);
  assert_string_equal(f->last, "250");
}

static void test_bidi_and_trailers(void **state) {
  fixture *f = *state;
  reset(f);
  mu_rpc_call *call;
  mu_rpc_call_new(f->channel, "/test.Echo/Bidi", 5000, NULL, &client_handlers, f, &call, NULL);
  char big[100000];
  memset(big, 'z', sizeof big);
  for (int i = 0; i < 50; i++) assert_int_equal(mu_rpc_call_send(call, (uint8_t *)big, sizeof big, NULL), 0);
  mu_rpc_call_send(call, (const uint8_t *)"last", 4, NULL);
  mu_rpc_call_close_send(call);
  run_until_done(f);
  assert_int_equal(f->code, MU_RPC_OK);
  assert_int_equal(f->n_msgs, 51);
  assert_string_equal(f->last, "last");
  assert_string_equal(f->trailer, "bye");
}

static void test_error_status_and_unimplemented(void **state) {
  fixture *f = *state;
  reset(f);
  mu_rpc_unary(f->channel, "/test.Echo/Fail", 5000, NULL, (const uint8_t *)"", 0, c_unary_cb, f, NULL);
  run_until_done(f);
  assert_int_equal(f->code, MU_RPC_INVALID_ARGUMENT);
  assert_string_equal(f->message, "field 'x': bad thing");

  reset(f);
  mu_rpc_unary(f->channel, "/test.Echo/Nope", 5000, NULL, (const uint8_t *)"", 0, c_unary_cb, f, NULL);
  run_until_done(f);
  assert_int_equal(f->code, MU_RPC_UNIMPLEMENTED);
  assert_non_null(strstr(f->message, "/test.Echo/Nope"));
}

static void test_deadline(void **state) {
  fixture *f = *state;
  reset(f);
  f->server_saw_cancel = 0;
  uint64_t t0 = uv_hrtime();
  mu_rpc_unary(f->channel, "/test.Echo/Never", 200, NULL, (const uint8_t *)"x", 1, c_unary_cb, f, NULL);
  run_until_done(f);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  assert_int_equal(f->code, MU_RPC_DEADLINE_EXCEEDED);
  assert_true(ms >= 150 && ms < 5000);
  /* the server side learns too */
  run_until(f, &f->server_saw_cancel);
  assert_true(f->server_saw_cancel);
}

static void test_cancel(void **state) {
  fixture *f = *state;
  reset(f);
  f->server_saw_cancel = 0;
  mu_rpc_call *call;
  mu_rpc_call_new(f->channel, "/test.Echo/Never", 0, NULL, &client_handlers, f, &call, NULL);
  mu_rpc_call_send(call, (const uint8_t *)"x", 1, NULL);
  run_until(f, &f->server_calls); /* the server has the call */
  mu_rpc_call_cancel(call, MU_RPC_CANCELLED, "user gave up");
  run_until_done(f);
  assert_int_equal(f->code, MU_RPC_CANCELLED);
  assert_string_equal(f->message, "user gave up");
  run_until(f, &f->server_saw_cancel);
  assert_true(f->server_saw_cancel);
}

static void test_unreachable(void **state) {
  fixture *f = *state;
  mu_rpc_channel *ch;
  assert_int_equal(mu_rpc_channel_new(f->engine, "127.0.0.1:1", NULL, NULL, &ch, NULL), 0);
  reset(f);
  mu_rpc_unary(ch, "/test.Echo/Unary", 2000, NULL, (const uint8_t *)"x", 1, c_unary_cb, f, NULL);
  run_until_done(f);
  assert_int_equal(f->code, MU_RPC_UNAVAILABLE);
  mu_rpc_channel_close(ch);
}

static void test_send_queue_bound(void **state) {
  fixture *f = *state;
  mu_rpc_options o = {.max_send_queue = 1000};
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", f->port);
  mu_rpc_channel *ch;
  mu_rpc_channel_new(f->engine, target, NULL, &o, &ch, NULL);
  reset(f);
  mu_rpc_call *call;
  mu_rpc_call_new(ch, "/test.Echo/Never", 0, NULL, &client_handlers, f, &call, NULL);
  uint8_t buf[400] = {0};
  mu_err err = {0};
  int rc = 0;
  for (int i = 0; i < 10 && rc == 0; i++) rc = mu_rpc_call_send(call, buf, sizeof buf, &err);
  assert_int_equal(rc, MU_ENOSPC);
  assert_non_null(strstr(err.msg, "send queue full"));
  mu_rpc_call_cancel(call, MU_RPC_CANCELLED, "done");
  run_until_done(f);
  mu_rpc_channel_close(ch);
}

typedef struct drain_probe {
  fixture *f;
  int fired;
  size_t queued_at_fire;
} drain_probe;

static void on_drain_send_last(mu_rpc_call *call, void *arg) {
  drain_probe *p = arg;
  p->fired++;
  p->queued_at_fire = mu_rpc_call_queued_bytes(call);
  mu_rpc_call_send(call, (const uint8_t *)"last", 4, NULL); /* sending from the callback */
  mu_rpc_call_close_send(call);
}

/* on_drain fires once, when the queue falls under the mark, and may send from there. */
static void test_on_drain(void **state) {
  fixture *f = *state;
  reset(f);
  mu_rpc_call *call;
  mu_rpc_call_new(f->channel, "/test.Echo/Bidi", 5000, NULL, &client_handlers, f, &call, NULL);
  static uint8_t big[100000];
  for (int i = 0; i < 20; i++) assert_int_equal(mu_rpc_call_send(call, big, sizeof big, NULL), 0);
  assert_true(mu_rpc_call_queued_bytes(call) > 150000);
  drain_probe gone = {f, 0, 0}, probe = {f, 0, 0};
  mu_rpc_call_on_drain(call, 150000, on_drain_send_last, &gone);
  mu_rpc_call_on_drain(call, 150000, on_drain_send_last, &probe); /* replaces the first */
  run_until_done(f);
  assert_int_equal(f->code, MU_RPC_OK);
  assert_int_equal(gone.fired, 0);
  assert_int_equal(probe.fired, 1);
  assert_true(probe.queued_at_fire < 150000);
  assert_int_equal(f->n_msgs, 21);
  assert_string_equal(f->last, "last");
}

/* ---- mTLS with in-memory PEM on the client ---- */

static int tls_gate(mu_rpc_call *call, const char *method, const mu_rpc_metadata *md, const mu_rpc_peer *peer,
                    char *msg, size_t msg_size, void *ud) {
  (void)call;
  (void)method;
  (void)md;
  (void)msg;
  (void)msg_size;
  snprintf((char *)ud, 256, "%s", peer->verified && peer->n_uris > 0 ? peer->uris[0] : "-");
  return MU_RPC_OK;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* One unary call to target over a channel with creds; returns its status code. */
static int tls_call(fixture *f, const char *target, const mu_rpc_creds *creds) {
  mu_rpc_channel *ch = NULL;
  mu_err err = {0};
  assert_int_equal(mu_rpc_channel_new(f->engine, target, creds, NULL, &ch, &err), 0);
  reset(f);
  mu_rpc_unary(ch, "/test.Echo/Unary", 5000, NULL, (const uint8_t *)"tls", 3, c_unary_cb, f, NULL);
  run_until_done(f);
  mu_rpc_channel_close(ch);
  return f->code;
}

static void test_tls_pem_strings(void **state) {
  fixture *f = *state;
  mu_err err = {0};
  /* queues are added once, before any server (setup added two) */
  assert_int_equal(mu_rpc_engine_add_queues(f->engine, 1, &err), MU_EINVAL);
  char dir[256], other[256], prefix[300];
  const char *tmp = getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp";
  snprintf(dir, sizeof dir, "%s/rpc_tls.XXXXXX", tmp);
  assert_non_null(mkdtemp(dir));
  snprintf(other, sizeof other, "%s/other-ca", dir);
  assert_int_equal(mu_pki_init(dir, 0, &err), 0);
  assert_int_equal(mu_pki_init(other, 0, &err), 0);
  snprintf(prefix, sizeof prefix, "%s/server", dir);
  mu_pki_issue_opts so = {.ca_dir = dir, .kind = "server", .name = "rpc-test", .out = prefix};
  assert_int_equal(mu_pki_issue(&so, &err), 0);
  char *ca_cert, *ca_key, *other_cert, *other_key, *cert, *key, *bad_cert, *bad_key;
  assert_int_equal(mu_pki_ca_load(dir, &ca_cert, &ca_key, &err), 0);
  assert_int_equal(mu_pki_ca_load(other, &other_cert, &other_key, &err), 0);
  mu_pki_issue_opts ao = {.kind = "agent", .name = "pem-client"};
  assert_int_equal(mu_pki_issue_mem(ca_cert, ca_key, &ao, &cert, &key, &err), 0);
  assert_int_equal(mu_pki_issue_mem(other_cert, other_key, &ao, &bad_cert, &bad_key, &err), 0);

  char ca_file[300], cert_file[300], key_file[300], seen[256] = "";
  snprintf(ca_file, sizeof ca_file, "%s/ca.crt", dir);
  snprintf(cert_file, sizeof cert_file, "%s.crt", prefix);
  snprintf(key_file, sizeof key_file, "%s.key", prefix);
  mu_rpc_server *srv;
  int port = 0;
  mu_rpc_creds sc = {
      .tls = 1, .ca_file = ca_file, .cert_file = cert_file, .key_file = key_file, .require_client_cert = 1};
  assert_int_equal(mu_rpc_server_new(f->engine, NULL, &srv, &err), 0);
  mu_rpc_server_add_method(srv, "/test.Echo/Unary", m_unary, f, &err);
  mu_rpc_server_set_gate(srv, tls_gate, seen);
  assert_int_equal(mu_rpc_server_listen(srv, "127.0.0.1:0", &sc, &port, &err), 0);
  assert_int_equal(mu_rpc_server_start(srv, &err), 0);
  char target[64];
  snprintf(target, sizeof target, "127.0.0.1:%d", port);

  /* the PEM strings are used, and win over files that do not exist */
  mu_rpc_creds cc = {.tls = 1, .ca_file = "/nonexistent/ca.crt", .ca_pem = ca_cert, .cert_pem = cert, .key_pem = key};
  assert_int_equal(tls_call(f, target, &cc), MU_RPC_OK);
  assert_string_equal(f->last, "tls");
  assert_string_equal(seen, "muster://agent/pem-client");
  /* a client certificate from another CA is refused in the handshake */
  mu_rpc_creds bad = {.tls = 1, .ca_pem = ca_cert, .cert_pem = bad_cert, .key_pem = bad_key};
  assert_int_equal(tls_call(f, target, &bad), MU_RPC_UNAVAILABLE);
  /* a file that cannot be read is still an error when no PEM stands in for it */
  mu_rpc_creds missing = {.tls = 1, .ca_file = "/nonexistent/ca.crt", .cert_pem = cert, .key_pem = key};
  mu_rpc_channel *ch = NULL;
  assert_int_equal(mu_rpc_channel_new(f->engine, target, &missing, NULL, &ch, &err), MU_ENOENT);
  assert_null(ch);

  int closed = 0;
  mu_rpc_server_close(srv, engine_closed, &closed);
  while (!closed) uv_run(&f->loop, UV_RUN_ONCE);
  char *pems[] = {ca_cert, ca_key, other_cert, other_key, cert, key, bad_cert, bad_key};
  for (size_t i = 0; i < sizeof pems / sizeof pems[0]; i++) free(pems[i]);
  assert_int_equal(nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_unary_with_metadata, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_stream, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bidi_and_trailers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_status_and_unimplemented, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_send_queue_bound, setup, teardown),
      cmocka_unit_test_setup_teardown(test_on_drain, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tls_pem_strings, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
