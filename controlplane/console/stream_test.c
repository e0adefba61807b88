/* The event stream between the loop and a connection thread: framing, the reader's wait and
 * keep-alive, the bound (an overflow ends the stream with a notice), and a reader that went
 * away. A second thread reads, as libmicrohttpd's would. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "controlplane/console/stream.h"

static void framing(void **state) {
  (void)state;
  mu_console_stream *s = mu_console_stream_new(4096);
  assert_int_equal(mu_console_stream_push(s, "task", "{\"a\":1}"), 0);
  char buf[256];
  long n = mu_console_stream_read(s, buf, sizeof buf, 10);
  assert_true(n > 0);
  buf[n] = '\0';
  assert_string_equal(buf, "event: task\ndata: {\"a\":1}\n\n");
  /* nothing buffered: the wait runs out (the caller sends a keep-alive) */
  assert_int_equal(mu_console_stream_read(s, buf, sizeof buf, 10), 0);
  mu_console_stream_close(s);
  assert_int_equal(mu_console_stream_read(s, buf, sizeof buf, 10), -1);
  assert_int_equal(mu_console_stream_push(s, "task", "{}"), -1);
  mu_console_stream_unref(s);
}

static void overflow_ends_the_stream(void **state) {
  (void)state;
  mu_console_stream *s = mu_console_stream_new(512);
  char data[100];
  memset(data, 'x', sizeof data - 1);
  data[sizeof data - 1] = '\0';
  int pushed = 0;
  while (mu_console_stream_push(s, "output", data) == 0) pushed++;
  assert_true(pushed >= 2 && pushed < 5);
  assert_true(mu_console_stream_overflowed(s));
  assert_true(mu_console_stream_buffered(s) <= 512);
  char buf[1024];
  size_t total = 0;
  long n;
  while ((n = mu_console_stream_read(s, buf + total, sizeof buf - total - 1, 10)) > 0) total += (size_t)n;
  buf[total] = '\0';
  assert_int_equal(n, -1);
  assert_non_null(strstr(buf, "event: overflow\n"));
  mu_console_stream_unref(s);
}

static void *reader(void *arg) {
  mu_console_stream *s = arg;
  static char got[4096];
  size_t total = 0;
  long n;
  while ((n = mu_console_stream_read(s, got + total, sizeof got - total - 1, 2000)) >= 0) total += (size_t)n;
  got[total] = '\0';
  mu_console_stream_unref(s);
  return got;
}

static void a_thread_reads_while_the_loop_writes(void **state) {
  (void)state;
  mu_console_stream *s = mu_console_stream_new(1 << 16);
  mu_console_stream_ref(s);
  pthread_t t;
  pthread_create(&t, NULL, reader, s);
  for (int i = 0; i < 50; i++) {
    char data[32];
    snprintf(data, sizeof data, "{\"i\":%d}", i);
    assert_int_equal(mu_console_stream_push(s, "task", data), 0);
    if (i % 10 == 0) usleep(1000);
  }
  mu_console_stream_close(s);
  char *got;
  pthread_join(t, (void **)&got);
  assert_non_null(strstr(got, "data: {\"i\":0}\n\n"));
  assert_non_null(strstr(got, "data: {\"i\":49}\n\n"));
  mu_console_stream_unref(s);
}

static void reader_gone(void **state) {
  (void)state;
  mu_console_stream *s = mu_console_stream_new(4096);
  assert_false(mu_console_stream_reader_is_gone(s));
  mu_console_stream_reader_gone(s);
  assert_true(mu_console_stream_reader_is_gone(s));
  assert_int_equal(mu_console_stream_push(s, "task", "{}"), -1);
  mu_console_stream_unref(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(framing),
      cmocka_unit_test(overflow_ends_the_stream),
      cmocka_unit_test(a_thread_reads_while_the_loop_writes),
      cmocka_unit_test(reader_gone),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
