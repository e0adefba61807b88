/* The framed socketpair channel (pchan.h): a uv_poll on the fd, a read buffer cut into
 * frames, a bounded write queue flushed when the socket is writable, and a timer that
 * delivers messages a blocking mu_pchan_call set aside. */
#include "agent/plugin/pchan.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/base/clock.h"

typedef struct held {
  struct held *next;
  mu_pmsg *m;
} held;

struct mu_pchan {
  uv_loop_t *loop;
  int fd;
  uv_poll_t poll;
  uv_timer_t kick; /* delivers held messages */
  mu_pchan_limits lim;
  mu_pchan_cb cb;
  uint8_t *rbuf;
  size_t rlen, rcap;
  uint8_t *wbuf;
  size_t woff, wlen, wcap;
  held *held_head, *held_tail; /* set aside by mu_pchan_call */
  bool failed, closing, dispatching;
  int events;
  int open_handles;
  void (*close_cb)(void *);
  void *close_arg;
};

static void fail(mu_pchan *ch, int code, const char *msg) {
  if (ch->failed) return;
  ch->failed = true;
  uv_poll_stop(&ch->poll);
  mu_err e = {0};
  mu_err_set(&e, code, "%s", msg);
  if (ch->cb.on_error != NULL) ch->cb.on_error(ch, &e, ch->cb.arg);
}

static void on_poll(uv_poll_t *h, int status, int events);

static void update_events(mu_pchan *ch) {
  if (ch->failed || ch->closing) return;
  int want = UV_READABLE | (ch->wlen > ch->woff ? UV_WRITABLE : 0);
  if (want == ch->events) return;
  ch->events = want;
  uv_poll_start(&ch->poll, want | UV_DISCONNECT, on_poll);
}

/* Writes what the socket takes now. 0, or -1 after failing the channel. */
static int flush_some(mu_pchan *ch) {
  while (ch->wlen > ch->woff) {
    ssize_t n = write(ch->fd, ch->wbuf + ch->woff, ch->wlen - ch->woff);
    if (n > 0) {
      ch->woff += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    fail(ch, MU_EIO, "write to the peer failed (closed)");
    return -1;
  }
  if (ch->woff == ch->wlen) ch->woff = ch->wlen = 0;
  return 0;
}

/* Cuts the first complete frame out of rbuf and decodes it (*ret NULL when none is complete).
 * 0, or -1 after failing the channel. */
static int take_frame(mu_pchan *ch, mu_pmsg **ret) {
  *ret = NULL;
  size_t flen = 0;
  mu_err e = {0};
  if (mu_pmsg_frame_len(ch->rbuf, ch->rlen, ch->lim.max_body, &flen, &e) != 0) {
    fail(ch, MU_EINVAL, e.msg);
    return -1;
  }
  if (flen == 0) return 0;
  if (mu_pmsg_decode(ch->rbuf, flen, ch->lim.max_body, ret, &e) != 0) {
    fail(ch, e.code, e.msg);
    return -1;
  }
  memmove(ch->rbuf, ch->rbuf + flen, ch->rlen - flen);
  ch->rlen -= flen;
  return 0;
}

/* Reads until the socket is drained or the buffer is full. Sets *eof at end of stream or a
 * read error; returns 1 when it stopped because the buffer is full, else 0 (-1: failed). */
static int read_some(mu_pchan *ch, int *eof) {
  size_t cap_max = ch->lim.max_body + MU_PM_HEADER + 65536;
  for (;;) {
    if (ch->rcap - ch->rlen < 65536 && ch->rcap < cap_max) {
      size_t want = ch->rcap ? ch->rcap * 2 : 131072;
      if (want > cap_max) want = cap_max;
      uint8_t *nb = realloc(ch->rbuf, want);
      if (nb == NULL) {
        fail(ch, MU_ENOMEM, "out of memory reading from the peer");
        return -1;
      }
      ch->rbuf = nb;
      ch->rcap = want;
    }
    if (ch->rlen == ch->rcap) return 1;
    ssize_t n = read(ch->fd, ch->rbuf + ch->rlen, ch->rcap - ch->rlen);
    if (n > 0) {
      ch->rlen += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    *eof = 1;
    return 0;
  }
}

static void hold(mu_pchan *ch, mu_pmsg *m) {
  held *h = malloc(sizeof *h);
  if (h == NULL) {
    free(m);
    fail(ch, MU_ENOMEM, "out of memory holding a message");
    return;
  }
  h->next = NULL;
  h->m = m;
  if (ch->held_tail) ch->held_tail->next = h;
  else ch->held_head = h;
  ch->held_tail = h;
}

/* Delivers held messages, then complete frames in rbuf, while the channel is live. The
 * handler may close the channel (closing stops delivery). */
static void deliver(mu_pchan *ch) {
  if (ch->dispatching) return;
  ch->dispatching = true;
  while (!ch->failed && !ch->closing) {
    mu_pmsg *m = NULL;
    if (ch->held_head != NULL) {
      held *h = ch->held_head;
      ch->held_head = h->next;
      if (ch->held_head == NULL) ch->held_tail = NULL;
      m = h->m;
      free(h);
    } else if (take_frame(ch, &m) != 0 || m == NULL) {
      break;
    }
    ch->cb.on_msg(ch, m, ch->cb.arg);
  }
  ch->dispatching = false;
}

static void on_kick(uv_timer_t *t) { deliver(t->data); }

static void on_poll(uv_poll_t *h, int status, int events) {
  mu_pchan *ch = h->data;
  if (ch->failed || ch->closing) return;
  if (status < 0) {
    fail(ch, MU_EIO, "socket error");
    return;
  }
  if ((events & UV_WRITABLE) && flush_some(ch) != 0) return;
  if (events & (UV_READABLE | UV_DISCONNECT)) {
    /* Deliver what was read before reporting EOF: a crashed peer's last words come first. */
    for (;;) {
      int eof = 0;
      int full = read_some(ch, &eof);
      if (full < 0) return;
      deliver(ch);
      if (ch->failed || ch->closing) return;
      if (eof) {
        fail(ch, MU_EIO, "closed by the peer");
        return;
      }
      if (!full) break;
    }
  }
  update_events(ch);
}

int mu_pchan_open(uv_loop_t *loop, int fd, const mu_pchan_limits *lim, const mu_pchan_cb *cb, mu_pchan **ret,
                  mu_err *err) {
  mu_pchan *ch = calloc(1, sizeof *ch);
  if (ch == NULL) return mu_err_set(err, MU_ENOMEM, "plugin channel: out of memory");
  ch->loop = loop;
  ch->fd = fd;
  ch->cb = *cb;
  ch->lim.max_body = lim && lim->max_body ? lim->max_body : MU_PM_DEFAULT_MAX_BODY;
  ch->lim.max_pending = lim && lim->max_pending ? lim->max_pending : 64u * 1024 * 1024;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
    free(ch);
    return mu_err_set(err, MU_EIO, "plugin channel: fd %d: %s", fd, strerror(errno));
  }
  int rc = uv_poll_init(loop, &ch->poll, fd);
  if (rc != 0) {
    free(ch);
    return mu_err_set(err, MU_EIO, "plugin channel: poll fd %d: %s", fd, uv_strerror(rc));
  }
  ch->poll.data = ch;
  uv_timer_init(loop, &ch->kick);
  ch->kick.data = ch;
  ch->open_handles = 2;
  ch->events = UV_READABLE;
  uv_poll_start(&ch->poll, UV_READABLE | UV_DISCONNECT, on_poll);
  *ret = ch;
  return 0;
}

static int queue_frame(mu_pchan *ch, const uint8_t *frame, size_t len, mu_err *err) {
  if (ch->wlen - ch->woff + len > ch->lim.max_pending) {
    fail(ch, MU_ENOSPC, "the peer does not read: send queue over its bound");
    return mu_err_set(err, MU_ENOSPC, "plugin channel: peer not reading; %zu bytes queued (bound %zu)",
                      ch->wlen - ch->woff, ch->lim.max_pending);
  }
  if (ch->woff > 0 && ch->woff == ch->wlen) ch->woff = ch->wlen = 0;
  if (ch->wcap - ch->wlen < len) {
    if (ch->woff > 0) {
      memmove(ch->wbuf, ch->wbuf + ch->woff, ch->wlen - ch->woff);
      ch->wlen -= ch->woff;
      ch->woff = 0;
    }
    if (ch->wcap - ch->wlen < len) {
      size_t want = ch->wcap ? ch->wcap : 65536;
      while (want - ch->wlen < len) want *= 2;
      uint8_t *nb = realloc(ch->wbuf, want);
      if (nb == NULL) return mu_err_set(err, MU_ENOMEM, "plugin channel: out of memory");
      ch->wbuf = nb;
      ch->wcap = want;
    }
  }
  memcpy(ch->wbuf + ch->wlen, frame, len);
  ch->wlen += len;
  return 0;
}

static int send_frame(mu_pchan *ch, uint8_t kind, uint64_t task, const int64_t *ints, size_t n_ints,
                      const mu_pstr *strs, size_t n_strs, mu_err *err) {
  if (ch->failed || ch->closing) return mu_err_set(err, MU_EIO, "plugin channel: closed");
  uint8_t *frame = NULL;
  size_t len = 0;
  int rc = mu_pmsg_encode(kind, task, ints, n_ints, strs, n_strs, ch->lim.max_body, &frame, &len, err);
  if (rc != 0) return rc;
  rc = queue_frame(ch, frame, len, err);
  free(frame);
  return rc;
}

int mu_pchan_send(mu_pchan *ch, uint8_t kind, uint64_t task, const int64_t *ints, size_t n_ints, const mu_pstr *strs,
                  size_t n_strs, mu_err *err) {
  int rc = send_frame(ch, kind, task, ints, n_ints, strs, n_strs, err);
  if (rc != 0) return rc;
  /* Written when the loop polls next (the socket is writable at once): what one callback
   * sends goes out in one write, and the peer wakes once for it. */
  update_events(ch);
  return 0;
}

int mu_pchan_call(mu_pchan *ch, uint8_t kind, uint64_t task, const int64_t *ints, size_t n_ints, const mu_pstr *strs,
                  size_t n_strs, int64_t call, int timeout_ms, mu_pmsg **ret, mu_err *err) {
  int rc = send_frame(ch, kind, task, ints, n_ints, strs, n_strs, err);
  if (rc != 0) return rc;
  int64_t deadline = mu_mono_ms() + timeout_ms;
  for (;;) {
    if (flush_some(ch) != 0) return mu_err_set(err, MU_EIO, "plugin channel: closed by the peer");
    mu_pmsg *m = NULL;
    while (take_frame(ch, &m) == 0 && m != NULL) {
      if (m->kind == MU_PM_REPLY && m->ints[0] == call) {
        if (ch->held_head != NULL || ch->rlen > 0) uv_timer_start(&ch->kick, on_kick, 0, 0);
        *ret = m;
        return 0;
      }
      hold(ch, m);
    }
    if (ch->failed) return mu_err_set(err, MU_EIO, "plugin channel: failed while waiting for a reply");
    int64_t left = deadline - mu_mono_ms();
    if (left <= 0) return mu_err_set(err, MU_ETIMEDOUT, "plugin channel: no reply in %d ms", timeout_ms);
    struct pollfd pfd = {ch->fd, POLLIN | (ch->wlen > ch->woff ? POLLOUT : 0), 0};
    int n = poll(&pfd, 1, (int)left);
    if (n < 0 && errno != EINTR) return mu_err_set(err, MU_EIO, "plugin channel: poll: %s", strerror(errno));
    if (n > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
      int eof = 0;
      if (read_some(ch, &eof) < 0) return mu_err_set(err, MU_EIO, "plugin channel: read failed");
      if (eof) {
        /* keep the frames read so far; the loop reports the close after delivering them */
        mu_pmsg *last = NULL;
        while (take_frame(ch, &last) == 0 && last != NULL) {
          if (last->kind == MU_PM_REPLY && last->ints[0] == call) {
            *ret = last;
            return 0;
          }
          hold(ch, last);
        }
        return mu_err_set(err, MU_EIO, "plugin channel: closed by the peer");
      }
    }
  }
}

int mu_pchan_flush(mu_pchan *ch, int timeout_ms) {
  int64_t deadline = mu_mono_ms() + timeout_ms;
  while (!ch->failed && ch->wlen > ch->woff) {
    if (flush_some(ch) != 0) return MU_EIO;
    if (ch->wlen == ch->woff) break;
    int64_t left = deadline - mu_mono_ms();
    if (left <= 0) return MU_ETIMEDOUT;
    struct pollfd pfd = {ch->fd, POLLOUT, 0};
    if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) return MU_EIO;
  }
  return ch->failed ? MU_EIO : 0;
}

size_t mu_pchan_pending(const mu_pchan *ch) { return ch->wlen - ch->woff; }

static void on_handle_closed(uv_handle_t *h) {
  mu_pchan *ch = h->data;
  if (--ch->open_handles > 0) return;
  if (ch->fd >= 0) close(ch->fd);
  while (ch->held_head != NULL) {
    held *n = ch->held_head->next;
    free(ch->held_head->m);
    free(ch->held_head);
    ch->held_head = n;
  }
  void (*cb)(void *) = ch->close_cb;
  void *arg = ch->close_arg;
  free(ch->rbuf);
  free(ch->wbuf);
  free(ch);
  if (cb != NULL) cb(arg);
}

void mu_pchan_close(mu_pchan *ch, void (*cb)(void *arg), void *arg) {
  if (ch == NULL || ch->closing) return;
  ch->closing = true;
  ch->close_cb = cb;
  ch->close_arg = arg;
  uv_poll_stop(&ch->poll);
  uv_timer_stop(&ch->kick);
  uv_close((uv_handle_t *)&ch->poll, on_handle_closed);
  uv_close((uv_handle_t *)&ch->kick, on_handle_closed);
}
