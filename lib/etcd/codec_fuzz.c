/* Fuzzes what etcd's JSON gateway sends back: unary replies decoded by mu__etcd_codec_result (and error
 * replies by mu__etcd_client_etcd_error), and the newline-delimited watch stream parsed by watch.c as
 * bytes arrive. The transport (client.c: curl, endpoints, auth) is replaced by the stubs below,
 * so watch.c's own code runs unchanged on a real libuv loop that is never left to do I/O.
 * Byte 0 picks the mode: a unary reply of kind 1 + byte%9 (bit 0x40 clear), or a watch
 * stream (bit 0x40) fed in chunks of 1..64 bytes (byte 1). Properties: a decoded result deep-
 * copies to an equal one; watch callers see each event once (every event's revision is above
 * those of earlier batches), nothing after a final error, and "created" at most once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/log.h"
#include "lib/etcd/internal.h"
#include "lib/fuzz/fuzz_util.h"

/* ---- the transport, stubbed: requests are made and dropped, never sent ---- */
static mu_etcd_req *g_live; /* the watch's stream request (a watch has at most one) */

int mu__etcd_client_req_new(mu_etcd_client *c, const char *path, char *body, const char *what, mu_etcd_req **ret_req,
                            mu_err *err) {
  mu_etcd_req *r = calloc(1, sizeof *r);
  if (r == NULL) {
    free(body);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  r->c = c;
  r->body = body;
  snprintf(r->path, sizeof r->path, "%s", path);
  snprintf(r->what, sizeof r->what, "%s", what);
  g_live = r;
  *ret_req = r;
  return 0;
}

int mu__etcd_client_req_submit(mu_etcd_req *r, mu_err *err) {
  (void)r;
  (void)err;
  return 0;
}

void mu__etcd_client_req_drop(mu_etcd_req *r) {
  if (r == g_live) g_live = NULL;
  free(r->body);
  free(r);
}

void mu__etcd_client_enter(mu_etcd_client *c) { c->depth++; }
void mu__etcd_client_leave(mu_etcd_client *c) { c->depth--; }
void mu__etcd_client_handle_closed(mu_etcd_client *c) { c->pending_closes--; }

/* ---- unary replies ---- */
static void same_kvs(const mu_etcd_kv *a, const mu_etcd_kv *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    MU_FUZZ_CHECK(a[i].key_len == b[i].key_len && a[i].value_len == b[i].value_len);
    MU_FUZZ_CHECK(memcmp(a[i].key, b[i].key, a[i].key_len) == 0);
    MU_FUZZ_CHECK(memcmp(a[i].value, b[i].value, a[i].value_len) == 0);
    MU_FUZZ_CHECK(a[i].key[a[i].key_len] == '\0' && b[i].value[b[i].value_len] == '\0');
    MU_FUZZ_CHECK(a[i].mod_revision == b[i].mod_revision && a[i].lease == b[i].lease &&
                  a[i].create_revision == b[i].create_revision && a[i].version == b[i].version);
  }
}

static void same_result(const mu_etcd_result *a, const mu_etcd_result *b) {
  MU_FUZZ_CHECK(a->kind == b->kind && a->revision == b->revision && a->count == b->count && a->more == b->more &&
                a->deleted == b->deleted && a->succeeded == b->succeeded && a->lease_id == b->lease_id &&
                a->ttl == b->ttl);
  MU_FUZZ_CHECK(a->n_kvs == b->n_kvs && a->n_prev_kvs == b->n_prev_kvs && a->n_responses == b->n_responses);
  same_kvs(a->kvs, b->kvs, a->n_kvs);
  same_kvs(a->prev_kvs, b->prev_kvs, a->n_prev_kvs);
  for (size_t i = 0; i < a->n_responses; i++) same_result(&a->responses[i], &b->responses[i]);
}

static void unary(mu_etcd_kind kind, const uint8_t *data, size_t size) {
  json_t *reply = json_loadb((const char *)data, size, 0, NULL);
  if (reply == NULL) return;
  mu_etcd_result res;
  mu_err err = {0};
  if (mu__etcd_codec_result(kind, reply, &res, &err) == 0) {
    mu_etcd_result *dup = mu_etcd_result_dup(&res);
    MU_FUZZ_CHECK(dup != NULL);
    same_result(&res, dup);
    mu_etcd_result_free(dup);
    mu__etcd_codec_result_clear(&res);
  } else {
    MU_FUZZ_CHECK((err.code == MU_EIO || err.code == MU_ENOMEM) && err.msg[0] != '\0');
  }
  int rc = mu__etcd_client_etcd_error("put '/x'", 400, reply, &err);
  MU_FUZZ_CHECK(rc < 0 && rc == err.code && strncmp(err.msg, "etcd put '/x': ", 15) == 0);
  json_decref(reply);
}

/* ---- the watch stream ---- */
typedef struct seen {
  int64_t start, max_rev;
  int created, ended;
} seen;

static void on_watch(void *ud, const mu_etcd_watch_batch *b, const mu_err *err) {
  seen *s = ud;
  MU_FUZZ_CHECK(!s->ended);
  MU_FUZZ_CHECK((b == NULL) != (err == NULL));
  if (err != NULL) {
    MU_FUZZ_CHECK(err->code < 0 && err->msg[0] != '\0');
    s->ended = 1;
    return;
  }
  if (b->created) {
    MU_FUZZ_CHECK(!s->created && b->n_events == 0);
    s->created = 1;
    return;
  }
  int64_t batch_max = s->max_rev;
  for (size_t i = 0; i < b->n_events; i++) {
    const mu_etcd_event *e = &b->events[i];
    MU_FUZZ_CHECK(e->kv.mod_revision > s->max_rev && e->kv.mod_revision >= s->start);
    MU_FUZZ_CHECK(e->type == MU_ETCD_EVENT_PUT || e->type == MU_ETCD_EVENT_DELETE);
    if (e->kv.mod_revision > batch_max) batch_max = e->kv.mod_revision;
  }
  MU_FUZZ_CHECK(b->n_events > 0);
  s->max_rev = batch_max;
}

static void watch_stream(const uint8_t *data, size_t size, int flags) {
  static uv_loop_t loop;
  static int loop_ready;
  if (!loop_ready) {
    MU_FUZZ_CHECK(uv_loop_init(&loop) == 0);
    mu_log_set_level(MU_LOG_ERROR);
    loop_ready = 1;
  }
  if (size < 1) return;
  size_t chunk = 1 + data[0] % 64;
  data++;
  size--;
  mu_etcd_client c;
  memset(&c, 0, sizeof c);
  c.loop = &loop;
  c.opts.max_response_bytes = 1u << 16;
  c.opts.watch_retry_max_ms = 2000;
  c.opts.username = (flags & 0x20) ? "muster" : NULL;
  seen s = {.start = (flags & 0x10) ? 100 : 0, .max_rev = 0};
  mu_etcd_watch_req req = {
      .key = "/muster/", .prefix = true, .start_revision = s.start, .prev_kv = (flags & 0x08) != 0};
  mu_etcd_watch *w = NULL;
  mu_err err = {0};
  MU_FUZZ_CHECK(mu_etcd_watch_start(&c, &req, on_watch, &s, &w, &err) == 0);
  for (size_t off = 0; off < size && !s.ended; off += chunk) {
    size_t n = size - off < chunk ? size - off : chunk;
    if (mu__etcd_watch_write(w, (const char *)data + off, n) != n) break; /* curl would end the stream */
    mu__etcd_watch_deliver_all(&c);
  }
  if (!s.ended && (flags & 0x04) && g_live != NULL) {
    /* the stream ends (client.c frees the request first): the torn tail is dropped, a retry
     * is scheduled */
    mu__etcd_client_req_drop(g_live);
    mu__etcd_watch_on_done(w, NULL);
    mu__etcd_watch_deliver_all(&c);
  }
  if (!s.ended) mu_etcd_watch_cancel(w);
  free(c.token);
  uv_run(&loop, UV_RUN_NOWAIT); /* runs the close callbacks that free the watch */
  MU_FUZZ_CHECK(c.watches == NULL && c.pending_closes == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  if (mode & 0x40) watch_stream(data + 1, size - 1, mode);
  else unary((mu_etcd_kind)(MU_ETCD_RANGE + mode % 9), data + 1, size - 1);
  return 0;
}
