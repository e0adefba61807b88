/* Redaction: a value never comes out, however the output is cut into chunks. Every split
 * position (and byte-at-a-time feeding) gives the same output as one pass over the whole text;
 * overlapping prefixes pick the longest value; several values, binary values, values of every
 * length from 1 to 40 (those under MU_REDACT_MIN pass unchanged), self-overlapping values, a
 * stream that ends inside a value (a task killed mid-print: masked from 4 bytes on); the
 * held-back tail never exceeds the longest value minus one; a random fuzz over a small
 * alphabet checks all of it against the one-pass result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/exec/redact.h"

typedef struct buf {
  char *p;
  size_t len;
} buf;

static void buf_add(buf *b, const void *data, size_t len) {
  b->p = realloc(b->p, b->len + len + 1);
  assert_non_null(b->p);
  if (len) memcpy(b->p + b->len, data, len);
  b->len += len;
  b->p[b->len] = '\0';
}

static mu_redactor *make(const char *const *values, const size_t *lens, size_t n) {
  mu_redactor *r = NULL;
  mu_err err = {0};
  assert_int_equal(mu_redactor_new((const void *const *)values, lens, n, &r, &err), 0);
  return r;
}

static size_t longest(const size_t *lens, size_t n) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (lens[i] > m) m = lens[i];
  return m;
}

/* Feeds in as the chunks cut at cuts[0..n_cuts), checking the held-back bound after each. */
static buf stream(const mu_redactor *r, const char *in, size_t len, const size_t *cuts, size_t n_cuts, size_t max_len) {
  mu_redact_stream st;
  mu_redact_stream_init(&st, r);
  buf out = {0};
  size_t at = 0;
  for (size_t c = 0; c <= n_cuts; c++) {
    size_t end = c < n_cuts ? cuts[c] : len;
    const void *o;
    size_t ol;
    mu_err err = {0};
    assert_int_equal(mu_redact_stream_feed(&st, in + at, end - at, &o, &ol, &err), 0);
    buf_add(&out, o, ol);
    assert_true(st.n_held + 1 <= (max_len ? max_len : 1));
    at = end;
  }
  const void *o;
  size_t ol;
  mu_redact_stream_flush(&st, &o, &ol);
  buf_add(&out, o, ol);
  assert_int_equal(st.n_held, 0);
  mu_redact_stream_free(&st);
  return out;
}

static int contains(const buf *b, const void *v, size_t len) {
  for (size_t i = 0; len > 0 && i + len <= b->len; i++)
    if (memcmp(b->p + i, v, len) == 0) return 1;
  return 0;
}

/* One pass, every two-chunk split, and byte by byte: all equal to want (when given). */
static void check_all_splits(const char *const *values, const size_t *lens, size_t n, const char *in, size_t len,
                             const char *want, size_t want_len) {
  mu_redactor *r = make(values, lens, n);
  size_t max_len = longest(lens, n);
  buf whole = stream(r, in, len, NULL, 0, max_len);
  if (want != NULL) {
    assert_int_equal(whole.len, want_len);
    assert_memory_equal(whole.p, want, want_len);
  }
  for (size_t i = 0; i < n; i++)
    if (lens[i] >= MU_REDACT_MIN) assert_false(contains(&whole, values[i], lens[i]));
  for (size_t cut = 0; cut <= len; cut++) {
    buf two = stream(r, in, len, &cut, 1, max_len);
    assert_int_equal(two.len, whole.len);
    assert_memory_equal(two.p, whole.p, whole.len);
    free(two.p);
  }
  size_t *every = calloc(len + 1, sizeof *every);
  for (size_t i = 0; i < len; i++) every[i] = i;
  buf bytes = stream(r, in, len, every, len, max_len);
  assert_int_equal(bytes.len, whole.len);
  assert_memory_equal(bytes.p, whole.p, whole.len);
  free(bytes.p);
  free(every);
  free(whole.p);
  mu_redactor_free(r);
}

static void test_split_at_every_position(void **state) {
  (void)state;
  const char *v[] = {"s3cr3t-Passw0rd"};
  size_t l[] = {15};
  const char in[] = "user=admin password=s3cr3t-Passw0rd\nagain:s3cr3t-Passw0rd!";
  const char want[] = "user=admin password=***\nagain:***!";
  check_all_splits(v, l, 1, in, sizeof in - 1, want, sizeof want - 1);
}

static void test_overlapping_prefixes_longest_wins(void **state) {
  (void)state;
  const char *v[] = {"abcd", "abcdef", "cdefgh"};
  size_t l[] = {4, 6, 6};
  const char in[] = "xxabcdefyy abcdzz abcde cdefgh";
  const char want[] = "xx***yy ***zz ***e ***";
  check_all_splits(v, l, 3, in, sizeof in - 1, want, sizeof want - 1);
  /* the stream ends inside a value: masked from 4 bytes on, shorter tails come out as is */
  const char in2[] = "tail abcde";
  const char want2[] = "tail ***";
  check_all_splits(v, l, 3, in2, sizeof in2 - 1, want2, sizeof want2 - 1);
  const char in3[] = "tail abc";
  check_all_splits(v, l, 3, in3, sizeof in3 - 1, in3, sizeof in3 - 1);
  /* ... but a value cut off mid-stream, followed by other bytes, was not printed */
  const char in4[] = "abcde!";
  const char want4[] = "***e!";
  check_all_splits(v, l, 3, in4, sizeof in4 - 1, want4, sizeof want4 - 1);
}

static void test_several_secrets(void **state) {
  (void)state;
  const char *v[] = {"alpha-1111", "beta-22", "gamma-333333"};
  size_t l[] = {10, 7, 12};
  const char in[] = "beta-22alpha-1111 gamma-333333beta-22 beta-2 alpha-111";
  const char want[] = "****** ****** beta-2 ***"; /* it ends inside alpha-1111 */
  check_all_splits(v, l, 3, in, sizeof in - 1, want, sizeof want - 1);
}

static void test_self_overlapping_value(void **state) {
  (void)state;
  const char *v[] = {"aaaa"};
  size_t l[] = {4};
  const char in[] = "aaaaaaaaa";
  const char want[] = "******a";
  check_all_splits(v, l, 1, in, sizeof in - 1, want, sizeof want - 1);
  const char *v2[] = {"abab"};
  const char in2[] = "abababab.ababa";
  const char want2[] = "******.***a";
  check_all_splits(v2, l, 1, in2, sizeof in2 - 1, want2, sizeof want2 - 1);
}

static void test_binary_data(void **state) {
  (void)state;
  const char v0[] = {'\0', '\xff', 'k', '\0', '\x80'};
  const char *v[] = {v0};
  size_t l[] = {5};
  const char in[] = {'\x01', '\0', '\xff', 'k', '\0', '\x80', '\0', '\0', '\xff', 'k', '\0', '\xff'};
  const char want[] = {'\x01', '*', '*', '*', '\0', '\0', '\xff', 'k', '\0', '\xff'};
  check_all_splits(v, l, 1, in, sizeof in, want, sizeof want);
}

static void test_value_lengths_1_to_40(void **state) {
  (void)state;
  char value[41], in[200], want[200];
  for (size_t len = 1; len <= 40; len++) {
    for (size_t i = 0; i < len; i++) value[i] = (char)('A' + (i * 7 + len) % 26);
    value[len] = '\0';
    int n = snprintf(in, sizeof in, "<%s>%s<%.*s>", value, value, (int)(len - 1), value);
    int w = len < MU_REDACT_MIN ? snprintf(want, sizeof want, "%s", in)
                                : snprintf(want, sizeof want, "<***>***<%.*s>", (int)(len - 1), value);
    const char *v[] = {value};
    size_t l[] = {len};
    check_all_splits(v, l, 1, in, (size_t)n, want, (size_t)w);
  }
}

static void test_text_and_none(void **state) {
  (void)state;
  const char *v[] = {"tok-12345", "ab"};
  size_t l[] = {9, 2};
  mu_redactor *r = make(v, l, 2);
  char *t = mu_redact_text(r, "Bearer tok-12345 (ab)");
  assert_string_equal(t, "Bearer *** (ab)");
  free(t);
  mu_redactor_free(r);
  /* nothing long enough: no redactor, and a stream without one passes everything through */
  mu_redactor *none = make(v + 1, l + 1, 1);
  assert_null(none);
  t = mu_redact_text(NULL, "as is");
  assert_string_equal(t, "as is");
  free(t);
  mu_redact_stream st;
  mu_redact_stream_init(&st, NULL);
  const void *o;
  size_t ol;
  mu_err err = {0};
  assert_int_equal(mu_redact_stream_feed(&st, "ab", 2, &o, &ol, &err), 0);
  assert_int_equal(ol, 2);
  mu_redact_stream_free(&st);
}

static void test_random_against_one_pass(void **state) {
  (void)state;
  srand(12345);
  for (int round = 0; round < 300; round++) {
    char vals[3][12];
    const char *v[3];
    size_t l[3];
    for (int k = 0; k < 3; k++) {
      l[k] = 1 + (size_t)(rand() % 9);
      for (size_t i = 0; i < l[k]; i++) vals[k][i] = "abc"[rand() % 3];
      v[k] = vals[k];
    }
    char in[80];
    size_t len = (size_t)(rand() % 80);
    for (size_t i = 0; i < len; i++) in[i] = "abc\n"[rand() % 4];
    check_all_splits(v, l, 3, in, len, NULL, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_split_at_every_position),
      cmocka_unit_test(test_overlapping_prefixes_longest_wins),
      cmocka_unit_test(test_several_secrets),
      cmocka_unit_test(test_self_overlapping_value),
      cmocka_unit_test(test_binary_data),
      cmocka_unit_test(test_value_lengths_1_to_40),
      cmocka_unit_test(test_text_and_none),
      cmocka_unit_test(test_random_against_one_pass),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
