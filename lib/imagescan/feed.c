/* The feed index: built from OSV files, merged, saved as a version of a feed directory,
 * loaded and searched (see feed.h). */
#define _GNU_SOURCE
#include "lib/imagescan/feed.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/imagescan/dirs.h"
#include "lib/imagescan/osv.h"

#define MAX_DEPTH 4

/* ---- a set of strings (record ids) ---- */

typedef struct strset {
  char **slots;
  size_t cap, n;
} strset;

static uint64_t hash_n(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static bool set_has(const strset *s, const char *k, size_t n) {
  if (s->cap == 0) return false;
  for (size_t i = hash_n(k, n) & (s->cap - 1); s->slots[i]; i = (i + 1) & (s->cap - 1))
    if (strlen(s->slots[i]) == n && memcmp(s->slots[i], k, n) == 0) return true;
  return false;
}

/* 1 added, 0 already there, -1 out of memory. */
static int set_add(strset *s, const char *k, size_t n) {
  if (set_has(s, k, n)) return 0;
  if ((s->n + 1) * 2 > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 1024;
    char **ns = calloc(cap, sizeof *ns);
    if (ns == NULL) return -1;
    for (size_t i = 0; i < s->cap; i++)
      if (s->slots[i]) {
        size_t j = hash_n(s->slots[i], strlen(s->slots[i])) & (cap - 1);
        while (ns[j]) j = (j + 1) & (cap - 1);
        ns[j] = s->slots[i];
      }
    free(s->slots);
    s->slots = ns;
    s->cap = cap;
  }
  char *c = strndup(k, n);
  if (c == NULL) return -1;
  size_t j = hash_n(k, n) & (s->cap - 1);
  while (s->slots[j]) j = (j + 1) & (s->cap - 1);
  s->slots[j] = c;
  s->n++;
  return 1;
}

static void set_free(strset *s) {
  for (size_t i = 0; i < s->cap; i++) free(s->slots[i]);
  free(s->slots);
}

/* The id field (third) of an index line: pointer and length. */
static const char *line_id(const char *line, size_t *ret_len) {
  const char *t1 = strchr(line, '\t');
  const char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
  const char *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
  if (t3 == NULL) {
    *ret_len = 0;
    return "";
  }
  *ret_len = (size_t)(t3 - t2 - 1);
  return t2 + 1;
}

/* ---- build ---- */

typedef struct build {
  const mu_feed_limits *lim;
  mu_feed_report *rep;
  bool strict;
  mu_textbuf lines;
  strset new_ids, gone_ids, base_ids;
  size_t base_records, records;
  mu_err first_refusal;
} build;

static void refuse(build *b, const char *file, const char *why) {
  char msg[MU_ERR_MSG_MAX];
  snprintf(msg, sizeof msg, "%s: %s", file, why);
  b->rep->refused++;
  if (b->first_refusal.code == 0) mu_err_set(&b->first_refusal, MU_EINVAL, "%s", msg);
  if (b->rep->on_refused) b->rep->on_refused(b->rep->arg, msg);
}

static int read_file(const char *path, uint64_t max, char **ret, size_t *ret_len, bool *too_big) {
  *too_big = false;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    errno = EINVAL;
    return -1;
  }
  if ((uint64_t)st.st_size > max) {
    close(fd);
    *too_big = true;
    return -1;
  }
  size_t cap = (size_t)st.st_size + 1, n = 0;
  char *buf = malloc(cap + 1);
  if (buf == NULL) {
    close(fd);
    return -1;
  }
  for (;;) { /* the file may grow while read: never past max */
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      free(buf);
      close(fd);
      return -1;
    }
    if (r == 0) break;
    n += (size_t)r;
    if (n > max) {
      free(buf);
      close(fd);
      *too_big = true;
      return -1;
    }
    if (n == cap) {
      char *nb = realloc(buf, cap * 2 + 1);
      if (nb == NULL) {
        free(buf);
        close(fd);
        return -1;
      }
      buf = nb;
      cap *= 2;
    }
  }
  close(fd);
  buf[n] = '\0';
  *ret = buf;
  *ret_len = n;
  return 0;
}

static int one_file(build *b, const char *path, mu_err *err) {
  if (++b->rep->files > b->lim->max_files)
    return mu_err_set(err, MU_ENOSPC, "%s: more than %zu files in one update (the file bound); nothing imported", path,
                      b->lim->max_files);
  char *buf = NULL;
  size_t len = 0;
  bool too_big = false;
  if (read_file(path, b->lim->max_record_bytes, &buf, &len, &too_big) != 0) {
    char why[200];
    if (too_big)
      snprintf(why, sizeof why, "over the %llu-byte record bound (--max-record-bytes); refused",
               (unsigned long long)b->lim->max_record_bytes);
    else snprintf(why, sizeof why, "cannot read: %s", strerror(errno));
    refuse(b, path, why);
    return 0;
  }
  mu_osv_result res;
  mu_err e = {0};
  int rc = mu_osv_record_lines(buf, len, &b->lines, &res, &e);
  free(buf);
  if (rc == MU_ENOMEM) return mu_err_set(err, MU_ENOMEM, "out of memory");
  if (rc != 0) {
    refuse(b, path, e.msg);
    return 0;
  }
  b->rep->skipped_eco += res.skipped_eco;
  b->rep->versions_dropped += res.versions_dropped;
  size_t idl = strlen(res.id);
  if (res.withdrawn) {
    b->rep->withdrawn++;
    if (set_add(&b->gone_ids, res.id, idl) < 0) return mu_err_set(err, MU_ENOMEM, "out of memory");
    return 0;
  }
  if (res.lines == 0) return 0; /* nothing for the ecosystems a scan knows */
  int added = set_add(&b->new_ids, res.id, idl);
  if (added < 0) return mu_err_set(err, MU_ENOMEM, "out of memory");
  b->rep->records++;
  b->rep->lines += res.lines;
  if (added == 1 && !set_has(&b->base_ids, res.id, idl)) b->records++;
  if (b->records > b->lim->max_records)
    return mu_err_set(err, MU_ENOSPC,
                      "%s: record %s would make more than %zu records in the feed (--max-records); nothing imported",
                      path, res.id, b->lim->max_records);
  return 0;
}

static int name_order(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static int walk(build *b, const char *path, int depth, mu_err *err) {
  struct stat st; /* SRC itself may be a link; what is under it is not followed */
  if ((depth == 0 ? stat(path, &st) : lstat(path, &st)) != 0)
    return mu_err_set(err, MU_ENOENT, "feed source %s: %s", path, strerror(errno));
  if (S_ISREG(st.st_mode)) return one_file(b, path, err);
  if (!S_ISDIR(st.st_mode)) return 0;
  if (depth > MAX_DEPTH) return 0;
  struct dirent **names = NULL;
  int n = scandir(path, &names, NULL, name_order);
  if (n < 0) return mu_err_set(err, MU_EIO, "feed source %s: %s", path, strerror(errno));
  int rc = 0;
  for (int i = 0; i < n; i++) {
    const char *name = names[i]->d_name;
    size_t l = strlen(name);
    char sub[PATH_MAX];
    if (rc == 0 && name[0] != '.' && snprintf(sub, sizeof sub, "%s/%s", path, name) < (int)sizeof sub) {
      struct stat cs;
      if (lstat(sub, &cs) == 0 && (S_ISDIR(cs.st_mode) || (l > 5 && strcmp(name + l - 5, ".json") == 0)))
        rc = walk(b, sub, depth + 1, err);
    }
    free(names[i]);
  }
  free(names);
  return rc;
}

static int line_order(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

static void sha256_text(char *const *lines, size_t n, char out[72]) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  for (size_t i = 0; i < n; i++) {
    EVP_DigestUpdate(md, lines[i], strlen(lines[i]));
    EVP_DigestUpdate(md, "\n", 1);
  }
  unsigned char h[32];
  unsigned hl = 0;
  EVP_DigestFinal_ex(md, h, &hl);
  EVP_MD_CTX_free(md);
  strcpy(out, "sha256:");
  for (int i = 0; i < 32; i++) snprintf(out + 7 + 2 * i, 3, "%02x", h[i]);
}

/* f from text (lines ending in '\n'), which it takes: splits, sorts, counts (records < 0:
 * count the distinct ids), hashes. */
static int feed_from_text(char *text, size_t len, bool sort, long long records, mu_feed **ret, mu_err *err) {
  mu_feed *f = calloc(1, sizeof *f);
  if (f == NULL) {
    free(text);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  f->data = text;
  f->len = len;
  size_t n = 0;
  for (const char *p = text; p < text + len; p++) n += *p == '\n';
  f->lines = malloc((n ? n : 1) * sizeof *f->lines);
  if (f->lines == NULL) {
    mu_feed_free(f);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  char *p = text, *end = text + len;
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) break;
    *nl = '\0';
    if (nl > p) f->lines[f->n_lines++] = p;
    if ((size_t)(nl - p) > f->longest) f->longest = (size_t)(nl - p);
    p = nl + 1;
  }
  if (sort) qsort(f->lines, f->n_lines, sizeof *f->lines, line_order);
  strset ids = {0};
  for (size_t i = 0; records < 0 && i < f->n_lines; i++) {
    size_t l;
    const char *id = line_id(f->lines[i], &l);
    if (set_add(&ids, id, l) < 0) {
      set_free(&ids);
      mu_feed_free(f);
      return mu_err_set(err, MU_ENOMEM, "out of memory");
    }
  }
  f->records = records < 0 ? ids.n : (size_t)records;
  set_free(&ids);
  sha256_text(f->lines, f->n_lines, f->version);
  *ret = f;
  return 0;
}

int mu_feed_build(const char *src, const mu_feed *base, const mu_feed_limits *limits, bool strict,
                  mu_feed_report *report, mu_feed **ret, mu_err *err) {
  mu_feed_limits lim = limits ? *limits : (mu_feed_limits){0};
  if (lim.max_record_bytes == 0) lim.max_record_bytes = 1u << 20;
  if (lim.max_records == 0) lim.max_records = 1000000;
  if (lim.max_files == 0) lim.max_files = 2000000;
  mu_feed_report dummy = {0};
  build b = {.lim = &lim, .rep = report ? report : &dummy, .strict = strict};
  int rc = 0;
  for (size_t i = 0; base && i < base->n_lines && rc == 0; i++) {
    size_t l;
    const char *id = line_id(base->lines[i], &l);
    if (set_add(&b.base_ids, id, l) < 0) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  b.records = b.base_ids.n;
  if (rc == 0) rc = walk(&b, src, 0, err);
  if (rc == 0 && strict && b.first_refusal.code != 0) {
    rc = mu_err_set(err, MU_EINVAL, "%s; nothing imported (--strict)", b.first_refusal.msg);
  }
  /* the merged text: base lines not replaced or withdrawn, then the new ones */
  mu_textbuf all = {0};
  for (size_t i = 0; base && i < base->n_lines && rc == 0; i++) {
    size_t l;
    const char *id = line_id(base->lines[i], &l);
    if (set_has(&b.new_ids, id, l) || set_has(&b.gone_ids, id, l)) continue;
    if (mu_textbuf_append(&all, base->lines[i], strlen(base->lines[i])) != 0 || mu_textbuf_append(&all, "\n", 1) != 0)
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  if (rc == 0 && b.lines.len > 0 && mu_textbuf_append(&all, b.lines.data, b.lines.len) != 0)
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  if (rc == 0 && all.data == NULL && mu_textbuf_append(&all, "", 0) != 0)
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  if (rc == 0) {
    rc = feed_from_text(all.data, all.len, true, -1, ret, err);
    all.data = NULL;
  }
  free(all.data);
  free(b.lines.data);
  set_free(&b.new_ids);
  set_free(&b.gone_ids);
  set_free(&b.base_ids);
  return rc;
}

/* ---- save and load ---- */

static int write_file(int dirfd, const char *name, const char *data, size_t len, mu_err *err) {
  int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return mu_err_set(err, MU_EIO, "cannot create %s: %s", name, strerror(errno));
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  bool ok = off == len && fsync(fd) == 0;
  close(fd);
  return ok ? 0 : mu_err_set(err, MU_EIO, "cannot write %s: %s", name, strerror(errno));
}

static void rm_version(const char *dir, const char *name) {
  char p[PATH_MAX];
  const char *files[] = {"index.tsv", "feed.json"};
  for (int i = 0; i < 2; i++) {
    snprintf(p, sizeof p, "%s/%s/%s", dir, name, files[i]);
    unlink(p);
  }
  snprintf(p, sizeof p, "%s/%s", dir, name);
  rmdir(p);
}

int mu_feed_save(const mu_feed *f, const char *dir, mu_err *err) {
  if (mu_mkdir_p(dir, 0755) != 0) return mu_err_set(err, MU_EIO, "feed %s: %s", dir, strerror(errno));
  char p[PATH_MAX], vname[32], tmp[PATH_MAX];
  snprintf(p, sizeof p, "%s/.lock", dir);
  int lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0 || flock(lock, LOCK_EX) != 0) {
    if (lock >= 0) close(lock);
    return mu_err_set(err, MU_EIO, "feed %s: cannot lock: %s", dir, strerror(errno));
  }
  int rc = 0, vfd = -1;
  char *json = NULL;
  mu_textbuf text = {0};
  snprintf(vname, sizeof vname, "v-%.16s", f->version + 7);
  snprintf(tmp, sizeof tmp, "%s/.new-XXXXXX", dir);
  if (mkdtemp(tmp) == NULL || chmod(tmp, 0755) != 0) {
    rc = mu_err_set(err, MU_EIO, "feed %s: cannot create a version: %s", dir, strerror(errno));
    goto done;
  }
  vfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (size_t i = 0; i < f->n_lines && rc == 0; i++)
    if (mu_textbuf_append(&text, f->lines[i], strlen(f->lines[i])) != 0 || mu_textbuf_append(&text, "\n", 1) != 0)
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  json_t *meta = json_pack("{s:s, s:I, s:I, s:I}", "version", f->version, "records", (json_int_t)f->records, "entries",
                           (json_int_t)f->n_lines, "updatedAt", (json_int_t)time(NULL));
  json = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
  json_decref(meta);
  if (rc == 0 && json == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  if (rc == 0) rc = write_file(vfd, "index.tsv", text.data ? text.data : "", text.len, err);
  if (rc == 0) rc = write_file(vfd, "feed.json", json, strlen(json), err);
  if (rc != 0) goto done;
  snprintf(p, sizeof p, "%s/%s", dir, vname);
  struct stat st;
  if (stat(p, &st) == 0) rm_version(dir, vname); /* the same content again: replace it */
  if (rename(tmp, p) != 0) {
    rc = mu_err_set(err, MU_EIO, "feed %s: cannot store %s: %s", dir, vname, strerror(errno));
    goto done;
  }
  tmp[0] = '\0';
  char link[PATH_MAX], cur[PATH_MAX];
  snprintf(link, sizeof link, "%s/.current.new", dir);
  snprintf(cur, sizeof cur, "%s/current", dir);
  unlink(link);
  if (symlink(vname, link) != 0 || rename(link, cur) != 0) {
    rc = mu_err_set(err, MU_EIO, "feed %s: cannot switch to %s: %s", dir, vname, strerror(errno));
    goto done;
  }
  /* older versions go; a scan still reading one keeps its open files */
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL)
    if (strncmp(e->d_name, "v-", 2) == 0 && strcmp(e->d_name, vname) != 0) rm_version(dir, e->d_name);
  if (d) closedir(d);
done:
  if (vfd >= 0) close(vfd);
  if (tmp[0]) rm_version(dir, strrchr(tmp, '/') + 1);
  free(text.data);
  free(json);
  close(lock);
  return rc;
}

/* feed.json's version (and record count, when ret_records is not NULL). */
static int read_meta(const char *dir, char out[72], long long *ret_records, mu_err *err) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/current/feed.json", dir);
  json_error_t je;
  json_t *meta = json_load_file(p, 0, &je);
  if (meta == NULL)
    return access(p, F_OK) != 0 ? mu_err_set(err, MU_ENOENT, "%s is not an imported feed (no current/feed.json)", dir)
                                : mu_err_set(err, MU_EIO, "%s: %s", p, je.text);
  const char *v = json_string_value(json_object_get(meta, "version"));
  int rc = 0;
  if (v == NULL || strncmp(v, "sha256:", 7) != 0 || strlen(v) != 71) rc = mu_err_set(err, MU_EIO, "%s: no version", p);
  else snprintf(out, 72, "%s", v);
  if (ret_records != NULL) *ret_records = json_integer_value(json_object_get(meta, "records"));
  json_decref(meta);
  return rc;
}

int mu_feed_current_version(const char *dir, char out[72], mu_err *err) { return read_meta(dir, out, NULL, err); }

int mu_feed_load(const char *dir, const mu_feed_limits *limits, mu_feed **ret, mu_err *err) {
  char version[72];
  long long records = -1;
  int rc = read_meta(dir, version, &records, err);
  if (rc != 0) return rc;
  uint64_t max = limits && limits->max_index_bytes ? limits->max_index_bytes : (2ull << 30);
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/current/index.tsv", dir);
  char *buf = NULL;
  size_t len = 0;
  bool too_big = false;
  if (read_file(p, max, &buf, &len, &too_big) != 0)
    return too_big ? mu_err_set(err, MU_ENOSPC, "%s: over the %llu-byte index bound", p, (unsigned long long)max)
                   : mu_err_set(err, MU_EIO, "%s: %s", p, strerror(errno));
  rc = feed_from_text(buf, len, false, records >= 0 ? records : -1, ret, err); /* saved sorted */
  if (rc != 0) return rc;
  if (strcmp((*ret)->version, version) != 0) {
    mu_feed_free(*ret);
    *ret = NULL;
    return mu_err_set(err, MU_EIO,
                      "%s: content does not match its version %s (damaged: remove %s/current and import again)", p,
                      version, dir);
  }
  return 0;
}

mu_feed *mu_feed_empty(void) {
  mu_feed *f = calloc(1, sizeof *f);
  if (f != NULL) snprintf(f->version, sizeof f->version, "none");
  return f;
}

void mu_feed_free(mu_feed *f) {
  if (f == NULL) return;
  free(f->data);
  free(f->lines);
  free(f);
}

/* ---- search ---- */

size_t mu_feed_lookup(const mu_feed *f, const char *ecosystem, const char *name, size_t *ret_first) {
  char key[512];
  int kl = snprintf(key, sizeof key, "%s\t%s\t", ecosystem, name);
  *ret_first = 0;
  if (kl < 0 || (size_t)kl >= sizeof key) return 0;
  size_t lo = 0, hi = f->n_lines;
  while (lo < hi) { /* the first line >= key */
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(f->lines[mid], key) < 0) lo = mid + 1;
    else hi = mid;
  }
  size_t end = lo;
  while (end < f->n_lines && strncmp(f->lines[end], key, (size_t)kl) == 0) end++;
  *ret_first = lo;
  return end - lo;
}

bool mu_feed_entry_parse(const char *line, char *scratch, mu_feed_entry *e) {
  strcpy(scratch, line);
  const char **fields[] = {&e->ecosystem, &e->name,    &e->id,     &e->severity,
                           &e->published, &e->aliases, &e->ranges, &e->versions};
  char *p = scratch;
  for (int i = 0; i < 8; i++) {
    *fields[i] = p;
    char *tab = strchr(p, '\t');
    if (i < 7) {
      if (tab == NULL) return false;
      *tab = '\0';
      p = tab + 1;
    } else if (tab != NULL) {
      return false;
    }
  }
  return true;
}
