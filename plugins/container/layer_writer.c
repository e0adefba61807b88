/* Reproducible gzip'd tar layers into the image store (see layer_writer.h). */
#define _GNU_SOURCE
#include "plugins/container/layer_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "plugins/container/image_int.h"
#include "plugins/container/manifest.h"
#include "plugins/container/unpack.h"

struct mu_layer_writer {
  char store[PATH_MAX];
  char tmp[PATH_MAX];
  struct archive *a;
  int fd;
  int64_t epoch;
  uint64_t bytes, max_bytes, entries;
};

int mu_layer_writer_new(const char *store, int64_t epoch, uint64_t max_bytes, mu_layer_writer **ret, mu_err *err) {
  mu_layer_writer *w = calloc(1, sizeof *w);
  if (w == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  snprintf(w->store, sizeof w->store, "%s", store);
  snprintf(w->tmp, sizeof w->tmp, "%s/tmp/layer.XXXXXX", store);
  w->epoch = epoch;
  w->max_bytes = max_bytes ? max_bytes : (4ull << 30);
  w->fd = mkostemp(w->tmp, O_CLOEXEC);
  if (w->fd < 0) {
    int rc = mu_err_set(err, MU_EIO, "cannot create %s: %s", w->tmp, strerror(errno));
    free(w);
    return rc;
  }
  w->a = archive_write_new();
  if (w->a == NULL || archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
      archive_write_add_filter_gzip(w->a) != ARCHIVE_OK ||
      archive_write_set_filter_option(w->a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
      archive_write_open_fd(w->a, w->fd) != ARCHIVE_OK) {
    int rc = mu_err_set(err, MU_EIO, "layer writer: %s", w->a ? archive_error_string(w->a) : "out of memory");
    mu_layer_writer_abort(w);
    return rc;
  }
  *ret = w;
  return 0;
}

void mu_layer_writer_abort(mu_layer_writer *w) {
  if (w == NULL) return;
  if (w->a) archive_write_free(w->a);
  if (w->fd >= 0) close(w->fd);
  unlink(w->tmp);
  free(w);
}

static struct archive_entry *entry(mu_layer_writer *w, const char *path, mode_t type, mode_t perm, uid_t uid,
                                   gid_t gid) {
  struct archive_entry *e = archive_entry_new();
  if (e == NULL) return NULL;
  archive_entry_set_pathname(e, path);
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, perm & 07777);
  archive_entry_set_uid(e, uid);
  archive_entry_set_gid(e, gid);
  archive_entry_set_mtime(e, (time_t)w->epoch, 0);
  return e;
}

/* A name an unpacker would take for a whiteout, unless we write it as one. */
static bool whiteout_name(const char *path) {
  const char *base = strrchr(path, '/');
  return strncmp(base ? base + 1 : path, ".wh.", 4) == 0;
}

static int refuse_wh(const char *path, mu_err *err) {
  return mu_err_set(err, MU_EINVAL, "layer: a file named %s cannot be stored (\".wh.\" names are whiteouts in a layer)",
                    path);
}

static int put(mu_layer_writer *w, struct archive_entry *e, const char *path, mu_err *err) {
  if (e == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  w->entries++;
  int r = archive_write_header(w->a, e);
  archive_entry_free(e);
  if (r != ARCHIVE_OK) return mu_err_set(err, MU_EIO, "layer entry %s: %s", path, archive_error_string(w->a));
  return 0;
}

int mu_layer_add_dir(mu_layer_writer *w, const char *path, mode_t mode, uid_t uid, gid_t gid, mu_err *err) {
  if (whiteout_name(path)) return refuse_wh(path, err);
  return put(w, entry(w, path, AE_IFDIR, mode, uid, gid), path, err);
}

int mu_layer_add_symlink(mu_layer_writer *w, const char *path, const char *target, uid_t uid, gid_t gid, mu_err *err) {
  if (whiteout_name(path)) return refuse_wh(path, err);
  struct archive_entry *e = entry(w, path, AE_IFLNK, 0777, uid, gid);
  if (e != NULL) archive_entry_set_symlink(e, target);
  return put(w, e, path, err);
}

int mu_layer_add_file(mu_layer_writer *w, const char *path, mode_t mode, uid_t uid, gid_t gid, int fd, int64_t size,
                      mu_err *err) {
  if (whiteout_name(path)) return refuse_wh(path, err);
  if (w->bytes + (uint64_t)size > w->max_bytes)
    return mu_err_set(err, MU_ENOSPC, "layer: %s makes it over the %llu-byte layer bound", path,
                      (unsigned long long)w->max_bytes);
  struct archive_entry *e = entry(w, path, AE_IFREG, mode, uid, gid);
  if (e != NULL) archive_entry_set_size(e, size);
  int rc = put(w, e, path, err);
  if (rc != 0) return rc;
  char buf[65536];
  int64_t left = size;
  while (left > 0) {
    ssize_t n = read(fd, buf, left < (int64_t)sizeof buf ? (size_t)left : sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return mu_err_set(err, MU_EIO, "layer: %s: short read (changed while building?)", path);
    if (archive_write_data(w->a, buf, (size_t)n) != n)
      return mu_err_set(err, MU_EIO, "layer entry %s: %s", path, archive_error_string(w->a));
    left -= n;
  }
  w->bytes += (uint64_t)size;
  return 0;
}

int mu_layer_add_whiteout(mu_layer_writer *w, const char *deleted_path, mu_err *err) {
  char p[PATH_MAX];
  const char *slash = strrchr(deleted_path, '/');
  if (slash) snprintf(p, sizeof p, "%.*s/.wh.%s", (int)(slash - deleted_path), deleted_path, slash + 1);
  else snprintf(p, sizeof p, ".wh.%s", deleted_path);
  struct archive_entry *e = entry(w, p, AE_IFREG, 0600, 0, 0);
  if (e != NULL) archive_entry_set_size(e, 0);
  return put(w, e, p, err);
}

int mu_layer_add_opaque(mu_layer_writer *w, const char *dir, mu_err *err) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/.wh..wh..opq", dir);
  struct archive_entry *e = entry(w, p, AE_IFREG, 0600, 0, 0);
  if (e != NULL) archive_entry_set_size(e, 0);
  return put(w, e, p, err);
}

/* ---- an overlay upper dir ---- */

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }
static int not_dots(const struct dirent *d) { return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0; }

static bool dir_empty(int dirfd, const char *name) {
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return false;
  }
  bool empty = true;
  struct dirent *e;
  while (empty && (e = readdir(d)) != NULL) empty = !not_dots(e) ? true : false;
  closedir(d);
  return empty;
}

static int walk_upper(mu_layer_writer *w, int dirfd, const char *rel, int depth, mu_err *err) {
  if (depth > 256) return mu_err_set(err, MU_ENOSPC, "layer: %s: directories nested too deep", rel);
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", dirfd);
  struct dirent **names = NULL;
  int n = scandir(self, &names, not_dots, by_name);
  if (n < 0) return mu_err_set(err, MU_EIO, "layer: read %s: %s", rel[0] ? rel : "/", strerror(errno));
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    const char *name = names[i]->d_name;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s%s%s", rel, rel[0] ? "/" : "", name) >= (int)sizeof path) {
      rc = mu_err_set(err, MU_EINVAL, "layer: a path is too long under %s", rel);
      break;
    }
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      rc = mu_err_set(err, MU_EIO, "layer: %s: %s", path, strerror(errno));
      break;
    }
    if (depth == 0 && S_ISDIR(st.st_mode) &&
        (strcmp(name, "dev") == 0 || strcmp(name, "proc") == 0 || strcmp(name, "sys") == 0 ||
         strcmp(name, "tmp") == 0 || strcmp(name, "run") == 0) &&
        dir_empty(dirfd, name))
      continue; /* the launcher's mount points */
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      rc = mu_layer_add_whiteout(w, path, err);
    } else if (S_ISDIR(st.st_mode)) {
      rc = mu_layer_add_dir(w, path, st.st_mode, st.st_uid, st.st_gid, err);
      int fd = rc == 0 ? openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
      if (rc == 0 && fd < 0) rc = mu_err_set(err, MU_EIO, "layer: open %s: %s", path, strerror(errno));
      char v[4] = "";
      if (rc == 0 && fgetxattr(fd, "trusted.overlay.redirect", NULL, 0) >= 0)
        rc = mu_err_set(err, MU_ENOTSUP,
                        "layer: %s was renamed with overlayfs redirect_dir on: the diff would miss its "
                        "contents (load the overlay module with redirect_dir=off)",
                        path);
      if (rc == 0 && fgetxattr(fd, "trusted.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y')
        rc = mu_layer_add_opaque(w, path, err);
      if (rc == 0) rc = walk_upper(w, fd, path, depth + 1, err);
      if (fd >= 0) close(fd);
    } else if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t tl = readlinkat(dirfd, name, target, sizeof target - 1);
      if (tl < 0) rc = mu_err_set(err, MU_EIO, "layer: readlink %s: %s", path, strerror(errno));
      else {
        target[tl] = '\0';
        rc = mu_layer_add_symlink(w, path, target, st.st_uid, st.st_gid, err);
      }
    } else if (S_ISREG(st.st_mode)) {
      int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) rc = mu_err_set(err, MU_EIO, "layer: open %s: %s", path, strerror(errno));
      else if (fgetxattr(fd, "trusted.overlay.metacopy", NULL, 0) >= 0) {
        rc = mu_err_set(err, MU_ENOTSUP,
                        "layer: %s is an overlayfs metacopy (metadata only): load the overlay "
                        "module with metacopy=off",
                        path);
        close(fd);
      } else {
        rc = mu_layer_add_file(w, path, st.st_mode, st.st_uid, st.st_gid, fd, st.st_size, err);
        close(fd);
      }
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      rc = mu_err_set(err, MU_EPERM, "layer: device node %s refused (images carry no devices)", path);
    } else if (S_ISFIFO(st.st_mode)) {
      rc = put(w, entry(w, path, AE_IFIFO, st.st_mode, st.st_uid, st.st_gid), path, err);
    } /* sockets: not content */
  }
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
  return rc;
}

int mu_layer_add_upper(mu_layer_writer *w, const char *upper, mu_err *err) {
  int fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return mu_err_set(err, MU_EIO, "layer: open %s: %s", upper, strerror(errno));
  int rc = walk_upper(w, fd, "", 0, err);
  close(fd);
  return rc;
}

int mu_layer_writer_finish(mu_layer_writer *w, mu_layer_out *ret, mu_err *err) {
  int rc = 0;
  memset(ret, 0, sizeof *ret);
  if (archive_write_close(w->a) != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_EIO, "layer: %s", archive_error_string(w->a));
    goto done;
  }
  /* the blob's digest */
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (md == NULL || lseek(w->fd, 0, SEEK_SET) != 0) {
    EVP_MD_CTX_free(md);
    rc = mu_err_set(err, MU_EIO, "layer: cannot hash %s", w->tmp);
    goto done;
  }
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  char buf[65536];
  int64_t total = 0;
  for (;;) {
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    EVP_DigestUpdate(md, buf, (size_t)n);
    total += n;
  }
  unsigned char h[32];
  unsigned hl = 0;
  EVP_DigestFinal_ex(md, h, &hl);
  EVP_MD_CTX_free(md);
  mu_sha256_format(h, ret->digest);
  ret->size = total;
  ret->entries = w->entries;
  rc = mu_layer_diff_id(w->tmp, ret->diff_id, err);
  if (rc != 0) goto done;
  char dest[PATH_MAX];
  mu_store_blob_path(w->store, ret->digest, dest, sizeof dest);
  if (fchmod(w->fd, 0644) != 0 || fsync(w->fd) != 0 || rename(w->tmp, dest) != 0)
    rc = mu_err_set(err, MU_EIO, "layer: cannot store %s: %s", dest, strerror(errno));
done:
  mu_layer_writer_abort(w); /* unlinks tmp: gone already when renamed */
  return rc;
}
