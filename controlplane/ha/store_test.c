/* The fenced store against a real etcd: big batches split by op count and by bytes and all keys
 * land; a deposed leader's writes are refused with MU_EPERM, write nothing and make it step
 * down; a follower cannot write; prefix loads page through everything at one revision; a
 * create-only put writes once and reports the value it found after that. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/ha/ha_testenv.h"
#include "controlplane/ha/store.h"
#include "lib/base/clock.h"

typedef struct done {
  bool done;
  mu_store_batch_result res;
  mu_err err;
  bool failed;
} done;

static void on_batch(void *ud, const mu_store_batch_result *res, const mu_err *err) {
  done *d = ud;
  d->done = true;
  d->res = *res;
  if (err != NULL) {
    d->failed = true;
    d->err = *err;
  }
}

typedef struct loaded {
  bool done;
  int64_t revision;
  size_t total, pages;
  char **keys;
  size_t n;
  mu_err err;
  bool failed;
} loaded;

static int on_page(void *ud, const mu_etcd_kv *kvs, size_t n, mu_err *err) {
  loaded *l = ud;
  (void)err;
  l->pages++;
  l->keys = realloc(l->keys, (l->n + n) * sizeof(*l->keys));
  for (size_t i = 0; i < n; i++) l->keys[l->n++] = strdup(kvs[i].key);
  return 0;
}

static void on_loaded(void *ud, int64_t revision, size_t total, const mu_err *err) {
  loaded *l = ud;
  l->done = true;
  l->revision = revision;
  l->total = total;
  if (err != NULL) {
    l->failed = true;
    l->err = *err;
  }
}

static void loaded_free(loaded *l) {
  for (size_t i = 0; i < l->n; i++) free(l->keys[i]);
  free(l->keys);
}

typedef struct fixture {
  ha_env *e;
  ha_member m;
  mu_store *s;
} fixture;

static void fixture_start(fixture *f, void **state, const char *prefix, const mu_store_options *o) {
  mu_err err = {0};
  f->e = mu_test_ha_env_new(*state, prefix);
  mu_test_ha_member_start(f->e, &f->m, "solo");
  mu_test_ha_run_until(f->e, &f->m.leading, 5000);
  if (mu_store_new(f->m.c, f->m.l, o, &f->s, &err) != 0) fail_msg("store_new: %s", err.msg);
}

static void on_closed(void *ud) { *(bool *)ud = true; }

static void fixture_stop(fixture *f) {
  bool closed = false;
  mu_store_close(f->s, on_closed, &closed);
  mu_test_ha_run_until(f->e, &closed, 5000);
  mu_test_ha_member_stop(&f->m);
  mu_test_ha_env_free(f->e);
}

static void commit(fixture *f, mu_store_batch *b, done *d) {
  mu_err err = {0};
  memset(d, 0, sizeof(*d));
  if (mu_store_batch_commit(b, on_batch, d, &err) != 0) fail_msg("commit: %s", err.msg);
  mu_test_ha_run_until(f->e, &d->done, 15000);
}

static int64_t count(ha_env *e, const char *prefix) {
  mu_etcd_result *r = mu_test_ha_side_range(e, prefix, true);
  int64_t n = (int64_t)r->n_kvs;
  mu_etcd_result_free(r);
  return n;
}

static void test_batch_splits_by_ops(void **state) {
  fixture f;
  fixture_start(&f, state, "/s1/", NULL);
  mu_err err = {0};
  mu_store_batch *b = mu_store_batch_new(f.s);
  char key[64], value[64];
  for (int i = 0; i < 300; i++) {
    snprintf(key, sizeof(key), "/s1/tasks/j1/t%03d", i);
    snprintf(value, sizeof(value), "{\"n\":%d}", i);
    assert_int_equal(mu_store_batch_put(b, key, value, 0, &err), 0);
  }
  mu_store_batch_barrier(b); /* the marker only after every task record */
  assert_int_equal(mu_store_batch_put(b, "/s1/jobs/j1/ready", "1", 1, &err), 0);
  assert_int_equal(mu_store_batch_ops(b), 301);
  done d;
  commit(&f, b, &d);
  if (d.failed) fail_msg("batch: %s", d.err.msg);
  assert_int_equal(d.res.txns, 4); /* 128 + 128 + 44 sent together, then the marker */
  assert_int_equal(d.res.txns_committed, 4);
  assert_int_equal(d.res.ops_committed, 301);
  assert_int_equal(count(f.e, "/s1/tasks/j1/"), 300);
  /* The ready marker went last, alone: its revision is the batch's, above every task's. */
  mu_etcd_result *r = mu_test_ha_side_range(f.e, "/s1/jobs/j1/ready", false);
  assert_int_equal(r->n_kvs, 1);
  assert_int_equal(r->kvs[0].mod_revision, d.res.revision);
  mu_etcd_result_free(r);
  r = mu_test_ha_side_range(f.e, "/s1/tasks/j1/", true);
  assert_int_equal(r->n_kvs, 300);
  int64_t revs[3] = {0};
  size_t n_revs = 0;
  for (size_t i = 0; i < r->n_kvs; i++) {
    assert_true(r->kvs[i].mod_revision < d.res.revision);
    size_t k = 0;
    while (k < n_revs && revs[k] != r->kvs[i].mod_revision) k++;
    if (k == n_revs) {
      assert_true(n_revs < 3); /* three transactions, one revision each */
      revs[n_revs++] = r->kvs[i].mod_revision;
    }
  }
  assert_int_equal(n_revs, 3);
  mu_etcd_result_free(r);
  r = mu_test_ha_side_range(f.e, "/s1/tasks/j1/t299", false);
  assert_string_equal(r->kvs[0].value, "{\"n\":299}");
  mu_etcd_result_free(r);

  /* Deletes, by key and by prefix, in the same way. */
  b = mu_store_batch_new(f.s);
  assert_int_equal(mu_store_batch_delete(b, "/s1/tasks/j1/t000", false, &err), 0);
  assert_int_equal(mu_store_batch_delete(b, "/s1/tasks/j1/t1", true, &err), 0);
  commit(&f, b, &d);
  assert_false(d.failed);
  assert_int_equal(d.res.txns, 1);
  assert_int_equal(count(f.e, "/s1/tasks/j1/"), 199);

  /* A single put through the same path. */
  memset(&d, 0, sizeof(d));
  assert_int_equal(mu_store_put(f.s, "/s1/x", "y", 0, on_batch, &d, &err), 0);
  mu_test_ha_run_until(f.e, &d.done, 5000);
  assert_false(d.failed);
  assert_int_equal(count(f.e, "/s1/x"), 1);
  fixture_stop(&f);
}

static void test_batch_splits_by_bytes(void **state) {
  fixture f;
  fixture_start(&f, state, "/s2/", &(mu_store_options){.max_txn_bytes = 100 * 1024});
  mu_err err = {0};
  size_t vlen = 30 * 1024;
  char *big = malloc(vlen);
  memset(big, 'v', vlen);
  mu_store_batch *b = mu_store_batch_new(f.s);
  char key[64];
  for (int i = 0; i < 10; i++) {
    snprintf(key, sizeof(key), "/s2/bundles/d/chunk/%d", i);
    assert_int_equal(mu_store_batch_put(b, key, big, vlen, &err), 0);
  }
  /* One op over the per-transaction limit is refused up front, naming it. */
  char *huge = malloc(200 * 1024);
  memset(huge, 'h', 200 * 1024);
  assert_int_equal(mu_store_batch_put(b, "/s2/too/big", huge, 200 * 1024, &err), MU_ENOSPC);
  assert_non_null(strstr(err.msg, "/s2/too/big"));
  free(huge);
  assert_int_equal(mu_store_batch_put(b, "", "x", 1, &err), MU_EINVAL);
  assert_int_equal(mu_store_batch_ops(b), 10);
  done d;
  commit(&f, b, &d);
  if (d.failed) fail_msg("batch: %s", d.err.msg);
  assert_int_equal(d.res.txns, 4); /* 3 x 30 KiB fit in 100 KiB */
  assert_int_equal(count(f.e, "/s2/bundles/d/chunk/"), 10);
  mu_etcd_result *r = mu_test_ha_side_range(f.e, "/s2/bundles/d/chunk/7", false);
  assert_int_equal(r->kvs[0].value_len, vlen);
  mu_etcd_result_free(r);
  free(big);

  /* Batch bounds. */
  mu_store_close(f.s, NULL, NULL);
  assert_int_equal(mu_store_new(f.m.c, f.m.l, &(mu_store_options){.max_batch_ops = 2}, &f.s, &err), 0);
  b = mu_store_batch_new(f.s);
  assert_int_equal(mu_store_batch_put(b, "/s2/a", "1", 0, &err), 0);
  assert_int_equal(mu_store_batch_put(b, "/s2/b", "1", 0, &err), 0);
  assert_int_equal(mu_store_batch_put(b, "/s2/c", "1", 0, &err), MU_ENOSPC);
  assert_non_null(strstr(err.msg, "/s2/c"));
  mu_store_batch_free(b);
  b = mu_store_batch_new(f.s);
  assert_int_equal(mu_store_batch_commit(b, on_batch, &d, &err), MU_EINVAL);
  fixture_stop(&f);
}

/* A leader that has lost the key without noticing yet (paused, partitioned, slow): another
 * member re-created it, so its fenced writes must be refused and it must step down. */
static void test_fenced_out(void **state) {
  fixture f;
  fixture_start(&f, state, "/s3/", NULL);
  mu_err err = {0};
  int64_t term = f.m.term;
  /* Behind the member's back (its loop is not running): a new leader takes the key. */
  mu_test_ha_side_delete(f.e, f.e->leader_key, false);
  int64_t new_term = mu_test_ha_side_put(f.e, f.e->leader_key, "{\"member_id\":\"usurper\"}");
  assert_true(new_term > term);
  assert_int_equal(mu_leader_term(f.m.l), term); /* it has not heard yet */

  mu_store_batch *b = mu_store_batch_new(f.s);
  char key[64];
  for (int i = 0; i < 200; i++) {
    snprintf(key, sizeof(key), "/s3/jobs/j/%d", i);
    assert_int_equal(mu_store_batch_put(b, key, "stale", 0, &err), 0);
  }
  done d;
  commit(&f, b, &d);
  assert_true(d.failed);
  assert_int_equal(d.err.code, MU_EPERM);
  char want[96];
  snprintf(want, sizeof(want), "not the leader any more (term %lld fenced out)", (long long)term);
  assert_non_null(strstr(d.err.msg, want));
  assert_int_equal(d.res.txns_committed, 0);
  assert_int_equal(d.res.ops_committed, 0);
  assert_int_equal(count(f.e, "/s3/jobs/"), 0);
  /* It stepped down (by the refused fence or by its watch, whichever came first). */
  int64_t until = mu_mono_ms() + 2000;
  while (f.m.deposed == 0 && mu_mono_ms() < until) mu_test_ha_run_for(f.e, 10);
  assert_int_equal(f.m.deposed, 1);
  assert_false(f.m.leading);
  assert_false(mu_leader_is_leader(f.m.l));

  /* Not the leader: refused up front, nothing sent. */
  b = mu_store_batch_new(f.s);
  assert_int_equal(mu_store_batch_put(b, "/s3/jobs/x", "1", 0, &err), 0);
  assert_int_equal(mu_store_batch_commit(b, on_batch, &d, &err), MU_EPERM);
  assert_non_null(strstr(err.msg, "not the leader"));

  /* The usurper's key has no lease; remove it so the member can lead again and close. */
  mu_test_ha_side_delete(f.e, f.e->leader_key, false);
  mu_test_ha_run_until(f.e, &f.m.leading, 5000);
  assert_true(f.m.term > new_term);
  assert_int_equal(f.e->max_leading, 1);
  fixture_stop(&f);
}

typedef struct created {
  bool done, failed;
  int created;
  char existing[64];
  mu_err err;
} created;

static void on_create(void *ud, int was_created, const mu_etcd_kv *existing, const mu_err *err) {
  created *c = ud;
  c->done = true;
  c->created = was_created;
  if (existing != NULL) snprintf(c->existing, sizeof c->existing, "%s", existing->value);
  if (err != NULL) {
    c->failed = true;
    c->err = *err;
  }
}

static void create(fixture *f, const char *key, const char *value, created *c) {
  mu_err err = {0};
  memset(c, 0, sizeof *c);
  if (mu_store_create(f->s, key, value, 0, on_create, c, &err) != 0) fail_msg("create: %s", err.msg);
  mu_test_ha_run_until(f->e, &c->done, 15000);
}

/* Create-only: the first claim writes, a second finds the first's value and changes nothing;
 * a deposed leader's claim is refused (MU_EPERM) and writes nothing. */
static void test_create_only(void **state) {
  fixture f;
  fixture_start(&f, state, "/s6/", NULL);
  created c;
  create(&f, "/s6/slots/1", "first", &c);
  assert_false(c.failed);
  assert_int_equal(c.created, 1);
  create(&f, "/s6/slots/1", "second", &c);
  assert_false(c.failed);
  assert_int_equal(c.created, 0);
  assert_string_equal(c.existing, "first");
  mu_etcd_result *r = mu_test_ha_side_range(f.e, "/s6/slots/1", false);
  assert_int_equal(r->n_kvs, 1);
  assert_string_equal(r->kvs[0].value, "first");
  mu_etcd_result_free(r);

  int64_t term = f.m.term;
  mu_test_ha_side_delete(f.e, f.e->leader_key, false);
  int64_t new_term = mu_test_ha_side_put(f.e, f.e->leader_key, "{\"member_id\":\"usurper\"}");
  assert_true(new_term > term);
  create(&f, "/s6/slots/2", "stale", &c);
  assert_true(c.failed);
  assert_int_equal(c.err.code, MU_EPERM);
  assert_int_equal(count(f.e, "/s6/slots/2"), 0);
  int64_t until = mu_mono_ms() + 2000;
  while (f.m.deposed == 0 && mu_mono_ms() < until) mu_test_ha_run_for(f.e, 10);
  assert_int_equal(f.m.deposed, 1);
  mu_test_ha_side_delete(f.e, f.e->leader_key, false);
  mu_test_ha_run_until(f.e, &f.m.leading, 5000);
  fixture_stop(&f);
}

static void test_load_prefix_pages(void **state) {
  fixture f;
  fixture_start(&f, state, "/s4/", &(mu_store_options){.page_size = 7});
  mu_err err = {0};
  mu_store_batch *b = mu_store_batch_new(f.s);
  char key[64];
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "/s4/agents/a%03d", i);
    assert_int_equal(mu_store_batch_put(b, key, "{}", 0, &err), 0);
  }
  done d;
  commit(&f, b, &d);
  assert_false(d.failed);
  mu_test_ha_side_put(f.e, "/s4/agentsX", "outside the prefix");

  loaded l = {0};
  assert_int_equal(mu_store_load_prefix(f.s, "/s4/agents/", on_page, on_loaded, &l, &err), 0);
  mu_test_ha_run_until(f.e, &l.done, 10000);
  if (l.failed) fail_msg("load: %s", l.err.msg);
  assert_int_equal(l.total, 100);
  assert_int_equal(l.n, 100);
  assert_int_equal(l.pages, 15); /* ceil(100 / 7) */
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof(key), "/s4/agents/a%03d", i);
    assert_string_equal(l.keys[i], key);
  }
  /* The snapshot revision: after our batch, and the side put outside the prefix. */
  assert_true(l.revision > d.res.revision);
  mu_etcd_result *r = mu_test_ha_side_range(f.e, "/s4/agentsX", false);
  assert_int_equal(l.revision, r->revision);
  mu_etcd_result_free(r);
  loaded_free(&l);

  /* Skipping a sub-prefix (bundle chunks): keys before and after it, none inside. */
  mu_test_ha_side_put(f.e, "/s4/agents/m/chunk", "big");
  mu_test_ha_side_put(f.e, "/s4/agents/z1", "{}");
  loaded sk = {0};
  assert_int_equal(mu_store_load_prefix_skip(f.s, "/s4/agents/", "/s4/agents/m/", on_page, on_loaded, &sk, &err), 0);
  mu_test_ha_run_until(f.e, &sk.done, 10000);
  if (sk.failed) fail_msg("load: %s", sk.err.msg);
  assert_int_equal(sk.n, 101);
  assert_string_equal(sk.keys[99], "/s4/agents/a099");
  assert_string_equal(sk.keys[100], "/s4/agents/z1");
  loaded_free(&sk);
  assert_int_equal(mu_store_load_prefix_skip(f.s, "/s4/agents/", "/s4/other/", on_page, on_loaded, &sk, &err),
                   MU_EINVAL);

  /* Several skips (bundle chunks and audit records), in any order, one inside another. */
  const char *skips[] = {"/s4/agents/z", "/s4/agents/m/", "/s4/agents/a05", "/s4/agents/m/chunk"};
  loaded ms = {0};
  assert_int_equal(mu_store_load_prefix_skips(f.s, "/s4/agents/", skips, 4, on_page, on_loaded, &ms, &err), 0);
  mu_test_ha_run_until(f.e, &ms.done, 10000);
  if (ms.failed) fail_msg("load: %s", ms.err.msg);
  assert_int_equal(ms.n, 90); /* a000..a049 and a060..a099 */
  assert_string_equal(ms.keys[49], "/s4/agents/a049");
  assert_string_equal(ms.keys[50], "/s4/agents/a060");
  assert_string_equal(ms.keys[89], "/s4/agents/a099");
  loaded_free(&ms);
  const char *outside[] = {"/s4/agents/m/", "/s4/other/"};
  assert_int_equal(mu_store_load_prefix_skips(f.s, "/s4/agents/", outside, 2, on_page, on_loaded, &ms, &err),
                   MU_EINVAL);

  /* Empty prefix → nothing, with the current revision. */
  loaded none = {0};
  assert_int_equal(mu_store_load_prefix(f.s, "/s4/none/", on_page, on_loaded, &none, &err), 0);
  mu_test_ha_run_until(f.e, &none.done, 5000);
  assert_false(none.failed);
  assert_int_equal(none.total, 0);
  assert_true(none.revision >= l.revision);
  assert_int_equal(mu_store_load_prefix(f.s, "", on_page, on_loaded, &none, &err), MU_EINVAL);
  fixture_stop(&f);
}

typedef struct lease_call {
  bool done;
  int64_t id;
  mu_err err;
} lease_call;

static void on_lease(void *ud, const mu_etcd_result *res, const mu_err *err) {
  lease_call *lc = ud;
  lc->done = true;
  if (res != NULL) lc->id = res->lease_id;
  if (err != NULL) lc->err = *err;
}

/* Puts attached to a lease (agent presence): the key carries the lease, goes when the lease is
 * revoked, and a lease etcd does not know fails the batch with MU_ENOENT. */
static void test_put_with_lease(void **state) {
  fixture f;
  fixture_start(&f, state, "/s5/", NULL);
  mu_err err = {0};
  lease_call g = {0};
  assert_int_equal(mu_etcd_lease_grant(f.m.c, 30, on_lease, &g, &err), 0);
  mu_test_ha_run_until(f.e, &g.done, 5000);
  assert_int_equal(g.err.code, 0);
  assert_true(g.id > 0);
  mu_store_batch *b = mu_store_batch_new(f.s);
  assert_int_equal(mu_store_batch_put(b, "/s5/agents/a1", "{}", 0, &err), 0);
  assert_int_equal(mu_store_batch_put_lease(b, "/s5/presence/a1", "{\"term\":1}", 0, g.id, &err), 0);
  assert_int_equal(mu_store_batch_put_lease(b, "/s5/presence/a2", "x", 0, -1, &err), MU_EINVAL);
  done d;
  commit(&f, b, &d);
  if (d.failed) fail_msg("batch: %s", d.err.msg);
  mu_etcd_result *r = mu_test_ha_side_range(f.e, "/s5/presence/a1", false);
  assert_int_equal(r->n_kvs, 1);
  assert_int_equal(r->kvs[0].lease, g.id);
  assert_string_equal(r->kvs[0].value, "{\"term\":1}");
  mu_etcd_result_free(r);
  r = mu_test_ha_side_range(f.e, "/s5/agents/a1", false);
  assert_int_equal(r->kvs[0].lease, 0);
  mu_etcd_result_free(r);

  lease_call rv = {0};
  assert_int_equal(mu_etcd_lease_revoke(f.m.c, g.id, on_lease, &rv, &err), 0);
  mu_test_ha_run_until(f.e, &rv.done, 5000);
  assert_int_equal(rv.err.code, 0);
  assert_int_equal(count(f.e, "/s5/presence/"), 0);
  assert_int_equal(count(f.e, "/s5/agents/"), 1);

  /* The revoked lease: the whole transaction is refused, the plain put in it too. */
  b = mu_store_batch_new(f.s);
  assert_int_equal(mu_store_batch_put(b, "/s5/agents/a2", "{}", 0, &err), 0);
  assert_int_equal(mu_store_batch_put_lease(b, "/s5/presence/a2", "{}", 0, g.id, &err), 0);
  commit(&f, b, &d);
  assert_true(d.failed);
  assert_int_equal(d.err.code, MU_ENOENT);
  assert_int_equal(d.res.ops_committed, 0);
  assert_int_equal(count(f.e, "/s5/agents/"), 1);
  assert_true(f.m.leading); /* not a fencing failure: still the leader */
  fixture_stop(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_batch_splits_by_ops), cmocka_unit_test(test_batch_splits_by_bytes),
      cmocka_unit_test(test_fenced_out),          cmocka_unit_test(test_create_only),
      cmocka_unit_test(test_load_prefix_pages),   cmocka_unit_test(test_put_with_lease),
  };
  return cmocka_run_group_tests(tests, mu_etcd_harness_group_setup, mu_etcd_harness_group_teardown);
}
