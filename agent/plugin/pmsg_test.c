/* The plugin-host message codec: round trips, frames cut at every byte, and the refusals a
 * broken peer gets (length past the bound, strings off the end, too few fields, junk). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/plugin/pmsg.h"

static void test_round_trip(void **state) {
  (void)state;
  int64_t ints[] = {1, -1, INT64_MAX};
  mu_pstr strs[] = {{"a\0b", 3}, {"", 0}, {"hello", 5}};
  uint8_t *f = NULL;
  size_t len = 0;
  mu_err e = {0};
  assert_int_equal(mu_pmsg_encode(MU_PM_PARAM, 77, ints, 3, strs, 3, 1024, &f, &len, &e), 0);
  for (size_t cut = 0; cut < len; cut++) {
    size_t flen = 99;
    assert_int_equal(mu_pmsg_frame_len(f, cut, 1024, &flen, &e), 0);
    assert_int_equal(flen, 0); /* incomplete */
  }
  size_t flen = 0;
  assert_int_equal(mu_pmsg_frame_len(f, len, 1024, &flen, &e), 0);
  assert_int_equal(flen, len);
  mu_pmsg *m = NULL;
  assert_int_equal(mu_pmsg_decode(f, len, 1024, &m, &e), 0);
  assert_int_equal(m->kind, MU_PM_PARAM);
  assert_int_equal(m->task, 77);
  assert_int_equal(m->n_ints, 3);
  assert_true(m->ints[2] == INT64_MAX && m->ints[1] == -1);
  assert_int_equal(m->n_strs, 3);
  assert_int_equal(m->strs[0].len, 3);
  assert_memory_equal(m->strs[0].p, "a\0b", 3);
  assert_string_equal(m->strs[2].p, "hello");
  free(m);
  free(f);
}

static void test_bounds(void **state) {
  (void)state;
  mu_err e = {0};
  uint8_t *f = NULL;
  size_t len = 0;
  char big[200];
  memset(big, 'x', sizeof big);
  mu_pstr strs[] = {{big, sizeof big}};
  int64_t ints[] = {1};
  assert_int_equal(mu_pmsg_encode(MU_PM_OUTPUT, 1, ints, 1, strs, 1, 100, &f, &len, &e), MU_ENOSPC);
  assert_int_equal(mu_pmsg_encode(MU_PM_OUTPUT, 1, ints, 1, strs, 1, 4096, &f, &len, &e), 0);
  size_t flen = 0;
  /* the receiver's bound is smaller than the frame: refused from the prefix alone */
  assert_int_equal(mu_pmsg_frame_len(f, 4, 100, &flen, &e), MU_EINVAL);
  assert_non_null(strstr(e.msg, "outside"));
  /* a string length running past the frame */
  uint8_t *bad = malloc(len);
  memcpy(bad, f, len);
  size_t str_len_at = 4 + MU_PM_BODY_FIXED + 8;
  bad[str_len_at] = 0xff;
  mu_pmsg *m = NULL;
  assert_int_equal(mu_pmsg_decode(bad, len, 4096, &m, &e), MU_EINVAL);
  assert_non_null(strstr(e.msg, "runs past the frame"));
  /* fewer fields than the kind needs: OUTPUT without its stream */
  memcpy(bad, f, len);
  bad[4 + 2] = 0;
  assert_int_equal(mu_pmsg_decode(bad, len, 4096, &m, &e), MU_EINVAL);
  /* unknown kind */
  memcpy(bad, f, len);
  bad[4] = 200;
  assert_int_equal(mu_pmsg_decode(bad, len, 4096, &m, &e), MU_EINVAL);
  assert_non_null(strstr(e.msg, "unknown kind"));
  /* a string count that cannot fit */
  memcpy(bad, f, len);
  bad[4 + 4] = 0xff;
  bad[4 + 5] = 0xff;
  assert_int_equal(mu_pmsg_decode(bad, len, 4096, &m, &e), MU_EINVAL);
  free(bad);
  free(f);
  /* encoder refuses too few fields */
  assert_int_equal(mu_pmsg_encode(MU_PM_FINISH, 1, ints, 1, NULL, 0, 4096, &f, &len, &e), MU_EINVAL);
}

/* SDK v2: a METRIC_DEF carries its buckets as double bits; bad counts and buckets are refused. */
static void test_metric_def(void **state) {
  (void)state;
  int64_t ints[] = {2, 3, 2, mu_pm_double_bits(0.5), mu_pm_double_bits(2.5)};
  mu_pstr strs[] = {{"lat_seconds", 11}, {"help", 4}, {"code", 4}};
  uint8_t *buf = NULL;
  size_t len = 0;
  mu_err err = {0};
  assert_int_equal(mu_pmsg_encode(MU_PM_METRIC_DEF, 0, ints, 5, strs, 3, 1 << 20, &buf, &len, &err), 0);
  mu_pmsg *m = NULL;
  assert_int_equal(mu_pmsg_decode(buf, len, 1 << 20, &m, &err), 0);
  mu_pm_metric_def d;
  assert_int_equal(mu_pmsg_metric_def(m, &d, &err), 0);
  assert_int_equal(d.id, 2);
  assert_string_equal(d.name, "lat_seconds");
  assert_int_equal(d.n_labels, 1);
  assert_string_equal(d.labels[0], "code");
  assert_null(d.labels[1]);
  assert_int_equal(d.n_buckets, 2);
  assert_true(d.buckets[1] == 2.5);
  free(m);
  free(buf);
  ints[4] = mu_pm_double_bits(0.25); /* not ascending */
  assert_int_equal(mu_pmsg_encode(MU_PM_METRIC_DEF, 0, ints, 5, strs, 3, 1 << 20, &buf, &len, &err), 0);
  assert_int_equal(mu_pmsg_decode(buf, len, 1 << 20, &m, &err), 0);
  assert_int_equal(mu_pmsg_metric_def(m, &d, &err), MU_EINVAL);
  assert_non_null(strstr(err.msg, "bucket 2 not finite and ascending"));
  free(m);
  free(buf);
  ints[2] = 3; /* says 3 buckets, carries 2 */
  assert_int_equal(mu_pmsg_encode(MU_PM_METRIC_DEF, 0, ints, 5, strs, 3, 1 << 20, &buf, &len, &err), 0);
  assert_int_equal(mu_pmsg_decode(buf, len, 1 << 20, &m, &err), 0);
  assert_int_equal(mu_pmsg_metric_def(m, &d, &err), MU_EINVAL);
  free(m);
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_bounds),
      cmocka_unit_test(test_metric_def),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
