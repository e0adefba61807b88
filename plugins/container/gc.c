/* Image store listing and GC (see gc.h). */
#define _GNU_SOURCE
#include "plugins/container/gc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "plugins/container/imageref.h"
#include "plugins/container/manifest.h"
#include "plugins/container/unpack.h"

#define GC_MAX_IMAGES 4096

typedef struct gc_image {
  char hex[MU_DIGEST_HEX + 1];
  int64_t last_use;
  uint64_t rootfs_bytes;
  bool in_use, removed;
  int lock_fd;
  mu_manifest m;
  bool have_manifest;
} gc_image;

int mu_store_use(const char *rootfs, int *ret_fd, mu_err *err) {
  int fd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return mu_err_set(err, MU_EIO, "open %s: %s", rootfs, strerror(errno));
  if (flock(fd, LOCK_SH) != 0) {
    close(fd);
    return mu_err_set(err, MU_EIO, "lock %s: %s", rootfs, strerror(errno));
  }
  futimens(fd, NULL);
  *ret_fd = fd;
  return 0;
}

static uint64_t tree_bytes(int fd) {
  uint64_t total = 0;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return 0;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    total += (uint64_t)st.st_blocks * 512;
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) total += tree_bytes(sub);
    }
  }
  closedir(d);
  return total;
}

static uint64_t file_bytes(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static bool read_manifest(const char *root, const char *hex, mu_manifest *m) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/blobs/sha256/%s", root, hex);
  FILE *f = fopen(path, "re");
  if (f == NULL) return false;
  char *buf = malloc(MU_MANIFEST_MAX_BYTES + 1);
  size_t n = buf ? fread(buf, 1, MU_MANIFEST_MAX_BYTES + 1, f) : 0;
  fclose(f);
  bool ok = buf != NULL && n <= MU_MANIFEST_MAX_BYTES && mu_image_manifest_parse(buf, n, m, NULL) == 0;
  free(buf);
  return ok;
}

/* Loads every unpacked image; in-use ones are those whose exclusive lock fails (the lock is
 * kept on the others while GC runs, so no task starts on an image being removed). */
static int load(const char *root, gc_image **ret, size_t *ret_n, bool lock, mu_err *err) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/rootfs", root);
  DIR *d = opendir(dir);
  *ret = NULL;
  *ret_n = 0;
  if (d == NULL) return errno == ENOENT ? 0 : mu_err_set(err, MU_EIO, "open %s: %s", dir, strerror(errno));
  gc_image *v = calloc(GC_MAX_IMAGES, sizeof *v);
  if (v == NULL) {
    closedir(d);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < GC_MAX_IMAGES) {
    char digest[80];
    snprintf(digest, sizeof digest, "sha256:%.70s", e->d_name);
    if (!mu_digest_valid(digest)) continue;
    gc_image *im = &v[n];
    snprintf(im->hex, sizeof im->hex, "%s", e->d_name);
    im->lock_fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (im->lock_fd < 0) continue;
    struct stat st;
    fstat(im->lock_fd, &st);
    im->last_use = st.st_mtime;
    if (lock && flock(im->lock_fd, LOCK_EX | LOCK_NB) != 0) im->in_use = true;
    if (!lock) {
      if (flock(im->lock_fd, LOCK_EX | LOCK_NB) != 0) im->in_use = true;
      else flock(im->lock_fd, LOCK_UN);
    }
    int dup_fd = dup(im->lock_fd);
    im->rootfs_bytes = dup_fd >= 0 ? tree_bytes(dup_fd) : 0;
    im->have_manifest = read_manifest(root, im->hex, &im->m);
    n++;
  }
  closedir(d);
  *ret = v;
  *ret_n = n;
  return 0;
}

static void unload(gc_image *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (v[i].lock_fd >= 0) close(v[i].lock_fd);
  free(v);
}

/* Blob bytes an image is the only one to name (what removing it frees). */
static bool named_by_other(const gc_image *v, size_t n, size_t self, const char *digest) {
  for (size_t i = 0; i < n; i++) {
    if (i == self || v[i].removed || !v[i].have_manifest) continue;
    if (strcmp(v[i].m.config.digest, digest) == 0) return true;
    for (size_t k = 0; k < v[i].m.n_layers; k++)
      if (strcmp(v[i].m.layers[k].digest, digest) == 0) return true;
  }
  return false;
}

static uint64_t store_bytes(const char *root) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", root);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return fd >= 0 ? tree_bytes(fd) : 0;
}

static void refs_of(const char *root, const char *hex, char *buf, size_t cap, bool remove) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/refs", root);
  DIR *d = opendir(dir);
  size_t n = 0;
  if (cap) buf[0] = '\0';
  if (d == NULL) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char line[100] = "";
    int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    ssize_t r = read(fd, line, sizeof line - 1);
    close(fd);
    if (r < 71 || strncmp(line + 7, hex, MU_DIGEST_HEX) != 0) continue;
    if (remove) {
      unlinkat(dirfd(d), e->d_name, 0);
      continue;
    }
    char name[300];
    snprintf(name, sizeof name, "%s", e->d_name);
    for (char *p = name; *p; p++)
      if (*p == '%') *p = '/';
    if (n < cap) n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "," : "", name);
  }
  closedir(d);
}

int mu_store_list(const char *root, FILE *out, mu_err *err) {
  gc_image *v;
  size_t n;
  int rc = load(root, &v, &n, false, err);
  if (rc != 0) return rc;
  for (size_t i = 0; i < n; i++) {
    uint64_t bytes = v[i].rootfs_bytes;
    if (v[i].have_manifest) {
      char p[PATH_MAX];
      snprintf(p, sizeof p, "%s/blobs/sha256/%s", root, v[i].m.config.digest + 7);
      bytes += file_bytes(p);
      for (size_t k = 0; k < v[i].m.n_layers; k++) {
        snprintf(p, sizeof p, "%s/blobs/sha256/%s", root, v[i].m.layers[k].digest + 7);
        bytes += file_bytes(p);
        snprintf(p, sizeof p, "%s/layers/%s", root, v[i].m.layers[k].digest + 7);
        int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) bytes += tree_bytes(fd); /* shared layers count in each image naming them */
      }
    }
    char refs[1024];
    refs_of(root, v[i].hex, refs, sizeof refs, false);
    fprintf(out, "sha256:%s %lld %llu %s%s\n", v[i].hex, (long long)v[i].last_use, (unsigned long long)bytes,
            refs[0] ? refs : "-", v[i].in_use ? " in-use" : "");
  }
  unload(v, n);
  return 0;
}

static void remove_image(const char *root, gc_image *v, size_t n, size_t i) {
  char p[PATH_MAX];
  v[i].removed = true;
  refs_of(root, v[i].hex, NULL, 0, true);
  snprintf(p, sizeof p, "%s/rootfs/%s", root, v[i].hex);
  mu_rm_rf(p);
  if (v[i].have_manifest) {
    const mu_manifest *m = &v[i].m;
    for (size_t k = 0; k <= m->n_layers; k++) {
      const char *d = k == 0 ? m->config.digest : m->layers[k - 1].digest;
      if (named_by_other(v, n, i, d)) continue;
      snprintf(p, sizeof p, "%s/blobs/sha256/%s", root, d + 7);
      unlink(p);
      if (k == 0) continue;
      /* the layer's unpacked dir (layers.h) goes with the last image naming it */
      snprintf(p, sizeof p, "%s/layers/%s", root, d + 7);
      mu_rm_rf(p);
      snprintf(p, sizeof p, "%s/layers/%s.bytes", root, d + 7);
      unlink(p);
    }
  }
  snprintf(p, sizeof p, "%s/blobs/sha256/%s", root, v[i].hex);
  unlink(p);
}

/* The image builder's layer cache (build.h, <root>/build-cache/<key>: a small JSON naming a
 * layer blob; its mtime is its last use). Entries unused for max_age_s go, with their layer
 * blob unless an image left in the store names it; an entry whose blob is gone goes at any
 * age (it could only miss). */
static void sweep_build_cache(const char *root, const gc_image *v, size_t n, int64_t max_age_s, int64_t now) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/build-cache", root);
  DIR *d = opendir(dir);
  if (d == NULL) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    struct stat st;
    if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > 4096)
      continue;
    char path[PATH_MAX], text[4097] = "", digest[80] = "", blob[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t got = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0) close(fd);
    if (got < 0) continue;
    text[got] = '\0';
    const char *at = strstr(text, "\"digest\":\"");
    if (at != NULL) snprintf(digest, sizeof digest, "%.71s", at + 10);
    char *q = strchr(digest, '"');
    if (q != NULL) *q = '\0';
    bool has_blob = mu_digest_valid(digest);
    struct stat bs;
    if (has_blob) snprintf(blob, sizeof blob, "%s/blobs/sha256/%s", root, digest + 7);
    bool dangling = has_blob && stat(blob, &bs) != 0;
    bool old = max_age_s > 0 && now - st.st_mtime > max_age_s;
    if (!dangling && !old) continue;
    unlink(path);
    if (old && has_blob && !dangling && !named_by_other(v, n, (size_t)-1, digest)) unlink(blob);
  }
  closedir(d);
}

int mu_store_gc(const char *root, const mu_gc_opts *opts, mu_gc_result *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  gc_image *v;
  size_t n;
  ret->bytes_before = store_bytes(root);
  int rc = load(root, &v, &n, true, err);
  if (rc != 0) return rc;
  int64_t now = (int64_t)time(NULL);
  uint64_t total = ret->bytes_before;
  for (;;) {
    /* the least recently used removable image: past the age bound first, else over size */
    ssize_t pick = -1;
    for (size_t i = 0; i < n; i++) {
      if (v[i].removed || v[i].in_use) continue;
      if (opts->keep_digest && strncmp(opts->keep_digest + 7, v[i].hex, MU_DIGEST_HEX) == 0) continue;
      if (pick < 0 || v[i].last_use < v[pick].last_use) pick = (ssize_t)i;
    }
    if (pick < 0) break;
    bool too_old = opts->max_age_s > 0 && now - v[pick].last_use > opts->max_age_s;
    bool too_big = opts->max_bytes > 0 && total > opts->max_bytes;
    if (!too_old && !too_big) break;
    remove_image(root, v, n, (size_t)pick);
    ret->images_removed++;
    total = store_bytes(root);
  }
  for (size_t i = 0; i < n; i++) {
    if (v[i].in_use) ret->images_in_use++;
    else if (!v[i].removed) ret->images_kept++;
  }
  sweep_build_cache(root, v, n, opts->max_age_s, now);
  /* stale work files */
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s/tmp", root);
  DIR *d = opendir(tmp);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      struct stat st;
      if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (now - st.st_mtime > 3600) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", tmp, e->d_name);
        mu_rm_rf(p);
      }
    }
    closedir(d);
  }
  unload(v, n);
  ret->bytes_after = store_bytes(root);
  return 0;
}
