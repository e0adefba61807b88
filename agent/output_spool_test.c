/* Tests for the output spool: records written off the loop and read back byte-exact from any
 * record offset, stdout and stderr kept apart, follow states, eviction for the cap (oldest
 * finished first), overflow when only running output is left (and the gap records that say
 * which bytes are missing), truncation at the output limit, restart (rescan) and retention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/output_spool.h"

typedef struct got {
  uint8_t *out[3]; /* payload per stream, concatenated */
  size_t out_len[3];
  size_t records;
  mu_output_gap gaps[8];
  size_t n_gaps;
  int status;
  char message[300];
  int calls;
} got;

static void on_read(mu_output_reader *r, int status, const char *message, const uint8_t *data, size_t len, void *arg) {
  got *g = arg;
  (void)r;
  g->calls++;
  g->status = status;
  snprintf(g->message, sizeof g->message, "%s", message);
  size_t off = 0;
  while (off < len) {
    int stream;
    const uint8_t *p;
    size_t n;
    mu_output_frame_get(data + off, &stream, &p, &n);
    if (stream == MU_OUTPUT_GAP) {
      assert_true(g->n_gaps < 8);
      assert_int_equal(mu_output_gap_get(p, n, &g->gaps[g->n_gaps++]), 0);
      off += MU_OUTPUT_FRAME_HEADER + n;
      continue;
    }
    assert_true(stream == 1 || stream == 2);
    g->out[stream] = realloc(g->out[stream], g->out_len[stream] + n + 1);
    memcpy(g->out[stream] + g->out_len[stream], p, n);
    g->out_len[stream] += n;
    g->records++;
    off += MU_OUTPUT_FRAME_HEADER + n;
  }
  assert_int_equal(off, len);
}

static void got_free(got *g) {
  for (int i = 0; i < 3; i++) free(g->out[i]);
  memset(g, 0, sizeof *g);
}

/* Reads everything up to WAIT or EOF; returns the final state. */
static mu_output_read_state read_all(uv_loop_t *loop, mu_output_reader *r, size_t max, got *g) {
  for (;;) {
    mu_output_read_state st = mu_output_reader_state(r);
    if (st != MU_OUTPUT_READ_DATA) return st;
    int before = g->calls;
    assert_int_equal(mu_output_reader_read(r, max, on_read, g), 0);
    assert_int_equal(mu_output_reader_read(r, max, on_read, g), MU_EAGAIN);
    while (g->calls == before) uv_run(loop, UV_RUN_ONCE);
    assert_int_equal(g->status, 0);
  }
}

static void make_dir(char *buf, size_t size) {
  snprintf(buf, size, "%s/spoolXXXXXX", getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp");
  assert_non_null(mkdtemp(buf));
}

static void on_closed(void *arg) { *(int *)arg = 1; }

static void close_spool(uv_loop_t *loop, mu_output_spool *s) {
  int closed = 0;
  mu_output_spool_close(s, on_closed, &closed);
  while (!closed) uv_run(loop, UV_RUN_ONCE);
}

static void settle(uv_loop_t *loop) {
  for (int i = 0; i < 200; i++) {
    uv_run(loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
}

static void test_write_and_read_from_offset(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  char dir[256];
  make_dir(dir, sizeof dir);
  mu_output_spool *s = NULL;
  mu_err err = {0};
  assert_int_equal(mu_output_spool_open(&loop, dir, NULL, &s, &err), 0);
  const char *task = "job-1/web-1/build";
  mu_output_spool_begin(s, task, 1);
  /* 200 KiB of stdout in uneven chunks, with stderr lines between */
  size_t big = 200 * 1024;
  uint8_t *want = malloc(big);
  for (size_t i = 0; i < big; i++) want[i] = (uint8_t)(i * 7 + i / 251);
  size_t off = 0, step = 1000;
  while (off < big) {
    size_t n = big - off < step ? big - off : step;
    mu_output_spool_append(s, task, 1, 1, want + off, n);
    mu_output_spool_append(s, task, 1, 2, "e\n", 2);
    off += n;
    step = step * 3 % 70001 + 1;
  }
  size_t n_err = 0;
  for (size_t o = 0, st = 1000; o < big; n_err++) {
    o += big - o < st ? big - o : st;
    st = st * 3 % 70001 + 1;
  }
  /* still running: what is written is readable, then WAIT */
  settle(&loop);
  mu_output_reader *r = NULL;
  assert_int_equal(mu_output_reader_open(s, task, 1, 0, &r, &err), 0);
  got g = {0};
  assert_int_equal(read_all(&loop, r, 64 * 1024, &g), MU_OUTPUT_READ_WAIT);
  assert_int_equal(g.out_len[1], big);
  assert_memory_equal(g.out[1], want, big);
  assert_int_equal(g.out_len[2], 2 * n_err);
  uint64_t end = mu_output_reader_offset(r);
  /* more output while following, then the end */
  mu_output_spool_append(s, task, 1, 1, "tail\n", 5);
  mu_output_spool_finish(s, task, 1);
  settle(&loop);
  got g2 = {0};
  assert_int_equal(read_all(&loop, r, 64 * 1024, &g2), MU_OUTPUT_READ_EOF);
  assert_int_equal(g2.out_len[1], 5);
  assert_memory_equal(g2.out[1], "tail\n", 5);
  mu_output_reader_close(r);
  /* a new reader from a record offset gets exactly the rest */
  assert_int_equal(mu_output_reader_open(s, task, 1, end, &r, &err), 0);
  got g3 = {0};
  assert_int_equal(read_all(&loop, r, 64 * 1024, &g3), MU_OUTPUT_READ_EOF);
  assert_int_equal(g3.out_len[1], 5);
  assert_int_equal(g3.records, 1);
  mu_output_reader_close(r);
  /* unknown attempt */
  assert_int_equal(mu_output_reader_open(s, task, 2, 0, &r, &err), MU_ENOENT);
  assert_non_null(strstr(err.msg, "no output of task job-1/web-1/build attempt 2"));
  mu_output_spool_stats st;
  mu_output_spool_stats_get(s, &st);
  assert_int_equal(st.files, 1);
  assert_int_equal(st.overflow_bytes, 0);
  close_spool(&loop, s);
  /* a restarted agent finds the file, finished, and reads it the same */
  assert_int_equal(mu_output_spool_open(&loop, dir, NULL, &s, &err), 0);
  assert_int_equal(mu_output_reader_open(s, task, 1, 0, &r, &err), 0);
  got g4 = {0};
  assert_int_equal(read_all(&loop, r, 100 * 1024, &g4), MU_OUTPUT_READ_EOF);
  assert_int_equal(g4.out_len[1], big + 5);
  assert_memory_equal(g4.out[1], want, big);
  mu_output_reader_close(r);
  close_spool(&loop, s);
  got_free(&g);
  got_free(&g2);
  got_free(&g3);
  got_free(&g4);
  free(want);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void fill(mu_output_spool *s, const char *task, size_t n, int finish) {
  char *buf = malloc(n);
  memset(buf, 'x', n);
  mu_output_spool_append(s, task, 1, 1, buf, n);
  if (finish) mu_output_spool_finish(s, task, 1);
  free(buf);
}

static void test_eviction_and_cap(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  char dir[256];
  make_dir(dir, sizeof dir);
  mu_output_spool *s = NULL;
  mu_err err = {0};
  mu_output_spool_opts o = {.max_bytes = 3100};
  assert_int_equal(mu_output_spool_open(&loop, dir, &o, &s, &err), 0);
  fill(s, "a", 1000, 1);
  settle(&loop);
  usleep(5000);
  fill(s, "b", 1000, 1);
  settle(&loop);
  fill(s, "c", 1000, 0); /* running */
  settle(&loop);
  mu_output_spool_stats st;
  mu_output_spool_stats_get(s, &st);
  assert_int_equal(st.files, 3);
  assert_int_equal(st.bytes, 3 * 1008);
  /* d needs room: a (the oldest finished) goes, b stays */
  fill(s, "d", 500, 1);
  settle(&loop);
  mu_output_spool_stats_get(s, &st);
  assert_int_equal(st.evicted_files, 1);
  assert_int_equal(st.files, 3);
  mu_output_reader *r = NULL;
  assert_int_equal(mu_output_reader_open(s, "a", 1, 0, &r, &err), MU_ENOENT);
  assert_non_null(strstr(err.msg, "evicted"));
  char path[400];
  snprintf(path, sizeof path, "%s/a.1.log", dir);
  assert_int_not_equal(access(path, F_OK), 0);
  assert_int_equal(mu_output_reader_open(s, "b", 1, 0, &r, &err), 0);
  /* a reader keeps b: a big append evicts d, then has nothing finished left and overflows */
  fill(s, "c", 1500, 0);
  settle(&loop);
  mu_output_spool_stats_get(s, &st);
  assert_int_equal(st.evicted_files, 2);
  assert_int_equal(st.overflow_bytes, 1500);
  assert_true(st.bytes <= 3100);
  got g = {0};
  assert_int_equal(read_all(&loop, r, 0, &g), MU_OUTPUT_READ_EOF);
  assert_int_equal(g.out_len[1], 1000);
  mu_output_reader_close(r);
  settle(&loop);
  got_free(&g);
  /* the running one still grows when room is made */
  fill(s, "c", 1200, 0);
  mu_output_spool_stats_get(s, &st);
  assert_int_equal(st.evicted_files, 3); /* b, now unread */
  close_spool(&loop, s);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_retention_and_keys(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  char dir[256];
  make_dir(dir, sizeof dir);
  mu_output_spool *s = NULL;
  mu_err err = {0};
  mu_output_spool_opts o = {.retention_ms = 50};
  assert_int_equal(mu_output_spool_open(&loop, dir, &o, &s, &err), 0);
  fill(s, "old", 10, 1);
  fill(s, "running", 10, 0);
  settle(&loop);
  usleep(80 * 1000);
  mu_output_spool_sweep(s);
  mu_output_spool_stats st;
  mu_output_spool_stats_get(s, &st);
  assert_int_equal(st.expired_files, 1);
  assert_int_equal(st.files, 1);
  close_spool(&loop, s);
  assert_int_equal(uv_loop_close(&loop), 0);
  char key[300];
  mu_output_spool_key("j/web-1/a b", 3, key, sizeof key);
  assert_string_equal(key, "j%2Fweb-1%2Fa%20b.3");
  mu_output_spool_key("../x", 1, key, sizeof key);
  assert_string_equal(key, "%2E.%2Fx.1");
  char long_id[1000];
  memset(long_id, 'q', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  mu_output_spool_key(long_id, 1, key, sizeof key);
  assert_true(strlen(key) < 220);
  long_id[998] = 'r';
  char key2[300];
  mu_output_spool_key(long_id, 1, key2, sizeof key2);
  assert_string_not_equal(key, key2);
}

static void assert_gap(const mu_output_gap *g, int stream, int reason, uint64_t start, uint64_t len) {
  assert_int_equal(g->stream, stream);
  assert_int_equal(g->reason, reason);
  assert_int_equal(g->start, start);
  assert_int_equal(g->len, len);
}

/* Output the spool cannot keep leaves gap records with its stream offsets, before the next
 * output that fits or at the finish; a reader of a running attempt learns of the last one
 * from mu_output_reader_missing; truncation at the output limit is the final record. */
static void test_gaps(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  char dir[256];
  make_dir(dir, sizeof dir);
  mu_output_spool *s = NULL;
  mu_err err = {0};
  mu_output_spool_opts o = {.max_bytes = 3000};
  assert_int_equal(mu_output_spool_open(&loop, dir, &o, &s, &err), 0);
  char buf[1500];
  memset(buf, 'o', sizeof buf);
  mu_output_spool_append(s, "t", 1, 1, buf, 1000);
  mu_output_spool_append(s, "t", 1, 2, buf, 1500);
  mu_output_spool_append(s, "t", 1, 1, buf, 1000); /* over the cap, nothing to evict */
  mu_output_spool_append(s, "t", 1, 1, buf, 200);  /* fits: the gap record goes first */
  mu_output_spool_append(s, "t", 1, 1, buf, 1000); /* dropped again */
  settle(&loop);
  mu_output_reader *r = NULL;
  assert_int_equal(mu_output_reader_open(s, "t", 1, 0, &r, &err), 0);
  got g = {0};
  assert_int_equal(read_all(&loop, r, 0, &g), MU_OUTPUT_READ_WAIT);
  assert_int_equal(g.out_len[1], 1200);
  assert_int_equal(g.out_len[2], 1500);
  assert_int_equal(g.n_gaps, 1);
  assert_gap(&g.gaps[0], 1, MU_OUTPUT_GAP_DROPPED, 1000, 1000);
  assert_int_equal(g.gaps[0].cause, MU_OUTPUT_DROP_CAP);
  /* the running attempt's last drop is not in the file yet */
  uint8_t miss[4 * MU_OUTPUT_GAP_RECORD];
  size_t n = mu_output_reader_missing(r, miss, sizeof miss);
  assert_int_equal(n, MU_OUTPUT_GAP_RECORD);
  mu_output_gap mg;
  assert_int_equal(mu_output_gap_get(miss + MU_OUTPUT_FRAME_HEADER, MU_OUTPUT_GAP_PAYLOAD, &mg), 0);
  assert_gap(&mg, 1, MU_OUTPUT_GAP_DROPPED, 2200, 1000);
  /* the end: 5000 bytes past the output limit; both gaps are written */
  mu_output_spool_truncated(s, "t", 1, 5000);
  mu_output_spool_finish(s, "t", 1);
  settle(&loop);
  got g2 = {0};
  assert_int_equal(read_all(&loop, r, 0, &g2), MU_OUTPUT_READ_EOF);
  assert_int_equal(g2.out_len[1] + g2.out_len[2], 0);
  assert_int_equal(g2.n_gaps, 2);
  assert_gap(&g2.gaps[0], 1, MU_OUTPUT_GAP_DROPPED, 2200, 1000);
  assert_gap(&g2.gaps[1], 0, MU_OUTPUT_GAP_TRUNCATED, 3200 + 1500, 5000);
  assert_int_equal(mu_output_reader_missing(r, miss, sizeof miss), 0);
  mu_output_reader_close(r);
  mu_output_spool_stats st;
  mu_output_spool_stats_get(s, &st);
  assert_int_equal(st.overflow_bytes, 2000);
  close_spool(&loop, s);
  /* after a restart the gaps are still in the file */
  assert_int_equal(mu_output_spool_open(&loop, dir, NULL, &s, &err), 0);
  assert_int_equal(mu_output_reader_open(s, "t", 1, 0, &r, &err), 0);
  got g3 = {0};
  assert_int_equal(read_all(&loop, r, 0, &g3), MU_OUTPUT_READ_EOF);
  assert_int_equal(g3.n_gaps, 3);
  assert_int_equal(g3.out_len[1], 1200);
  mu_output_reader_close(r);
  close_spool(&loop, s);
  got_free(&g);
  got_free(&g2);
  got_free(&g3);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_write_and_read_from_offset),
      cmocka_unit_test(test_eviction_and_cap),
      cmocka_unit_test(test_retention_and_keys),
      cmocka_unit_test(test_gaps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
