/* The scan store's size bound (see storecap.h). */
#define _GNU_SOURCE
#include "lib/imagescan/storecap.h"

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

typedef struct blob {
  char name[72];
  uint64_t bytes;
  struct timespec mtime;
} blob;

void mu_scan_store_touch(const char *const *paths, size_t n) {
  for (size_t i = 0; i < n; i++) utimensat(AT_FDCWD, paths[i], NULL, 0);
}

static int oldest_first(const void *x, const void *y) {
  const blob *a = x, *b = y;
  if (a->mtime.tv_sec != b->mtime.tv_sec) return a->mtime.tv_sec < b->mtime.tv_sec ? -1 : 1;
  if (a->mtime.tv_nsec != b->mtime.tv_nsec) return a->mtime.tv_nsec < b->mtime.tv_nsec ? -1 : 1;
  return strcmp(a->name, b->name);
}

static bool kept(const char *name, const char *const *keep, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const char *slash = strrchr(keep[i], '/');
    if (strcmp(slash ? slash + 1 : keep[i], name) == 0) return true;
  }
  return false;
}

int mu_scan_store_trim(const char *store, uint64_t max_bytes, const char *const *keep, size_t n_keep,
                       size_t *ret_removed, mu_err *err) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/blobs/sha256", store);
  if (ret_removed) *ret_removed = 0;
  DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : mu_err_set(err, MU_EIO, "%s: %s", dir, strerror(errno));
  blob *v = NULL;
  size_t n = 0, cap = 0;
  uint64_t total = 0;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    struct stat st;
    if (strlen(e->d_name) != 64 || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
      continue; /* ".partial" files belong to a pull in progress */
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 256;
      blob *nv = realloc(v, nc * sizeof *nv);
      if (nv == NULL) {
        rc = mu_err_set(err, MU_ENOMEM, "out of memory");
        goto done;
      }
      v = nv;
      cap = nc;
    }
    snprintf(v[n].name, sizeof v[n].name, "%s", e->d_name);
    v[n].bytes = (uint64_t)st.st_blocks * 512;
    v[n].mtime = st.st_mtim;
    total += v[n].bytes;
    n++;
  }
  if (total <= max_bytes) goto done;
  qsort(v, n, sizeof *v, oldest_first);
  for (size_t i = 0; i < n && total > max_bytes; i++) {
    if (kept(v[i].name, keep, n_keep)) continue;
    if (unlinkat(dirfd(d), v[i].name, 0) == 0) {
      total -= v[i].bytes;
      if (ret_removed) (*ret_removed)++;
    }
  }
done:
  closedir(d);
  free(v);
  return rc;
}
