/* The console's server-sent-events buffer (stream.h): a byte queue under a mutex, with a
 * condition variable the connection thread waits on. */
#include "controlplane/console/stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mu_console_stream {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  atomic_int refs;
  char *buf;
  size_t cap, start, len; /* buffered bytes are buf[start, start+len) */
  int closed, reader_gone, overflowed;
};

mu_console_stream *mu_console_stream_new(size_t cap) {
  mu_console_stream *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->buf = malloc(cap ? cap : 1);
  if (s->buf == NULL) {
    free(s);
    return NULL;
  }
  s->cap = cap;
  atomic_init(&s->refs, 1);
  pthread_mutex_init(&s->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cond, &ca);
  pthread_condattr_destroy(&ca);
  return s;
}

void mu_console_stream_ref(mu_console_stream *s) { atomic_fetch_add(&s->refs, 1); }

void mu_console_stream_unref(mu_console_stream *s) {
  if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1) return;
  pthread_cond_destroy(&s->cond);
  pthread_mutex_destroy(&s->lock);
  free(s->buf);
  free(s);
}

/* Appends n bytes (under lock; the caller checked room). */
static void append(mu_console_stream *s, const char *p, size_t n) {
  if (s->start + s->len + n > s->cap) { /* compact: the reader consumed the front */
    memmove(s->buf, s->buf + s->start, s->len);
    s->start = 0;
  }
  memcpy(s->buf + s->start + s->len, p, n);
  s->len += n;
}

static const char overflow_event[] =
    "event: overflow\ndata: {\"error\":\"stream buffer full: reconnect to resume\"}\n\n";

int mu_console_stream_push(mu_console_stream *s, const char *event, const char *data) {
  size_t ne = strlen(event), nd = strlen(data);
  size_t need = 7 + ne + 7 + nd + 2; /* "event: " NAME "\ndata: " DATA "\n\n" */
  pthread_mutex_lock(&s->lock);
  if (s->closed || s->reader_gone) {
    pthread_mutex_unlock(&s->lock);
    return -1;
  }
  /* room is always kept for the overflow notice */
  if (s->len + need + sizeof overflow_event > s->cap) {
    if (s->len + sizeof overflow_event - 1 <= s->cap) append(s, overflow_event, sizeof overflow_event - 1);
    s->overflowed = 1;
    s->closed = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return -1;
  }
  append(s, "event: ", 7);
  append(s, event, ne);
  append(s, "\ndata: ", 7);
  append(s, data, nd);
  append(s, "\n\n", 2);
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->lock);
  return 0;
}

void mu_console_stream_close(mu_console_stream *s) {
  pthread_mutex_lock(&s->lock);
  s->closed = 1;
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->lock);
}

void mu_console_stream_reader_gone(mu_console_stream *s) {
  pthread_mutex_lock(&s->lock);
  s->reader_gone = 1;
  s->len = 0;
  pthread_cond_broadcast(&s->cond);
  pthread_mutex_unlock(&s->lock);
}

int mu_console_stream_reader_is_gone(mu_console_stream *s) {
  pthread_mutex_lock(&s->lock);
  int gone = s->reader_gone;
  pthread_mutex_unlock(&s->lock);
  return gone;
}

long mu_console_stream_read(mu_console_stream *s, char *out, size_t size, int wait_ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += wait_ms / 1000;
  until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&s->lock);
  while (s->len == 0 && !s->closed && !s->reader_gone) {
    if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT) break;
  }
  long n;
  if (s->len > 0) {
    size_t take = s->len < size ? s->len : size;
    memcpy(out, s->buf + s->start, take);
    s->start += take;
    s->len -= take;
    if (s->len == 0) s->start = 0;
    n = (long)take;
  } else {
    n = s->closed || s->reader_gone ? -1 : 0;
  }
  pthread_mutex_unlock(&s->lock);
  return n;
}

size_t mu_console_stream_buffered(mu_console_stream *s) {
  pthread_mutex_lock(&s->lock);
  size_t n = s->len;
  pthread_mutex_unlock(&s->lock);
  return n;
}

int mu_console_stream_overflowed(mu_console_stream *s) {
  pthread_mutex_lock(&s->lock);
  int o = s->overflowed;
  pthread_mutex_unlock(&s->lock);
  return o;
}
