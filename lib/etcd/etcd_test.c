/* Tests for lib/etcd against a real etcd started by integration/etcd_harness: kv, txn fencing,
 * leases, watches (including resume across an etcd restart and compaction), failover,
 * unreachable and stalled etcd, limits, auth, and closing with work in flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "integration/etcd_harness.h"
#include "lib/base/clock.h"
#include "lib/etcd/etcd.h"

typedef struct env {
  uv_loop_t loop;
  uv_timer_t tick; /* keeps uv_run(ONCE) from blocking forever */
  mu_etcd_client *c;
  mu_etcd_harness *h;
  bool closed;
} env;

typedef struct call {
  bool done;
  mu_etcd_result *res;
  mu_err err;
} call;

static void on_call(void *ud, const mu_etcd_result *res, const mu_err *err) {
  call *k = ud;
  k->done = true;
  if (res != NULL) k->res = mu_etcd_result_dup(res);
  else k->err = *err;
}

static void on_tick(uv_timer_t *t) { (void)t; }

static void run_until(env *e, const bool *flag, int64_t timeout_ms) {
  int64_t deadline = mu_mono_ms() + timeout_ms;
  while (!*flag && mu_mono_ms() < deadline) uv_run(&e->loop, UV_RUN_ONCE);
  assert_true(*flag);
}

static int new_client(env *e, const char *const *eps, size_t n, const mu_etcd_options *o, mu_etcd_client **ret) {
  mu_err err = {0};
  int rc = mu_etcd_client_new(&e->loop, eps, n, o, ret, &err);
  if (rc != 0) fail_msg("client_new: %s", err.msg);
  return rc;
}

static env *env_new(void **state, const mu_etcd_options *o) {
  env *e = calloc(1, sizeof(*e));
  assert_non_null(e);
  e->h = *state;
  assert_int_equal(uv_loop_init(&e->loop), 0);
  uv_timer_init(&e->loop, &e->tick);
  uv_timer_start(&e->tick, on_tick, 20, 20);
  const char *ep = mu_etcd_harness_endpoint(e->h);
  new_client(e, &ep, 1, o, &e->c);
  return e;
}

static void on_closed(void *ud) { *(bool *)ud = true; }

static void close_client(env *e, mu_etcd_client *c) {
  bool closed = false;
  mu_etcd_client_close(c, on_closed, &closed);
  run_until(e, &closed, 5000);
}

static void env_free(env *e) {
  close_client(e, e->c);
  uv_close((uv_handle_t *)&e->tick, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&e->loop), 0);
  free(e);
}

/* Runs fn(c, args..., on_call, &k, &err) and waits for its callback. */
#define RUN(e, k, fn, ...)                                                                     \
  do {                                                                                         \
    mu_err _err = {0};                                                                         \
    memset(&(k), 0, sizeof(k));                                                                \
    if (fn((e)->c, __VA_ARGS__, on_call, &(k), &_err) != 0) fail_msg("%s: %s", #fn, _err.msg); \
    run_until((e), &(k).done, 10000);                                                          \
  } while (0)

/* Same, and the call must have succeeded. */
#define OK(e, k, fn, ...)                                             \
  do {                                                                \
    RUN(e, k, fn, __VA_ARGS__);                                       \
    if ((k).res == NULL) fail_msg("%s failed: %s", #fn, (k).err.msg); \
  } while (0)

static void done(call *k) {
  mu_etcd_result_free(k->res);
  k->res = NULL;
}

static int64_t put(env *e, const char *key, const char *value) {
  call k;
  OK(e, k, mu_etcd_put, &(mu_etcd_put_req){.key = key, .value = value});
  int64_t rev = k.res->revision;
  done(&k);
  return rev;
}

/* ---- kv ---- */

static void test_put_range(void **state) {
  env *e = env_new(state, NULL);
  call k;
  int64_t r1 = put(e, "/t1/a", "1");
  put(e, "/t1/b", "2");
  OK(e, k, mu_etcd_put, &(mu_etcd_put_req){.key = "/t1/c", .value = "x\0y", .value_len = 3});
  done(&k);
  OK(e, k, mu_etcd_put, &(mu_etcd_put_req){.key = "/t1/a", .value = "1b", .prev_kv = true});
  assert_int_equal(k.res->n_prev_kvs, 1);
  assert_string_equal(k.res->prev_kvs[0].value, "1");
  int64_t r2 = k.res->revision;
  assert_true(r2 > r1);
  done(&k);

  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t1/a"});
  assert_int_equal(k.res->n_kvs, 1);
  assert_string_equal(k.res->kvs[0].value, "1b");
  assert_int_equal(k.res->kvs[0].version, 2);
  assert_int_equal(k.res->kvs[0].create_revision, r1);
  assert_int_equal(k.res->kvs[0].mod_revision, r2);
  assert_int_equal(k.res->revision, r2);
  done(&k);

  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t1/", .prefix = true});
  assert_int_equal(k.res->n_kvs, 3);
  assert_string_equal(k.res->kvs[1].key, "/t1/b");
  assert_int_equal(k.res->kvs[2].value_len, 3);
  assert_memory_equal(k.res->kvs[2].value, "x\0y", 3);
  assert_false(k.res->more);
  done(&k);

  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t1/", .prefix = true, .limit = 2});
  assert_int_equal(k.res->n_kvs, 2);
  assert_true(k.res->more);
  assert_int_equal(k.res->count, 3);
  done(&k);

  /* descending with a limit: the last keys first */
  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t1/", .prefix = true, .limit = 2, .descend = true});
  assert_int_equal(k.res->n_kvs, 2);
  assert_string_equal(k.res->kvs[0].key, "/t1/c");
  assert_string_equal(k.res->kvs[1].key, "/t1/b");
  assert_true(k.res->more);
  done(&k);

  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t1/a", .revision = r1});
  assert_string_equal(k.res->kvs[0].value, "1");
  done(&k);

  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t1/", .prefix = true, .keys_only = true});
  assert_int_equal(k.res->n_kvs, 3);
  assert_int_equal(k.res->kvs[0].value_len, 0);
  done(&k);

  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t1/", .prefix = true, .count_only = true});
  assert_int_equal(k.res->n_kvs, 0);
  assert_int_equal(k.res->count, 3);
  done(&k);

  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t1/a", .range_end = "/t1/c"});
  assert_int_equal(k.res->n_kvs, 2);
  done(&k);

  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t1/missing"});
  assert_int_equal(k.res->n_kvs, 0);
  done(&k);

  /* A future revision is an etcd error reply, with etcd's words in the message. */
  RUN(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t1/a", .revision = r2 + 1000});
  assert_null(k.res);
  assert_int_equal(k.err.code, MU_EINVAL);
  assert_non_null(strstr(k.err.msg, "future revision"));
  env_free(e);
}

static void test_delete(void **state) {
  env *e = env_new(state, NULL);
  call k;
  put(e, "/t2/a", "1");
  put(e, "/t2/b", "2");
  put(e, "/t2/c", "3");
  OK(e, k, mu_etcd_delete, &(mu_etcd_delete_req){.key = "/t2/a"});
  assert_int_equal(k.res->deleted, 1);
  done(&k);
  OK(e, k, mu_etcd_delete, &(mu_etcd_delete_req){.key = "/t2/", .prefix = true, .prev_kv = true});
  assert_int_equal(k.res->deleted, 2);
  assert_int_equal(k.res->n_prev_kvs, 2);
  assert_string_equal(k.res->prev_kvs[1].value, "3");
  done(&k);
  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t2/", .prefix = true, .count_only = true});
  assert_int_equal(k.res->count, 0);
  done(&k);
  env_free(e);
}

/* ---- txn ---- */

static void test_txn(void **state) {
  env *e = env_new(state, NULL);
  call k;
  int64_t term = put(e, "/t3/leader", "me");
  put(e, "/t3/k1", "old");

  mu_etcd_txn *t = mu_etcd_txn_new();
  mu_etcd_txn_fence(t, "/t3/leader", term);
  mu_etcd_txn_then_put(t, "/t3/k1", "v1");
  mu_etcd_txn_then_put(t, "/t3/k2", "v2");
  OK(e, k, mu_etcd_txn_commit, t);
  assert_true(k.res->succeeded);
  assert_int_equal(k.res->n_responses, 2);
  assert_int_equal(k.res->responses[0].kind, MU_ETCD_PUT);
  done(&k);

  /* A new leader (new create revision) deposes the old term: the same txn is refused. */
  OK(e, k, mu_etcd_delete, &(mu_etcd_delete_req){.key = "/t3/leader"});
  done(&k);
  put(e, "/t3/leader", "other");
  put(e, "/t3/k1", "new-leader");
  OK(e, k, mu_etcd_txn_commit, t);
  assert_false(k.res->succeeded);
  assert_int_equal(k.res->n_responses, 0);
  done(&k);
  mu_etcd_txn_free(t);
  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t3/k1"});
  assert_string_equal(k.res->kvs[0].value, "new-leader");
  done(&k);

  /* Failure branch with a range and a delete; value and version compares. */
  t = mu_etcd_txn_new();
  mu_etcd_txn_compare_value(t, "/t3/k1", MU_ETCD_EQ, "nope", 4);
  mu_etcd_txn_compare(t, "/t3/k1", MU_ETCD_VERSION, MU_ETCD_GT, 0);
  mu_etcd_txn_then_put(t, "/t3/k1", "never");
  mu_etcd_txn_range(t, MU_ETCD_ON_FAILURE, &(mu_etcd_range_req){.key = "/t3/k1"});
  mu_etcd_txn_delete(t, MU_ETCD_ON_FAILURE, &(mu_etcd_delete_req){.key = "/t3/k2"});
  OK(e, k, mu_etcd_txn_commit, t);
  assert_false(k.res->succeeded);
  assert_int_equal(k.res->n_responses, 2);
  assert_int_equal(k.res->responses[0].kind, MU_ETCD_RANGE);
  assert_string_equal(k.res->responses[0].kvs[0].value, "new-leader");
  assert_int_equal(k.res->responses[1].kind, MU_ETCD_DELETE);
  assert_int_equal(k.res->responses[1].deleted, 1);
  done(&k);
  mu_etcd_txn_free(t);

  t = mu_etcd_txn_new();
  mu_etcd_txn_compare(t, "/t3/k1", MU_ETCD_MOD_REVISION, MU_ETCD_LT, 1000000);
  mu_etcd_txn_compare(t, "/t3/absent", MU_ETCD_CREATE_REVISION, MU_ETCD_EQ, 0);
  mu_etcd_txn_compare_value(t, "/t3/k1", MU_ETCD_NE, "x", 1);
  mu_etcd_txn_then_put(t, "/t3/k3", "ok");
  OK(e, k, mu_etcd_txn_commit, t);
  assert_true(k.res->succeeded);
  done(&k);
  mu_etcd_txn_free(t);

  /* etcd's 128-op limit is enforced before sending. */
  t = mu_etcd_txn_new();
  for (int i = 0; i < 129; i++) {
    char key[32];
    snprintf(key, sizeof(key), "/t3/many/%d", i);
    mu_etcd_txn_then_put(t, key, "x");
  }
  assert_int_equal(mu_etcd_txn_size(t), 129);
  mu_err err = {0};
  assert_int_equal(mu_etcd_txn_commit(e->c, t, on_call, &k, &err), MU_ENOSPC);
  assert_non_null(strstr(err.msg, "128"));
  mu_etcd_txn_free(t);

  /* Builder errors are sticky and reported at commit. */
  t = mu_etcd_txn_new();
  mu_etcd_txn_then_put(t, "", "x");
  assert_int_equal(mu_etcd_txn_commit(e->c, t, on_call, &k, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "key is empty"));
  mu_etcd_txn_free(t);
  env_free(e);
}

static void test_too_large(void **state) {
  env *e = env_new(state, NULL);
  size_t n = (size_t)1600 * 1024;
  char *big = malloc(n);
  call k = {0};
  mu_err err = {0};
  memset(big, 'x', n);
  assert_int_equal(
      mu_etcd_put(e->c, &(mu_etcd_put_req){.key = "/t4/big", .value = big, .value_len = n}, on_call, &k, &err),
      MU_ENOSPC);
  assert_non_null(strstr(err.msg, "limit"));
  /* Just under the limit goes through: etcd accepts it. */
  OK(e, k, mu_etcd_put, &(mu_etcd_put_req){.key = "/t4/big", .value = big, .value_len = (size_t)1400 * 1024});
  done(&k);
  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t4/big"});
  assert_int_equal(k.res->kvs[0].value_len, (size_t)1400 * 1024);
  done(&k);
  free(big);
  env_free(e);
}

/* ---- leases ---- */

static void test_lease(void **state) {
  env *e = env_new(state, NULL);
  call k;
  OK(e, k, mu_etcd_lease_grant, 5);
  int64_t id = k.res->lease_id;
  assert_true(id > 0);
  assert_int_equal(k.res->ttl, 5);
  done(&k);
  OK(e, k, mu_etcd_put, &(mu_etcd_put_req){.key = "/t5/a", .value = "1", .lease = id});
  done(&k);
  OK(e, k, mu_etcd_lease_keepalive, id);
  assert_int_equal(k.res->ttl, 5);
  done(&k);
  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t5/a"});
  assert_int_equal(k.res->kvs[0].lease, id);
  done(&k);
  OK(e, k, mu_etcd_lease_revoke, id);
  done(&k);
  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t5/a"});
  assert_int_equal(k.res->n_kvs, 0);
  done(&k);
  RUN(e, k, mu_etcd_lease_revoke, id);
  assert_int_equal(k.err.code, MU_ENOENT);
  RUN(e, k, mu_etcd_lease_keepalive, id);
  assert_int_equal(k.err.code, MU_ENOENT);
  assert_non_null(strstr(k.err.msg, "lease is gone"));

  /* Expiry: a 1 s lease left alone takes its key with it. */
  OK(e, k, mu_etcd_lease_grant, 1);
  id = k.res->lease_id;
  done(&k);
  OK(e, k, mu_etcd_put, &(mu_etcd_put_req){.key = "/t5/b", .value = "1", .lease = id});
  done(&k);
  int64_t deadline = mu_mono_ms() + 5000;
  size_t n = 1;
  while (n > 0 && mu_mono_ms() < deadline) {
    OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t5/b"});
    n = k.res->n_kvs;
    done(&k);
    bool never = false;
    uv_update_time(&e->loop);
    int64_t until = mu_mono_ms() + 200;
    while (!never && mu_mono_ms() < until) uv_run(&e->loop, UV_RUN_ONCE);
  }
  assert_int_equal(n, 0);
  RUN(e, k, mu_etcd_lease_keepalive, id);
  assert_int_equal(k.err.code, MU_ENOENT);
  env_free(e);
}

/* ---- watch ---- */

#define MAX_SEEN 64

typedef struct seen {
  bool created;
  size_t n;
  char keys[MAX_SEEN][32];
  char values[MAX_SEEN][32];
  char prev[MAX_SEEN][32];
  int types[MAX_SEEN];
  int64_t revs[MAX_SEEN];
  bool ended;
  mu_err err;
  bool cancel_on_event;
  mu_etcd_watch *w;
} seen;

static void on_watch(void *ud, const mu_etcd_watch_batch *b, const mu_err *err) {
  seen *s = ud;
  if (err != NULL) {
    s->ended = true;
    s->err = *err;
    return;
  }
  if (b->created) s->created = true;
  for (size_t i = 0; i < b->n_events && s->n < MAX_SEEN; i++) {
    const mu_etcd_event *ev = &b->events[i];
    snprintf(s->keys[s->n], 32, "%s", ev->kv.key);
    snprintf(s->values[s->n], 32, "%s", ev->kv.value);
    snprintf(s->prev[s->n], 32, "%s", ev->has_prev_kv ? ev->prev_kv.value : "");
    s->types[s->n] = ev->type;
    s->revs[s->n] = ev->kv.mod_revision;
    s->n++;
  }
  if (s->cancel_on_event && b->n_events > 0) {
    mu_etcd_watch_cancel(s->w);
    s->w = NULL;
  }
}

static void wait_events(env *e, seen *s, size_t n) {
  int64_t deadline = mu_mono_ms() + 10000;
  while (s->n < n && !s->ended && mu_mono_ms() < deadline) uv_run(&e->loop, UV_RUN_ONCE);
  if (s->n < n) fail_msg("watch: %zu of %zu events (%s)", s->n, n, s->err.msg);
}

static void test_watch(void **state) {
  env *e = env_new(state, NULL);
  seen s = {0};
  mu_err err = {0};
  call k;
  assert_int_equal(mu_etcd_watch_start(e->c, &(mu_etcd_watch_req){.key = "/t6/", .prefix = true, .prev_kv = true},
                                       on_watch, &s, &s.w, &err),
                   0);
  run_until(e, &s.created, 5000);
  put(e, "/t6/a", "1");
  put(e, "/t6/a", "2");
  put(e, "/t6x", "not mine");
  OK(e, k, mu_etcd_delete, &(mu_etcd_delete_req){.key = "/t6/a"});
  done(&k);
  wait_events(e, &s, 3);
  assert_string_equal(s.keys[0], "/t6/a");
  assert_string_equal(s.values[1], "2");
  assert_string_equal(s.prev[1], "1");
  assert_int_equal(s.types[2], MU_ETCD_EVENT_DELETE);
  assert_string_equal(s.prev[2], "2");
  assert_int_equal(mu_etcd_watch_next_revision(s.w), s.revs[2] + 1);

  /* Watching from an old revision replays history; cancelling inside the callback stops it. */
  seen s2 = {.cancel_on_event = true};
  assert_int_equal(mu_etcd_watch_start(e->c, &(mu_etcd_watch_req){.key = "/t6/a", .start_revision = s.revs[0]},
                                       on_watch, &s2, &s2.w, &err),
                   0);
  wait_events(e, &s2, 1);
  assert_null(s2.w);
  put(e, "/t6/a", "3");
  wait_events(e, &s, 4);
  assert_false(s2.ended);
  mu_etcd_watch_cancel(s.w);
  put(e, "/t6/a", "4");
  assert_int_equal(s.n, 4);
  env_free(e);
}

static void test_watch_resume(void **state) {
  env *e = env_new(state, &(mu_etcd_options){.request_timeout_ms = 2000, .watch_retry_max_ms = 300});
  seen s = {0};
  mu_err err = {0};
  call k;
  assert_int_equal(
      mu_etcd_watch_start(e->c, &(mu_etcd_watch_req){.key = "/t7/", .prefix = true}, on_watch, &s, &s.w, &err), 0);
  run_until(e, &s.created, 5000);
  put(e, "/t7/x1", "1");
  wait_events(e, &s, 1);

  assert_int_equal(mu_etcd_harness_stop(e->h, false, &err), 0);
  /* While etcd is down, calls fail with a clear "unreachable" naming the endpoint. */
  RUN(e, k, mu_etcd_put, &(mu_etcd_put_req){.key = "/t7/x", .value = "lost"});
  assert_int_equal(k.err.code, MU_EAGAIN);
  assert_non_null(strstr(k.err.msg, "unreachable"));
  assert_non_null(strstr(k.err.msg, mu_etcd_harness_endpoint(e->h)));
  assert_int_equal(mu_etcd_harness_restart(e->h, &err), 0);

  /* Written by another client (own loop) before this loop runs again: the watch cannot have
   * reconnected yet, so these happen while it is disconnected. */
  env *other = env_new(state, NULL);
  put(other, "/t7/x2", "2");
  put(other, "/t7/x3", "3");
  env_free(other);
  assert_int_equal(s.n, 1);
  wait_events(e, &s, 3);
  /* Give a duplicate the chance to show up. */
  put(e, "/t7/x4", "4");
  wait_events(e, &s, 4);
  assert_int_equal(s.n, 4);
  for (int i = 0; i < 4; i++) {
    char want[8];
    snprintf(want, sizeof(want), "/t7/x%d", i + 1);
    assert_string_equal(s.keys[i], want);
  }
  assert_false(s.ended);
  mu_etcd_watch_cancel(s.w);
  env_free(e);
}

static void test_compaction(void **state) {
  env *e = env_new(state, NULL);
  seen s = {0};
  mu_err err = {0};
  call k;
  int64_t first = put(e, "/t8/k", "1");
  put(e, "/t8/k", "2");
  int64_t last = put(e, "/t8/k", "3");
  OK(e, k, mu_etcd_compact, last, true);
  done(&k);
  RUN(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t8/k", .revision = first});
  assert_int_equal(k.err.code, MU_EAGAIN);
  assert_non_null(strstr(k.err.msg, "compacted"));
  assert_int_equal(mu_etcd_watch_start(e->c, &(mu_etcd_watch_req){.key = "/t8/k", .start_revision = first}, on_watch,
                                       &s, &s.w, &err),
                   0);
  run_until(e, &s.ended, 5000);
  assert_int_equal(s.err.code, MU_EAGAIN);
  char want[64];
  snprintf(want, sizeof(want), "compacted at revision %lld", (long long)last);
  assert_non_null(strstr(s.err.msg, want));
  assert_int_equal(s.n, 0);
  env_free(e);
}

/* ---- endpoints and failures ---- */

static void test_unreachable_and_failover(void **state) {
  env *e = env_new(state, &(mu_etcd_options){.request_timeout_ms = 2000});
  call k;
  const char *dead[] = {"http://127.0.0.1:1", "127.0.0.1:2"};
  mu_etcd_client *live = e->c;

  new_client(e, dead, 2, NULL, &e->c);
  RUN(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t9"});
  assert_int_equal(k.err.code, MU_EAGAIN);
  assert_non_null(strstr(k.err.msg, "http://127.0.0.1:1 ("));
  assert_non_null(strstr(k.err.msg, "http://127.0.0.1:2 ("));
  close_client(e, e->c);

  const char *mixed[] = {"http://127.0.0.1:1", mu_etcd_harness_endpoint(e->h)};
  new_client(e, mixed, 2, NULL, &e->c);
  OK(e, k, mu_etcd_put, &(mu_etcd_put_req){.key = "/t9/a", .value = "1"});
  done(&k);
  assert_string_equal(mu_etcd_client_endpoint(e->c), mu_etcd_harness_endpoint(e->h));
  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t9/a"});
  assert_int_equal(k.res->n_kvs, 1);
  done(&k);
  close_client(e, e->c);
  e->c = live;
  env_free(e);
}

static void test_timeout(void **state) {
  env *e = env_new(state, &(mu_etcd_options){.request_timeout_ms = 300});
  call k;
  put(e, "/t10/a", "1");
  mu_err err = {0};
  assert_int_equal(mu_etcd_harness_pause(e->h, &err), 0);
  RUN(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t10/a"});
  assert_int_equal(mu_etcd_harness_resume(e->h, &err), 0);
  assert_int_equal(k.err.code, MU_ETIMEDOUT);
  assert_non_null(strstr(k.err.msg, "within 300 ms"));
  OK(e, k, mu_etcd_range, &(mu_etcd_range_req){.key = "/t10/a"});
  done(&k);
  env_free(e);
}

static void test_close_in_flight(void **state) {
  env *e = env_new(state, NULL);
  call k1 = {0};
  seen s = {0};
  mu_err err = {0};
  bool closed = false;
  assert_int_equal(mu_etcd_put(e->c, &(mu_etcd_put_req){.key = "/t11/a", .value = "1"}, on_call, &k1, &err), 0);
  assert_int_equal(mu_etcd_watch_start(e->c, &(mu_etcd_watch_req){.key = "/t11/"}, on_watch, &s, &s.w, &err), 0);
  mu_etcd_client_close(e->c, on_closed, &closed);
  assert_true(k1.done);
  assert_int_equal(k1.err.code, MU_ECANCELED);
  assert_true(s.ended);
  assert_int_equal(s.err.code, MU_ECANCELED);
  assert_int_equal(mu_etcd_put(e->c, &(mu_etcd_put_req){.key = "/t11/a"}, on_call, &k1, &err), MU_ECANCELED);
  run_until(e, &closed, 5000);
  e->c = NULL;
  uv_close((uv_handle_t *)&e->tick, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&e->loop), 0);
  free(e);
}

typedef struct closer {
  env *e;
  call k;
  bool closed;
} closer;

static void close_from_cb(void *ud, const mu_etcd_result *res, const mu_err *err) {
  closer *cl = ud;
  on_call(&cl->k, res, err);
  mu_etcd_client_close(cl->e->c, on_closed, &cl->closed);
}

static void test_close_from_callback(void **state) {
  env *e = env_new(state, NULL);
  closer cl = {.e = e};
  call k2 = {0};
  mu_err err = {0};
  assert_int_equal(mu_etcd_put(e->c, &(mu_etcd_put_req){.key = "/t13/a", .value = "1"}, close_from_cb, &cl, &err), 0);
  assert_int_equal(mu_etcd_range(e->c, &(mu_etcd_range_req){.key = "/t13/a"}, on_call, &k2, &err), 0);
  run_until(e, &cl.closed, 5000);
  assert_non_null(cl.k.res);
  assert_true(k2.done); /* completed (result or MU_ECANCELED), exactly once */
  mu_etcd_result_free(cl.k.res);
  mu_etcd_result_free(k2.res);
  uv_close((uv_handle_t *)&e->tick, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&e->loop), 0);
  free(e);
}

/* Runs last: turns etcd auth on, checks refusal and a working login, turns it off again. */
static void test_auth(void **state) {
  env *e = env_new(state, NULL);
  call k;
  OK(e, k, mu_etcd_raw, "/v3/auth/role/add", "{\"name\":\"root\"}");
  done(&k);
  OK(e, k, mu_etcd_raw, "/v3/auth/user/add", "{\"name\":\"root\",\"password\":\"pw\"}");
  done(&k);
  OK(e, k, mu_etcd_raw, "/v3/auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}");
  done(&k);
  OK(e, k, mu_etcd_raw, "/v3/auth/enable", "{}");
  done(&k);
  RUN(e, k, mu_etcd_put, &(mu_etcd_put_req){.key = "/t12/a", .value = "1"});
  assert_int_equal(k.err.code, MU_EINVAL); /* etcd: "user name is empty" */
  mu_etcd_client *anon = e->c;

  const char *ep = mu_etcd_harness_endpoint(e->h);
  new_client(e, &ep, 1, &(mu_etcd_options){.username = "root", .password = "bad"}, &e->c);
  RUN(e, k, mu_etcd_put, &(mu_etcd_put_req){.key = "/t12/a", .value = "1"});
  assert_int_equal(k.err.code, MU_EPERM);
  assert_non_null(strstr(k.err.msg, "auth as 'root' refused"));
  close_client(e, e->c);

  new_client(e, &ep, 1, &(mu_etcd_options){.username = "root", .password = "pw"}, &e->c);
  seen s = {0};
  mu_err err = {0};
  assert_int_equal(mu_etcd_watch_start(e->c, &(mu_etcd_watch_req){.key = "/t12/a"}, on_watch, &s, &s.w, &err), 0);
  run_until(e, &s.created, 5000);
  put(e, "/t12/a", "1");
  wait_events(e, &s, 1);
  mu_etcd_watch_cancel(s.w);
  OK(e, k, mu_etcd_raw, "/v3/auth/disable", "{}");
  done(&k);
  close_client(e, e->c);
  e->c = anon;
  put(e, "/t12/b", "anonymous again");
  env_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_range),
      cmocka_unit_test(test_delete),
      cmocka_unit_test(test_txn),
      cmocka_unit_test(test_too_large),
      cmocka_unit_test(test_lease),
      cmocka_unit_test(test_watch),
      cmocka_unit_test(test_watch_resume),
      cmocka_unit_test(test_compaction),
      cmocka_unit_test(test_unreachable_and_failover),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_close_in_flight),
      cmocka_unit_test(test_close_from_callback),
      cmocka_unit_test(test_auth),
  };
  return cmocka_run_group_tests(tests, mu_etcd_harness_group_setup, mu_etcd_harness_group_teardown);
}
