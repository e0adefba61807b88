/* The agent's bundle cache: concurrent gets of one digest fetch it once; a hit needs no
 * fetch; bytes that do not match the digest are refused and not cached; the size cap evicts
 * the least recently used entry nobody holds; the control plane's error reaches every
 * waiter; a reopened cache finds what was written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "agent/bundle_cache.h"

typedef struct fake_cp {
  int requests;
  char last_digest[MU_BUNDLE_DIGEST_SIZE];
  uint64_t last_offset;
} fake_cp;

static int fake_request(void *arg, const char *digest, uint64_t offset) {
  fake_cp *cp = arg;
  cp->requests++;
  snprintf(cp->last_digest, sizeof cp->last_digest, "%s", digest);
  cp->last_offset = offset;
  return 0;
}

typedef struct got {
  int calls, rc;
  char msg[300];
  char path[4200];
  char name[64];
} got;

static void on_got(void *arg, int rc, const char *msg, const mu_cached_bundle *b) {
  got *g = arg;
  g->calls++;
  g->rc = rc;
  snprintf(g->msg, sizeof g->msg, "%s", msg);
  if (b != NULL) {
    snprintf(g->path, sizeof g->path, "%s", b->path);
    snprintf(g->name, sizeof g->name, "%s", b->name);
  }
}

static char tmpdir[256];

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "%s/cacheXXXXXX", getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

/* Sends data as chunks of `chunk` bytes, the first one carrying name and version. */
static void feed(mu_bundle_cache *c, const char *digest, const uint8_t *data, size_t len, size_t chunk,
                 const char *name) {
  for (size_t off = 0; off < len; off += chunk) {
    Muster__V1__BundleChunk ch = MUSTER__V1__BUNDLE_CHUNK__INIT;
    size_t n = len - off < chunk ? len - off : chunk;
    ch.digest = (char *)digest;
    ch.offset = off;
    ch.data.data = (uint8_t *)data + off;
    ch.data.len = n;
    ch.total_size = len;
    ch.last = off + n >= len;
    if (off == 0) {
      ch.name = (char *)name;
      ch.version = "1.0";
    }
    mu_bundle_cache_on_chunk(c, &ch);
  }
}

static void run_until(uv_loop_t *loop, const int *flag) {
  for (int i = 0; i < 5000 && !*flag; i++) uv_run(loop, UV_RUN_ONCE);
  assert_true(*flag);
}

static void on_closed(void *arg) { *(int *)arg = 1; }

static void close_cache(uv_loop_t *loop, mu_bundle_cache *c) {
  int closed = 0;
  mu_bundle_cache_close(c, on_closed, &closed);
  run_until(loop, &closed);
}

static void test_fetch_once_then_hit(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  fake_cp cp = {0};
  char dir[300];
  snprintf(dir, sizeof dir, "%s/once", tmpdir);
  mu_bundle_cache_config cfg = {.dir = dir, .max_bytes = 1 << 20, .request = fake_request, .arg = &cp};
  mu_bundle_cache *c = NULL;
  mu_err err = {0};
  assert_int_equal(mu_bundle_cache_open(&loop, &cfg, &c, &err), 0);
  uint8_t data[10000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7);
  char digest[MU_BUNDLE_DIGEST_SIZE];
  mu_bundle_digest(data, sizeof data, digest);
  got g[5];
  memset(g, 0, sizeof g);
  for (int i = 0; i < 5; i++) mu_bundle_cache_get(c, digest, on_got, &g[i]);
  /* five waiters, one request */
  assert_int_equal(cp.requests, 1);
  assert_string_equal(cp.last_digest, digest);
  assert_int_equal(g[0].calls, 0);
  /* a stale chunk (wrong offset) is ignored */
  Muster__V1__BundleChunk stale = MUSTER__V1__BUNDLE_CHUNK__INIT;
  stale.digest = digest;
  stale.offset = 4096;
  stale.total_size = sizeof data;
  mu_bundle_cache_on_chunk(c, &stale);
  feed(c, digest, data, sizeof data, 3000, "demo");
  run_until(&loop, &g[4].calls);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(g[i].calls, 1);
    assert_int_equal(g[i].rc, 0);
    assert_string_equal(g[i].name, "demo");
    mu_bundle_cache_release(c, digest);
  }
  struct stat st;
  assert_int_equal(stat(g[0].path, &st), 0);
  assert_int_equal(st.st_size, sizeof data);
  /* a hit: answered at once, no request */
  got h = {0};
  mu_bundle_cache_get(c, digest, on_got, &h);
  assert_int_equal(h.calls, 1);
  assert_int_equal(h.rc, 0);
  assert_int_equal(cp.requests, 1);
  mu_bundle_cache_release(c, digest);
  mu_bundle_cache_stats s;
  mu_bundle_cache_stats_get(c, &s);
  assert_int_equal(s.fetches, 1);
  assert_int_equal(s.hits, 1);
  assert_int_equal(s.misses, 5);
  assert_int_equal(s.entries, 1);
  close_cache(&loop, c);
  /* reopened: still there */
  assert_int_equal(mu_bundle_cache_open(&loop, &cfg, &c, &err), 0);
  memset(&h, 0, sizeof h);
  mu_bundle_cache_get(c, digest, on_got, &h);
  assert_int_equal(h.rc, 0);
  assert_string_equal(h.name, "demo");
  assert_int_equal(cp.requests, 1);
  mu_bundle_cache_release(c, digest);
  close_cache(&loop, c);
  uv_loop_close(&loop);
}

static void test_wrong_bytes_and_errors(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  fake_cp cp = {0};
  char dir[300];
  snprintf(dir, sizeof dir, "%s/bad", tmpdir);
  mu_bundle_cache_config cfg = {.dir = dir, .request = fake_request, .arg = &cp};
  mu_bundle_cache *c = NULL;
  mu_err err = {0};
  assert_int_equal(mu_bundle_cache_open(&loop, &cfg, &c, &err), 0);
  uint8_t data[100], other[100];
  memset(data, 1, sizeof data);
  memset(other, 2, sizeof other);
  char digest[MU_BUNDLE_DIGEST_SIZE];
  mu_bundle_digest(data, sizeof data, digest);
  got g = {0};
  mu_bundle_cache_get(c, digest, on_got, &g);
  feed(c, digest, other, sizeof other, 64, "x");
  run_until(&loop, &g.calls);
  assert_int_equal(g.rc, MU_EINVAL);
  assert_non_null(strstr(g.msg, "digest mismatch"));
  mu_bundle_cache_stats s;
  mu_bundle_cache_stats_get(c, &s);
  assert_int_equal(s.entries, 0);
  /* the control plane's error reaches every waiter */
  got a = {0}, b = {0};
  mu_bundle_cache_get(c, digest, on_got, &a);
  mu_bundle_cache_get(c, digest, on_got, &b);
  assert_int_equal(cp.requests, 2);
  Muster__V1__BundleChunk ch = MUSTER__V1__BUNDLE_CHUNK__INIT;
  ch.digest = digest;
  ch.error = "bundle x is not stored on the control plane";
  mu_bundle_cache_on_chunk(c, &ch);
  assert_int_equal(a.rc, MU_ENOENT);
  assert_int_equal(b.rc, MU_ENOENT);
  assert_non_null(strstr(a.msg, "not stored"));
  /* resume asks again from what has arrived */
  got r = {0};
  mu_bundle_cache_get(c, digest, on_got, &r);
  feed(c, digest, data, 50, 50, "x"); /* only the first half (total says 50: wrong) */
  close_cache(&loop, c);
  assert_int_equal(r.rc, MU_ECANCELED);
  uv_loop_close(&loop);
}

static void test_lru_eviction_by_size(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  fake_cp cp = {0};
  char dir[300];
  snprintf(dir, sizeof dir, "%s/lru", tmpdir);
  /* room for two 400-byte bundles, not three */
  mu_bundle_cache_config cfg = {.dir = dir, .max_bytes = 1000, .request = fake_request, .arg = &cp};
  mu_bundle_cache *c = NULL;
  mu_err err = {0};
  assert_int_equal(mu_bundle_cache_open(&loop, &cfg, &c, &err), 0);
  uint8_t data[3][400];
  char digest[3][MU_BUNDLE_DIGEST_SIZE];
  char path[3][4200];
  for (int i = 0; i < 3; i++) {
    memset(data[i], 'a' + i, 400);
    mu_bundle_digest(data[i], 400, digest[i]);
  }
  for (int i = 0; i < 2; i++) {
    got g = {0};
    mu_bundle_cache_get(c, digest[i], on_got, &g);
    feed(c, digest[i], data[i], 400, 400, "b");
    run_until(&loop, &g.calls);
    assert_int_equal(g.rc, 0);
    snprintf(path[i], sizeof path[i], "%s", g.path);
    mu_bundle_cache_release(c, digest[i]);
  }
  /* use bundle 0 again: bundle 1 is now the least recently used */
  got h = {0};
  mu_bundle_cache_get(c, digest[0], on_got, &h);
  assert_int_equal(h.rc, 0);
  mu_bundle_cache_release(c, digest[0]);
  got g = {0};
  mu_bundle_cache_get(c, digest[2], on_got, &g);
  feed(c, digest[2], data[2], 400, 100, "b");
  run_until(&loop, &g.calls);
  assert_int_equal(g.rc, 0);
  assert_int_equal(access(path[1], F_OK), -1); /* evicted, file gone */
  assert_int_equal(access(path[0], F_OK), 0);
  mu_bundle_cache_stats s;
  mu_bundle_cache_stats_get(c, &s);
  assert_int_equal(s.evictions, 1);
  assert_int_equal(s.entries, 2);
  assert_true(s.bytes <= 1000);
  /* a held entry is never evicted: hold 2 (from the get above) and 0, add 1 back */
  got k = {0};
  mu_bundle_cache_get(c, digest[0], on_got, &k);
  got m = {0};
  mu_bundle_cache_get(c, digest[1], on_got, &m);
  assert_int_equal(cp.requests, 4);
  feed(c, digest[1], data[1], 400, 400, "b");
  run_until(&loop, &m.calls);
  assert_int_equal(m.rc, 0);
  assert_int_equal(access(path[0], F_OK), 0);
  mu_bundle_cache_stats_get(c, &s);
  assert_int_equal(s.entries, 3); /* over the cap while everything is held */
  for (int i = 0; i < 3; i++) mu_bundle_cache_release(c, digest[i]);
  close_cache(&loop, c);
  uv_loop_close(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fetch_once_then_hit),
      cmocka_unit_test(test_wrong_bytes_and_errors),
      cmocka_unit_test(test_lru_eviction_by_size),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
