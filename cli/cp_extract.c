/* Safe extraction of a host's tar for `muster cp --from-hosts` (see cp_extract.h). libarchive
 * reads only the tar format here (no compression filters, no other formats), and writes with
 * ARCHIVE_EXTRACT_SECURE_NODOTDOT | SECURE_SYMLINKS | SECURE_NOABSOLUTEPATHS relative to
 * dest_dir: the extraction runs with dest_dir as the working directory of a short-lived
 * thread of its own (unshare(CLONE_FS)) so the process's cwd never changes. */
#define _GNU_SOURCE /* unshare */
#include "cli/cp_extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MU_CP_DEFAULT_ENTRIES 100000u
#define MU_CP_DEFAULT_BYTES (4ull << 30)

typedef struct extract_job {
  struct archive *in;
  const char *dest_dir;
  size_t max_entries;
  uint64_t max_bytes;
  size_t entries;
  mu_err *err;
  int rc;
} extract_job;

static int entry_allowed(struct archive_entry *e, mu_err *err) {
  const char *path = archive_entry_pathname(e);
  if (path == NULL || path[0] == '\0') return mu_err_set(err, MU_EINVAL, "an entry has no name");
  if (archive_entry_hardlink(e) != NULL) return mu_err_set(err, MU_EINVAL, "%s: hardlinks are not extracted", path);
  mode_t type = archive_entry_filetype(e);
  if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
    return mu_err_set(err, MU_EINVAL, "%s: only files, directories and symlinks are extracted", path);
  if (path[0] == '/') return mu_err_set(err, MU_EINVAL, "%s: absolute path", path);
  for (const char *p = path; p != NULL; p = strchr(p, '/')) {
    if (*p == '/') p++;
    if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == '\0'))
      return mu_err_set(err, MU_EINVAL, "%s: a '..' component", path);
  }
  return 0;
}

static void extract_all(extract_job *j) {
  struct archive *out = archive_write_disk_new();
  struct archive_entry *e;
  uint64_t bytes = 0;
  if (out == NULL) {
    j->rc = mu_err_set(j->err, MU_ENOMEM, "out of memory");
    return;
  }
  archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                          ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_PERM);
  for (;;) {
    int r = archive_read_next_header(j->in, &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      j->rc = mu_err_set(j->err, MU_EINVAL, "not a complete tar archive: %s",
                         archive_error_string(j->in) ? archive_error_string(j->in) : "?");
      break;
    }
    j->rc = entry_allowed(e, j->err);
    if (j->rc != 0) break;
    if (++j->entries > j->max_entries) {
      j->rc = mu_err_set(j->err, MU_ENOSPC, "more than %zu entries", j->max_entries);
      break;
    }
    archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
    archive_entry_set_uid(e, getuid());
    archive_entry_set_gid(e, getgid());
    if (archive_write_header(out, e) < ARCHIVE_WARN) {
      j->rc = mu_err_set(j->err, MU_EIO, "%s: %s", archive_entry_pathname(e),
                         archive_error_string(out) ? archive_error_string(out) : "cannot write");
      break;
    }
    const void *buf;
    size_t len;
    la_int64_t off;
    while ((r = archive_read_data_block(j->in, &buf, &len, &off)) == ARCHIVE_OK) {
      bytes += len;
      if (bytes > j->max_bytes) {
        j->rc = mu_err_set(j->err, MU_ENOSPC, "more than %llu bytes of files", (unsigned long long)j->max_bytes);
        break;
      }
      if (archive_write_data_block(out, buf, len, off) < ARCHIVE_WARN) {
        j->rc = mu_err_set(j->err, MU_EIO, "%s: %s", archive_entry_pathname(e),
                           archive_error_string(out) ? archive_error_string(out) : "cannot write");
        break;
      }
    }
    if (j->rc == 0 && r != ARCHIVE_EOF)
      j->rc = mu_err_set(j->err, MU_EINVAL, "%s: truncated or corrupt: %s", archive_entry_pathname(e),
                         archive_error_string(j->in) ? archive_error_string(j->in) : "?");
    if (j->rc != 0) break;
    if (archive_write_finish_entry(out) < ARCHIVE_WARN) {
      j->rc = mu_err_set(j->err, MU_EIO, "%s: %s", archive_entry_pathname(e),
                         archive_error_string(out) ? archive_error_string(out) : "cannot write");
      break;
    }
  }
  if (archive_write_close(out) < ARCHIVE_WARN && j->rc == 0)
    j->rc = mu_err_set(j->err, MU_EIO, "%s", archive_error_string(out));
  archive_write_free(out);
}

static void *extract_thread(void *arg) {
  extract_job *j = arg;
  if (unshare(CLONE_FS) != 0 || chdir(j->dest_dir) != 0) {
    j->rc = mu_err_set(j->err, MU_EIO, "%s: %s", j->dest_dir, strerror(errno));
    return NULL;
  }
  extract_all(j);
  return NULL;
}

static int run(struct archive *in, const char *dest_dir, const mu_cp_limits *limits, size_t *ret_entries, mu_err *err) {
  if (mkdir(dest_dir, 0755) != 0 && errno != EEXIST)
    return mu_err_set(err, MU_EIO, "%s: %s", dest_dir, strerror(errno));
  extract_job j = {.in = in, .dest_dir = dest_dir, .err = err};
  j.max_entries = limits && limits->max_entries ? limits->max_entries : MU_CP_DEFAULT_ENTRIES;
  j.max_bytes = limits && limits->max_bytes ? limits->max_bytes : MU_CP_DEFAULT_BYTES;
  pthread_t t;
  if (pthread_create(&t, NULL, extract_thread, &j) != 0)
    return mu_err_set(err, MU_EIO, "cannot start the extraction thread");
  pthread_join(t, NULL);
  if (ret_entries != NULL) *ret_entries = j.entries;
  return j.rc;
}

static struct archive *tar_reader(void) {
  struct archive *in = archive_read_new();
  if (in != NULL) {
    archive_read_support_format_tar(in);
    archive_read_support_format_gnutar(in);
  }
  return in;
}

int mu_cp_extract_file(const char *tar_path, const char *dest_dir, const mu_cp_limits *limits, size_t *ret_entries,
                       mu_err *err) {
  struct archive *in = tar_reader();
  if (in == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  int rc;
  if (archive_read_open_filename(in, tar_path, 64 * 1024) != ARCHIVE_OK)
    rc = mu_err_set(err, MU_EINVAL, "%s: %s", tar_path, archive_error_string(in));
  else rc = run(in, dest_dir, limits, ret_entries, err);
  archive_read_free(in);
  return rc;
}

int mu_cp_extract_mem(const uint8_t *data, size_t len, const char *dest_dir, const mu_cp_limits *limits,
                      size_t *ret_entries, mu_err *err) {
  struct archive *in = tar_reader();
  if (in == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  int rc;
  if (archive_read_open_memory(in, data, len) != ARCHIVE_OK)
    rc = mu_err_set(err, MU_EINVAL, "%s", archive_error_string(in));
  else rc = run(in, dest_dir, limits, ret_entries, err);
  archive_read_free(in);
  return rc;
}
