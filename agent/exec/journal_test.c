/* Journal tests: append/persist/replay in order, ack survives a restart, a torn tail is cut
 * and ignored, the size bound refuses appends, compaction keeps only live records and keeps
 * sequence numbers increasing; marks outlive acks, restarts and compaction until unmarked. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/exec/journal.h"

static char dir[256];
static char path[300];

typedef struct seen {
  int n;
  uint64_t seqs[256];
  char data[256][32];
  uint64_t persisted;
} seen;

static int visit(void *arg, uint64_t seq, const void *data, size_t len) {
  seen *s = arg;
  s->seqs[s->n] = seq;
  snprintf(s->data[s->n], sizeof s->data[0], "%.*s", (int)len, (const char *)data);
  s->n++;
  return 0;
}

static void on_persisted(mu_journal *j, uint64_t upto, void *arg) {
  (void)j;
  ((seen *)arg)->persisted = upto;
}

static mu_journal *open_j(uv_loop_t *loop, seen *s, uint64_t max_bytes, uint64_t compact) {
  mu_journal_opts o = {.max_bytes = max_bytes, .compact_bytes = compact, .on_persisted = on_persisted, .arg = s};
  mu_journal *j = NULL;
  mu_err err = {0};
  int rc = mu_journal_open(loop, path, &o, &j, &err);
  if (rc != 0) fprintf(stderr, "open: %s\n", err.msg);
  assert_int_equal(rc, 0);
  return j;
}

static void append(mu_journal *j, const char *text, uint64_t want_seq) {
  uint64_t seq = 0;
  mu_err err = {0};
  assert_int_equal(mu_journal_append(j, text, strlen(text), &seq, &err), 0);
  assert_int_equal(seq, want_seq);
}

static void close_j(uv_loop_t *loop, mu_journal *j) {
  mu_journal_close(j, NULL, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

static int setup(void **state) {
  (void)state;
  unlink(path);
  return 0;
}

static void test_crc32(void **state) {
  (void)state;
  assert_int_equal(mu_crc32(0, "123456789", 9), 0xCBF43926u);
}

static void test_append_replay(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  seen s = {0};
  mu_journal *j = open_j(&loop, &s, 0, 0);
  append(j, "one", 1);
  append(j, "two", 2);
  append(j, "three", 3);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(s.persisted, 3);
  close_j(&loop, j);

  seen r = {0};
  j = open_j(&loop, &r, 0, 0);
  mu_journal_foreach(j, visit, &r);
  assert_int_equal(r.n, 3);
  assert_string_equal(r.data[0], "one");
  assert_string_equal(r.data[2], "three");
  assert_int_equal(r.seqs[2], 3);
  append(j, "four", 4);
  close_j(&loop, j);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* Group commit: what one loop turn appends, marks and acks is one batch (one fdatasync), and
 * nothing counts as persisted before it is written. */
static void test_one_batch_per_turn(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  seen s = {0};
  mu_journal *j = open_j(&loop, &s, 0, 0);
  append(j, "a", 1);
  mu_err err = {0};
  assert_int_equal(mu_journal_mark(j, "task-1", "x", 1, &err), 0);
  append(j, "b", 2);
  append(j, "c", 3);
  mu_journal_ack(j, 1);
  mu_journal_stats st;
  mu_journal_stats_get(j, &st);
  assert_int_equal(st.persisted_seq, 0);
  assert_int_equal(s.persisted, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  mu_journal_stats_get(j, &st);
  assert_int_equal(st.batches, 1);
  assert_int_equal(s.persisted, 3);
  append(j, "d", 4); /* a later turn: its own batch */
  uv_run(&loop, UV_RUN_DEFAULT);
  mu_journal_stats_get(j, &st);
  assert_int_equal(st.batches, 2);
  assert_int_equal(s.persisted, 4);
  close_j(&loop, j);

  seen r = {0};
  j = open_j(&loop, &r, 0, 0);
  mu_journal_foreach(j, visit, &r);
  assert_int_equal(r.n, 3); /* 1 acked */
  assert_string_equal(r.data[0], "b");
  close_j(&loop, j);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_ack_survives_restart(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  seen s = {0};
  mu_journal *j = open_j(&loop, &s, 0, 0);
  append(j, "a", 1);
  append(j, "b", 2);
  append(j, "c", 3);
  mu_journal_ack(j, 2);
  close_j(&loop, j);

  seen r = {0};
  j = open_j(&loop, &r, 0, 0);
  mu_journal_foreach(j, visit, &r);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.seqs[0], 3);
  assert_string_equal(r.data[0], "c");
  append(j, "d", 4);
  mu_journal_ack(j, 4);
  close_j(&loop, j);

  seen e = {0};
  j = open_j(&loop, &e, 0, 0);
  mu_journal_foreach(j, visit, &e);
  assert_int_equal(e.n, 0);
  append(j, "e", 5); /* sequence numbers never go back */
  close_j(&loop, j);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_torn_tail(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  seen s = {0};
  mu_journal *j = open_j(&loop, &s, 0, 0);
  append(j, "whole", 1);
  append(j, "torn-record", 2);
  close_j(&loop, j);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(truncate(path, sb.st_size - 4), 0); /* crash mid-write of record 2 */

  seen r = {0};
  j = open_j(&loop, &r, 0, 0);
  mu_journal_foreach(j, visit, &r);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.data[0], "whole");
  mu_journal_stats st;
  mu_journal_stats_get(j, &st);
  assert_int_equal(st.torn_bytes, 24 + 11 - 4);
  append(j, "after", 2);
  close_j(&loop, j);

  /* Garbage appended after a good record is cut the same way. */
  int fd = open(path, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "\x4d\x55\x4a\x31garbage-garbage-garbage-xx", 30), 30);
  close(fd);
  seen g = {0};
  j = open_j(&loop, &g, 0, 0);
  mu_journal_foreach(j, visit, &g);
  assert_int_equal(g.n, 2);
  assert_string_equal(g.data[1], "after");
  close_j(&loop, j);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_bound(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  seen s = {0};
  mu_journal *j = open_j(&loop, &s, 100, 1000); /* room for 3 records of 24+8 bytes */
  append(j, "12345678", 1);
  append(j, "12345678", 2);
  append(j, "12345678", 3);
  uint64_t seq = 0;
  mu_err err = {0};
  assert_int_equal(mu_journal_append(j, "12345678", 8, &seq, &err), MU_ENOSPC);
  assert_non_null(strstr(err.msg, "journal full"));
  mu_journal_stats st;
  mu_journal_stats_get(j, &st);
  assert_int_equal(st.overflows, 1);
  mu_journal_ack(j, 1);
  append(j, "12345678", 4);
  close_j(&loop, j);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_compaction(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  seen s = {0};
  mu_journal *j = open_j(&loop, &s, 1 << 20, 512);
  char text[32];
  for (int i = 1; i <= 100; i++) {
    snprintf(text, sizeof text, "record-%03d", i);
    append(j, text, (uint64_t)i);
    if (i % 10 == 0) uv_run(&loop, UV_RUN_DEFAULT);
  }
  mu_journal_ack(j, 95);
  uv_run(&loop, UV_RUN_DEFAULT);
  mu_journal_stats st;
  mu_journal_stats_get(j, &st);
  assert_true(st.compactions >= 1);
  assert_int_equal(st.live_records, 5);
  close_j(&loop, j);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_true(sb.st_size < 24 * 20);

  seen r = {0};
  j = open_j(&loop, &r, 1 << 20, 512);
  mu_journal_foreach(j, visit, &r);
  assert_int_equal(r.n, 5);
  assert_int_equal(r.seqs[0], 96);
  assert_string_equal(r.data[4], "record-100");
  append(j, "next", 101);
  close_j(&loop, j);
  assert_int_equal(uv_loop_close(&loop), 0);
}

typedef struct marks_seen {
  int n;
  char text[16][64]; /* "key=value" */
} marks_seen;

static int visit_mark(void *arg, const char *key, const void *data, size_t len) {
  marks_seen *m = arg;
  snprintf(m->text[m->n++], sizeof m->text[0], "%s=%.*s", key, (int)len, (const char *)data);
  return 0;
}

static marks_seen marks_of(const mu_journal *j) {
  marks_seen m = {0};
  mu_journal_foreach_mark(j, visit_mark, &m);
  return m;
}

static void mark(mu_journal *j, const char *key, const char *value) {
  mu_err err = {0};
  assert_int_equal(mu_journal_mark(j, key, value, strlen(value), &err), 0);
}

/* What an agent needs after kill -9: the attempts it marked running, even when the control
 * plane acked every event about them long ago. */
static void test_marks_outlive_acks_restarts_and_compaction(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  seen s = {0};
  mu_journal *j = open_j(&loop, &s, 1 << 20, 512);
  append(j, "start a", 1);
  mark(j, "a#1", "job-1");
  append(j, "start b", 2);
  mark(j, "b#1", "job-1");
  mark(j, "c#1", "job-2");
  mu_journal_unmark(j, "c#1");
  mu_journal_unmark(j, "never-marked");
  mu_journal_ack(j, 2); /* the events are acked: the marks stay */
  close_j(&loop, j);

  seen r = {0};
  j = open_j(&loop, &r, 1 << 20, 512);
  mu_journal_foreach(j, visit, &r);
  assert_int_equal(r.n, 0);
  marks_seen m = marks_of(j);
  assert_int_equal(m.n, 2);
  assert_string_equal(m.text[0], "a#1=job-1");
  assert_string_equal(m.text[1], "b#1=job-1");
  mu_journal_unmark(j, "a#1");
  mark(j, "b#1", "job-9"); /* a new value replaces the old */
  /* enough acked traffic to compact several times */
  char text[32];
  for (int i = 3; i <= 120; i++) {
    snprintf(text, sizeof text, "record-%03d", i);
    append(j, text, (uint64_t)i);
    mu_journal_ack(j, (uint64_t)i);
    if (i % 10 == 0) uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  mu_journal_stats st;
  mu_journal_stats_get(j, &st);
  assert_true(st.compactions >= 1);
  assert_int_equal(st.marks, 1);
  close_j(&loop, j);

  seen e = {0};
  j = open_j(&loop, &e, 1 << 20, 512);
  m = marks_of(j);
  assert_int_equal(m.n, 1);
  assert_string_equal(m.text[0], "b#1=job-9");
  append(j, "next", 121);
  close_j(&loop, j);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_marks_bound(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  mu_journal_opts o = {.max_marks = 2};
  mu_journal *j = NULL;
  mu_err err = {0};
  assert_int_equal(mu_journal_open(&loop, path, &o, &j, &err), 0);
  mark(j, "x", "1");
  mark(j, "y", "2");
  mark(j, "y", "3"); /* replacing is not adding */
  assert_int_equal(mu_journal_mark(j, "z", "4", 1, &err), MU_ENOSPC);
  assert_non_null(strstr(err.msg, "2 marks"));
  mu_journal_unmark(j, "x");
  mark(j, "z", "4");
  assert_int_equal(mu_journal_mark(j, "", "4", 1, &err), MU_EINVAL);
  close_j(&loop, j);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s/jtest.XXXXXX", getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp");
  if (mkdtemp(dir) == NULL) return 2;
  snprintf(path, sizeof path, "%s/journal", dir);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32),
      cmocka_unit_test_setup(test_append_replay, setup),
      cmocka_unit_test_setup(test_one_batch_per_turn, setup),
      cmocka_unit_test_setup(test_ack_survives_restart, setup),
      cmocka_unit_test_setup(test_torn_tail, setup),
      cmocka_unit_test_setup(test_bound, setup),
      cmocka_unit_test_setup(test_compaction, setup),
      cmocka_unit_test_setup(test_marks_outlive_acks_restarts_and_compaction, setup),
      cmocka_unit_test_setup(test_marks_bound, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
