/* The etcd bundle store against a real etcd: put/read/list/remove round trips with the key
 * layout, the meta written after every chunk, garbage metas and chunk sets without a meta
 * skipped by list(), damaged chunks refused by read(), the size cap, and a deposed leader's
 * put refused by the fence with nothing listed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/bundles/bundle_store.h"
#include "controlplane/ha/ha_testenv.h"
#include "lib/base/clock.h"

typedef struct result {
  bool done;
  int rc;
  char msg[600];
  uint8_t *data;
  size_t len, n;
  mu_bundle_meta *metas[8];
} result;

static void on_done(void *arg, int rc, const char *msg) {
  result *r = arg;
  r->done = true;
  r->rc = rc;
  snprintf(r->msg, sizeof r->msg, "%s", msg);
}

static void on_read(void *arg, int rc, const char *msg, uint8_t *data, size_t len) {
  result *r = arg;
  on_done(arg, rc, msg);
  r->data = data;
  r->len = len;
}

static void on_list(void *arg, int rc, const char *msg, mu_bundle_meta *const *metas, size_t n) {
  result *r = arg;
  on_done(arg, rc, msg);
  r->n = n;
  for (size_t i = 0; i < n && i < 8; i++) r->metas[i] = mu_bundle_meta_dup(metas[i]);
}

static void result_clear(result *r) {
  free(r->data);
  for (size_t i = 0; i < r->n && i < 8; i++) mu_bundle_meta_free(r->metas[i]);
  memset(r, 0, sizeof *r);
}

typedef struct fixture {
  ha_env *e;
  ha_member m;
  mu_store *st;
  mu_bundle_store *bs;
  char prefix[32];
} fixture;

static void fixture_start(fixture *f, void **state, const char *prefix, uint64_t max_bytes) {
  mu_err err = {0};
  memset(f, 0, sizeof *f);
  snprintf(f->prefix, sizeof f->prefix, "%s", prefix);
  f->e = mu_test_ha_env_new(*state, prefix);
  mu_test_ha_member_start(f->e, &f->m, "solo");
  mu_test_ha_run_until(f->e, &f->m.leading, 5000);
  if (mu_store_new(f->m.c, f->m.l, NULL, &f->st, &err) != 0) fail_msg("store_new: %s", err.msg);
  mu_bundle_store_etcd_config cfg = {
      .prefix = prefix, .chunk_bytes = 4096, .batch_bytes = 8192, .max_bytes = max_bytes};
  if (mu_bundle_store_etcd_new(&f->e->loop, f->m.c, f->st, &cfg, &f->bs, &err) != 0)
    fail_msg("bundle_store_etcd_new: %s", err.msg);
}

static void on_closed(void *ud) { *(bool *)ud = true; }

static void fixture_stop(fixture *f) {
  bool closed = false;
  f->bs->ops->close(f->bs);
  mu_store_close(f->st, on_closed, &closed);
  mu_test_ha_run_until(f->e, &closed, 5000);
  mu_test_ha_member_stop(&f->m);
  mu_test_ha_env_free(f->e);
}

static uint8_t *bytes_of(size_t len, unsigned seed) {
  uint8_t *d = malloc(len);
  for (size_t i = 0; i < len; i++) d[i] = (uint8_t)((i * 131 + seed * 7) ^ (i >> 9));
  return d;
}

static mu_bundle_meta meta_of(const char *name, const uint8_t *data, size_t len) {
  mu_bundle_meta m = {.name = (char *)name, .version = "1.2", .size = len, .uploaded_at_ms = 1700000000123};
  mu_bundle_digest(data, len, m.digest);
  return m;
}

static void put(fixture *f, const mu_bundle_meta *m, const uint8_t *data, result *r) {
  memset(r, 0, sizeof *r);
  f->bs->ops->put(f->bs, m, data, on_done, r);
  mu_test_ha_run_until(f->e, &r->done, 10000);
}

static void list(fixture *f, result *r) {
  memset(r, 0, sizeof *r);
  f->bs->ops->list(f->bs, on_list, r);
  mu_test_ha_run_until(f->e, &r->done, 10000);
}

static void read_digest(fixture *f, const char *digest, result *r) {
  memset(r, 0, sizeof *r);
  f->bs->ops->read(f->bs, digest, on_read, r);
  mu_test_ha_run_until(f->e, &r->done, 10000);
}

static void test_round_trip(void **state) {
  fixture f;
  fixture_start(&f, state, "/b1/", 1 << 20);
  size_t len = 4096 * 4 + 100; /* 5 chunks, the last one short */
  uint8_t *data = bytes_of(len, 1);
  mu_bundle_meta m = meta_of("app", data, len);
  snprintf(m.key_id, sizeof m.key_id, "0123456789abcdef");
  m.sig = (uint8_t *)"muster-ed25519-sig v1 0123456789abcdef AAAA\n";
  m.sig_len = strlen((char *)m.sig);
  result r;
  put(&f, &m, data, &r);
  assert_int_equal(r.rc, 0);

  /* the layout: five chunks, then the meta, written after every chunk */
  char key[256];
  snprintf(key, sizeof key, "/b1/bundles/%s/", m.digest);
  mu_etcd_result *kv = mu_test_ha_side_range(f.e, key, true);
  assert_int_equal(kv->n_kvs, 6);
  int64_t last_chunk_rev = 0;
  for (size_t i = 0; i < 5; i++) {
    snprintf(key, sizeof key, "/b1/bundles/%s/chunk/%08zu", m.digest, i);
    assert_string_equal(kv->kvs[i].key, key);
    assert_int_equal(kv->kvs[i].value_len, i < 4 ? 4096 : 100);
    if (kv->kvs[i].mod_revision > last_chunk_rev) last_chunk_rev = kv->kvs[i].mod_revision;
  }
  snprintf(key, sizeof key, "/b1/bundles/%s/meta", m.digest);
  assert_string_equal(kv->kvs[5].key, key);
  assert_true(kv->kvs[5].mod_revision > last_chunk_rev);
  assert_non_null(strstr(kv->kvs[5].value, "\"chunks\":5"));
  assert_non_null(strstr(kv->kvs[5].value, "\"chunk_size\":4096"));
  mu_etcd_result_free(kv);

  read_digest(&f, m.digest, &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.len, len);
  assert_memory_equal(r.data, data, len);
  assert_int_equal(f.bs->reads, 1);
  assert_int_equal(f.bs->read_bytes, len);
  result_clear(&r);

  list(&f, &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.metas[0]->digest, m.digest);
  assert_string_equal(r.metas[0]->name, "app");
  assert_string_equal(r.metas[0]->version, "1.2");
  assert_string_equal(r.metas[0]->key_id, "0123456789abcdef");
  assert_int_equal(r.metas[0]->size, len);
  assert_int_equal(r.metas[0]->uploaded_at_ms, 1700000000123);
  assert_int_equal(r.metas[0]->sig_len, m.sig_len);
  assert_memory_equal(r.metas[0]->sig, m.sig, m.sig_len);
  result_clear(&r);

  /* two puts of one digest at once: the second is refused while the first is stored */
  result r2 = {0};
  memset(&r, 0, sizeof r);
  f.bs->ops->put(f.bs, &m, data, on_done, &r);
  f.bs->ops->put(f.bs, &m, data, on_done, &r2);
  assert_true(r2.done);
  assert_int_equal(r2.rc, MU_EAGAIN);
  mu_test_ha_run_until(f.e, &r.done, 10000);
  assert_int_equal(r.rc, 0);

  /* the same digest again replaces it (stored once) */
  put(&f, &m, data, &r);
  assert_int_equal(r.rc, 0);
  snprintf(key, sizeof key, "/b1/bundles/%s/", m.digest);
  kv = mu_test_ha_side_range(f.e, key, true);
  assert_int_equal(kv->n_kvs, 6);
  mu_etcd_result_free(kv);

  memset(&r, 0, sizeof r);
  f.bs->ops->remove(f.bs, m.digest, on_done, &r);
  mu_test_ha_run_until(f.e, &r.done, 10000);
  assert_int_equal(r.rc, 0);
  kv = mu_test_ha_side_range(f.e, "/b1/bundles/", true);
  assert_int_equal(kv->n_kvs, 0);
  mu_etcd_result_free(kv);
  read_digest(&f, m.digest, &r);
  assert_int_equal(r.rc, MU_ENOENT);
  list(&f, &r);
  assert_int_equal(r.n, 0);
  /* removing what is absent is fine */
  memset(&r, 0, sizeof r);
  f.bs->ops->remove(f.bs, m.digest, on_done, &r);
  mu_test_ha_run_until(f.e, &r.done, 10000);
  assert_int_equal(r.rc, 0);
  free(data);
  fixture_stop(&f);
}

/* list() reports only complete bundles with a good meta; everything else is logged and left. */
static void test_list_skips_bad_keys(void **state) {
  fixture f;
  fixture_start(&f, state, "/b2/", 1 << 20);
  uint8_t *a = bytes_of(5000, 2), *b = bytes_of(3000, 3);
  mu_bundle_meta ma = meta_of("good", a, 5000), mb = meta_of("other", b, 3000);
  result r;
  put(&f, &ma, a, &r);
  assert_int_equal(r.rc, 0);
  char key[256], d1[80], d2[80], d3[80];
  /* an interrupted upload: chunks, no meta */
  snprintf(d1, sizeof d1, "sha256:%064d", 1);
  snprintf(key, sizeof key, "/b2/bundles/%s/chunk/00000000", d1);
  mu_test_ha_side_put(f.e, key, "half");
  /* a garbage meta */
  snprintf(d2, sizeof d2, "sha256:%064d", 2);
  snprintf(key, sizeof key, "/b2/bundles/%s/meta", d2);
  mu_test_ha_side_put(f.e, key, "{not json");
  /* a meta naming more chunks than etcd holds */
  snprintf(d3, sizeof d3, "%s", mb.digest);
  char *json = mu_bundle_meta_to_json(&mb, 1, 4096);
  snprintf(key, sizeof key, "/b2/bundles/%s/meta", d3);
  mu_test_ha_side_put(f.e, key, json);
  free(json);
  /* a key that is no bundle key at all */
  mu_test_ha_side_put(f.e, "/b2/bundles/junk", "x");
  list(&f, &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.metas[0]->digest, ma.digest);
  result_clear(&r);
  /* the meta without chunks cannot be read either */
  read_digest(&f, mb.digest, &r);
  assert_int_equal(r.rc, MU_EIO);
  assert_non_null(strstr(r.msg, "chunk 0 is missing"));
  /* a damaged chunk (same length, other bytes) is refused by the digest check */
  snprintf(key, sizeof key, "/b2/bundles/%s/chunk/00000001", ma.digest);
  char junk[905];
  memset(junk, 'z', 904);
  junk[904] = '\0';
  mu_test_ha_side_put(f.e, key, junk);
  read_digest(&f, ma.digest, &r);
  assert_int_equal(r.rc, MU_EIO);
  assert_non_null(strstr(r.msg, "(damaged)"));
  assert_int_equal(f.bs->reads, 0);
  free(a);
  free(b);
  fixture_stop(&f);
}

static void test_size_cap(void **state) {
  fixture f;
  fixture_start(&f, state, "/b3/", 10000);
  uint8_t *a = bytes_of(6000, 4), *b = bytes_of(6000, 5);
  mu_bundle_meta ma = meta_of("a", a, 6000), mb = meta_of("b", b, 6000);
  result r;
  put(&f, &ma, a, &r);
  assert_int_equal(r.rc, 0);
  put(&f, &mb, b, &r);
  assert_int_equal(r.rc, MU_ENOSPC);
  assert_non_null(strstr(r.msg, "bundle store is full"));
  mu_etcd_result *kv = mu_test_ha_side_range(f.e, "/b3/bundles/", true);
  assert_int_equal(kv->n_kvs, 3); /* a's two chunks and meta */
  mu_etcd_result_free(kv);
  /* replacing a itself is within the cap */
  put(&f, &ma, a, &r);
  assert_int_equal(r.rc, 0);
  free(a);
  free(b);
  fixture_stop(&f);
}

/* A leader that lost its key without noticing: its put is refused by the fence, nothing is
 * listed, and the store keeps working for the next leader term. */
static void test_fenced_out_writer(void **state) {
  fixture f;
  fixture_start(&f, state, "/b4/", 1 << 20);
  uint8_t *a = bytes_of(9000, 6);
  mu_bundle_meta ma = meta_of("fenced", a, 9000);
  mu_test_ha_side_delete(f.e, f.e->leader_key, false);
  mu_test_ha_side_put(f.e, f.e->leader_key, "{\"member_id\":\"usurper\"}");
  result r;
  put(&f, &ma, a, &r);
  assert_int_equal(r.rc, MU_EPERM);
  assert_non_null(strstr(r.msg, "not the leader"));
  mu_etcd_result *kv = mu_test_ha_side_range(f.e, "/b4/bundles/", true);
  assert_int_equal(kv->n_kvs, 0);
  mu_etcd_result_free(kv);
  list(&f, &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.n, 0);
  /* once deposed it is refused up front as well */
  int64_t until = mu_mono_ms() + 3000;
  while (f.m.leading && mu_mono_ms() < until) mu_test_ha_run_for(f.e, 10);
  assert_false(f.m.leading);
  put(&f, &ma, a, &r);
  assert_int_equal(r.rc, MU_EPERM);
  /* the usurper goes away; leading again, the put works */
  mu_test_ha_side_delete(f.e, f.e->leader_key, false);
  mu_test_ha_run_until(f.e, &f.m.leading, 5000);
  put(&f, &ma, a, &r);
  assert_int_equal(r.rc, 0);
  read_digest(&f, ma.digest, &r);
  assert_int_equal(r.rc, 0);
  assert_memory_equal(r.data, a, 9000);
  result_clear(&r);
  free(a);
  fixture_stop(&f);
}

static void test_bad_config(void **state) {
  (void)state;
  mu_err err = {0};
  mu_bundle_store *bs = NULL;
  mu_bundle_store_etcd_config cfg = {.prefix = "/x", .max_bytes = 1};
  assert_int_equal(mu_bundle_store_etcd_new(NULL, NULL, NULL, &cfg, &bs, &err), MU_EINVAL);
  cfg.prefix = "/x/";
  cfg.chunk_bytes = 2 << 20;
  assert_int_equal(mu_bundle_store_etcd_new(NULL, NULL, NULL, &cfg, &bs, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "chunk size"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip), cmocka_unit_test(test_list_skips_bad_keys),
      cmocka_unit_test(test_size_cap),   cmocka_unit_test(test_fenced_out_writer),
      cmocka_unit_test(test_bad_config),
  };
  return cmocka_run_group_tests(tests, mu_etcd_harness_group_setup, mu_etcd_harness_group_teardown);
}
