/* COPY/ADD sources: resolve in the context, hash, write (see build_copy.h). */
#define _GNU_SOURCE
#include "plugins/container/build_copy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct walk {
  const mu_copy_spec *c;
  EVP_MD_CTX *md;
  mu_layer_writer *w;
  uint64_t bytes, max;
} walk;

static int open_beneath(int dirfd, const char *path, int flags) {
  struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }
static int not_dots(const struct dirent *d) { return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0; }

static void hash_meta(walk *k, char type, const char *path, mode_t mode, int64_t size, const char *extra) {
  if (k->md == NULL) return;
  char buf[PATH_MAX + 128];
  int n = snprintf(buf, sizeof buf, "%c %s %o %u %u %lld %s", type, path, (unsigned)(mode & 07777),
                   k->c->chown ? (unsigned)k->c->uid : 0u, k->c->chown ? (unsigned)k->c->gid : 0u, (long long)size,
                   extra ? extra : "");
  EVP_DigestUpdate(k->md, buf, (size_t)n + 1);
}

/* One file (fd open for reading) at path in the image. */
static int put_file(walk *k, int fd, const struct stat *st, const char *src, const char *path, mu_err *err) {
  k->bytes += (uint64_t)st->st_size;
  if (k->bytes > k->max)
    return mu_err_set(err, MU_ENOSPC, "build context: %s makes the sources over the %llu-byte context bound", src,
                      (unsigned long long)k->max);
  hash_meta(k, 'f', path, st->st_mode, st->st_size, NULL);
  uid_t u = k->c->chown ? k->c->uid : 0;
  gid_t g = k->c->chown ? k->c->gid : 0;
  if (k->md != NULL) {
    char buf[65536];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return mu_err_set(err, MU_EIO, "build context: read %s: %s", src, strerror(errno));
      if (n == 0) break;
      EVP_DigestUpdate(k->md, buf, (size_t)n);
    }
    if (lseek(fd, 0, SEEK_SET) != 0) return mu_err_set(err, MU_EIO, "build context: %s: %s", src, strerror(errno));
  }
  if (k->w != NULL) return mu_layer_add_file(k->w, path, st->st_mode, u, g, fd, st->st_size, err);
  return 0;
}

static int walk_dir(walk *k, int dirfd, const char *src, const char *dest, int depth, mu_err *err) {
  if (depth > 256) return mu_err_set(err, MU_ENOSPC, "build context: %s: nested too deep", src);
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", dirfd);
  struct dirent **names = NULL;
  int n = scandir(self, &names, not_dots, by_name);
  if (n < 0) return mu_err_set(err, MU_EIO, "build context: read %s: %s", src, strerror(errno));
  int rc = 0;
  uid_t u = k->c->chown ? k->c->uid : 0;
  gid_t g = k->c->chown ? k->c->gid : 0;
  for (int i = 0; i < n && rc == 0; i++) {
    const char *name = names[i]->d_name;
    char s[PATH_MAX], d[PATH_MAX];
    snprintf(s, sizeof s, "%s/%s", src, name);
    if (snprintf(d, sizeof d, "%s%s%s", dest, dest[0] ? "/" : "", name) >= (int)sizeof d) {
      rc = mu_err_set(err, MU_EINVAL, "build context: %s: path too long", s);
      break;
    }
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      rc = mu_err_set(err, MU_EIO, "build context: %s: %s", s, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
      hash_meta(k, 'd', d, st.st_mode, 0, NULL);
      if (k->w) rc = mu_layer_add_dir(k->w, d, st.st_mode, u, g, err);
      int fd = rc == 0 ? openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
      if (rc == 0 && fd < 0) rc = mu_err_set(err, MU_EIO, "build context: %s: %s", s, strerror(errno));
      if (rc == 0) rc = walk_dir(k, fd, s, d, depth + 1, err);
      if (fd >= 0) close(fd);
    } else if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t tl = readlinkat(dirfd, name, target, sizeof target - 1);
      if (tl < 0) {
        rc = mu_err_set(err, MU_EIO, "build context: readlink %s: %s", s, strerror(errno));
      } else {
        target[tl] = '\0';
        hash_meta(k, 'l', d, 0777, 0, target);
        if (k->w) rc = mu_layer_add_symlink(k->w, d, target, u, g, err);
      }
    } else if (S_ISREG(st.st_mode)) {
      int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) rc = mu_err_set(err, MU_EIO, "build context: %s: %s", s, strerror(errno));
      else {
        rc = put_file(k, fd, &st, s, d, err);
        close(fd);
      }
    } else {
      rc = mu_err_set(err, MU_EPERM, "build context: %s is a device, socket or fifo (refused)", s);
    }
  }
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
  return rc;
}

/* "/a/./b/../c" -> "a/c" (".." stops at the root, as in the image). */
static void clean_abs(const char *raw, char *out, size_t cap) {
  size_t n = 0;
  for (const char *p = raw; *p;) {
    while (*p == '/') p++;
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 0) break;
    if (len == 2 && p[0] == '.' && p[1] == '.') {
      while (n > 0 && out[n - 1] != '/') n--;
      if (n > 0) n--;
    } else if (!(len == 1 && p[0] == '.') && n + len + 2 < cap) {
      if (n) out[n++] = '/';
      memcpy(out + n, p, len);
      n += len;
    }
    p += len;
  }
  out[n] = '\0';
}

static int copy_one(walk *k, const char *src, const char *dest_dir_or_file, bool dest_is_dir, mu_err *err) {
  int fd = strcmp(src, ".") == 0 ? dup(k->c->ctx_fd) : open_beneath(k->c->ctx_fd, src, O_RDONLY | O_NOFOLLOW);
  if (fd < 0 && errno == ELOOP) /* the source itself is a symlink: follow it, still beneath */
    fd = open_beneath(k->c->ctx_fd, src, O_RDONLY);
  if (fd < 0 && errno == EXDEV)
    return mu_err_set(err, MU_EPERM, "COPY source %s leads out of the build context (through a symlink)", src);
  if (fd < 0) return mu_err_set(err, MU_ENOENT, "COPY source %s: %s", src, strerror(errno));
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) != 0) {
    rc = mu_err_set(err, MU_EIO, "COPY source %s: %s", src, strerror(errno));
  } else if (S_ISDIR(st.st_mode)) {
    if (dest_dir_or_file[0]) {
      hash_meta(k, 'd', dest_dir_or_file, st.st_mode, 0, NULL);
      if (k->w)
        rc = mu_layer_add_dir(k->w, dest_dir_or_file, st.st_mode, k->c->chown ? k->c->uid : 0,
                              k->c->chown ? k->c->gid : 0, err);
    }
    if (rc == 0) rc = walk_dir(k, fd, src, dest_dir_or_file, 0, err);
  } else if (S_ISREG(st.st_mode)) {
    char d[PATH_MAX];
    if (dest_is_dir) {
      const char *base = strrchr(src, '/');
      snprintf(d, sizeof d, "%s%s%s", dest_dir_or_file, dest_dir_or_file[0] ? "/" : "", base ? base + 1 : src);
    } else {
      snprintf(d, sizeof d, "%s", dest_dir_or_file);
    }
    if (d[0] == '\0') rc = mu_err_set(err, MU_EINVAL, "COPY %s: the destination is the root", src);
    else rc = put_file(k, fd, &st, src, d, err);
  } else {
    rc = mu_err_set(err, MU_EPERM, "COPY source %s is not a file or a directory (refused)", src);
  }
  close(fd);
  return rc;
}

static bool has_glob(const char *s) { return strpbrk(s, "*?[") != NULL; }

int mu_copy_walk(const mu_copy_spec *c, EVP_MD_CTX *md, mu_layer_writer *w, mu_err *err) {
  walk k = {.c = c, .md = md, .w = w, .max = c->max_bytes ? c->max_bytes : (1ull << 30)};
  char dest[PATH_MAX];
  clean_abs(c->dest, dest, sizeof dest);
  size_t dl = strlen(c->dest);
  bool dest_is_dir = c->n_srcs > 1 || (dl > 0 && c->dest[dl - 1] == '/') || dest[0] == '\0';
  for (size_t i = 0; i < c->n_srcs; i++) {
    const char *src = c->srcs[i];
    if (!has_glob(src)) {
      int rc = copy_one(&k, src, dest, dest_is_dir, err);
      if (rc != 0) return rc;
      continue;
    }
    /* a glob in the last component: matched in its directory, names sorted */
    const char *slash = strrchr(src, '/');
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - src) : 1, slash ? src : ".");
    if (has_glob(dir)) return mu_err_set(err, MU_ENOTSUP, "COPY %s: globs only in the last path component", src);
    int dfd = strcmp(dir, ".") == 0 ? dup(c->ctx_fd) : open_beneath(c->ctx_fd, dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0)
      return mu_err_set(err, errno == EXDEV ? MU_EPERM : MU_ENOENT, "COPY source %s: %s", src,
                        errno == EXDEV ? "leads out of the build context" : strerror(errno));
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", dfd);
    struct dirent **names = NULL;
    int n = scandir(self, &names, not_dots, by_name);
    close(dfd);
    int rc = 0, matched = 0;
    bool many = true; /* a glob is a directory destination, as with several sources */
    for (int j = 0; j < n; j++) {
      if (rc == 0 && fnmatch(slash ? slash + 1 : src, names[j]->d_name, FNM_PERIOD) == 0) {
        char one[PATH_MAX];
        snprintf(one, sizeof one, "%s%s%s", slash ? dir : "", slash ? "/" : "", names[j]->d_name);
        matched++;
        rc = copy_one(&k, one, dest, many || dest_is_dir, err);
      }
      free(names[j]);
    }
    free(names);
    if (rc != 0) return rc;
    if (matched == 0) return mu_err_set(err, MU_ENOENT, "COPY source %s: no file matches", src);
  }
  return 0;
}
