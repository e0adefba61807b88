/* The in-memory bundle store: put/read/list/remove round trips, the byte cap, replacing a
 * digest, and the read counter the serving path relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/bundles/bundle_store.h"

typedef struct result {
  int calls, rc;
  uint8_t *data;
  size_t len, n;
  char names[8][32];
} result;

static void on_done(void *arg, int rc, const char *msg) {
  result *r = arg;
  assert_non_null(msg);
  r->calls++;
  r->rc = rc;
}

static void on_read(void *arg, int rc, const char *msg, uint8_t *data, size_t len) {
  result *r = arg;
  assert_non_null(msg);
  r->calls++;
  r->rc = rc;
  r->data = data;
  r->len = len;
}

static void on_list(void *arg, int rc, const char *msg, mu_bundle_meta *const *metas, size_t n) {
  result *r = arg;
  (void)msg;
  r->calls++;
  r->rc = rc;
  r->n = n;
  for (size_t i = 0; i < n && i < 8; i++) snprintf(r->names[i], 32, "%s", metas[i]->name);
}

static mu_bundle_meta meta_of(const char *name, const uint8_t *data, size_t len) {
  mu_bundle_meta m = {.name = (char *)name, .version = "1.0", .size = len, .uploaded_at_ms = 5};
  mu_bundle_digest(data, len, m.digest);
  return m;
}

static void test_roundtrip_and_cap(void **state) {
  (void)state;
  mu_bundle_store *s = NULL;
  mu_err err = {0};
  assert_int_equal(mu_bundle_store_mem_new(100, &s, &err), 0);
  uint8_t a[60], b[50];
  memset(a, 'a', sizeof a);
  memset(b, 'b', sizeof b);
  mu_bundle_meta ma = meta_of("alpha", a, sizeof a), mb = meta_of("beta", b, sizeof b);
  uint8_t sig[] = "muster-ed25519-sig v1 x y\n";
  ma.sig = sig;
  ma.sig_len = sizeof sig - 1;
  result r = {0};
  s->ops->put(s, &ma, a, on_done, &r);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.rc, 0);
  /* 60 + 50 > 100: refused, nothing kept */
  memset(&r, 0, sizeof r);
  s->ops->put(s, &mb, b, on_done, &r);
  assert_int_equal(r.rc, MU_ENOSPC);
  memset(&r, 0, sizeof r);
  s->ops->list(s, on_list, &r);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.names[0], "alpha");
  /* read returns a private copy and counts the read */
  memset(&r, 0, sizeof r);
  s->ops->read(s, ma.digest, on_read, &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.len, sizeof a);
  assert_memory_equal(r.data, a, sizeof a);
  free(r.data);
  assert_int_equal(s->reads, 1);
  assert_int_equal(s->read_bytes, sizeof a);
  /* the same digest again replaces, it does not double count */
  memset(&r, 0, sizeof r);
  s->ops->put(s, &ma, a, on_done, &r);
  assert_int_equal(r.rc, 0);
  /* remove frees room; removing twice is fine; reading a removed one is ENOENT */
  memset(&r, 0, sizeof r);
  s->ops->remove(s, ma.digest, on_done, &r);
  assert_int_equal(r.rc, 0);
  s->ops->remove(s, ma.digest, on_done, &r);
  assert_int_equal(r.rc, 0);
  memset(&r, 0, sizeof r);
  s->ops->read(s, ma.digest, on_read, &r);
  assert_int_equal(r.rc, MU_ENOENT);
  assert_null(r.data);
  memset(&r, 0, sizeof r);
  s->ops->put(s, &mb, b, on_done, &r);
  assert_int_equal(r.rc, 0);
  s->ops->close(s);
}

static void test_meta_dup(void **state) {
  (void)state;
  uint8_t sig[3] = {1, 2, 3};
  mu_bundle_meta m = {.name = "n", .version = "2", .sig = sig, .sig_len = 3, .size = 9};
  strcpy(m.key_id, "0123456789abcdef");
  mu_bundle_meta *c = mu_bundle_meta_dup(&m);
  assert_non_null(c);
  assert_string_equal(c->name, "n");
  assert_string_equal(c->version, "2");
  assert_string_equal(c->key_id, "0123456789abcdef");
  assert_ptr_not_equal(c->sig, sig);
  assert_memory_equal(c->sig, sig, 3);
  mu_bundle_meta_free(c);
  mu_bundle_meta_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_and_cap),
      cmocka_unit_test(test_meta_dup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
