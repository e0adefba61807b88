/* Layer unpacking (see unpack.h). */
#define _GNU_SOURCE
#include "plugins/container/unpack.h"

#include "plugins/container/manifest.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MU_UNPACK_MAX_LAYERS 128

typedef struct upk {
  int root_fd;
  bool overlay; /* whiteouts become overlayfs whiteouts (one layer per dir) instead of deletions */
  uint64_t bytes, entries, max_bytes, max_entries;
  /* paths seen in the current layer: open addressing on their hash */
  char **seen;
  size_t seen_cap, seen_n;
  char err[400];
} upk;

static int fail(upk *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(upk *u, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(u->err, sizeof u->err, fmt, ap);
  va_end(ap);
  return -1;
}

static int openat2_in_root(int dirfd, const char *path, int flags) {
  struct open_how how = {.flags = (uint64_t)flags,
                         .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static int rm_rf_at(int dirfd, const char *name) {
  if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return 0;
  if (errno != EISDIR && errno != EPERM) return -1;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return -1;
  }
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (rm_rf_at(fd, e->d_name) != 0) rc = -1;
  }
  closedir(d);
  if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) rc = -1;
  return rc;
}

int mu_rm_rf(const char *path) { return rm_rf_at(AT_FDCWD, path); }

/* "./a/b/" -> "a/b"; refuses absolute paths and "..". Returns 0 or -1 with u->err set. */
static int clean_path(upk *u, const char *raw, char *out, size_t cap) {
  if (raw == NULL || *raw == '\0') return fail(u, "an entry without a name");
  if (raw[0] == '/') return fail(u, "entry \"%.200s\": absolute path refused", raw);
  size_t n = 0;
  const char *p = raw;
  while (*p) {
    while (*p == '/') p++;
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 0) break;
    if (len == 1 && p[0] == '.') {
      p += len;
      continue;
    }
    if (len == 2 && p[0] == '.' && p[1] == '.') return fail(u, "entry \"%.200s\": \"..\" refused", raw);
    if (n + len + 2 > cap) return fail(u, "entry \"%.200s\": path too long", raw);
    if (n) out[n++] = '/';
    memcpy(out + n, p, len);
    n += len;
    p += len;
  }
  out[n] = '\0';
  return 0;
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static void seen_reset(upk *u) {
  if (u->seen == NULL) return;
  for (size_t i = 0; i < u->seen_cap; i++) free(u->seen[i]);
  memset(u->seen, 0, u->seen_cap * sizeof *u->seen);
  u->seen_n = 0;
}

/* 1 when path was already in this layer, 0 when recorded now, -1 out of memory. */
static int seen_add(upk *u, const char *path) {
  if ((u->seen_n + 1) * 2 > u->seen_cap) {
    size_t cap = u->seen_cap ? u->seen_cap * 2 : 1024;
    char **ns = calloc(cap, sizeof *ns);
    if (ns == NULL) return -1;
    for (size_t i = 0; i < u->seen_cap; i++)
      if (u->seen[i]) {
        size_t j = hash_str(u->seen[i]) & (cap - 1);
        while (ns[j]) j = (j + 1) & (cap - 1);
        ns[j] = u->seen[i];
      }
    free(u->seen);
    u->seen = ns;
    u->seen_cap = cap;
  }
  size_t j = hash_str(path) & (u->seen_cap - 1);
  while (u->seen[j]) {
    if (strcmp(u->seen[j], path) == 0) return 1;
    j = (j + 1) & (u->seen_cap - 1);
  }
  u->seen[j] = strdup(path);
  if (u->seen[j] == NULL) return -1;
  u->seen_n++;
  return 0;
}

static struct archive *open_layer(upk *u, int fd, int index) {
  if (lseek(fd, 0, SEEK_SET) != 0) {
    fail(u, "layer %d: cannot rewind: %s", index, strerror(errno));
    return NULL;
  }
  struct archive *a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_none(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
    fail(u, "layer %d: not a tar, tar+gzip or tar+zstd archive: %s", index, archive_error_string(a));
    archive_read_free(a);
    return NULL;
  }
  return a;
}

/* Overlay mode, pass 1 (the layer's dir is still empty, so nothing in it is a symlink yet):
 * the directories of path, made with mkdirat one component at a time (never following
 * anything), and an O_DIRECTORY fd of the last. -1 with errno. */
static int mkdirs_at(int root, const char *dir) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", dir);
  int cur = dup(root);
  char *save = NULL;
  for (char *c = strtok_r(buf, "/", &save); c != NULL && cur >= 0; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, ".") == 0) continue;
    if (mkdirat(cur, c, 0755) != 0 && errno != EEXIST) {
      close(cur);
      return -1;
    }
    int next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(cur);
    cur = next;
  }
  return cur;
}

/* Overlay mode: `.wh.NAME` becomes the char 0/0 device NAME overlayfs reads as a whiteout,
 * `.wh..wh..opq` the trusted.overlay.opaque xattr on its directory. */
static int overlay_whiteout(upk *u, const char *parent, const char *base, const char *path, int index) {
  int dfd = mkdirs_at(u->root_fd, parent);
  if (dfd < 0) return fail(u, "layer %d: whiteout \"%.200s\": %s", index, path, strerror(errno));
  int rc = 0;
  if (strcmp(base, ".wh..wh..opq") == 0) {
    if (fsetxattr(dfd, "trusted.overlay.opaque", "y", 1, 0) != 0)
      rc = fail(u, "layer %d: opaque \"%.200s\": overlay xattr: %s", index, path, strerror(errno));
  } else {
    const char *victim = base + 4;
    if (strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0 || strchr(victim, '/') != NULL)
      rc = fail(u, "layer %d: whiteout \"%.200s\" names . or ..", index, path);
    else if (mknodat(dfd, victim, S_IFCHR | 0000, makedev(0, 0)) != 0 && errno != EEXIST)
      rc = fail(u, "layer %d: whiteout \"%.200s\": overlay whiteout: %s", index, path, strerror(errno));
  }
  close(dfd);
  return rc;
}

/* Pass 1: whiteouts. */
static int apply_whiteouts(upk *u, int fd, int index) {
  struct archive *a = open_layer(u, fd, index);
  if (a == NULL) return -1;
  struct archive_entry *e;
  int r, rc = 0;
  char path[4096];
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    if (clean_path(u, archive_entry_pathname(e), path, sizeof path) != 0) {
      rc = -1;
      break;
    }
    char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (strncmp(base, ".wh.", 4) != 0) continue;
    if (base[4] == '\0') {
      rc = fail(u, "layer %d: entry \"%.200s\": a bare .wh. whiteout is invalid", index, path);
      break;
    }
    char parent[4096];
    snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if (u->overlay) {
      rc = overlay_whiteout(u, parent, base, path, index);
      if (rc != 0) break;
      continue;
    }
    int dfd = openat2_in_root(u->root_fd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
      if (errno == ENOENT) continue; /* nothing below to hide */
      if (errno == ELOOP || errno == ENOTDIR)
        continue; /* the parent is a symlink: whiteout ignored, nothing followed */
      rc = fail(u, "layer %d: whiteout \"%.200s\": %s", index, path, strerror(errno));
      break;
    }
    if (strcmp(base, ".wh..wh..opq") == 0) {
      DIR *d = fdopendir(dfd);
      if (d == NULL) {
        close(dfd);
        rc = fail(u, "layer %d: opaque \"%.200s\": %s", index, path, strerror(errno));
        break;
      }
      struct dirent *de;
      while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 && rm_rf_at(dirfd(d), de->d_name) != 0)
          rc = -1;
      closedir(d);
      if (rc != 0) {
        fail(u, "layer %d: opaque \"%.200s\": cannot empty the directory", index, path);
        break;
      }
    } else {
      const char *victim = base + 4;
      if (strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0) {
        close(dfd);
        rc = fail(u, "layer %d: whiteout \"%.200s\" names . or ..", index, path);
        break;
      }
      int x = rm_rf_at(dfd, victim);
      close(dfd);
      if (x != 0) {
        rc = fail(u, "layer %d: whiteout \"%.200s\": %s", index, path, strerror(errno));
        break;
      }
    }
  }
  if (rc == 0 && r != ARCHIVE_EOF) rc = fail(u, "layer %d: %s", index, archive_error_string(a));
  archive_read_free(a);
  return rc;
}

/* Pass 2: everything else. */
static int extract(upk *u, int fd, int index) {
  struct archive *a = open_layer(u, fd, index);
  if (a == NULL) return -1;
  struct archive *w = archive_write_disk_new();
  archive_write_disk_set_options(w, ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                        ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_UNLINK |
                                        ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME);
  seen_reset(u);
  struct archive_entry *e;
  int r, rc = 0;
  char path[4096], link[4096];
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    if (clean_path(u, archive_entry_pathname(e), path, sizeof path) != 0) {
      rc = -1;
      break;
    }
    if (++u->entries > u->max_entries) {
      rc = fail(u, "layer %d: more than %llu entries (the cap)", index, (unsigned long long)u->max_entries);
      break;
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (strncmp(base, ".wh.", 4) == 0 || path[0] == '\0') continue;
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFCHR || type == AE_IFBLK) {
      rc = fail(u, "layer %d: entry \"%.200s\": device nodes are refused", index, path);
      break;
    }
    if (type == AE_IFSOCK) continue;
    int dup = seen_add(u, path);
    if (dup != 0) {
      rc = fail(
          u,
          dup > 0 ? "layer %d: entry \"%.200s\" appears twice in the layer" : "layer %d: out of memory at \"%.200s\"",
          index, path);
      break;
    }
    const char *hl = archive_entry_hardlink(e);
    if (hl != NULL) {
      if (clean_path(u, hl, link, sizeof link) != 0) {
        rc = -1;
        break;
      }
      archive_entry_copy_hardlink(e, link);
    }
    if (type == AE_IFREG && hl == NULL) {
      int64_t sz = archive_entry_size(e);
      if (sz < 0 || u->bytes + (uint64_t)sz > u->max_bytes) {
        rc = fail(u, "layer %d: entry \"%.200s\": the image is over the %llu-byte cap", index, path,
                  (unsigned long long)u->max_bytes);
        break;
      }
    }
    archive_entry_copy_pathname(e, path);
    if (archive_write_header(w, e) != ARCHIVE_OK) {
      rc = fail(u, "layer %d: entry \"%.200s\": %s", index, path, archive_error_string(w));
      break;
    }
    if (type == AE_IFREG && hl == NULL) {
      const void *buf;
      size_t len;
      la_int64_t off;
      while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
        u->bytes += len;
        if (u->bytes > u->max_bytes) {
          rc = fail(u, "layer %d: the image is over the %llu-byte cap", index, (unsigned long long)u->max_bytes);
          break;
        }
        if (archive_write_data_block(w, buf, len, off) != ARCHIVE_OK) {
          rc = fail(u, "layer %d: entry \"%.200s\": %s", index, path, archive_error_string(w));
          break;
        }
      }
      if (rc != 0) break;
      if (r != ARCHIVE_EOF) {
        rc = fail(u, "layer %d: entry \"%.200s\": %s", index, path, archive_error_string(a));
        break;
      }
    }
    if (archive_write_finish_entry(w) != ARCHIVE_OK) {
      rc = fail(u, "layer %d: entry \"%.200s\": %s", index, path, archive_error_string(w));
      break;
    }
  }
  if (rc == 0 && r != ARCHIVE_EOF) rc = fail(u, "layer %d: %s", index, archive_error_string(a));
  if (archive_write_close(w) != ARCHIVE_OK && rc == 0) rc = fail(u, "layer %d: %s", index, archive_error_string(w));
  archive_write_free(w);
  archive_read_free(a);
  return rc;
}

static void child(const char *dir, const int *fds, size_t n, const mu_unpack_limits *lim, bool overlay, int report) {
  upk u = {.max_bytes = lim && lim->max_bytes ? lim->max_bytes : (8ull << 30),
           .max_entries = lim && lim->max_entries ? lim->max_entries : 1000000,
           .overlay = overlay};
  if (chroot(dir) != 0 || chdir("/") != 0) {
    dprintf(report, "cannot chroot into %s: %s", dir, strerror(errno));
    _exit(1);
  }
  umask(022); /* implicit parent dirs 0755; entries get their own modes (ARCHIVE_EXTRACT_PERM) */
  u.root_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (size_t i = 0; i < n; i++) {
    if (apply_whiteouts(&u, fds[i], (int)i + 1) != 0 || extract(&u, fds[i], (int)i + 1) != 0) {
      dprintf(report, "%s", u.err);
      _exit(1);
    }
  }
  dprintf(report, "bytes %llu", (unsigned long long)u.bytes);
  _exit(0);
}

static int unpack(const char *dir, const char *const *layers, size_t n, const mu_unpack_limits *limits, bool overlay,
                  uint64_t *ret_bytes, mu_err *err) {
  if (n > MU_UNPACK_MAX_LAYERS) return mu_err_set(err, MU_ENOSPC, "more than %d layers", MU_UNPACK_MAX_LAYERS);
  int fds[MU_UNPACK_MAX_LAYERS], pipefd[2] = {-1, -1};
  size_t opened = 0;
  int rc = 0;
  for (; opened < n; opened++) {
    fds[opened] = open(layers[opened], O_RDONLY | O_CLOEXEC);
    if (fds[opened] < 0) {
      rc = mu_err_set(err, MU_EIO, "cannot open layer %s: %s", layers[opened], strerror(errno));
      goto done;
    }
  }
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    rc = mu_err_set(err, MU_EIO, "pipe: %s", strerror(errno));
    goto done;
  }
  pid_t pid = fork();
  if (pid < 0) {
    rc = mu_err_set(err, MU_EIO, "fork: %s", strerror(errno));
    goto done;
  }
  if (pid == 0) {
    close(pipefd[0]);
    child(dir, fds, n, limits, overlay, pipefd[1]);
  }
  close(pipefd[1]);
  pipefd[1] = -1;
  char msg[450];
  size_t got = 0;
  for (;;) {
    ssize_t r = read(pipefd[0], msg + got, sizeof msg - 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
    if (got == sizeof msg - 1) break;
  }
  msg[got] = '\0';
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    rc = mu_err_set(err, MU_EINVAL, "unpack: %s", got ? msg : "the unpacker died");
  else if (ret_bytes != NULL) *ret_bytes = strncmp(msg, "bytes ", 6) == 0 ? strtoull(msg + 6, NULL, 10) : 0;
done:
  for (size_t i = 0; i < opened; i++) close(fds[i]);
  if (pipefd[0] >= 0) close(pipefd[0]);
  if (pipefd[1] >= 0) close(pipefd[1]);
  return rc;
}

int mu_unpack_layers(const char *dir, const char *const *layers, size_t n, const mu_unpack_limits *limits,
                     mu_err *err) {
  return unpack(dir, layers, n, limits, false, NULL, err);
}

int mu_unpack_layer_dir(const char *dir, const char *layer, const mu_unpack_limits *limits, uint64_t *ret_bytes,
                        mu_err *err) {
  const char *one[1] = {layer};
  return unpack(dir, one, 1, limits, true, ret_bytes, err);
}

int mu_layer_diff_id(const char *path, char *ret, mu_err *err) {
  struct archive *a = archive_read_new();
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int rc = 0;
  if (a == NULL || md == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto done;
  }
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_none(a);
  archive_read_support_format_raw(a);
  struct archive_entry *e;
  if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK || archive_read_next_header(a, &e) != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_EIO, "layer %s: %s", path, archive_error_string(a));
    goto done;
  }
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  char buf[65536];
  la_ssize_t n;
  while ((n = archive_read_data(a, buf, sizeof buf)) > 0) EVP_DigestUpdate(md, buf, (size_t)n);
  if (n < 0) {
    rc = mu_err_set(err, MU_EIO, "layer %s: %s", path, archive_error_string(a));
    goto done;
  }
  unsigned char h[32];
  unsigned hl = 0;
  EVP_DigestFinal_ex(md, h, &hl);
  mu_sha256_format(h, ret);
done:
  if (a != NULL) archive_read_free(a);
  EVP_MD_CTX_free(md);
  return rc;
}
