/* The output spool (output_spool.h): an index of attempt files on the loop, writes through
 * libuv fs requests (one in flight per file), eviction of the oldest finished files for the
 * total cap, removal past the retention age, gap records for output it could not keep, and
 * readers that hand out whole records from any offset. The index is a fixed hash table of
 * entries keyed by file name; the directory scan at open is the only synchronous disk work
 * and runs before the loop serves traffic. */
#define _GNU_SOURCE
#include "agent/output_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/base/clock.h"
#include "lib/base/log.h"

#define MU_SPOOL_BUCKETS 4096
#define MU_SPOOL_SWEEP_MS 60000
#define MU_KEY_MAX 256

typedef struct spool_entry {
  struct spool_entry *next; /* in its bucket */
  mu_output_spool *s;
  char key[MU_KEY_MAX];
  uint64_t size;    /* accepted: written + queued */
  uint64_t written; /* on disk, whole records */
  int finished;
  int from_scan; /* found at open (an earlier run of the agent) */
  int64_t finished_ms;
  uv_file fd;   /* -1 when closed */
  int busy;     /* an fs request (open, write, close) is in flight */
  int failed;   /* the file cannot be written: drop what comes */
  int truncate; /* reopen with O_TRUNC (a scanned file begun again) */
  uv_fs_t req;
  uint8_t *pending; /* records queued, not yet handed to a write */
  size_t pending_len, pending_cap;
  uint8_t *inflight; /* records being written */
  size_t inflight_len;
  uv_buf_t iov;
  int refs; /* open readers */
  int drop_logged;
  /* Stream offsets (index 1 stdout, 2 stderr) of this run of the attempt: pos counts every
   * byte seen, kept or not; gap is the dropped run at the end of a stream not yet recorded
   * (everything before pos - gap.len is in records, queued or written); inflight_pos and
   * written_pos are where the records in flight and on disk end. */
  uint64_t pos[3], inflight_pos[3], written_pos[3];
  mu_output_gap gap[3];
  uint64_t truncated; /* past the output limit, recorded when finished */
  int truncation_queued;
} spool_entry;

struct mu_output_spool {
  uv_loop_t *loop;
  char dir[4096];
  mu_output_spool_opts opts;
  spool_entry *buckets[MU_SPOOL_BUCKETS];
  mu_output_spool_stats st;
  uint64_t pending_bytes; /* queued + in flight, every file */
  char **evicted;         /* ring of evicted keys */
  size_t evicted_next;
  uv_timer_t sweep_timer;
  int timer_open;
  uint32_t readers; /* alive, closing ones included */
  uint32_t unlinks; /* removals in flight: close waits for them */
  int closing;
  void (*close_cb)(void *arg);
  void *close_arg;
};

struct mu_output_reader {
  mu_output_spool *s;
  spool_entry *e;
  uint64_t offset;
  uv_file fd;
  int busy, closing, torn_end;
  uv_fs_t req;
  uint8_t *buf;
  size_t max;
  uv_buf_t iov;
  mu_output_read_cb cb;
  void *arg;
};

static void entry_kick(spool_entry *e);
static void spool_maybe_closed(mu_output_spool *s);

/* --- keys and the index --- */

static uint64_t fnv1a(const char *p) {
  uint64_t h = 1469598103934665603ull;
  for (; *p; p++) {
    h ^= (unsigned char)*p;
    h *= 1099511628211ull;
  }
  return h;
}

void mu_output_spool_key(const char *task_id, uint32_t attempt, char *buf, size_t size) {
  char enc[MU_KEY_MAX];
  size_t n = 0;
  int long_id = 0;
  for (const char *p = task_id; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (n + 4 > 180) {
      long_id = 1;
      break;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        (c == '.' && n > 0))
      enc[n++] = (char)c;
    else n += (size_t)snprintf(enc + n, sizeof enc - n, "%%%02X", c);
  }
  enc[n] = '\0';
  if (long_id) snprintf(buf, size, "%s~%016llx.%u", enc, (unsigned long long)fnv1a(task_id), attempt);
  else snprintf(buf, size, "%s.%u", enc, attempt);
}

static size_t bucket_of(const char *key) { return (size_t)(fnv1a(key) % MU_SPOOL_BUCKETS); }

static spool_entry *entry_find(const mu_output_spool *s, const char *key) {
  for (spool_entry *e = s->buckets[bucket_of(key)]; e != NULL; e = e->next)
    if (strcmp(e->key, key) == 0) return e;
  return NULL;
}

static spool_entry *entry_add(mu_output_spool *s, const char *key) {
  spool_entry *e = calloc(1, sizeof *e);
  if (e == NULL) return NULL;
  e->s = s;
  snprintf(e->key, sizeof e->key, "%s", key);
  e->fd = -1;
  e->req.data = e;
  size_t b = bucket_of(key);
  e->next = s->buckets[b];
  s->buckets[b] = e;
  s->st.files++;
  return e;
}

static void entry_path(const mu_output_spool *s, const char *key, char *buf, size_t size) {
  snprintf(buf, size, "%s/%s.log", s->dir, key);
}

static void remember_evicted(mu_output_spool *s, const char *key) {
  if (s->evicted == NULL) return;
  size_t i = s->evicted_next++ % s->opts.max_evicted_names;
  free(s->evicted[i]);
  s->evicted[i] = strdup(key);
}

static int was_evicted(const mu_output_spool *s, const char *key) {
  for (size_t i = 0; s->evicted != NULL && i < s->opts.max_evicted_names; i++)
    if (s->evicted[i] != NULL && strcmp(s->evicted[i], key) == 0) return 1;
  return 0;
}

int mu_output_spool_evicted(const mu_output_spool *s, const char *task_id, uint32_t attempt) {
  char key[MU_KEY_MAX];
  mu_output_spool_key(task_id, attempt, key, sizeof key);
  return entry_find(s, key) == NULL && was_evicted(s, key);
}

static void on_unlinked(uv_fs_t *req) {
  mu_output_spool *s = req->data;
  if (req->result < 0 && req->result != UV_ENOENT)
    mu_warn("spool", "removing %s: %s", req->path, uv_strerror((int)req->result));
  uv_fs_req_cleanup(req);
  free(req);
  s->unlinks--;
  spool_maybe_closed(s);
}

static int entry_removable(const spool_entry *e) {
  return e->finished && !e->busy && e->fd < 0 && e->pending_len == 0 && e->refs == 0;
}

/* Unlinks the file (off the loop) and frees the entry. */
static void entry_remove(mu_output_spool *s, spool_entry *e, int expired) {
  for (spool_entry **pp = &s->buckets[bucket_of(e->key)]; *pp != NULL; pp = &(*pp)->next)
    if (*pp == e) {
      *pp = e->next;
      break;
    }
  char path[4400];
  entry_path(s, e->key, path, sizeof path);
  uv_fs_t *req = malloc(sizeof *req);
  if (req != NULL) {
    req->data = s;
    if (uv_fs_unlink(s->loop, req, path, on_unlinked) == 0) s->unlinks++;
    else free(req);
  }
  s->st.files--;
  s->st.bytes -= e->size;
  if (expired) {
    s->st.expired_files++;
  } else {
    s->st.evicted_files++;
    s->st.evicted_bytes += e->size;
  }
  remember_evicted(s, e->key);
  free(e->pending);
  free(e);
}

/* Evicts the oldest finished attempts until need more bytes fit; 1 when they do. */
static int make_room(mu_output_spool *s, uint64_t need) {
  while (s->st.bytes + need > s->opts.max_bytes) {
    spool_entry *oldest = NULL;
    for (size_t b = 0; b < MU_SPOOL_BUCKETS; b++)
      for (spool_entry *e = s->buckets[b]; e != NULL; e = e->next)
        if (entry_removable(e) && (oldest == NULL || e->finished_ms < oldest->finished_ms)) oldest = e;
    if (oldest == NULL) return 0;
    mu_info("spool", "evicting %s (%llu bytes) to stay under the spool cap of %llu bytes", oldest->key,
            (unsigned long long)oldest->size, (unsigned long long)s->opts.max_bytes);
    entry_remove(s, oldest, 0);
  }
  return 1;
}

/* Output of stream from offset start not kept: counted, logged once per attempt, and
 * added to the stream's pending gap (always the end of the stream: see spool_entry). */
static void count_drop(mu_output_spool *s, spool_entry *e, int stream, uint64_t start, size_t len, int cause) {
  s->st.overflow_bytes += len;
  if (e == NULL) return;
  if (!e->drop_logged) {
    e->drop_logged = 1;
    mu_warn("spool", "%s: output not spooled: %s (more drops of this attempt are only counted)", e->key,
            mu_output_drop_cause_text(cause));
  }
  mu_output_gap *g = &e->gap[stream];
  if (g->len == 0) {
    g->stream = stream;
    g->reason = MU_OUTPUT_GAP_DROPPED;
    g->start = start;
  }
  g->cause = cause;
  g->len += len;
}

static size_t gaps_pending(const spool_entry *e) { return (e->gap[1].len > 0) + (e->gap[2].len > 0); }

/* Moves the pending gaps into the records queued for writing (room for them reserved). */
static void gaps_queue(spool_entry *e) {
  for (int st = 1; st <= 2; st++) {
    if (e->gap[st].len == 0) continue;
    e->pending_len += mu_output_gap_put(e->pending + e->pending_len, &e->gap[st]);
    memset(&e->gap[st], 0, sizeof e->gap[st]);
  }
}

/* Grows the write queue of e to hold need more bytes; 0, or -1 out of memory. */
static int pending_reserve(spool_entry *e, size_t need) {
  if (e->pending_len + need <= e->pending_cap) return 0;
  size_t cap = e->pending_cap ? e->pending_cap : 4096;
  while (cap < e->pending_len + need) cap *= 2;
  uint8_t *g = realloc(e->pending, cap);
  if (g == NULL) return -1;
  e->pending = g;
  e->pending_cap = cap;
  return 0;
}

/* The stream offsets the records in buf (whole ones) take the written ones to. */
static void positions_after(uint64_t pos[3], const uint8_t *buf, size_t len) {
  for (size_t off = 0; off < len;) {
    int kind;
    const uint8_t *p;
    size_t n;
    mu_output_frame_get(buf + off, &kind, &p, &n);
    mu_output_gap g;
    if (kind == 1 || kind == 2) pos[kind] += n;
    else if (mu_output_gap_get(p, n, &g) == 0 && g.stream != 0) pos[g.stream] = g.start + g.len;
    off += MU_OUTPUT_FRAME_HEADER + n;
  }
}

/* The file cannot be written from here on: everything of each stream past what is on disk
 * is a gap (the records queued and in flight included). */
static void entry_lost_tail(spool_entry *e) {
  for (int st = 1; st <= 2; st++) {
    if (e->pos[st] == e->written_pos[st]) continue;
    e->gap[st] = (mu_output_gap){.stream = st,
                                 .reason = MU_OUTPUT_GAP_DROPPED,
                                 .cause = MU_OUTPUT_DROP_WRITE,
                                 .start = e->written_pos[st],
                                 .len = e->pos[st] - e->written_pos[st]};
  }
}

/* --- writing --- */

static void on_entry_fs(uv_fs_t *req) {
  spool_entry *e = req->data;
  mu_output_spool *s = e->s;
  uv_fs_type type = req->fs_type;
  ssize_t result = req->result;
  uv_fs_req_cleanup(req);
  e->busy = 0;
  switch (type) {
    case UV_FS_OPEN:
      if (result < 0) {
        mu_warn("spool", "%s: cannot open for writing: %s; its output is not spooled", e->key,
                uv_strerror((int)result));
        s->st.write_errors++;
        e->failed = 1;
      } else {
        e->fd = (uv_file)result;
      }
      break;
    case UV_FS_WRITE:
      if (result < 0 || (size_t)result != e->inflight_len) {
        /* a short or failed write leaves a torn record: stop writing this file */
        mu_warn("spool", "%s: write failed: %s; its output is no longer spooled", e->key,
                result < 0 ? uv_strerror((int)result) : "short write");
        s->st.write_errors++;
        e->failed = 1;
        uint64_t got = result > 0 ? (uint64_t)result : 0;
        long whole = mu_output_frames_whole(e->inflight, (size_t)got);
        positions_after(e->written_pos, e->inflight, whole > 0 ? (size_t)whole : 0);
        e->written += got;
        e->size -= e->inflight_len - got;
        s->st.bytes -= e->inflight_len - got;
        s->st.overflow_bytes += e->inflight_len - got;
      } else {
        e->written += e->inflight_len;
        memcpy(e->written_pos, e->inflight_pos, sizeof e->written_pos);
      }
      s->pending_bytes -= e->inflight_len;
      free(e->inflight);
      e->inflight = NULL;
      e->inflight_len = 0;
      break;
    case UV_FS_CLOSE: e->fd = -1; break;
    default: break;
  }
  if (e->failed && e->pending_len > 0) {
    s->pending_bytes -= e->pending_len;
    e->size -= e->pending_len;
    s->st.bytes -= e->pending_len;
    s->st.overflow_bytes += e->pending_len;
    e->pending_len = 0;
  }
  if (e->failed) entry_lost_tail(e);
  entry_kick(e);
  spool_maybe_closed(s);
}

/* Starts the next fs request the entry needs, if any and none is in flight. */
static void entry_kick(spool_entry *e) {
  mu_output_spool *s = e->s;
  if (e->busy) return;
  int rc = 0;
  if (e->fd < 0 && !e->failed && (e->pending_len > 0 || (!e->finished && e->written == 0))) {
    char path[4400];
    entry_path(s, e->key, path, sizeof path);
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (e->truncate ? O_TRUNC : 0);
    e->truncate = 0;
    rc = uv_fs_open(s->loop, &e->req, path, flags, 0640, on_entry_fs);
  } else if (e->fd >= 0 && e->pending_len > 0 && !e->failed) {
    e->inflight = e->pending;
    e->inflight_len = e->pending_len;
    for (int st = 1; st <= 2; st++) e->inflight_pos[st] = e->pos[st] - e->gap[st].len;
    e->pending = NULL;
    e->pending_len = e->pending_cap = 0;
    e->iov = uv_buf_init((char *)e->inflight, (unsigned)e->inflight_len);
    rc = uv_fs_write(s->loop, &e->req, e->fd, &e->iov, 1, (int64_t)e->written, on_entry_fs);
  } else if (e->fd >= 0 && (e->finished || e->failed)) {
    rc = uv_fs_close(s->loop, &e->req, e->fd, on_entry_fs);
  } else {
    return;
  }
  if (rc == 0) {
    e->busy = 1;
  } else {
    mu_warn("spool", "%s: cannot queue a file request: %s", e->key, uv_strerror(rc));
    s->st.write_errors++;
    e->failed = 1;
    if (e->inflight != NULL) { /* the write that could not start */
      s->pending_bytes -= e->inflight_len;
      free(e->inflight);
      e->inflight = NULL;
      e->inflight_len = 0;
    }
    entry_lost_tail(e);
  }
}

static spool_entry *entry_get(mu_output_spool *s, const char *task_id, uint32_t attempt) {
  char key[MU_KEY_MAX];
  mu_output_spool_key(task_id, attempt, key, sizeof key);
  spool_entry *e = entry_find(s, key);
  if (e != NULL && e->from_scan && e->refs == 0 && !e->busy && e->fd < 0) {
    /* an attempt begun again after an agent restart: start its file over */
    s->st.bytes -= e->size;
    e->size = e->written = 0;
    e->finished = e->from_scan = 0;
    e->truncate = 1;
    memset(e->pos, 0, sizeof e->pos);
    memset(e->written_pos, 0, sizeof e->written_pos);
    memset(e->gap, 0, sizeof e->gap);
    e->truncated = 0;
    e->truncation_queued = 0;
  }
  if (e == NULL) e = entry_add(s, key);
  return e;
}

void mu_output_spool_resume(mu_output_spool *s, const char *task_id, uint32_t attempt) {
  char key[MU_KEY_MAX];
  mu_output_spool_key(task_id, attempt, key, sizeof key);
  spool_entry *e = entry_find(s, key);
  if (e == NULL || !e->from_scan || e->refs != 0 || e->busy || e->fd >= 0) return;
  e->finished = e->from_scan = 0; /* appended to at its end (e->written), not begun again */
}

void mu_output_spool_begin(mu_output_spool *s, const char *task_id, uint32_t attempt) {
  if (s->closing) return;
  spool_entry *e = entry_get(s, task_id, attempt);
  if (e != NULL && !e->finished) entry_kick(e);
}

void mu_output_spool_append(mu_output_spool *s, const char *task_id, uint32_t attempt, int stream, const void *data,
                            size_t len) {
  if (s->closing || len == 0) return;
  stream = stream == 2 ? 2 : 1;
  spool_entry *e = entry_get(s, task_id, attempt);
  if (e == NULL || e->finished) {
    count_drop(s, NULL, stream, 0, len, MU_OUTPUT_DROP_NOMEM); /* nowhere to say it */
    if (e == NULL) mu_warn("spool", "%s: output not spooled: out of memory", task_id);
    return;
  }
  uint64_t start = e->pos[stream];
  e->pos[stream] += len;
  if (e->failed) {
    count_drop(s, e, stream, start, len, MU_OUTPUT_DROP_WRITE);
    return;
  }
  size_t n_frames = (len + MU_OUTPUT_FRAME_MAX - 1) / MU_OUTPUT_FRAME_MAX;
  size_t need = len + n_frames * MU_OUTPUT_FRAME_HEADER + gaps_pending(e) * MU_OUTPUT_GAP_RECORD;
  if (s->pending_bytes + need > s->opts.max_pending) {
    count_drop(s, e, stream, start, len, MU_OUTPUT_DROP_QUEUE);
    return;
  }
  if (!make_room(s, need)) {
    count_drop(s, e, stream, start, len, MU_OUTPUT_DROP_CAP);
    return;
  }
  if (pending_reserve(e, need) != 0) {
    count_drop(s, e, stream, start, len, MU_OUTPUT_DROP_NOMEM);
    return;
  }
  gaps_queue(e); /* what was dropped goes in before what follows it */
  const uint8_t *p = data;
  for (size_t off = 0; off < len;) {
    size_t n = len - off < MU_OUTPUT_FRAME_MAX ? len - off : MU_OUTPUT_FRAME_MAX;
    e->pending_len += mu_output_frame_put(e->pending + e->pending_len, stream, p + off, n);
    off += n;
  }
  e->size += need;
  s->st.bytes += need;
  s->pending_bytes += need;
  entry_kick(e);
}

void mu_output_spool_truncated(mu_output_spool *s, const char *task_id, uint32_t attempt, uint64_t bytes) {
  char key[MU_KEY_MAX];
  mu_output_spool_key(task_id, attempt, key, sizeof key);
  spool_entry *e = entry_find(s, key);
  if (e != NULL && !e->finished) e->truncated += bytes;
}

/* The truncation gap: after every byte of both streams. */
static mu_output_gap truncation_gap(const spool_entry *e) {
  return (mu_output_gap){
      .stream = 0, .reason = MU_OUTPUT_GAP_TRUNCATED, .start = e->pos[1] + e->pos[2], .len = e->truncated};
}

void mu_output_spool_finish(mu_output_spool *s, const char *task_id, uint32_t attempt) {
  char key[MU_KEY_MAX];
  mu_output_spool_key(task_id, attempt, key, sizeof key);
  spool_entry *e = entry_find(s, key);
  if (e == NULL || e->finished) return;
  /* the last gaps go in now, past the bounds if need be: they are a few small records */
  size_t need = gaps_pending(e) * MU_OUTPUT_GAP_RECORD + (e->truncated > 0) * MU_OUTPUT_GAP_RECORD;
  if (need > 0 && !e->failed && pending_reserve(e, need) == 0) {
    make_room(s, need);
    gaps_queue(e);
    if (e->truncated > 0) {
      mu_output_gap g = truncation_gap(e);
      e->pending_len += mu_output_gap_put(e->pending + e->pending_len, &g);
      e->truncation_queued = 1;
    }
    e->size += need;
    s->st.bytes += need;
    s->pending_bytes += need;
  }
  e->finished = 1;
  e->finished_ms = mu_now_ms();
  entry_kick(e);
}

/* --- sweep, stats, open, close --- */

void mu_output_spool_sweep(mu_output_spool *s) {
  int64_t cutoff = mu_now_ms() - s->opts.retention_ms;
  for (size_t b = 0; b < MU_SPOOL_BUCKETS; b++) {
    spool_entry *e = s->buckets[b];
    while (e != NULL) {
      spool_entry *next = e->next;
      if (entry_removable(e) && e->finished_ms < cutoff) {
        mu_info("spool", "removing %s: finished more than %llds ago", e->key, (long long)(s->opts.retention_ms / 1000));
        entry_remove(s, e, 1);
      }
      e = next;
    }
  }
  make_room(s, 0);
}

static void on_sweep_timer(uv_timer_t *t) { mu_output_spool_sweep(t->data); }

void mu_output_spool_stats_get(const mu_output_spool *s, mu_output_spool_stats *ret) { *ret = s->st; }

static int scan_dir(mu_output_spool *s, mu_err *err) {
  DIR *d = opendir(s->dir);
  if (d == NULL) return mu_err_set(err, MU_EIO, "output spool %s: %s", s->dir, strerror(errno));
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t n = strlen(de->d_name);
    if (n <= 4 || n >= MU_KEY_MAX + 4 || strcmp(de->d_name + n - 4, ".log") != 0) continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;
    char key[MU_KEY_MAX];
    snprintf(key, sizeof key, "%.*s", (int)(n - 4), de->d_name);
    spool_entry *e = entry_add(s, key);
    if (e == NULL) break;
    e->size = e->written = (uint64_t)st.st_size;
    e->finished = e->from_scan = 1;
    e->finished_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    s->st.bytes += e->size;
  }
  closedir(d);
  return 0;
}

int mu_output_spool_open(uv_loop_t *loop, const char *dir, const mu_output_spool_opts *opts, mu_output_spool **ret,
                         mu_err *err) {
  if (mkdir(dir, 0750) != 0 && errno != EEXIST)
    return mu_err_set(err, MU_EIO, "output spool %s: %s", dir, strerror(errno));
  mu_output_spool *s = calloc(1, sizeof *s);
  if (s == NULL) return mu_err_set(err, MU_ENOMEM, "output spool: out of memory");
  s->loop = loop;
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  if (opts != NULL) s->opts = *opts;
  if (s->opts.max_bytes == 0) s->opts.max_bytes = 1ull << 30;
  if (s->opts.retention_ms <= 0) s->opts.retention_ms = 7LL * 24 * 3600 * 1000;
  if (s->opts.max_pending == 0) s->opts.max_pending = 16u << 20;
  if (s->opts.max_evicted_names == 0) s->opts.max_evicted_names = 4096;
  s->evicted = calloc(s->opts.max_evicted_names, sizeof *s->evicted);
  int rc = scan_dir(s, err);
  if (rc != 0) {
    free(s->evicted);
    free(s);
    return rc;
  }
  mu_output_spool_sweep(s); /* the cap may have shrunk since the last run */
  uv_timer_init(loop, &s->sweep_timer);
  s->sweep_timer.data = s;
  s->timer_open = 1;
  int64_t every = s->opts.retention_ms / 10 < MU_SPOOL_SWEEP_MS ? s->opts.retention_ms / 10 : MU_SPOOL_SWEEP_MS;
  if (every < 10) every = 10;
  uv_timer_start(&s->sweep_timer, on_sweep_timer, (uint64_t)every, (uint64_t)every);
  uv_unref((uv_handle_t *)&s->sweep_timer);
  *ret = s;
  return 0;
}

static void free_all(mu_output_spool *s) {
  for (size_t b = 0; b < MU_SPOOL_BUCKETS; b++) {
    spool_entry *e = s->buckets[b];
    while (e != NULL) {
      spool_entry *next = e->next;
      free(e->pending);
      free(e->inflight);
      free(e);
      e = next;
    }
  }
  for (size_t i = 0; s->evicted != NULL && i < s->opts.max_evicted_names; i++) free(s->evicted[i]);
  free(s->evicted);
}

static void spool_maybe_closed(mu_output_spool *s) {
  if (!s->closing || s->timer_open || s->readers > 0 || s->unlinks > 0) return;
  for (size_t b = 0; b < MU_SPOOL_BUCKETS; b++)
    for (spool_entry *e = s->buckets[b]; e != NULL; e = e->next)
      if (e->busy || e->fd >= 0) return;
  void (*cb)(void *) = s->close_cb;
  void *arg = s->close_arg;
  s->close_cb = NULL;
  free_all(s);
  free(s);
  if (cb != NULL) cb(arg);
}

static void on_timer_closed(uv_handle_t *h) {
  mu_output_spool *s = h->data;
  s->timer_open = 0;
  spool_maybe_closed(s);
}

void mu_output_spool_close(mu_output_spool *s, void (*cb)(void *arg), void *arg) {
  s->closing = 1;
  s->close_cb = cb;
  s->close_arg = arg;
  for (size_t b = 0; b < MU_SPOOL_BUCKETS; b++)
    for (spool_entry *e = s->buckets[b]; e != NULL; e = e->next) {
      if (!e->finished) {
        e->finished = 1;
        e->finished_ms = mu_now_ms();
      }
      entry_kick(e);
    }
  uv_timer_stop(&s->sweep_timer);
  uv_close((uv_handle_t *)&s->sweep_timer, on_timer_closed);
}

/* --- reading --- */

int mu_output_reader_open(mu_output_spool *s, const char *task_id, uint32_t attempt, uint64_t offset,
                          mu_output_reader **ret, mu_err *err) {
  char key[MU_KEY_MAX];
  mu_output_spool_key(task_id, attempt, key, sizeof key);
  spool_entry *e = s->closing ? NULL : entry_find(s, key);
  if (e == NULL) {
    if (was_evicted(s, key))
      return mu_err_set(err, MU_ENOENT, "the output of task %s attempt %u was evicted from this agent's spool", task_id,
                        attempt);
    return mu_err_set(err, MU_ENOENT, "no output of task %s attempt %u in this agent's spool", task_id, attempt);
  }
  if (e->failed && e->written == 0)
    return mu_err_set(err, MU_EIO, "the output of task %s attempt %u could not be spooled", task_id, attempt);
  if (offset > e->size)
    return mu_err_set(err, MU_EINVAL, "offset %llu is past the end of task %s attempt %u (%llu bytes)",
                      (unsigned long long)offset, task_id, attempt, (unsigned long long)e->size);
  mu_output_reader *r = calloc(1, sizeof *r);
  if (r == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  r->s = s;
  r->e = e;
  r->offset = offset;
  r->fd = -1;
  r->req.data = r;
  e->refs++;
  s->readers++;
  *ret = r;
  return 0;
}

mu_output_read_state mu_output_reader_state(const mu_output_reader *r) {
  const spool_entry *e = r->e;
  if (r->torn_end) return MU_OUTPUT_READ_EOF;
  if (r->offset < e->written) return MU_OUTPUT_READ_DATA;
  /* a failed file never grows again */
  if ((e->finished || e->failed) && e->pending_len == 0 && e->inflight_len == 0) return MU_OUTPUT_READ_EOF;
  return MU_OUTPUT_READ_WAIT;
}

uint64_t mu_output_reader_offset(const mu_output_reader *r) { return r->offset; }

size_t mu_output_reader_missing(const mu_output_reader *r, uint8_t *buf, size_t size) {
  const spool_entry *e = r->e;
  size_t n = 0;
  for (int st = 1; st <= 2; st++)
    if (e->gap[st].len > 0 && n + MU_OUTPUT_GAP_RECORD <= size) n += mu_output_gap_put(buf + n, &e->gap[st]);
  /* the truncation record is the last one written: lost only if the file failed */
  if (e->truncated > 0 && (!e->truncation_queued || e->failed) && n + MU_OUTPUT_GAP_RECORD <= size) {
    mu_output_gap g = truncation_gap(e);
    n += mu_output_gap_put(buf + n, &g);
  }
  return n;
}

static void reader_free(mu_output_reader *r) {
  mu_output_spool *s = r->s;
  r->e->refs--;
  free(r->buf);
  free(r);
  s->readers--;
  spool_maybe_closed(s);
}

static void on_reader_closed_fd(uv_fs_t *req) {
  mu_output_reader *r = req->data;
  uv_fs_req_cleanup(req);
  reader_free(r);
}

/* Closes the fd (off the loop) and frees r. */
static void reader_finish_close(mu_output_reader *r) {
  if (r->fd >= 0 && uv_fs_close(r->s->loop, &r->req, r->fd, on_reader_closed_fd) == 0) return;
  reader_free(r);
}

static void reader_fail(mu_output_reader *r, int code, const char *what) {
  char msg[300];
  snprintf(msg, sizeof msg, "reading the output of %s: %s", r->e->key, what);
  r->cb(r, code, msg, NULL, 0, r->arg);
}

static int reader_start_read(mu_output_reader *r);

static void on_reader_fs(uv_fs_t *req) {
  mu_output_reader *r = req->data;
  uv_fs_type type = req->fs_type;
  ssize_t result = req->result;
  uv_fs_req_cleanup(req);
  r->busy = 0;
  if (r->closing) {
    if (type == UV_FS_OPEN && result >= 0) r->fd = (uv_file)result;
    reader_finish_close(r);
    return;
  }
  if (result < 0) {
    reader_fail(r, result == UV_ENOENT ? MU_ENOENT : MU_EIO, uv_strerror((int)result));
    return;
  }
  if (type == UV_FS_OPEN) {
    r->fd = (uv_file)result;
    int rc = reader_start_read(r);
    if (rc != 0) reader_fail(r, MU_EIO, uv_strerror(rc));
    return;
  }
  size_t n = (size_t)result;
  long whole = mu_output_frames_whole(r->buf, n);
  if (whole < 0) {
    reader_fail(r, MU_EIO, "malformed record");
    return;
  }
  if (whole == 0) {
    /* a record cut short by a crash (or a file shortened behind our back): the end of what
     * is there */
    if (n > 0 && !(r->offset + n >= r->e->written && (r->e->finished || r->e->failed))) {
      reader_fail(r, MU_EIO, "record larger than the read");
      return;
    }
    r->torn_end = 1;
  }
  r->offset += (uint64_t)whole;
  r->cb(r, 0, "", r->buf, (size_t)whole, r->arg);
}

/* Queues the read; a libuv error code when it cannot (cb not called). */
static int reader_start_read(mu_output_reader *r) {
  uint64_t avail = r->e->written - r->offset;
  size_t n = avail < r->max ? (size_t)avail : r->max;
  r->iov = uv_buf_init((char *)r->buf, (unsigned)n);
  int rc = uv_fs_read(r->s->loop, &r->req, r->fd, &r->iov, 1, (int64_t)r->offset, on_reader_fs);
  if (rc == 0) r->busy = 1;
  return rc;
}

int mu_output_reader_read(mu_output_reader *r, size_t max, mu_output_read_cb cb, void *arg) {
  if (r->busy) return MU_EAGAIN;
  if (mu_output_reader_state(r) != MU_OUTPUT_READ_DATA) return MU_ENOENT;
  if (max < MU_OUTPUT_FRAME_HEADER + MU_OUTPUT_FRAME_MAX) max = MU_OUTPUT_FRAME_HEADER + MU_OUTPUT_FRAME_MAX;
  if (r->buf == NULL || r->max != max) {
    uint8_t *b = realloc(r->buf, max);
    if (b == NULL) return MU_ENOMEM;
    r->buf = b;
    r->max = max;
  }
  r->cb = cb;
  r->arg = arg;
  if (r->fd >= 0) return reader_start_read(r) == 0 ? 0 : MU_EIO;
  char path[4400];
  entry_path(r->s, r->e->key, path, sizeof path);
  int rc = uv_fs_open(r->s->loop, &r->req, path, O_RDONLY | O_CLOEXEC, 0, on_reader_fs);
  if (rc != 0) return MU_EIO;
  r->busy = 1;
  return 0;
}

void mu_output_reader_close(mu_output_reader *r) {
  if (r == NULL) return;
  r->closing = 1;
  if (r->busy) return; /* finished in on_reader_fs */
  reader_finish_close(r);
}
