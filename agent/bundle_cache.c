/* The agent's bundle cache (see bundle_cache.h): an in-memory index of <dir>/<hex>.bundle
 * files in LRU order, one fetch per missing digest with every waiter queued on it, and the
 * disk work (digest check, write, rename, evictions) on the libuv thread pool. */
#define _GNU_SOURCE
#include "agent/bundle_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/base/log.h"

typedef struct waiter {
  struct waiter *next;
  mu_bundle_cache_cb cb;
  void *arg;
} waiter;

typedef struct entry {
  struct entry *next;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  char *path, *sig_path, *name, *version;
  uint64_t size;
  uint64_t last_used;
  int refs;
} entry;

typedef struct fetch {
  struct fetch *next;
  mu_bundle_cache *c;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  uint8_t *buf;
  uint64_t total, received;
  int started; /* the first chunk arrived (total known) */
  uint8_t *sig;
  size_t sig_len;
  char *name, *version;
  waiter *waiters;
  /* the write, on the thread pool */
  uv_work_t work;
  char **victims; /* paths to unlink (evicted entries' files) */
  size_t n_victims;
  int work_rc;
  char work_msg[400];
} fetch;

struct mu_bundle_cache {
  uv_loop_t *loop;
  mu_bundle_cache_config cfg;
  char *dir;
  entry *entries;
  fetch *fetches;
  uint64_t clock;
  int writers;
  int closing;
  void (*close_cb)(void *arg);
  void *close_arg;
  mu_bundle_cache_stats st;
};

static char *path_of(const char *dir, const char *digest, const char *ext) {
  char *p = NULL;
  if (asprintf(&p, "%s/%s%s", dir, digest + strlen(MU_BUNDLE_DIGEST_PREFIX), ext) < 0) return NULL;
  return p;
}

static void entry_free(entry *e) {
  free(e->path);
  free(e->sig_path);
  free(e->name);
  free(e->version);
  free(e);
}

static entry *entry_find(mu_bundle_cache *c, const char *digest) {
  for (entry *e = c->entries; e != NULL; e = e->next)
    if (strcmp(e->digest, digest) == 0) return e;
  return NULL;
}

static fetch *fetch_find(mu_bundle_cache *c, const char *digest) {
  for (fetch *f = c->fetches; f != NULL; f = f->next)
    if (strcmp(f->digest, digest) == 0) return f;
  return NULL;
}

static void hand_out(mu_bundle_cache *c, entry *e, mu_bundle_cache_cb cb, void *arg) {
  e->refs++;
  e->last_used = ++c->clock;
  mu_cached_bundle b = {.digest = e->digest,
                        .path = e->path,
                        .sig_path = e->sig_path,
                        .name = e->name,
                        .version = e->version,
                        .size = e->size};
  cb(arg, 0, "", &b);
}

static void fetch_unlink(mu_bundle_cache *c, fetch *f) {
  for (fetch **pp = &c->fetches; *pp != NULL; pp = &(*pp)->next)
    if (*pp == f) {
      *pp = f->next;
      return;
    }
}

static void fetch_free(fetch *f) {
  for (size_t i = 0; i < f->n_victims; i++) free(f->victims[i]);
  free(f->victims);
  free(f->buf);
  free(f->sig);
  free(f->name);
  free(f->version);
  free(f);
}

/* Ends a fetch with an error for every waiter. */
static void fetch_fail(mu_bundle_cache *c, fetch *f, int rc, const char *msg) {
  fetch_unlink(c, f);
  waiter *w = f->waiters;
  f->waiters = NULL;
  while (w != NULL) {
    waiter *next = w->next;
    w->cb(w->arg, rc, msg, NULL);
    free(w);
    w = next;
  }
  fetch_free(f);
}

static uint64_t held_bytes(const mu_bundle_cache *c) {
  uint64_t n = 0;
  for (const entry *e = c->entries; e != NULL; e = e->next) n += e->size;
  return n;
}

/* Picks least recently used unreferenced entries until `incoming` more bytes fit the cap;
 * unlinks them from the index and hands their paths to f (the worker removes the files). */
static void pick_victims(mu_bundle_cache *c, fetch *f, uint64_t incoming) {
  while (held_bytes(c) + incoming > c->cfg.max_bytes) {
    entry **victim = NULL;
    for (entry **pp = &c->entries; *pp != NULL; pp = &(*pp)->next)
      if ((*pp)->refs == 0 && (victim == NULL || (*pp)->last_used < (*victim)->last_used)) victim = pp;
    if (victim == NULL) return;
    entry *e = *victim;
    char **g = realloc(f->victims, (f->n_victims + 3) * sizeof *g);
    if (g == NULL) return;
    f->victims = g;
    f->victims[f->n_victims++] = e->path;
    f->victims[f->n_victims++] = path_of(c->dir, e->digest, ".sig");
    f->victims[f->n_victims++] = path_of(c->dir, e->digest, ".meta");
    e->path = NULL;
    *victim = e->next;
    c->st.evictions++;
    mu_info("bundles", "cache: evicting %s (%llu bytes, least recently used)", e->digest, (unsigned long long)e->size);
    entry_free(e);
  }
}

static int write_file(const char *path, const void *data, size_t len, char *msg, size_t size) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.part", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    snprintf(msg, size, "cache: cannot create %s: %s", tmp, strerror(errno));
    return MU_EIO;
  }
  const uint8_t *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      snprintf(msg, size, "cache: writing %s: %s", tmp, strerror(errno));
      close(fd);
      unlink(tmp);
      return MU_EIO;
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
    snprintf(msg, size, "cache: finishing %s: %s", path, strerror(errno));
    unlink(tmp);
    return MU_EIO;
  }
  return 0;
}

static void write_work(uv_work_t *w) {
  fetch *f = w->data;
  mu_bundle_cache *c = f->c;
  for (size_t i = 0; i < f->n_victims; i++)
    if (f->victims[i] != NULL) unlink(f->victims[i]);
  char got[MU_BUNDLE_DIGEST_SIZE];
  mu_bundle_digest(f->buf, f->total, got);
  if (strcmp(got, f->digest) != 0) {
    f->work_rc = MU_EINVAL;
    snprintf(f->work_msg, sizeof f->work_msg, "digest mismatch: expected %s, got %s", f->digest, got);
    return;
  }
  char *path = path_of(c->dir, f->digest, ".bundle");
  char *sig_path = path_of(c->dir, f->digest, ".sig");
  char *meta_path = path_of(c->dir, f->digest, ".meta");
  char *meta = NULL;
  f->work_rc = MU_ENOMEM;
  snprintf(f->work_msg, sizeof f->work_msg, "out of memory");
  if (path && sig_path && meta_path &&
      asprintf(&meta, "%s\n%s\n", f->name ? f->name : "", f->version ? f->version : "") >= 0) {
    unlink(sig_path);
    f->work_rc = 0;
    if (f->sig_len > 0) f->work_rc = write_file(sig_path, f->sig, f->sig_len, f->work_msg, sizeof f->work_msg);
    if (f->work_rc == 0) f->work_rc = write_file(meta_path, meta, strlen(meta), f->work_msg, sizeof f->work_msg);
    /* the archive last: its presence is what makes an entry */
    if (f->work_rc == 0) f->work_rc = write_file(path, f->buf, f->total, f->work_msg, sizeof f->work_msg);
  }
  free(meta);
  free(path);
  free(sig_path);
  free(meta_path);
}

static void cache_free(mu_bundle_cache *c) {
  while (c->entries != NULL) {
    entry *e = c->entries;
    c->entries = e->next;
    entry_free(e);
  }
  void (*cb)(void *) = c->close_cb;
  void *arg = c->close_arg;
  free(c->dir);
  free(c);
  if (cb != NULL) cb(arg);
}

static void write_done(uv_work_t *w, int status) {
  fetch *f = w->data;
  mu_bundle_cache *c = f->c;
  c->writers--;
  if (status != 0 && f->work_rc == 0) {
    f->work_rc = MU_ECANCELED;
    snprintf(f->work_msg, sizeof f->work_msg, "cache write cancelled");
  }
  if (f->work_rc != 0 || c->closing) {
    if (f->work_rc != 0) mu_warn("bundles", "cache: %s: %s", f->digest, f->work_msg);
    fetch_fail(c, f, c->closing ? MU_ECANCELED : f->work_rc, c->closing ? "agent stopping" : f->work_msg);
    if (c->closing && c->writers == 0) cache_free(c);
    return;
  }
  entry *e = calloc(1, sizeof *e);
  if (e != NULL) {
    snprintf(e->digest, sizeof e->digest, "%s", f->digest);
    e->path = path_of(c->dir, f->digest, ".bundle");
    e->sig_path = f->sig_len > 0 ? path_of(c->dir, f->digest, ".sig") : NULL;
    e->name = strdup(f->name ? f->name : "");
    e->version = strdup(f->version ? f->version : "");
    e->size = f->total;
  }
  if (e == NULL || e->path == NULL || e->name == NULL || e->version == NULL ||
      (f->sig_len > 0 && e->sig_path == NULL)) {
    if (e != NULL) entry_free(e);
    fetch_fail(c, f, MU_ENOMEM, "out of memory");
    return;
  }
  e->next = c->entries;
  c->entries = e;
  c->st.fetched_bytes += f->total;
  mu_info("bundles", "cache: stored %s (%s@%s, %llu bytes)", e->digest, e->name, e->version,
          (unsigned long long)e->size);
  fetch_unlink(c, f);
  waiter *wt = f->waiters;
  f->waiters = NULL;
  while (wt != NULL) {
    waiter *next = wt->next;
    hand_out(c, e, wt->cb, wt->arg);
    free(wt);
    wt = next;
  }
  fetch_free(f);
}

void mu_bundle_cache_on_chunk(mu_bundle_cache *c, const Muster__V1__BundleChunk *ch) {
  fetch *f = fetch_find(c, ch->digest);
  if (f == NULL) return;
  if (f->work.data != NULL) return; /* already writing */
  if (ch->error[0] != '\0') {
    char msg[600];
    snprintf(msg, sizeof msg, "control plane: %s", ch->error);
    fetch_fail(c, f, MU_ENOENT, msg);
    return;
  }
  if (ch->offset != f->received) return; /* a stale chunk of an earlier request */
  if (!f->started) {
    if (ch->total_size == 0 || ch->total_size > c->cfg.max_bundle_bytes) {
      char msg[300];
      snprintf(msg, sizeof msg, "bundle is %llu bytes, over the cap of %llu", (unsigned long long)ch->total_size,
               (unsigned long long)c->cfg.max_bundle_bytes);
      fetch_fail(c, f, MU_ENOSPC, msg);
      return;
    }
    f->buf = malloc(ch->total_size);
    if (f->buf == NULL) {
      fetch_fail(c, f, MU_ENOMEM, "out of memory for the bundle");
      return;
    }
    f->total = ch->total_size;
    f->started = 1;
  }
  if (ch->signature.len > 0 && f->sig == NULL) {
    f->sig = malloc(ch->signature.len);
    if (f->sig != NULL) memcpy(f->sig, ch->signature.data, ch->signature.len);
    f->sig_len = f->sig ? ch->signature.len : 0;
  }
  if (ch->name[0] != '\0' && f->name == NULL) f->name = strdup(ch->name);
  if (ch->version[0] != '\0' && f->version == NULL) f->version = strdup(ch->version);
  if (ch->total_size != f->total || f->received + ch->data.len > f->total) {
    fetch_fail(c, f, MU_EINVAL, "control plane sent more bytes than the bundle's size");
    return;
  }
  memcpy(f->buf + f->received, ch->data.data, ch->data.len);
  f->received += ch->data.len;
  if (f->received < f->total) return;
  pick_victims(c, f, f->total);
  f->work.data = f;
  c->writers++;
  if (uv_queue_work(c->loop, &f->work, write_work, write_done) != 0) {
    c->writers--;
    fetch_fail(c, f, MU_EIO, "cannot queue the cache write");
  }
}

void mu_bundle_cache_get(mu_bundle_cache *c, const char *digest, mu_bundle_cache_cb cb, void *arg) {
  if (c->closing) {
    cb(arg, MU_ECANCELED, "agent stopping", NULL);
    return;
  }
  entry *e = entry_find(c, digest);
  if (e != NULL) {
    c->st.hits++;
    hand_out(c, e, cb, arg);
    return;
  }
  c->st.misses++;
  waiter *w = calloc(1, sizeof *w);
  if (w == NULL) {
    cb(arg, MU_ENOMEM, "out of memory", NULL);
    return;
  }
  w->cb = cb;
  w->arg = arg;
  fetch *f = fetch_find(c, digest);
  if (f == NULL) {
    f = calloc(1, sizeof *f);
    if (f == NULL) {
      free(w);
      cb(arg, MU_ENOMEM, "out of memory", NULL);
      return;
    }
    f->c = c;
    snprintf(f->digest, sizeof f->digest, "%s", digest);
    f->next = c->fetches;
    c->fetches = f;
    c->st.fetches++;
    mu_info("bundles", "cache: %s missing; asking the control plane", digest);
    c->cfg.request(c->cfg.arg, digest, 0);
  }
  w->next = f->waiters;
  f->waiters = w;
}

void mu_bundle_cache_release(mu_bundle_cache *c, const char *digest) {
  entry *e = entry_find(c, digest);
  if (e != NULL && e->refs > 0) e->refs--;
}

void mu_bundle_cache_resume(mu_bundle_cache *c) {
  for (fetch *f = c->fetches; f != NULL; f = f->next)
    if (f->work.data == NULL) c->cfg.request(c->cfg.arg, f->digest, f->received);
}

void mu_bundle_cache_stats_get(const mu_bundle_cache *c, mu_bundle_cache_stats *ret) {
  *ret = c->st;
  ret->bytes = held_bytes(c);
  ret->entries = 0;
  for (const entry *e = c->entries; e != NULL; e = e->next) ret->entries++;
}

size_t mu_bundle_cache_list(const mu_bundle_cache *c, const char **ret, size_t max) {
  size_t n = 0;
  for (const entry *e = c->entries; e != NULL && n < max; e = e->next) ret[n++] = e->digest;
  return n;
}

/* Reads "<name>\n<version>\n" from a .meta file (small; at start-up only). */
static void read_meta(const char *path, entry *e) {
  char buf[512] = "";
  FILE *fp = fopen(path, "re");
  if (fp != NULL) {
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
  }
  char *nl = strchr(buf, '\n');
  char *version = "";
  if (nl != NULL) {
    *nl = '\0';
    version = nl + 1;
    char *nl2 = strchr(version, '\n');
    if (nl2 != NULL) *nl2 = '\0';
  }
  e->name = strdup(buf);
  e->version = strdup(version);
}

typedef struct found_entry {
  entry *e;
  int64_t mtime;
} found_entry;

static int by_mtime(const void *a, const void *b) {
  const found_entry *x = a, *y = b;
  return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

int mu_bundle_cache_open(uv_loop_t *loop, const mu_bundle_cache_config *cfg, mu_bundle_cache **ret, mu_err *err) {
  if (cfg == NULL || cfg->dir == NULL || cfg->request == NULL)
    return mu_err_set(err, MU_EINVAL, "bundle cache: dir and request are required");
  if (mkdir(cfg->dir, 0700) != 0 && errno != EEXIST)
    return mu_err_set(err, MU_EIO, "bundle cache dir %s: %s", cfg->dir, strerror(errno));
  DIR *dir = opendir(cfg->dir);
  if (dir == NULL) return mu_err_set(err, MU_EIO, "bundle cache dir %s: %s", cfg->dir, strerror(errno));
  mu_bundle_cache *c = calloc(1, sizeof *c);
  if (c != NULL) c->dir = strdup(cfg->dir);
  if (c == NULL || c->dir == NULL) {
    free(c);
    closedir(dir);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  c->loop = loop;
  c->cfg = *cfg;
  c->cfg.dir = c->dir;
  if (c->cfg.max_bytes == 0) c->cfg.max_bytes = 1ull << 30;
  if (c->cfg.max_bundle_bytes == 0) c->cfg.max_bundle_bytes = 256ull << 20;
  found_entry *found = NULL;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(dir)) != NULL) {
    size_t len = strlen(de->d_name);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", c->dir, de->d_name);
    if (len > 5 && strcmp(de->d_name + len - 5, ".part") == 0) {
      unlink(path); /* an interrupted write */
      continue;
    }
    if (len != 64 + 7 || strcmp(de->d_name + 64, ".bundle") != 0) continue;
    char digest[MU_BUNDLE_DIGEST_SIZE];
    snprintf(digest, sizeof digest, "%s%.64s", MU_BUNDLE_DIGEST_PREFIX, de->d_name);
    struct stat st;
    if (mu_bundle_digest_check(digest, NULL) != 0 || stat(path, &st) != 0) continue;
    entry *e = calloc(1, sizeof *e);
    void *g = realloc(found, (n + 1) * sizeof *found);
    if (e == NULL || g == NULL) {
      free(e);
      if (g != NULL) found = g;
      break;
    }
    found = g;
    snprintf(e->digest, sizeof e->digest, "%s", digest);
    e->path = strdup(path);
    e->size = (uint64_t)st.st_size;
    char *sig = path_of(c->dir, digest, ".sig");
    if (sig != NULL && access(sig, F_OK) == 0) {
      e->sig_path = sig;
    } else {
      free(sig);
    }
    char *meta = path_of(c->dir, digest, ".meta");
    if (meta != NULL) read_meta(meta, e);
    free(meta);
    found[n].e = e;
    found[n].mtime = (int64_t)st.st_mtime;
    n++;
  }
  closedir(dir);
  if (n > 0) qsort(found, n, sizeof *found, by_mtime);
  for (size_t i = 0; i < n; i++) {
    entry *e = found[i].e;
    if (e->path == NULL || e->name == NULL || e->version == NULL) {
      entry_free(e);
      continue;
    }
    e->last_used = ++c->clock;
    e->next = c->entries;
    c->entries = e;
  }
  free(found);
  *ret = c;
  return 0;
}

void mu_bundle_cache_close(mu_bundle_cache *c, void (*cb)(void *arg), void *arg) {
  c->closing = 1;
  c->close_cb = cb;
  c->close_arg = arg;
  fetch *f = c->fetches;
  while (f != NULL) {
    fetch *next = f->next;
    if (f->work.data == NULL) fetch_fail(c, f, MU_ECANCELED, "agent stopping");
    f = next;
  }
  if (c->writers == 0) cache_free(c);
}
