/* mu_bundle_pack: walks a directory (never following symlinks), hashes every file into the
 * manifest, then streams MANIFEST.json and the sorted entries through libarchive into a temp
 * file while hashing the output bytes for the digest. Every header is fixed (uid/gid 0,
 * "root", mtime = created_at, no xattrs/ACLs) so the digest depends only on content. */
#define _GNU_SOURCE /* asprintf */
#include "lib/bundle/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bundle/archive_util.h"
#include "lib/bundle/manifest.h"
#include "lib/bundle/version.h"
#include "lib/hash/sha256.h"

#define COPY_BUF 65536

typedef struct walk {
  const char *root;
  const mu_unpack_limits *limits;
  mu_bundle_file *files; /* owned until moved into the manifest */
  size_t n;
  size_t cap;
  uint64_t total;
} walk;

typedef struct out_sink {
  int fd;
  mu_sha256 hash;
  int error; /* errno of a failed write */
} out_sink;

static int full_path(const walk *w, const char *rel, char buf[PATH_MAX], mu_err *err) {
  int n = snprintf(buf, PATH_MAX, "%s%s%s", w->root, rel[0] != '\0' ? "/" : "", rel);
  if (n < 0 || n >= PATH_MAX) return mu_err_set(err, MU_EINVAL, "path '%s': too long", rel);
  return 0;
}

static int add_file(walk *w, mu_bundle_file **ret, mu_err *err) {
  if (w->n >= w->limits->max_entries) {
    return mu_err_set(err, MU_ENOSPC, "more than %llu entries (the entry-count cap)",
                      (unsigned long long)w->limits->max_entries);
  }
  if (w->n == w->cap) {
    size_t cap = w->cap != 0 ? w->cap * 2 : 64;
    mu_bundle_file *files = realloc(w->files, cap * sizeof *files);
    if (files == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    w->files = files;
    w->cap = cap;
  }
  *ret = &w->files[w->n++];
  memset(*ret, 0, sizeof **ret);
  return 0;
}

static const char *kind_of(mode_t mode) {
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device node";
  return "an unsupported file type";
}

static int walk_dir(walk *w, const char *rel, mu_err *err) {
  char dpath[PATH_MAX];
  int rc = full_path(w, rel, dpath, err);
  if (rc != 0) return rc;
  DIR *d = opendir(dpath);
  if (d == NULL) return mu_err_set(err, MU_EIO, "directory '%s': %s", dpath, strerror(errno));
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char child[MU_BUNDLE_PATH_MAX + 2];
    int n = snprintf(child, sizeof child, "%s%s%s", rel, rel[0] != '\0' ? "/" : "", de->d_name);
    if (n < 0 || (size_t)n >= sizeof child) {
      rc = mu_err_set(err, MU_EINVAL, "path '%s/%s': longer than %d bytes", rel, de->d_name, MU_BUNDLE_PATH_MAX);
      goto out;
    }
    rc = mu_bundle_path_check(child, err);
    if (rc != 0) goto out;
    char cpath[PATH_MAX];
    rc = full_path(w, child, cpath, err);
    if (rc != 0) goto out;
    struct stat st;
    if (lstat(cpath, &st) != 0) {
      rc = mu_err_set(err, MU_EIO, "'%s': %s", cpath, strerror(errno));
      goto out;
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
      rc = mu_err_set(err, MU_EINVAL, "'%s' is %s; bundles hold only files, dirs and symlinks", child,
                      kind_of(st.st_mode));
      goto out;
    }
    if (!S_ISLNK(st.st_mode) && (st.st_mode & 07000) != 0) {
      rc = mu_err_set(err, MU_EINVAL, "'%s' has setuid/setgid/sticky bits (mode %04o); bundles refuse them", child,
                      (unsigned)(st.st_mode & 07777));
      goto out;
    }
    mu_bundle_file *f = NULL;
    rc = add_file(w, &f, err);
    if (rc != 0) goto out;
    f->path = strdup(child);
    if (f->path == NULL) {
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      goto out;
    }
    f->mode = st.st_mode & 0777;
    if (S_ISREG(st.st_mode)) {
      f->type = MU_BUNDLE_FILE;
      f->size = (uint64_t)st.st_size;
      w->total += f->size;
      if (f->size > w->limits->max_file_bytes) {
        rc = mu_err_set(err, MU_ENOSPC, "'%s': %llu bytes, over the single-file cap of %llu", child,
                        (unsigned long long)f->size, (unsigned long long)w->limits->max_file_bytes);
        goto out;
      }
      if (w->total > w->limits->max_total_bytes) {
        rc = mu_err_set(err, MU_ENOSPC, "total size exceeds the cap of %llu bytes at '%s'",
                        (unsigned long long)w->limits->max_total_bytes, child);
        goto out;
      }
    } else if (S_ISLNK(st.st_mode)) {
      f->type = MU_BUNDLE_SYMLINK;
      f->mode = 0;
      char target[MU_BUNDLE_PATH_MAX + 1];
      ssize_t tl = readlink(cpath, target, sizeof target);
      if (tl < 0 || (size_t)tl >= sizeof target) {
        rc = mu_err_set(err, MU_EINVAL, "symlink '%s': %s", child, tl < 0 ? strerror(errno) : "target too long");
        goto out;
      }
      target[tl] = '\0';
      rc = mu_bundle_link_check(child, target, err);
      if (rc != 0) goto out;
      f->target = strdup(target);
      if (f->target == NULL) {
        rc = mu_err_set(err, MU_ENOMEM, "out of memory");
        goto out;
      }
    } else {
      f->type = MU_BUNDLE_DIR;
      rc = walk_dir(w, child, err);
      if (rc != 0) goto out;
    }
  }
out:
  closedir(d);
  return rc;
}

static int cmp_files(const void *a, const void *b) {
  return strcmp(((const mu_bundle_file *)a)->path, ((const mu_bundle_file *)b)->path);
}

/* Hashes the first `size` bytes of a file; with a writer, also streams them into it. */
static int hash_file(const walk *w, const mu_bundle_file *f, struct archive *a, uint8_t ret_sum[32], mu_err *err) {
  char path[PATH_MAX];
  int rc = full_path(w, f->path, path, err);
  if (rc != 0) return rc;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return mu_err_set(err, MU_EIO, "'%s': %s", path, strerror(errno));
  uint8_t *buf = malloc(COPY_BUF);
  mu_sha256 h = {0};
  struct stat st;
  if (buf == NULL || mu_sha256_init(&h) != 0) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto out;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rc = mu_err_set(err, MU_EIO, "'%s': changed while packing", f->path);
    goto out;
  }
  uint64_t left = f->size;
  while (left > 0) {
    ssize_t n = read(fd, buf, left < COPY_BUF ? (size_t)left : COPY_BUF);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      rc = mu_err_set(err, MU_EIO, "'%s': %s", f->path, n < 0 ? strerror(errno) : "changed while packing (shorter)");
      goto out;
    }
    mu_sha256_update(&h, buf, (size_t)n);
    if (a != NULL && archive_write_data(a, buf, (size_t)n) != n) {
      rc = mu_err_set(err, MU_EIO, "writing '%s': %s", f->path, archive_error_string(a));
      goto out;
    }
    left -= (uint64_t)n;
  }
  mu_sha256_final(&h, ret_sum);
out:
  mu_sha256_discard(&h);
  free(buf);
  close(fd);
  return rc;
}

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *buf, size_t len) {
  out_sink *s = ctx;
  const uint8_t *p = buf;
  size_t left = len;
  while (left > 0) {
    ssize_t n = write(s->fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s->error = errno;
      archive_set_error(a, errno, "write: %s", strerror(errno));
      return -1;
    }
    p += n;
    left -= (size_t)n;
  }
  mu_sha256_update(&s->hash, buf, len);
  return (la_ssize_t)len;
}

/* Fills the header fields every entry shares, fixed so output depends only on content. */
static void fixed_header(struct archive_entry *e, const char *path, int64_t mtime) {
  archive_entry_clear(e);
  archive_entry_set_pathname(e, path);
  archive_entry_set_uid(e, 0);
  archive_entry_set_gid(e, 0);
  archive_entry_set_uname(e, "root");
  archive_entry_set_gname(e, "root");
  archive_entry_set_mtime(e, (time_t)mtime, 0);
}

static int write_archive(const walk *w, const mu_manifest *m, const char *json, size_t json_len,
                         mu_bundle_compress compress, int level, out_sink *sink, mu_err *err) {
  int rc = 0;
  struct archive *a = archive_write_new();
  struct archive_entry *e = archive_entry_new();
  if (a == NULL || e == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto out;
  }
  rc = mu_archive_writer_setup(a, compress, level, 0, err);
  if (rc != 0) goto out;
  if (archive_write_open(a, sink, NULL, sink_write, NULL) != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_EIO, "archive: %s", archive_error_string(a));
    goto out;
  }
  fixed_header(e, MU_BUNDLE_MANIFEST_NAME, m->created_at);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)json_len);
  if (archive_write_header(a, e) != ARCHIVE_OK || archive_write_data(a, json, json_len) != (la_ssize_t)json_len) {
    rc = mu_err_set(err, MU_EIO, "archive: %s", archive_error_string(a));
    goto out;
  }
  for (size_t i = 0; i < m->n_files; i++) {
    const mu_bundle_file *f = &m->files[i];
    fixed_header(e, f->path, m->created_at);
    if (f->type == MU_BUNDLE_FILE) {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_size(e, (la_int64_t)f->size);
    } else if (f->type == MU_BUNDLE_DIR) {
      archive_entry_set_filetype(e, AE_IFDIR);
    } else {
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, f->target);
    }
    archive_entry_set_perm(e, f->type == MU_BUNDLE_SYMLINK ? 0777 : f->mode);
    if (archive_write_header(a, e) != ARCHIVE_OK) {
      rc = mu_err_set(err, MU_EIO, "archive: '%s': %s", f->path, archive_error_string(a));
      goto out;
    }
    if (f->type == MU_BUNDLE_FILE) {
      uint8_t sum[32];
      rc = hash_file(w, f, a, sum, err);
      if (rc != 0) goto out;
      if (memcmp(sum, f->sha256, 32) != 0) {
        rc = mu_err_set(err, MU_EIO, "'%s': changed while packing", f->path);
        goto out;
      }
    }
  }
  if (archive_write_close(a) != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_EIO, "archive: %s", archive_error_string(a));
  }
out:
  archive_entry_free(e);
  if (a != NULL) archive_write_free(a);
  return rc;
}

int mu_bundle_pack(const char *dir, const mu_pack_opts *opts, const char *out_path,
                   char ret_digest[MU_BUNDLE_DIGEST_SIZE], mu_err *err) {
  walk w = {.root = dir, .limits = mu_unpack_limits_or_default(opts->limits)};
  mu_manifest m = {.format = MU_MANIFEST_FORMAT, .created_at = opts->created_at};
  mu_manifest *check = NULL;
  char *json = NULL;
  size_t json_len = 0;
  char *tmp = NULL;
  out_sink sink = {.fd = -1};
  int made_tmp = 0;
  int rc;
  if (sodium_init() < 0) return mu_err_set(err, MU_EIO, "libsodium failed to initialise");
  rc = mu_bundle_name_check(opts->name, err);
  if (rc != 0) return rc;
  rc = mu_bundle_version_check(opts->version, err);
  if (rc != 0) return rc;
  if (opts->created_at < 0) {
    return mu_err_set(err, MU_EINVAL, "created-at must be >= 0, got %lld", (long long)opts->created_at);
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return mu_err_set(err, MU_EINVAL, "'%s' is not a directory", dir);
  }
  rc = walk_dir(&w, "", err);
  if (rc != 0) goto out;
  qsort(w.files, w.n, sizeof *w.files, cmp_files);
  for (size_t i = 0; i < w.n; i++) {
    if (w.files[i].type != MU_BUNDLE_FILE) continue;
    rc = hash_file(&w, &w.files[i], NULL, w.files[i].sha256, err);
    if (rc != 0) goto out;
  }
  m.name = (char *)opts->name;
  m.version = (char *)opts->version;
  m.entry = (char *)opts->entry;
  m.files = w.files;
  m.n_files = w.n;
  if (opts->entry != NULL) {
    long at = mu_manifest_find(&m, opts->entry);
    if (at < 0 || m.files[at].type != MU_BUNDLE_FILE) {
      rc = mu_err_set(err, MU_EINVAL, "entry point '%s' is not a regular file in '%s'", opts->entry, dir);
      goto out;
    }
  }
  rc = mu_manifest_to_json(&m, &json, &json_len, err);
  if (rc != 0) goto out;
  /* Parse our own output with the unpacker's rules: never make a bundle an agent refuses. */
  rc = mu_manifest_parse(json, json_len, w.limits->max_entries, w.limits->max_total_bytes, &check, err);
  if (rc == 0 && json_len > w.limits->max_manifest_bytes) {
    rc = mu_err_set(err, MU_ENOSPC, "manifest is %zu bytes, over the cap of %llu", json_len,
                    (unsigned long long)w.limits->max_manifest_bytes);
  }
  if (rc != 0) goto out;
  if (asprintf(&tmp, "%s.tmp-XXXXXX", out_path) < 0) {
    tmp = NULL;
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto out;
  }
  sink.fd = mkstemp(tmp);
  made_tmp = sink.fd >= 0;
  if (sink.fd < 0) {
    rc = mu_err_set(err, MU_EIO, "'%s': %s", out_path, strerror(errno));
    goto out;
  }
  if (mu_sha256_init(&sink.hash) != 0) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto out;
  }
  rc = write_archive(&w, &m, json, json_len, opts->compress, opts->level, &sink, err);
  if (rc != 0) goto out;
  if (fchmod(sink.fd, 0644) != 0 || fsync(sink.fd) != 0 || close(sink.fd) != 0) {
    sink.fd = -1;
    rc = mu_err_set(err, MU_EIO, "'%s': %s", out_path, strerror(errno));
    goto out;
  }
  sink.fd = -1;
  if (rename(tmp, out_path) != 0) {
    rc = mu_err_set(err, MU_EIO, "'%s': %s", out_path, strerror(errno));
    goto out;
  }
  uint8_t sum[32];
  mu_sha256_final(&sink.hash, sum);
  memcpy(ret_digest, MU_BUNDLE_DIGEST_PREFIX, sizeof MU_BUNDLE_DIGEST_PREFIX - 1);
  mu_bundle_hex32(sum, ret_digest + sizeof MU_BUNDLE_DIGEST_PREFIX - 1);
out:
  mu_sha256_discard(&sink.hash);
  if (sink.fd >= 0) close(sink.fd);
  if (rc != 0 && made_tmp) unlink(tmp);
  free(tmp);
  free(json);
  mu_manifest_free(check);
  for (size_t i = 0; i < w.n; i++) {
    free(w.files[i].path);
    free(w.files[i].target);
  }
  free(w.files);
  return rc;
}
