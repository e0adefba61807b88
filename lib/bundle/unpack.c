/* Safe unpack: verify first (digest, manifest, signature), then extract on a helper thread
 * whose private cwd is the destination, so libarchive's secure flags (no symlinks followed,
 * no '..', no absolute paths) apply to relative names. Each entry is vetted against our own
 * rules and the manifest before libarchive sees a fresh, attribute-free copy of its header;
 * any refusal deletes the destination. */
#define _GNU_SOURCE /* unshare, CLONE_FS */
#include "lib/bundle/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bundle/archive_util.h"

#define COPY_BUF 65536

typedef struct unpack_ctx {
  const uint8_t *data;
  size_t len;
  const mu_unpack_limits *limits;
  const mu_manifest *m;
  const char *dest; /* absolute, symlink-free */
  bool use_prefix;  /* extract by absolute paths (no private cwd) */
  bool *seen;       /* per manifest entry */
  uint64_t total;   /* bytes written so far */
  mu_err *err;
  int rc;
} unpack_ctx;

static const char *type_word(mu_bundle_ftype t) {
  return t == MU_BUNDLE_FILE ? "file" : (t == MU_BUNDLE_DIR ? "dir" : "symlink");
}

/* Applies every rule that needs only the header; on success *ret_idx is the manifest index
 * and path (normalized, no trailing '/') is in ret_path. */
static int check_entry(unpack_ctx *c, struct archive_entry *e, char ret_path[], long *ret_idx) {
  mu_err *err = c->err;
  const char *raw = archive_entry_pathname(e);
  if (raw == NULL || raw[0] == '\0') return mu_err_set(err, MU_EINVAL, "entry with no name");
  size_t n = strlen(raw);
  if (n > MU_BUNDLE_PATH_MAX) {
    return mu_err_set(err, MU_EINVAL, "entry '%.80s...': path longer than %d bytes", raw, MU_BUNDLE_PATH_MAX);
  }
  memcpy(ret_path, raw, n + 1);
  mode_t type = archive_entry_filetype(e);
  while (type == AE_IFDIR && n > 1 && ret_path[n - 1] == '/') ret_path[--n] = '\0';
  const char *path = ret_path;
  int rc = mu_bundle_path_check(path, err);
  if (rc != 0) return rc;
  const char *hard = archive_entry_hardlink(e);
  if (hard != NULL) {
    if (mu_bundle_path_check(hard, NULL) != 0) {
      return mu_err_set(err, MU_EINVAL, "entry '%s': hardlink to '%s' escapes the task dir", path, hard);
    }
    return mu_err_set(err, MU_EINVAL, "entry '%s': hardlinks are not allowed in bundles", path);
  }
  switch (type) {
    case AE_IFREG:
    case AE_IFDIR:
    case AE_IFLNK: break;
    case AE_IFCHR:
    case AE_IFBLK: return mu_err_set(err, MU_EINVAL, "entry '%s': device nodes are not allowed", path);
    case AE_IFIFO: return mu_err_set(err, MU_EINVAL, "entry '%s': FIFOs are not allowed", path);
    case AE_IFSOCK: return mu_err_set(err, MU_EINVAL, "entry '%s': sockets are not allowed", path);
    default: return mu_err_set(err, MU_EINVAL, "entry '%s': unsupported entry type 0%o", path, (unsigned)type);
  }
  mode_t mode = archive_entry_mode(e);
  if ((mode & 07000) != 0) {
    return mu_err_set(err, MU_EINVAL, "entry '%s': setuid/setgid/sticky bits are not allowed (mode %04o)", path,
                      (unsigned)(mode & 07777));
  }
  if (archive_entry_sparse_count(e) > 0) {
    return mu_err_set(err, MU_EINVAL, "entry '%s': sparse files are not allowed", path);
  }
  if (type == AE_IFLNK) {
    rc = mu_bundle_link_check(path, archive_entry_symlink(e), err);
    if (rc != 0) return rc;
  }
  /* Never write through a symlink (libarchive's SECURE_SYMLINKS is the second line). */
  char prefix[MU_BUNDLE_PATH_MAX + 1];
  for (const char *s = strchr(path, '/'); s != NULL; s = strchr(s + 1, '/')) {
    size_t pn = (size_t)(s - path);
    memcpy(prefix, path, pn);
    prefix[pn] = '\0';
    long at = mu_manifest_find(c->m, prefix);
    if (at >= 0 && c->m->files[at].type == MU_BUNDLE_SYMLINK) {
      return mu_err_set(err, MU_EINVAL, "entry '%s': path goes through symlink '%s' (escapes the task dir)", path,
                        prefix);
    }
  }
  if (type == AE_IFREG) {
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0) {
      return mu_err_set(err, MU_EINVAL, "entry '%s': no size", path);
    }
    uint64_t size = (uint64_t)archive_entry_size(e);
    if (size > c->limits->max_file_bytes) {
      return mu_err_set(err, MU_ENOSPC, "entry '%s': %llu bytes, over the single-file cap of %llu", path,
                        (unsigned long long)size, (unsigned long long)c->limits->max_file_bytes);
    }
    if (size > c->limits->max_total_bytes - c->total) {
      return mu_err_set(err, MU_ENOSPC, "entry '%s': total unpacked size exceeds the cap of %llu bytes", path,
                        (unsigned long long)c->limits->max_total_bytes);
    }
  }
  long idx = mu_manifest_find(c->m, path);
  if (idx < 0) return mu_err_set(err, MU_EINVAL, "entry '%s': not listed in the manifest", path);
  const mu_bundle_file *f = &c->m->files[idx];
  if (c->seen[idx]) return mu_err_set(err, MU_EINVAL, "entry '%s': appears twice", path);
  mu_bundle_ftype got = type == AE_IFREG ? MU_BUNDLE_FILE : (type == AE_IFDIR ? MU_BUNDLE_DIR : MU_BUNDLE_SYMLINK);
  if (got != f->type) {
    return mu_err_set(err, MU_EINVAL, "entry '%s': is a %s but the manifest says %s", path, type_word(got),
                      type_word(f->type));
  }
  if (got != MU_BUNDLE_SYMLINK && (mode & 0777) != f->mode) {
    return mu_err_set(err, MU_EINVAL, "entry '%s': mode %04o but the manifest says %04o", path, (unsigned)(mode & 0777),
                      (unsigned)f->mode);
  }
  if (got == MU_BUNDLE_FILE && (uint64_t)archive_entry_size(e) != f->size) {
    return mu_err_set(err, MU_EINVAL, "entry '%s': %lld bytes but the manifest says %llu", path,
                      (long long)archive_entry_size(e), (unsigned long long)f->size);
  }
  if (got == MU_BUNDLE_SYMLINK && strcmp(archive_entry_symlink(e), f->target) != 0) {
    return mu_err_set(err, MU_EINVAL, "entry '%s': symlink target differs from the manifest", path);
  }
  c->seen[idx] = true;
  *ret_idx = idx;
  return 0;
}

/* Streams one file's data to disk, counting and hashing what is actually decompressed. */
static int copy_data(unpack_ctx *c, struct archive *in, struct archive *out, const mu_bundle_file *f, uint8_t *buf) {
  crypto_hash_sha256_state h;
  crypto_hash_sha256_init(&h);
  uint64_t written = 0;
  for (;;) {
    la_ssize_t n = archive_read_data(in, buf, COPY_BUF);
    if (n == 0) break;
    if (n < 0) {
      return mu_err_set(c->err, MU_EINVAL, "archive is truncated or corrupt at entry '%s': %s", f->path,
                        archive_error_string(in));
    }
    written += (uint64_t)n;
    c->total += (uint64_t)n;
    if (written > f->size || written > c->limits->max_file_bytes || c->total > c->limits->max_total_bytes) {
      return mu_err_set(c->err, MU_ENOSPC, "entry '%s': more data than declared or over a size cap", f->path);
    }
    crypto_hash_sha256_update(&h, buf, (size_t)n);
    if (archive_write_data(out, buf, (size_t)n) != n) {
      return mu_err_set(c->err, MU_EIO, "entry '%s': write: %s", f->path, archive_error_string(out));
    }
  }
  uint8_t sum[32];
  crypto_hash_sha256_final(&h, sum);
  if (written != f->size || memcmp(sum, f->sha256, 32) != 0) {
    return mu_err_set(c->err, MU_EINVAL, "entry '%s': sha256 does not match the manifest", f->path);
  }
  return 0;
}

static int extract(unpack_ctx *c) {
  mu_err *err = c->err;
  struct archive *in = NULL;
  struct archive *out = archive_write_disk_new();
  struct archive_entry *clean = archive_entry_new();
  uint8_t *buf = malloc(COPY_BUF);
  char path[MU_BUNDLE_PATH_MAX + 1];
  char disk_path[PATH_MAX];
  uint64_t count = 0;
  int rc;
  if (out == NULL || clean == NULL || buf == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto out;
  }
  /* Owners, times, xattrs, ACLs and flags are deliberately not among these. */
  int flags = ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_PERM |
              ARCHIVE_EXTRACT_NO_OVERWRITE;
  if (!c->use_prefix) flags |= ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
  archive_write_disk_set_options(out, flags);
  rc = mu_archive_reader_open(c->data, c->len, &in, err);
  if (rc != 0) goto out;
  struct archive_entry *e;
  int r = archive_read_next_header(in, &e);
  if (r != ARCHIVE_OK || archive_entry_pathname(e) == NULL ||
      strcmp(archive_entry_pathname(e), MU_BUNDLE_MANIFEST_NAME) != 0) {
    rc = mu_err_set(err, MU_EINVAL, "archive changed between verify and unpack");
    goto out;
  }
  for (;;) {
    r = archive_read_next_header(in, &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) {
      rc = mu_err_set(err, MU_EINVAL, "archive is truncated or corrupt after %llu entries: %s",
                      (unsigned long long)count, archive_error_string(in));
      goto out;
    }
    if (++count > c->limits->max_entries) {
      rc = mu_err_set(err, MU_ENOSPC, "more than %llu entries (the entry-count cap)",
                      (unsigned long long)c->limits->max_entries);
      goto out;
    }
    long idx = -1;
    rc = check_entry(c, e, path, &idx);
    if (rc != 0) goto out;
    const mu_bundle_file *f = &c->m->files[idx];
    /* libarchive gets a fresh header carrying only what the manifest vouched for. */
    archive_entry_clear(clean);
    const char *name = path;
    if (c->use_prefix) {
      int n = snprintf(disk_path, sizeof disk_path, "%s/%s", c->dest, path);
      if (n < 0 || (size_t)n >= sizeof disk_path) {
        rc = mu_err_set(err, MU_EINVAL, "entry '%s': path too long under '%s'", path, c->dest);
        goto out;
      }
      name = disk_path;
    }
    archive_entry_set_pathname(clean, name);
    if (f->type == MU_BUNDLE_FILE) {
      archive_entry_set_filetype(clean, AE_IFREG);
      archive_entry_set_size(clean, (la_int64_t)f->size);
      archive_entry_set_perm(clean, f->mode);
    } else if (f->type == MU_BUNDLE_DIR) {
      archive_entry_set_filetype(clean, AE_IFDIR);
      archive_entry_set_perm(clean, f->mode);
    } else {
      archive_entry_set_filetype(clean, AE_IFLNK);
      archive_entry_set_perm(clean, 0777);
      archive_entry_set_symlink(clean, f->target);
    }
    if (archive_write_header(out, clean) != ARCHIVE_OK) {
      rc = mu_err_set(err, MU_EINVAL, "entry '%s': refused by libarchive: %s", path, archive_error_string(out));
      goto out;
    }
    if (f->type == MU_BUNDLE_FILE) {
      rc = copy_data(c, in, out, f, buf);
      if (rc != 0) goto out;
    }
    if (archive_write_finish_entry(out) != ARCHIVE_OK) {
      rc = mu_err_set(err, MU_EIO, "entry '%s': %s", path, archive_error_string(out));
      goto out;
    }
  }
  for (size_t i = 0; i < c->m->n_files; i++) {
    if (!c->seen[i]) {
      rc = mu_err_set(err, MU_EINVAL, "entry '%s': listed in the manifest but missing", c->m->files[i].path);
      goto out;
    }
  }
  if (archive_write_close(out) != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_EIO, "finishing unpack: %s", archive_error_string(out));
    goto out;
  }
  rc = 0;
out:
  /* Freeing the disk writer runs its fix-ups (directory modes) relative to our cwd, so it
   * must happen on this thread, before it ends. */
  if (out != NULL) archive_write_free(out);
  if (in != NULL) archive_read_free(in);
  archive_entry_free(clean);
  free(buf);
  return rc;
}

static void *extract_thread(void *arg) {
  unpack_ctx *c = arg;
  if (unshare(CLONE_FS) != 0) {
    if (errno != EPERM && errno != ENOSYS && errno != EINVAL) {
      c->rc = mu_err_set(c->err, MU_EIO, "unshare(CLONE_FS): %s", strerror(errno));
      return NULL;
    }
    c->use_prefix = true;
  } else if (chdir(c->dest) != 0) {
    c->rc = mu_err_set(c->err, MU_EIO, "'%s': %s", c->dest, strerror(errno));
    return NULL;
  }
  c->rc = extract(c);
  return NULL;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (flag == FTW_DP) {
    rmdir(path);
  } else {
    unlink(path);
  }
  return 0;
}

static int open_dirs(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)ftw;
  if (flag == FTW_D) chmod(path, (st->st_mode & 0777) | 0700);
  return 0;
}

/* Removes a tree without following symlinks; read-only dirs are opened up first. */
static void rm_tree(const char *path) {
  nftw(path, open_dirs, 16, FTW_PHYS);
  nftw(path, rm_entry, 16, FTW_PHYS | FTW_DEPTH);
}

int mu_bundle_unpack(const uint8_t *data, size_t len, const mu_bundle_check *check, const mu_unpack_limits *limits,
                     const char *dest_dir, mu_bundle_info **ret_info, mu_err *err) {
  return mu_bundle_unpack_ex(data, len, check, limits, dest_dir, 0, ret_info, err);
}

int mu_bundle_unpack_ex(const uint8_t *data, size_t len, const mu_bundle_check *check, const mu_unpack_limits *limits,
                        const char *dest_dir, unsigned flags, mu_bundle_info **ret_info, mu_err *err) {
  limits = mu_unpack_limits_or_default(limits);
  mu_bundle_info *info = NULL;
  int rc = mu_bundle_verify(data, len, check, limits, &info, err);
  if (rc == 0) rc = mu_bundle_unpack_verified(data, len, info, limits, dest_dir, flags, err);
  if (rc == 0 && ret_info != NULL) {
    *ret_info = info;
  } else {
    mu_bundle_info_free(info);
  }
  return rc;
}

int mu_bundle_unpack_verified(const uint8_t *data, size_t len, const mu_bundle_info *info,
                              const mu_unpack_limits *limits, const char *dest_dir, unsigned flags, mu_err *err) {
  limits = mu_unpack_limits_or_default(limits);
  if (info == NULL || info->manifest == NULL || info->archive_bytes != len)
    return mu_err_set(err, MU_EINVAL, "unpack: the bytes are not the ones verified");
  char *abs = NULL;
  bool *seen = NULL;
  int rc;
  if (mkdir(dest_dir, 0755) != 0) {
    int e = errno;
    return mu_err_set(err, e == EEXIST ? MU_EEXIST : MU_EIO, "destination '%s': %s", dest_dir,
                      e == EEXIST ? "already exists" : strerror(e));
  }
  abs = realpath(dest_dir, NULL);
  seen = calloc(info->manifest->n_files + 1, sizeof *seen);
  if (abs == NULL || seen == NULL) {
    rc = mu_err_set(err, MU_EIO, "destination '%s': %s", dest_dir, abs == NULL ? strerror(errno) : "out of memory");
    rmdir(dest_dir);
    goto out;
  }
  unpack_ctx c = {
      .data = data, .len = len, .limits = limits, .m = info->manifest, .dest = abs, .seen = seen, .err = err};
  if ((flags & MU_UNPACK_NO_UNSHARE) != 0) {
    c.use_prefix = true;
    c.rc = extract(&c);
  } else {
    pthread_t t;
    int pe = pthread_create(&t, NULL, extract_thread, &c);
    if (pe != 0) {
      c.rc = mu_err_set(err, MU_EIO, "unpack thread: %s", strerror(pe));
    } else {
      pthread_join(t, NULL);
    }
  }
  rc = c.rc;
  if (rc != 0) rm_tree(abs);
out:
  free(seen);
  free(abs);
  return rc;
}
