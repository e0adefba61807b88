/* The environment cache (envcache.h): one build entry per key under way in this process,
 * with its waiting tasks; thread-pool work to check, lock, commit and evict on disk; and the
 * two processes of a build (`python -m venv --without-pip TMP`, then the base interpreter's
 * `pip --python TMP/bin/python install ...`) spawned directly with libuv as the agent, their
 * output fanned out to every waiting task and kept (bounded) for tasks that join late. */
#define _GNU_SOURCE
#include "plugins/python/envcache.h"
#include "plugins/python/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define READY_MARKER ".muster-ready"
#define REQS_FILE "muster-requirements.txt"
#define ERR_TAIL 4096
#define MAX_IN_USE 1024

struct py_env_waiter {
  struct py_build *build;
  py_env_output_cb out;
  py_env_done_cb done;
  void *user;
  py_env_waiter *next;
};

typedef enum { W_CHECK, W_COMMIT, W_ABORT } work_kind;
typedef enum { R_HIT, R_BUSY, R_BUILD, R_DONE, R_ERROR } work_result;

typedef struct py_build {
  py_cache *cache;
  uv_loop_t *loop;
  char key[65];
  char *interpreter, *version, *requirements, *wheelhouse, *index_url;
  int require_hashes;
  char final_dir[PATH_MAX], tmp_dir[PATH_MAX], lock_path[PATH_MAX];
  int lock_fd;
  py_env_waiter *waiters;
  /* Build output kept for late joiners, and the tail of stderr for the failure message. */
  char *log;
  size_t log_len;
  bool log_truncated;
  char err_tail[ERR_TAIL];
  size_t err_len;
  /* Handles: one process with two pipes per step, a retry timer and a deadline timer. */
  uv_process_t proc;
  uv_pipe_t pipes[2];
  uv_timer_t retry, deadline;
  uv_work_t work;
  char readbuf[16384];
  int open_handles; /* the two timers */
  int step_handles; /* the current step's process and pipes */
  char spawn_err[256];
  bool work_pending, proc_running, step_pip, timed_out, finished;
  int64_t exit_status;
  int term_signal;
  /* Thread-pool work in and out. */
  work_kind wk;
  work_result wr;
  char wmsg[1024];
  char (*protect)[65];
  size_t n_protect;
  uint64_t evicted;
  uint64_t build_started_ns; /* when this process started building (0: no build) */
  struct py_build *next;
} py_build;

typedef struct in_use {
  char key[65];
  int refs;
} in_use;

struct py_cache {
  char *dir;
  char venvs[PATH_MAX];
  uint64_t max_bytes;
  int64_t build_timeout_ms;
  size_t log_max;
  py_build *builds;
  in_use uses[MAX_IN_USE];
  size_t n_uses;
  py_cache_stats stats;
  void (*on_build)(void *arg, int ok, double seconds); /* py_cache_on_build */
  void *on_build_arg;
};

/* ---- keys and uses ---- */

void py_cache_key(const py_env_request *req, char key[65]) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  const char *parts[] = {"muster-python-env-v1", req->interpreter, req->version, req->requirements,
                         req->require_hashes ? "require-hashes" : ""};
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
    const char *p = parts[i] ? parts[i] : "";
    crypto_hash_sha256_update(&st, (const unsigned char *)p, strlen(p) + 1); /* NUL separates */
  }
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, out);
  sodium_bin2hex(key, 65, out, sizeof out);
}

static void use_add(py_cache *c, const char *key) {
  for (size_t i = 0; i < c->n_uses; i++)
    if (strcmp(c->uses[i].key, key) == 0) {
      c->uses[i].refs++;
      return;
    }
  if (c->n_uses == MAX_IN_USE) return; /* only eviction protection is lost */
  snprintf(c->uses[c->n_uses].key, 65, "%s", key);
  c->uses[c->n_uses++].refs = 1;
}

void py_cache_unuse(py_cache *c, const char *key) {
  for (size_t i = 0; i < c->n_uses; i++)
    if (strcmp(c->uses[i].key, key) == 0) {
      if (--c->uses[i].refs <= 0) c->uses[i] = c->uses[--c->n_uses];
      return;
    }
}

/* ---- thread-pool work ---- */

/* Removes stale temp dirs of this key (the lock is held, so no one else is building it). */
static void remove_stale(py_build *b) {
  DIR *d = opendir(b->cache->venvs);
  if (d == NULL) return;
  char prefix[80];
  snprintf(prefix, sizeof prefix, ".tmp.%s.", b->key);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strncmp(de->d_name, prefix, strlen(prefix)) != 0) continue;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", b->cache->venvs, de->d_name);
    py_fs_rmtree(p);
  }
  closedir(d);
}

static bool ready(py_build *b) {
  char marker[PATH_MAX];
  snprintf(marker, sizeof marker, "%s/" READY_MARKER, b->final_dir);
  if (access(marker, F_OK) != 0) return false;
  utimensat(AT_FDCWD, marker, NULL, 0); /* last use, for the LRU */
  return true;
}

static void work_check(py_build *b) {
  int rc = py_fs_mkdirs(b->cache->venvs);
  if (rc != 0) {
    b->wr = R_ERROR;
    snprintf(b->wmsg, sizeof b->wmsg, "python cache: cannot create %s: %s", b->cache->venvs, strerror(-rc));
    return;
  }
  if (ready(b)) {
    b->wr = R_HIT;
    return;
  }
  int fd = open(b->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    b->wr = R_ERROR;
    snprintf(b->wmsg, sizeof b->wmsg, "python cache: cannot open %s: %s", b->lock_path, strerror(errno));
    return;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    b->wr = R_BUSY;
    return;
  }
  if (ready(b)) { /* another agent finished it while we waited */
    close(fd);
    b->wr = R_HIT;
    return;
  }
  remove_stale(b);
  py_fs_rmtree(b->final_dir); /* an incomplete dir without its marker */
  rc = py_fs_mkdirs(b->tmp_dir);
  char reqs[PATH_MAX];
  snprintf(reqs, sizeof reqs, "%s/" REQS_FILE, b->tmp_dir);
  if (rc == 0) rc = py_fs_write_file(reqs, b->requirements, strlen(b->requirements), 0644);
  if (rc != 0) {
    close(fd);
    b->wr = R_ERROR;
    snprintf(b->wmsg, sizeof b->wmsg, "python cache: cannot prepare %s: %s", b->tmp_dir, strerror(-rc));
    return;
  }
  b->lock_fd = fd;
  b->wr = R_BUILD;
}

/* Scripts pip wrote into bin/ name the temp dir in their #! line; point them at the final
 * dir so console scripts work after the rename (the interpreter itself finds its prefix from
 * pyvenv.cfg, wherever the dir is). */
static void fix_paths(py_build *b) {
  char bin[PATH_MAX];
  snprintf(bin, sizeof bin, "%s/bin", b->tmp_dir);
  DIR *d = opendir(bin);
  if (d == NULL) return;
  size_t tl = strlen(b->tmp_dir), fl = strlen(b->final_dir);
  struct dirent *de;
  char *data = malloc(1 << 20);
  while (data != NULL && (de = readdir(d)) != NULL) {
    char p[PATH_MAX];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", bin, de->d_name);
    size_t n = 0;
    if (lstat(p, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size >= (1 << 20) ||
        py_fs_read_small(p, data, 1 << 20, &n) != 0)
      continue;
    if (memmem(data, n, b->tmp_dir, tl) == NULL) continue;
    char *out = malloc(n * 2 + fl + 1);
    if (out == NULL) continue;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
      if (i + tl <= n && memcmp(data + i, b->tmp_dir, tl) == 0) {
        memcpy(out + o, b->final_dir, fl);
        o += fl;
        i += tl;
      } else {
        out[o++] = data[i++];
      }
    }
    py_fs_write_file(p, out, o, sb.st_mode & 07777);
    free(out);
  }
  free(data);
  closedir(d);
}

typedef struct venv_entry {
  char key[65];
  uint64_t size;
  time_t used;
} venv_entry;

static int cmp_used(const void *a, const void *b) {
  const venv_entry *x = a, *y = b;
  return x->used < y->used ? -1 : x->used > y->used;
}

/* Removes least-recently-used environments until the total fits the cap. */
static void evict(py_build *b) {
  DIR *d = opendir(b->cache->venvs);
  if (d == NULL) return;
  venv_entry *v = NULL;
  size_t n = 0, cap = 0;
  uint64_t total = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strlen(de->d_name) != 64) continue;
    char marker[PATH_MAX], buf[256];
    struct stat sb;
    size_t len = 0;
    snprintf(marker, sizeof marker, "%s/%s/" READY_MARKER, b->cache->venvs, de->d_name);
    if (stat(marker, &sb) != 0 || py_fs_read_small(marker, buf, sizeof buf - 1, &len) != 0) continue;
    buf[len] = '\0';
    if (n == cap) {
      cap = cap ? cap * 2 : 32;
      venv_entry *nv = realloc(v, cap * sizeof *v);
      if (nv == NULL) break;
      v = nv;
    }
    snprintf(v[n].key, 65, "%s", de->d_name);
    v[n].size = strtoull(buf + (strncmp(buf, "size ", 5) == 0 ? 5 : 0), NULL, 10);
    v[n].used = sb.st_mtime;
    total += v[n++].size;
  }
  closedir(d);
  if (n > 1) qsort(v, n, sizeof *v, cmp_used);
  for (size_t i = 0; i < n && total > b->cache->max_bytes; i++) {
    bool keep = strcmp(v[i].key, b->key) == 0;
    for (size_t k = 0; k < b->n_protect && !keep; k++) keep = strcmp(b->protect[k], v[i].key) == 0;
    if (keep) continue;
    char from[PATH_MAX], trash[PATH_MAX];
    snprintf(from, sizeof from, "%s/%s", b->cache->venvs, v[i].key);
    snprintf(trash, sizeof trash, "%s/.trash.%s.%d", b->cache->venvs, v[i].key, (int)getpid());
    if (rename(from, trash) != 0) continue; /* readers see the whole dir or none */
    py_fs_rmtree(trash);
    total -= v[i].size;
    b->evicted++;
  }
  free(v);
}

static void work_commit(py_build *b) {
  fix_paths(b);
  uint64_t size = 0;
  py_fs_walk(b->tmp_dir, false, &size);
  char marker[PATH_MAX], text[2048];
  snprintf(marker, sizeof marker, "%s/" READY_MARKER, b->tmp_dir);
  int n = snprintf(text, sizeof text, "size %llu\ninterpreter %s\nversion %s\n", (unsigned long long)size,
                   b->interpreter, b->version);
  int rc = py_fs_write_file(marker, text, (size_t)n, 0644);
  if (rc == 0 && rename(b->tmp_dir, b->final_dir) != 0) rc = -errno;
  if (rc != 0) {
    py_fs_rmtree(b->tmp_dir);
    b->wr = R_ERROR;
    snprintf(b->wmsg, sizeof b->wmsg, "python cache: cannot complete %s: %s", b->final_dir, strerror(-rc));
  } else {
    b->wr = R_DONE;
  }
  close(b->lock_fd);
  b->lock_fd = -1;
  if (rc == 0) evict(b);
}

static void work_abort(py_build *b) {
  py_fs_rmtree(b->tmp_dir);
  if (b->lock_fd >= 0) close(b->lock_fd);
  b->lock_fd = -1;
  b->wr = R_ERROR;
}

static void on_work(uv_work_t *w) {
  py_build *b = w->data;
  switch (b->wk) {
    case W_CHECK: work_check(b); break;
    case W_COMMIT: work_commit(b); break;
    case W_ABORT: work_abort(b); break;
  }
}

/* ---- the build on the loop ---- */

static void build_step(py_build *b);
static void queue_work(py_build *b, work_kind k);

static void on_handle_closed(uv_handle_t *h) {
  py_build *b = h->data;
  if (--b->open_handles > 0 || !b->finished || b->step_handles > 0 || b->work_pending) return;
  free(b->interpreter);
  free(b->version);
  free(b->requirements);
  free(b->wheelhouse);
  free(b->index_url);
  free(b->log);
  free(b->protect);
  free(b);
}

static void close_handle(py_build *b, uv_handle_t *h) {
  if (uv_is_closing(h)) return;
  h->data = b;
  uv_close(h, on_handle_closed);
}

/* Sends text to every waiter and keeps it (bounded) for those who join later. */
static void fan_out(py_build *b, int stream, const char *data, size_t len) {
  for (py_env_waiter *w = b->waiters; w != NULL; w = w->next) w->out(w->user, stream, data, len);
  size_t room = b->cache->log_max > b->log_len ? b->cache->log_max - b->log_len : 0;
  size_t keep = len < room ? len : room;
  if (keep < len) b->log_truncated = true;
  if (keep > 0 && b->log != NULL) {
    memcpy(b->log + b->log_len, data, keep);
    b->log_len += keep;
  }
  if (stream == 2) {
    if (len >= ERR_TAIL) {
      memcpy(b->err_tail, data + len - ERR_TAIL, ERR_TAIL);
      b->err_len = ERR_TAIL;
    } else {
      size_t drop = b->err_len + len > ERR_TAIL ? b->err_len + len - ERR_TAIL : 0;
      memmove(b->err_tail, b->err_tail + drop, b->err_len - drop);
      memcpy(b->err_tail + b->err_len - drop, data, len);
      b->err_len = b->err_len - drop + len;
    }
  }
}

static void note(py_build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(py_build *b, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  fan_out(b, 2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* Ends the entry: every waiter hears the outcome; handles close; freed when all are closed. */
static void build_finish(py_build *b, int status, const char *message) {
  py_cache *c = b->cache;
  for (py_build **pp = &c->builds; *pp != NULL; pp = &(*pp)->next)
    if (*pp == b) {
      *pp = b->next;
      break;
    }
  b->finished = true;
  while (b->waiters != NULL) {
    py_env_waiter *w = b->waiters;
    b->waiters = w->next;
    if (status == 0) use_add(c, b->key);
    w->done(w->user, status, b->key, b->final_dir, message);
    free(w);
  }
  uv_timer_stop(&b->retry);
  uv_timer_stop(&b->deadline);
  close_handle(b, (uv_handle_t *)&b->retry);
  close_handle(b, (uv_handle_t *)&b->deadline);
}

/* pip's "ERROR:" lines from the stderr tail, else its last line. */
static void error_lines(py_build *b, char *out, size_t cap) {
  char tail[ERR_TAIL + 1];
  memcpy(tail, b->err_tail, b->err_len);
  tail[b->err_len] = '\0';
  size_t n = 0;
  out[0] = '\0';
  char *last = NULL, *save = NULL;
  for (char *l = strtok_r(tail, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
    while (*l == ' ' || *l == '\r') l++;
    if (*l != '\0') last = l;
    if (strncmp(l, "ERROR:", 6) != 0 || n >= cap) continue;
    int w = snprintf(out + n, cap - n, "%s%s", n ? " " : "", l);
    if (w > 0) n += (size_t)w;
  }
  if (n == 0 && last != NULL) snprintf(out, cap, "%s", last);
}

static void fail_build(py_build *b, const char *message) {
  b->cache->stats.failures++;
  snprintf(b->wmsg, sizeof b->wmsg, "%s", message);
  note(b, "muster: python environment %.12s failed: %s\n", b->key, message);
  queue_work(b, W_ABORT);
}

static void step_done(py_build *b) {
  if (b->proc_running || b->step_handles > 0 || b->finished) return;
  char msg[1024], errs[800];
  if (b->spawn_err[0] != '\0') {
    snprintf(msg, sizeof msg, "%s", b->spawn_err);
    b->spawn_err[0] = '\0';
    fail_build(b, msg);
    return;
  }
  if (b->waiters == NULL) {
    fail_build(b, "no task waits for it any more");
    return;
  }
  if (b->timed_out) {
    snprintf(msg, sizeof msg, "environment build timed out after %lld s",
             (long long)(b->cache->build_timeout_ms / 1000));
    fail_build(b, msg);
    return;
  }
  if (b->exit_status != 0 || b->term_signal != 0) {
    error_lines(b, errs, sizeof errs);
    if (b->term_signal != 0)
      snprintf(msg, sizeof msg, "%s killed by signal %d: %s", b->step_pip ? "pip install" : "python -m venv",
               b->term_signal, errs);
    else
      snprintf(msg, sizeof msg, "%s failed (exit %lld): %s", b->step_pip ? "pip install" : "python -m venv",
               (long long)b->exit_status, errs);
    fail_build(b, msg);
    return;
  }
  if (!b->step_pip) {
    b->step_pip = true;
    build_step(b);
    return;
  }
  queue_work(b, W_COMMIT);
}

static void on_step_closed(uv_handle_t *h) {
  py_build *b = h->data;
  b->step_handles--;
  step_done(b);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  py_build *b = h->data;
  *buf = uv_buf_init(b->readbuf, sizeof b->readbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  py_build *b = s->data;
  if (n > 0) {
    fan_out(b, s == (uv_stream_t *)&b->pipes[0] ? 1 : 2, buf->base, (size_t)n);
    return;
  }
  if (n < 0) uv_close((uv_handle_t *)s, on_step_closed);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig) {
  py_build *b = p->data;
  b->proc_running = false;
  b->exit_status = status;
  b->term_signal = sig;
  uv_close((uv_handle_t *)p, on_step_closed);
}

/* Kills the current step's process group (builds run detached, in their own group). */
static void kill_build(py_build *b) {
  if (b->proc_running) uv_kill(-b->proc.pid, SIGKILL);
}

static void on_deadline(uv_timer_t *t) {
  py_build *b = t->data;
  b->timed_out = true;
  kill_build(b);
}

static void build_step(py_build *b) {
  char python[PATH_MAX], reqs[PATH_MAX], hint[32];
  snprintf(python, sizeof python, "%s/bin/python", b->tmp_dir);
  snprintf(reqs, sizeof reqs, "%s/" REQS_FILE, b->tmp_dir);
  /* A fixed umask: whatever the agent's, the cache is never group/world writable. */
  const char *argv[40] = {"/bin/sh", "-c", "umask 022 && exec \"$0\" \"$@\"", b->interpreter};
  int n = 4;
  if (!b->step_pip) {
    argv[n++] = "-m";
    argv[n++] = "venv";
    argv[n++] = "--without-pip";
    argv[n++] = b->tmp_dir;
  } else {
    const char *fixed[] = {"-m",
                           "pip",
                           "--isolated",
                           "--no-input",
                           "--disable-pip-version-check",
                           "--python",
                           python,
                           "install",
                           "--no-cache-dir",
                           "--no-warn-script-location",
                           "--progress-bar",
                           "off"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) argv[n++] = fixed[i];
    if (b->require_hashes) argv[n++] = "--require-hashes";
    if (b->index_url != NULL) {
      argv[n++] = "--index-url";
      argv[n++] = b->index_url;
    } else {
      argv[n++] = "--no-index";
    }
    if (b->wheelhouse != NULL) {
      argv[n++] = "--find-links";
      argv[n++] = b->wheelhouse;
    }
    argv[n++] = "-r";
    argv[n++] = reqs;
  }
  argv[n] = NULL;
  char home[PATH_MAX + 8];
  snprintf(home, sizeof home, "HOME=%s", b->cache->dir);
  char *env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", home, "LANG=C.UTF-8", NULL};
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&b->pipes[0]},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&b->pipes[1]}};
  for (int i = 0; i < 2; i++) {
    uv_pipe_init(b->loop, &b->pipes[i], 0);
    b->pipes[i].data = b;
    b->step_handles++;
  }
  uv_process_options_t o = {.exit_cb = on_proc_exit,
                            .file = argv[0],
                            .args = (char **)argv,
                            .env = env,
                            .cwd = b->cache->dir,
                            .flags = UV_PROCESS_DETACHED,
                            .stdio_count = 3,
                            .stdio = stdio};
  b->proc.data = b;
  b->exit_status = 0;
  b->term_signal = 0;
  snprintf(hint, sizeof hint, "%s", b->step_pip ? "pip install" : "python -m venv");
  note(b, "muster: %s\n", b->step_pip ? "installing requirements with pip" : "creating the virtual environment");
  int rc = uv_spawn(b->loop, &b->proc, &o);
  b->step_handles++; /* the process handle, closed in on_proc_exit or just below */
  if (rc != 0) {
    /* libuv wants the handles closed even when the spawn failed; step_done reports it. */
    snprintf(b->spawn_err, sizeof b->spawn_err, "%s: cannot start %s: %s", hint, b->interpreter, uv_strerror(rc));
    for (int i = 0; i < 2; i++) uv_close((uv_handle_t *)&b->pipes[i], on_step_closed);
    uv_close((uv_handle_t *)&b->proc, on_step_closed);
    return;
  }
  b->proc_running = true;
  for (int i = 0; i < 2; i++) uv_read_start((uv_stream_t *)&b->pipes[i], on_alloc, on_read);
}

static void on_retry(uv_timer_t *t) {
  py_build *b = t->data;
  queue_work(b, W_CHECK);
}

static void after_work(uv_work_t *w, int status) {
  py_build *b = w->data;
  b->work_pending = false;
  py_cache *c = b->cache;
  (void)status;
  if (b->wk == W_ABORT) {
    build_finish(b, -EIO, b->wmsg);
    return;
  }
  if (b->wk == W_COMMIT) {
    c->stats.evictions += b->evicted;
    if (c->on_build != NULL && b->build_started_ns > 0)
      c->on_build(c->on_build_arg, b->wr == R_DONE, (double)(uv_hrtime() - b->build_started_ns) / 1e9);
    if (b->wr == R_DONE) {
      note(b, "muster: python environment %.12s ready\n", b->key);
      build_finish(b, 0, NULL);
    } else {
      c->stats.failures++;
      build_finish(b, -EIO, b->wmsg);
    }
    return;
  }
  /* W_CHECK */
  switch (b->wr) {
    case R_HIT:
      c->stats.hits++;
      build_finish(b, 0, NULL);
      return;
    case R_ERROR: build_finish(b, -EIO, b->wmsg); return;
    case R_BUSY:
      if (b->waiters == NULL) {
        build_finish(b, -ECANCELED, "no task waits for it any more");
        return;
      }
      if (uv_is_active((uv_handle_t *)&b->retry) == 0 && !b->log_truncated && b->log_len == 0)
        note(b, "muster: waiting for another agent building python environment %.12s\n", b->key);
      uv_timer_start(&b->retry, on_retry, 200, 0);
      return;
    default: break;
  }
  /* R_BUILD: the lock is ours. */
  if (b->waiters == NULL) {
    queue_work(b, W_ABORT);
    return;
  }
  c->stats.builds++;
  b->build_started_ns = uv_hrtime();
  note(b, "muster: building python environment %.12s for %s (python %s)\n", b->key, b->interpreter, b->version);
  uv_timer_start(&b->deadline, on_deadline, (uint64_t)c->build_timeout_ms, 0);
  build_step(b);
}

static void queue_work(py_build *b, work_kind k) {
  b->wk = k;
  b->work.data = b;
  if (k == W_COMMIT) {
    py_cache *c = b->cache;
    free(b->protect);
    b->protect = calloc(c->n_uses + 1, sizeof *b->protect);
    b->n_protect = 0;
    for (size_t i = 0; b->protect != NULL && i < c->n_uses; i++) memcpy(b->protect[b->n_protect++], c->uses[i].key, 65);
  }
  int rc = uv_queue_work(b->loop, &b->work, on_work, after_work);
  if (rc != 0) {
    build_finish(b, -EIO, "python cache: cannot queue work");
    return;
  }
  b->work_pending = true;
}

/* ---- public ---- */

int py_cache_new(const py_cache_config *cfg, py_cache **ret) {
  py_cache *c = calloc(1, sizeof *c);
  if (c == NULL) return -ENOMEM;
  c->dir = strdup(cfg->dir ? cfg->dir : "/var/lib/muster/python");
  if (c->dir == NULL) {
    free(c);
    return -ENOMEM;
  }
  snprintf(c->venvs, sizeof c->venvs, "%s/venvs", c->dir);
  c->max_bytes = cfg->max_bytes ? cfg->max_bytes : (2ull << 30);
  c->build_timeout_ms = cfg->build_timeout_ms > 0 ? cfg->build_timeout_ms : 600000;
  c->log_max = cfg->log_max ? cfg->log_max : 65536;
  *ret = c;
  return 0;
}

void py_cache_free(py_cache *c) {
  if (c == NULL) return;
  free(c->dir);
  free(c);
}

const char *py_cache_dir(const py_cache *c) { return c->dir; }
py_cache_stats py_cache_get_stats(const py_cache *c) { return c->stats; }

static char *dup_or_null(const char *s) { return s != NULL && *s != '\0' ? strdup(s) : NULL; }

int py_cache_acquire(py_cache *c, uv_loop_t *loop, const py_env_request *req, py_env_output_cb out, py_env_done_cb done,
                     void *user, py_env_waiter **ret_waiter) {
  char key[65];
  py_cache_key(req, key);
  py_env_waiter *w = calloc(1, sizeof *w);
  if (w == NULL) return -ENOMEM;
  w->out = out;
  w->done = done;
  w->user = user;
  for (py_build *b = c->builds; b != NULL; b = b->next) {
    if (strcmp(b->key, key) != 0) continue;
    c->stats.joins++;
    w->build = b;
    w->next = b->waiters;
    b->waiters = w;
    char line[160];
    int n = snprintf(line, sizeof line, "muster: joining the build of python environment %.12s under way\n", key);
    out(user, 2, line, (size_t)n);
    if (b->log_len > 0) out(user, 2, b->log, b->log_len);
    if (b->log_truncated) out(user, 2, "muster: (build output past the kept bound not shown)\n", 54);
    *ret_waiter = w;
    return 0;
  }
  py_build *b = calloc(1, sizeof *b);
  if (b == NULL) {
    free(w);
    return -ENOMEM;
  }
  b->cache = c;
  b->loop = loop;
  b->lock_fd = -1;
  memcpy(b->key, key, sizeof key);
  b->interpreter = strdup(req->interpreter);
  b->version = strdup(req->version ? req->version : "");
  b->requirements = strdup(req->requirements ? req->requirements : "");
  b->wheelhouse = dup_or_null(req->wheelhouse);
  b->index_url = dup_or_null(req->index_url);
  b->require_hashes = req->require_hashes;
  b->log = malloc(c->log_max);
  snprintf(b->final_dir, sizeof b->final_dir, "%s/%s", c->venvs, key);
  snprintf(b->tmp_dir, sizeof b->tmp_dir, "%s/.tmp.%s.%d", c->venvs, key, (int)getpid());
  snprintf(b->lock_path, sizeof b->lock_path, "%s/%s.lock", c->venvs, key);
  if (b->interpreter == NULL || b->version == NULL || b->requirements == NULL || b->log == NULL) {
    free(b->interpreter);
    free(b->version);
    free(b->requirements);
    free(b->wheelhouse);
    free(b->index_url);
    free(b->log);
    free(b);
    free(w);
    return -ENOMEM;
  }
  uv_timer_init(loop, &b->retry);
  uv_timer_init(loop, &b->deadline);
  b->retry.data = b->deadline.data = b;
  b->open_handles = 2;
  w->build = b;
  b->waiters = w;
  b->next = c->builds;
  c->builds = b;
  *ret_waiter = w;
  queue_work(b, W_CHECK);
  return 0;
}

void py_cache_cancel(py_cache *c, py_env_waiter *w) {
  (void)c;
  if (w == NULL) return;
  py_build *b = w->build;
  for (py_env_waiter **pp = &b->waiters; *pp != NULL; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  free(w);
  if (b->waiters != NULL) return;
  if (b->proc_running) {
    kill_build(b); /* its exit leads to the abort */
  } else if (uv_is_active((uv_handle_t *)&b->retry)) {
    uv_timer_stop(&b->retry);
    build_finish(b, -ECANCELED, "no task waits for it any more");
  }
}

void py_cache_on_build(py_cache *c, void (*cb)(void *arg, int ok, double seconds), void *arg) {
  c->on_build = cb;
  c->on_build_arg = arg;
}
