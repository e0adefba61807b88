/* The durability journal (journal.h): replay at open, append/ack/mark queued on the loop
 * thread, batches written and fdatasync'ed on a libuv worker, compaction by rewrite-and-rename.
 * Live records are mirrored in memory in a FIFO list so acks and re-sends need no disk I/O;
 * marks in a list of their own. */
#include "agent/exec/journal.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/base/assert.h"
#include "lib/base/log.h"

#define J_MAGIC 0x314a554du /* "MUJ1" little-endian */
#define J_HDR 24
enum { J_EVENT = 1, J_ACK = 2, J_BASE = 3, J_MARK = 4, J_UNMARK = 5 };
#define J_MAX_KEY 1024

typedef struct jrec {
  struct jrec *next;
  uint64_t seq;
  uint32_t len;
  unsigned char data[];
} jrec;

/* A mark: payload is the key, a NUL, then the value (the J_MARK record's payload). */
typedef struct jmark {
  struct jmark *next;
  uint32_t key_len;
  uint32_t len;
  unsigned char payload[];
} jmark;

typedef struct jbuf {
  unsigned char *p;
  size_t len, cap;
} jbuf;

/* One unit of worker work: append a batch, or replace the file with a compacted one. */
typedef struct jwork {
  uv_work_t req;
  mu_journal *j;
  jbuf buf;
  uint64_t last_seq;
  int compact;
  int fd; /* in: current fd; out: fd to use from now on */
  int rc;
  char msg[256];
} jwork;

struct mu_journal {
  uv_loop_t *loop;
  char path[PATH_MAX];
  int fd;
  mu_journal_opts o;
  jrec *head, *tail;
  jmark *marks; /* in the order first set */
  mu_journal_stats st;
  jbuf pending;
  uint64_t pending_last_seq;
  jwork *inflight;
  uv_idle_t batch; /* group commit: starts the next batch once per loop turn */
  bool batch_armed;
  int closing;
  void (*close_cb)(void *);
  void *close_arg;
};

static const uint32_t crc_nibble[16] = {0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
                                        0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
                                        0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};

uint32_t mu_crc32(uint32_t crc, const void *data, size_t len) {
  const unsigned char *p = data;
  crc = ~crc;
  for (size_t i = 0; i < len; i++) {
    crc ^= p[i];
    crc = (crc >> 4) ^ crc_nibble[crc & 0xf];
    crc = (crc >> 4) ^ crc_nibble[crc & 0xf];
  }
  return ~crc;
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static uint32_t rec_crc(const unsigned char *hdr, const void *payload, uint32_t len) {
  uint32_t c = mu_crc32(0, hdr + 4, 16); /* type, seq, len */
  return mu_crc32(c, payload, len);
}

static int buf_put(jbuf *b, uint32_t type, uint64_t seq, const void *payload, uint32_t len) {
  if (b->len + J_HDR + len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + J_HDR + len) cap *= 2;
    unsigned char *n = realloc(b->p, cap);
    if (n == NULL) return MU_ENOMEM;
    b->p = n;
    b->cap = cap;
  }
  unsigned char *h = b->p + b->len;
  put32(h, J_MAGIC);
  put32(h + 4, type);
  put64(h + 8, seq);
  put32(h + 16, len);
  put32(h + 20, rec_crc(h, payload, len));
  if (len > 0) memcpy(h + J_HDR, payload, len);
  b->len += J_HDR + len;
  return 0;
}

static void list_drop_upto(mu_journal *j, uint64_t upto) {
  while (j->head != NULL && j->head->seq <= upto) {
    jrec *r = j->head;
    /* the live counts are what the max_bytes bound is checked against */
    MU_ASSERT(j->st.live_records > 0 && j->st.live_bytes >= J_HDR + r->len);
    j->head = r->next;
    j->st.live_records--;
    j->st.live_bytes -= J_HDR + r->len;
    free(r);
  }
  if (j->head == NULL) j->tail = NULL;
}

static int list_push(mu_journal *j, uint64_t seq, const void *data, uint32_t len) {
  jrec *r = malloc(sizeof *r + len);
  if (r == NULL) return MU_ENOMEM;
  r->next = NULL;
  r->seq = seq;
  r->len = len;
  if (len > 0) memcpy(r->data, data, len);
  if (j->tail) j->tail->next = r;
  else j->head = r;
  j->tail = r;
  j->st.live_records++;
  j->st.live_bytes += J_HDR + len;
  return 0;
}

static jmark **mark_find(mu_journal *j, const void *key, size_t key_len) {
  jmark **pm = &j->marks;
  while (*pm != NULL && ((*pm)->key_len != key_len || memcmp((*pm)->payload, key, key_len) != 0)) pm = &(*pm)->next;
  return pm;
}

/* Sets the mark whose record payload (key, NUL, value) is given, replacing one with its key. */
static int mark_set(mu_journal *j, const unsigned char *payload, uint32_t len) {
  uint32_t key_len = (uint32_t)strlen((const char *)payload);
  jmark *m = malloc(sizeof *m + len);
  if (m == NULL) return MU_ENOMEM;
  m->key_len = key_len;
  m->len = len;
  memcpy(m->payload, payload, len);
  jmark **pm = mark_find(j, payload, key_len);
  if (*pm != NULL) {
    j->st.mark_bytes -= J_HDR + (*pm)->len;
    m->next = (*pm)->next;
    free(*pm);
  } else {
    m->next = NULL;
    j->st.marks++;
  }
  *pm = m;
  j->st.mark_bytes += J_HDR + len;
  return 0;
}

static void mark_drop(mu_journal *j, const void *key, size_t key_len) {
  jmark **pm = mark_find(j, key, key_len);
  jmark *m = *pm;
  if (m == NULL) return;
  *pm = m->next;
  j->st.marks--;
  j->st.mark_bytes -= J_HDR + m->len;
  free(m);
}

static void marks_free(mu_journal *j) {
  while (j->marks != NULL) {
    jmark *m = j->marks;
    j->marks = m->next;
    free(m);
  }
  j->st.marks = j->st.mark_bytes = 0;
}

/* Reads the file, rebuilding the live list; cuts a torn/corrupt tail. */
static int replay(mu_journal *j, mu_err *err) {
  struct stat sb;
  if (fstat(j->fd, &sb) != 0) return mu_err_set(err, MU_EIO, "journal %s: %s", j->path, strerror(errno));
  uint64_t off = 0, size = (uint64_t)sb.st_size;
  unsigned char hdr[J_HDR];
  unsigned char *payload = NULL;
  int rc = 0;
  while (off + J_HDR <= size) {
    if (pread(j->fd, hdr, J_HDR, (off_t)off) != J_HDR) break;
    uint32_t type = get32(hdr + 4), len = get32(hdr + 16);
    uint64_t seq = get64(hdr + 8);
    if (get32(hdr) != J_MAGIC || len > j->o.max_record || off + J_HDR + len > size) break;
    unsigned char *np = realloc(payload, len ? len : 1);
    if (np == NULL) {
      rc = mu_err_set(err, MU_ENOMEM, "journal %s: out of memory", j->path);
      goto done;
    }
    payload = np;
    if (len > 0 && pread(j->fd, payload, len, (off_t)(off + J_HDR)) != (ssize_t)len) break;
    if (rec_crc(hdr, payload, len) != get32(hdr + 20)) break;
    if (type == J_EVENT) {
      if (seq > j->st.acked_seq) {
        if (j->st.live_bytes + J_HDR + len > j->o.max_bytes) {
          rc = mu_err_set(err, MU_ENOSPC, "journal %s: unacked records exceed max_bytes %llu", j->path,
                          (unsigned long long)j->o.max_bytes);
          goto done;
        }
        if (list_push(j, seq, payload, len) != 0) {
          rc = mu_err_set(err, MU_ENOMEM, "journal %s: out of memory", j->path);
          goto done;
        }
      }
    } else if (type == J_ACK || type == J_BASE) {
      if (seq > j->st.acked_seq) j->st.acked_seq = seq;
      list_drop_upto(j, seq);
    } else if (type == J_MARK) {
      const unsigned char *nul = len > 1 ? memchr(payload, 0, len) : NULL;
      if (nul == NULL || nul == payload) break;
      if (mark_set(j, payload, len) != 0) {
        rc = mu_err_set(err, MU_ENOMEM, "journal %s: out of memory", j->path);
        goto done;
      }
    } else if (type == J_UNMARK) {
      mark_drop(j, payload, len);
    } else {
      break;
    }
    if (seq >= j->st.next_seq) j->st.next_seq = seq + 1;
    off += J_HDR + len;
  }
  if (off < size) {
    j->st.torn_bytes = size - off;
    mu_warn("journal", "%s: ignoring %llu bytes of torn or corrupt tail at offset %llu", j->path,
            (unsigned long long)(size - off), (unsigned long long)off);
    if (ftruncate(j->fd, (off_t)off) != 0) {
      rc = mu_err_set(err, MU_EIO, "journal %s: cannot cut torn tail: %s", j->path, strerror(errno));
      goto done;
    }
  }
  j->st.file_bytes = off;
done:
  free(payload);
  return rc;
}

int mu_journal_open(uv_loop_t *loop, const char *path, const mu_journal_opts *opts, mu_journal **ret, mu_err *err) {
  mu_journal *j = calloc(1, sizeof *j);
  if (j == NULL) return mu_err_set(err, MU_ENOMEM, "journal: out of memory");
  int rc;
  j->loop = loop;
  j->fd = -1;
  if (opts != NULL) j->o = *opts;
  if (j->o.max_bytes == 0) j->o.max_bytes = 64ull << 20;
  if (j->o.compact_bytes == 0) j->o.compact_bytes = j->o.max_bytes / 2;
  if (j->o.max_record == 0) j->o.max_record = 4u << 20;
  if (j->o.max_marks == 0) j->o.max_marks = 4096;
  j->st.next_seq = 1;
  if (snprintf(j->path, sizeof j->path, "%s", path) >= (int)sizeof j->path) {
    rc = mu_err_set(err, MU_EINVAL, "journal: path too long");
    goto fail;
  }
  j->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (j->fd < 0) {
    rc = mu_err_set(err, MU_EIO, "journal %s: cannot open: %s", path, strerror(errno));
    goto fail;
  }
  rc = replay(j, err);
  if (rc != 0) goto fail;
  if (j->st.next_seq <= j->st.acked_seq) j->st.next_seq = j->st.acked_seq + 1;
  j->st.persisted_seq = j->st.next_seq - 1;
  uv_idle_init(loop, &j->batch);
  j->batch.data = j;
  *ret = j;
  return 0;
fail:
  list_drop_upto(j, UINT64_MAX);
  marks_free(j);
  if (j->fd >= 0) close(j->fd);
  free(j);
  return rc;
}

void mu_journal_foreach(const mu_journal *j, mu_journal_visit_cb cb, void *arg) {
  for (const jrec *r = j->head; r != NULL; r = r->next)
    if (cb(arg, r->seq, r->data, r->len) != 0) return;
}

void mu_journal_stats_get(const mu_journal *j, mu_journal_stats *ret) { *ret = j->st; }

/* ---- worker side: touches only the jwork and its fd ---- */

static int write_all(int fd, const unsigned char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static void work_run(uv_work_t *req) {
  jwork *w = req->data;
  if (!w->compact) {
    w->rc = write_all(w->fd, w->buf.p, w->buf.len);
    if (w->rc == 0 && fdatasync(w->fd) != 0) w->rc = -errno;
    if (w->rc != 0) snprintf(w->msg, sizeof w->msg, "journal %s: write: %s", w->j->path, strerror(-w->rc));
    return;
  }
  char tmp[PATH_MAX + 8], dir[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp", w->j->path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    w->rc = -errno;
    snprintf(w->msg, sizeof w->msg, "journal %s: compaction: %s", tmp, strerror(errno));
    return;
  }
  w->rc = write_all(fd, w->buf.p, w->buf.len);
  if (w->rc == 0 && fdatasync(fd) != 0) w->rc = -errno;
  if (w->rc == 0 && rename(tmp, w->j->path) != 0) w->rc = -errno;
  if (w->rc != 0) {
    snprintf(w->msg, sizeof w->msg, "journal %s: compaction: %s", w->j->path, strerror(-w->rc));
    close(fd);
    unlink(tmp);
    return;
  }
  snprintf(dir, sizeof dir, "%s", w->j->path);
  int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  close(w->fd);
  w->fd = fd; /* the loop switches to the new file */
}

/* ---- loop side ---- */

static void kick(mu_journal *j);

static void on_batch_closed(uv_handle_t *h) {
  mu_journal *j = h->data;
  void (*cb)(void *) = j->close_cb;
  void *arg = j->close_arg;
  free(j);
  if (cb != NULL) cb(arg);
}

static void finish_close(mu_journal *j) {
  if (j->fd >= 0) close(j->fd);
  j->fd = -1;
  list_drop_upto(j, UINT64_MAX);
  marks_free(j);
  free(j->pending.p);
  j->pending.p = NULL;
  if (!uv_is_closing((uv_handle_t *)&j->batch)) uv_close((uv_handle_t *)&j->batch, on_batch_closed);
}

static void on_batch(uv_idle_t *h) {
  mu_journal *j = h->data;
  uv_idle_stop(h);
  j->batch_armed = false;
  kick(j);
}

/* Group commit: what is appended, acked or marked during one turn of the loop (every task
 * event, mark and ack its callbacks produce) goes out as one write + fdatasync at the start of
 * the next turn, not one each. While a batch is in flight, work_done starts the next anyway. */
static void schedule(mu_journal *j) {
  if (j->inflight != NULL || j->batch_armed || j->closing) return;
  uv_idle_start(&j->batch, on_batch);
  j->batch_armed = true;
}

static void work_done(uv_work_t *req, int status) {
  jwork *w = req->data;
  mu_journal *j = w->j;
  (void)status;
  j->inflight = NULL;
  j->fd = w->fd;
  if (w->rc == 0) {
    if (w->compact) {
      j->st.file_bytes = w->buf.len;
      j->st.compactions++;
    } else {
      j->st.file_bytes += w->buf.len;
      j->st.batches++;
    }
    if (w->last_seq > j->st.persisted_seq) j->st.persisted_seq = w->last_seq;
    if (j->o.on_persisted != NULL && w->last_seq > 0) j->o.on_persisted(j, j->st.persisted_seq, j->o.arg);
  } else {
    j->st.write_errors++;
    mu_error("journal", "%s", w->msg);
    if (j->o.on_error != NULL) j->o.on_error(j, MU_EIO, w->msg, j->o.arg);
    /* A failed append batch is lost from the file but still live in memory: the next
     * compaction rewrites it. Force one. */
    if (!w->compact) j->st.file_bytes += j->o.compact_bytes + 1;
  }
  free(w->buf.p);
  free(w);
  kick(j);
}

static int start_work(mu_journal *j, jwork *w) {
  w->j = j;
  w->fd = j->fd;
  w->req.data = w;
  j->inflight = w;
  int rc = uv_queue_work(j->loop, &w->req, work_run, work_done);
  if (rc != 0) {
    j->inflight = NULL;
    free(w->buf.p);
    free(w);
  }
  return rc;
}

/* Starts the next unit of work when idle: compaction if the file is mostly dead, else the
 * pending batch. Finishes a close once nothing is left. */
static void kick(mu_journal *j) {
  if (j->inflight != NULL) return;
  uint64_t kept = j->st.live_bytes + j->st.mark_bytes;
  uint64_t dead = j->st.file_bytes + j->pending.len > kept ? j->st.file_bytes + j->pending.len - kept : 0;
  if (dead > j->o.compact_bytes && !j->closing) {
    jwork *w = calloc(1, sizeof *w);
    if (w == NULL) return;
    w->compact = 1;
    int rc = buf_put(&w->buf, J_BASE, j->st.acked_seq, NULL, 0);
    for (jmark *m = j->marks; m != NULL && rc == 0; m = m->next) rc = buf_put(&w->buf, J_MARK, 0, m->payload, m->len);
    for (jrec *r = j->head; r != NULL && rc == 0; r = r->next) rc = buf_put(&w->buf, J_EVENT, r->seq, r->data, r->len);
    if (rc != 0) {
      free(w->buf.p);
      free(w);
      return;
    }
    w->last_seq = j->st.next_seq - 1;
    /* Everything pending is in the snapshot. */
    j->pending.len = 0;
    start_work(j, w);
    return;
  }
  if (j->pending.len > 0) {
    jwork *w = calloc(1, sizeof *w);
    if (w == NULL) return;
    w->buf = j->pending;
    w->last_seq = j->pending_last_seq;
    memset(&j->pending, 0, sizeof j->pending);
    start_work(j, w);
    return;
  }
  if (j->closing) finish_close(j);
}

int mu_journal_append(mu_journal *j, const void *data, size_t len, uint64_t *ret_seq, mu_err *err) {
  if (j->closing) return mu_err_set(err, MU_EINVAL, "journal: closed");
  if (len > j->o.max_record)
    return mu_err_set(err, MU_EINVAL, "journal: record of %zu bytes exceeds max_record %u", len, j->o.max_record);
  if (j->st.live_bytes + J_HDR + len > j->o.max_bytes) {
    j->st.overflows++;
    return mu_err_set(err, MU_ENOSPC, "journal full: %llu bytes unacked, limit %llu (is the control plane acking?)",
                      (unsigned long long)j->st.live_bytes, (unsigned long long)j->o.max_bytes);
  }
  uint64_t seq = j->st.next_seq;
  /* a sequence at or below the acked one would be dropped by the next replay as already
   * delivered: the event would be lost without a word */
  MU_ASSERT(seq > j->st.acked_seq && (j->tail == NULL || j->tail->seq < seq));
  if (buf_put(&j->pending, J_EVENT, seq, data, (uint32_t)len) != 0 || list_push(j, seq, data, (uint32_t)len) != 0)
    return mu_err_set(err, MU_ENOMEM, "journal: out of memory");
  j->st.next_seq++;
  j->pending_last_seq = seq;
  *ret_seq = seq;
  schedule(j);
  return 0;
}

void mu_journal_ack(mu_journal *j, uint64_t upto) {
  if (upto >= j->st.next_seq) upto = j->st.next_seq - 1;
  if (upto <= j->st.acked_seq) return;
  j->st.acked_seq = upto;
  list_drop_upto(j, upto);
  if (buf_put(&j->pending, J_ACK, upto, NULL, 0) == 0 && j->pending_last_seq < upto) j->pending_last_seq = upto;
  schedule(j);
}

int mu_journal_mark(mu_journal *j, const char *key, const void *data, size_t len, mu_err *err) {
  if (j->closing) return mu_err_set(err, MU_EINVAL, "journal: closed");
  size_t key_len = strlen(key);
  if (key_len == 0 || key_len > J_MAX_KEY)
    return mu_err_set(err, MU_EINVAL, "journal: a mark key must be 1-%d bytes, got %zu", J_MAX_KEY, key_len);
  if (len > j->o.max_record - key_len - 1)
    return mu_err_set(err, MU_EINVAL, "journal: mark of %zu bytes exceeds max_record %u", len, j->o.max_record);
  if (*mark_find(j, key, key_len) == NULL && j->st.marks >= j->o.max_marks)
    return mu_err_set(err, MU_ENOSPC, "journal: %llu marks set, the limit (max_marks)",
                      (unsigned long long)j->st.marks);
  uint32_t plen = (uint32_t)(key_len + 1 + len);
  unsigned char *payload = malloc(plen);
  if (payload == NULL) return mu_err_set(err, MU_ENOMEM, "journal: out of memory");
  memcpy(payload, key, key_len + 1);
  if (len > 0) memcpy(payload + key_len + 1, data, len);
  int rc = buf_put(&j->pending, J_MARK, 0, payload, plen);
  if (rc == 0) rc = mark_set(j, payload, plen);
  free(payload);
  if (rc != 0) return mu_err_set(err, MU_ENOMEM, "journal: out of memory");
  schedule(j);
  return 0;
}

void mu_journal_unmark(mu_journal *j, const char *key) {
  size_t key_len = strlen(key);
  if (j->closing || *mark_find(j, key, key_len) == NULL) return;
  if (buf_put(&j->pending, J_UNMARK, 0, key, (uint32_t)key_len) != 0) return; /* kept: safe side */
  mark_drop(j, key, key_len);
  schedule(j);
}

void mu_journal_foreach_mark(const mu_journal *j, mu_journal_mark_cb cb, void *arg) {
  for (const jmark *m = j->marks; m != NULL; m = m->next)
    if (cb(arg, (const char *)m->payload, m->payload + m->key_len + 1, m->len - m->key_len - 1) != 0) return;
}

void mu_journal_close(mu_journal *j, void (*cb)(void *arg), void *arg) {
  j->closing = 1;
  j->close_cb = cb;
  j->close_arg = arg;
  if (j->batch_armed) uv_idle_stop(&j->batch);
  j->batch_armed = false;
  kick(j); /* what is pending goes now */
}
