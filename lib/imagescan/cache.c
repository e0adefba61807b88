/* The scan result cache (see cache.h). The format tag in the file name changes whenever what
 * a scan finds for the same image and feed can change (the matcher's rules), so an old
 * result is never served by a newer scanner. */
#define _GNU_SOURCE
#include "lib/imagescan/cache.h"

#include "lib/imagescan/dirs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_FORMAT "s1"
#define CACHE_MAX_FILE (64u << 20)

static int key_path(const char *dir, const char *digest, const char *feed_version, char *out, size_t cap, mu_err *err) {
  const char *d = strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
  const char *f = strncmp(feed_version, "sha256:", 7) == 0 ? feed_version + 7 : feed_version;
  for (const char *p = d; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return mu_err_set(err, MU_EINVAL, "scan cache: bad digest %.80s", digest);
  for (const char *p = f; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')))
      return mu_err_set(err, MU_EINVAL, "scan cache: bad feed version %.80s", feed_version);
  snprintf(out, cap, "%s/%s-%.64s-%.16s.json", dir, CACHE_FORMAT, d, f);
  return 0;
}

int mu_scan_cache_get(const char *dir, const char *digest, const char *feed_version, json_t **ret, mu_err *err) {
  char p[PATH_MAX];
  int rc = key_path(dir, digest, feed_version, p, sizeof p, err);
  if (rc != 0) return rc;
  /* read whole, then parsed from memory (json_load_file reads a byte at a time) */
  int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return MU_ENOENT;
  struct stat st;
  char *buf = NULL;
  size_t len = 0;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= CACHE_MAX_FILE) {
    buf = malloc((size_t)st.st_size + 1);
    while (buf != NULL && len < (size_t)st.st_size) {
      ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      len += (size_t)n;
    }
  }
  close(fd);
  json_error_t je;
  json_t *o = buf != NULL ? json_loadb(buf, len, 0, &je) : NULL;
  free(buf);
  if (!json_is_object(o) || json_object_get(o, "findings") == NULL) {
    json_decref(o);
    unlink(p);
    return MU_ENOENT;
  }
  *ret = o;
  return 0;
}

typedef struct aged {
  char name[NAME_MAX + 1];
  struct timespec mtime;
} aged;

static int older_first(const void *x, const void *y) {
  const aged *a = x, *b = y;
  if (a->mtime.tv_sec != b->mtime.tv_sec) return a->mtime.tv_sec < b->mtime.tv_sec ? -1 : 1;
  if (a->mtime.tv_nsec != b->mtime.tv_nsec) return a->mtime.tv_nsec < b->mtime.tv_nsec ? -1 : 1;
  return strcmp(a->name, b->name);
}

/* Keeps the newest max files of the cache. */
static void trim(const char *dir, size_t max) {
  DIR *d = opendir(dir);
  if (d == NULL) return;
  aged *v = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0) continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 64;
      aged *nv = realloc(v, nc * sizeof *nv);
      if (nv == NULL) break;
      v = nv;
      cap = nc;
    }
    snprintf(v[n].name, sizeof v[n].name, "%s", e->d_name);
    v[n++].mtime = st.st_mtim;
  }
  if (n > max) {
    qsort(v, n, sizeof *v, older_first);
    for (size_t i = 0; i < n - max; i++) unlinkat(dirfd(d), v[i].name, 0);
  }
  closedir(d);
  free(v);
}

int mu_scan_cache_put(const char *dir, const char *digest, const char *feed_version, const json_t *result,
                      size_t max_entries, mu_err *err) {
  char p[PATH_MAX], tmp[PATH_MAX];
  int rc = key_path(dir, digest, feed_version, p, sizeof p, err);
  if (rc != 0) return rc;
  if (mu_mkdir_p(dir, 0755) != 0) return mu_err_set(err, MU_EIO, "scan cache %s: %s", dir, strerror(errno));
  snprintf(tmp, sizeof tmp, "%s/.w.XXXXXX", dir);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) return mu_err_set(err, MU_EIO, "scan cache %s: %s", dir, strerror(errno));
  bool ok = json_dumpfd(result, fd, JSON_COMPACT) == 0 && fchmod(fd, 0644) == 0;
  close(fd);
  if (!ok || rename(tmp, p) != 0) {
    unlink(tmp);
    return mu_err_set(err, MU_EIO, "scan cache: cannot write %s: %s", p, strerror(errno));
  }
  trim(dir, max_entries ? max_entries : 256);
  return 0;
}
