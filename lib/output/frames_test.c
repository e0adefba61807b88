/* Tests for the output record format: whole-record splitting, output and gap records
 * written and read back, and malformed headers refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/output/frames.h"

static void test_whole_records(void **state) {
  (void)state;
  uint8_t buf[32] = {'M', 'O', 1, 0, 3, 0, 0, 0, 'a', 'b', 'c', 'M', 'O', 2, 0, 5, 0, 0, 0, 'x'};
  assert_int_equal(mu_output_frames_whole(buf, 11), 11);
  assert_int_equal(mu_output_frames_whole(buf, 20), 11); /* the second is incomplete */
  assert_int_equal(mu_output_frames_whole(buf, 5), 0);
  buf[0] = 'X';
  assert_int_equal(mu_output_frames_whole(buf, 11), -1);
  buf[0] = 'M';
  buf[2] = 4; /* an unknown kind */
  assert_int_equal(mu_output_frames_whole(buf, 11), -1);
  buf[2] = MU_OUTPUT_GAP; /* a gap record of the wrong size */
  assert_int_equal(mu_output_frames_whole(buf, 11), -1);
}

static void test_output_and_gap_records(void **state) {
  (void)state;
  uint8_t buf[3 * MU_OUTPUT_GAP_RECORD];
  size_t n = mu_output_frame_put(buf, 2, "err", 3);
  mu_output_gap g = {
      .stream = 1, .reason = MU_OUTPUT_GAP_DROPPED, .cause = MU_OUTPUT_DROP_CAP, .start = 5000000000ull, .len = 123456};
  n += mu_output_gap_put(buf + n, &g);
  assert_int_equal(n, MU_OUTPUT_FRAME_HEADER + 3 + MU_OUTPUT_GAP_RECORD);
  assert_int_equal(mu_output_frames_whole(buf, n), (long)n);
  assert_int_equal(mu_output_frames_whole(buf, n - 1), MU_OUTPUT_FRAME_HEADER + 3);
  int kind;
  const uint8_t *p;
  size_t len;
  mu_output_frame_get(buf, &kind, &p, &len);
  assert_int_equal(kind, 2);
  assert_memory_equal(p, "err", 3);
  mu_output_frame_get(buf + MU_OUTPUT_FRAME_HEADER + 3, &kind, &p, &len);
  assert_int_equal(kind, MU_OUTPUT_GAP);
  mu_output_gap got;
  assert_int_equal(mu_output_gap_get(p, len, &got), 0);
  assert_int_equal(got.stream, 1);
  assert_int_equal(got.reason, MU_OUTPUT_GAP_DROPPED);
  assert_int_equal(got.cause, MU_OUTPUT_DROP_CAP);
  assert_true(got.start == 5000000000ull && got.len == 123456);
  assert_int_equal(mu_output_gap_get(p, len - 1, &got), -1);
  assert_non_null(strstr(mu_output_drop_cause_text(MU_OUTPUT_DROP_QUEUE), "disk"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_whole_records),
      cmocka_unit_test(test_output_and_gap_records),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
