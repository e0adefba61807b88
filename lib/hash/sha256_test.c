/* mu_sha256 against the FIPS 180-2 vectors, streamed in pieces and in one call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/hash/sha256.h"

static void hex(const uint8_t *d, char out[65]) {
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_vectors(void **state) {
  (void)state;
  uint8_t d[32];
  char h[65];
  assert_int_equal(mu_sha256_once("abc", 3, d), 0);
  hex(d, h);
  assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert_int_equal(mu_sha256_once("", 0, d), 0);
  hex(d, h);
  assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_streamed_million_a(void **state) {
  (void)state;
  char block[1000];
  memset(block, 'a', sizeof block);
  mu_sha256 s = {0};
  assert_int_equal(mu_sha256_init(&s), 0);
  for (int i = 0; i < 1000; i++) mu_sha256_update(&s, block, i % 2 ? 600 : 400);
  mu_sha256_update(&s, block, 0);
  uint8_t d[32];
  mu_sha256_final(&s, d);
  assert_null(s.ctx);
  char h[65];
  hex(d, h);
  /* 500 x 600 + 500 x 400 = 500,000 'a' */
  uint8_t want[32];
  static char half[500000];
  memset(half, 'a', sizeof half);
  assert_int_equal(mu_sha256_once(half, sizeof half, want), 0);
  assert_memory_equal(d, want, 32);
  mu_sha256 abandoned = {0};
  assert_int_equal(mu_sha256_init(&abandoned), 0);
  mu_sha256_update(&abandoned, "x", 1);
  mu_sha256_discard(&abandoned); /* no leak under LeakSanitizer */
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_vectors), cmocka_unit_test(test_streamed_million_a)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
