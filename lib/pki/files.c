/* How lib/pki touches the disk: every file is written under a temporary name beside it
 * (O_EXCL, final mode from creation, so a key is never readable by others even briefly),
 * fsynced, then renamed into place, or linked when an existing file must not be replaced. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/pki/internal.h"

int mu__pki_path(char *buf, size_t size, mu_err *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= size) {
    return mu_err_set(err, MU_EINVAL, "path too long (at most %zu bytes)", size - 1);
  }
  return 0;
}

int mu__pki_read_file(const char *path, char **ret, mu_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int code = errno == ENOENT ? MU_ENOENT : MU_EIO;
    return mu_err_set(err, code, "%s: %s", path, strerror(errno));
  }
  struct stat st;
  char *buf = NULL;
  int rc = 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rc = mu_err_set(err, MU_EINVAL, "%s: not a regular file", path);
    goto out;
  }
  if (st.st_size > PKI_FILE_MAX) {
    rc = mu_err_set(err, MU_EINVAL, "%s: %lld bytes, more than the %d a PEM file may have", path, (long long)st.st_size,
                    PKI_FILE_MAX);
    goto out;
  }
  size_t want = (size_t)st.st_size;
  buf = malloc(want + 1);
  if (buf == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto out;
  }
  size_t got = 0;
  while (got < want) {
    ssize_t n = read(fd, buf + got, want - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      rc = mu_err_set(err, MU_EIO, "%s: read: %s", path, n < 0 ? strerror(errno) : "short file");
      goto out;
    }
    got += (size_t)n;
  }
  buf[got] = '\0';
  *ret = buf;
  buf = NULL;
out:
  free(buf);
  close(fd);
  return rc;
}

/* Best effort: makes a rename or link in path's directory durable. */
static void sync_parent(const char *path) {
  char copy[PATH_MAX];
  snprintf(copy, sizeof copy, "%s", path);
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)fsync(fd);
  close(fd);
}

static int write_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

int mu__pki_stage(pki_staged *s, const char *path, const char *data, size_t len, mode_t mode, mu_err *err) {
  uint8_t rnd[6];
  char suffix[13];
  if (RAND_bytes(rnd, sizeof rnd) != 1) return mu__pki_ossl_err(err, MU_EIO, "random bytes");
  mu__pki_hex(rnd, sizeof rnd, suffix);
  int rc = mu__pki_path(s->path, sizeof s->path, err, "%s", path);
  if (rc == 0) rc = mu__pki_path(s->tmp, sizeof s->tmp, err, "%s.tmp-%s", path, suffix);
  if (rc != 0) return rc;
  int fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return mu_err_set(err, MU_EIO, "%s: create: %s", s->tmp, strerror(errno));
  int ok = write_all(fd, data, len) == 0 && fsync(fd) == 0;
  int saved = errno;
  if (close(fd) != 0 && ok) {
    ok = 0;
    saved = errno;
  }
  if (!ok) {
    unlink(s->tmp);
    return mu_err_set(err, MU_EIO, "%s: write: %s", s->tmp, strerror(saved));
  }
  return 0;
}

int mu__pki_commit(pki_staged *s, bool replace, mu_err *err) {
  int rc = replace ? rename(s->tmp, s->path) : link(s->tmp, s->path);
  int saved = errno;
  if (rc != 0 || !replace) unlink(s->tmp);
  if (rc != 0) {
    if (saved == EEXIST) {
      return mu_err_set(err, MU_EEXIST, "%s already exists; not overwriting it", s->path);
    }
    return mu_err_set(err, MU_EIO, "%s: %s", s->path, strerror(saved));
  }
  sync_parent(s->path);
  return 0;
}

void mu__pki_discard(pki_staged *s) { unlink(s->tmp); }

int mu__pki_write_file(const char *path, const char *data, size_t len, mode_t mode, bool replace, mu_err *err) {
  pki_staged s;
  int rc = mu__pki_stage(&s, path, data, len, mode, err);
  if (rc == 0) rc = mu__pki_commit(&s, replace, err);
  return rc;
}

int mu__pki_write_pair(const char *crt_path, const char *crt_pem, const char *key_path, const char *key_pem,
                       bool replace, mu_err *err) {
  struct stat st;
  if (!replace) {
    const char *paths[] = {key_path, crt_path};
    for (size_t i = 0; i < 2; i++) {
      if (lstat(paths[i], &st) == 0) {
        return mu_err_set(err, MU_EEXIST, "%s already exists; not overwriting it", paths[i]);
      }
    }
  }
  pki_staged key, crt;
  int rc = mu__pki_stage(&key, key_path, key_pem, strlen(key_pem), 0600, err);
  if (rc != 0) return rc;
  rc = mu__pki_stage(&crt, crt_path, crt_pem, strlen(crt_pem), 0644, err);
  if (rc != 0) {
    mu__pki_discard(&key);
    return rc;
  }
  rc = mu__pki_commit(&key, replace, err);
  if (rc != 0) {
    mu__pki_discard(&crt);
    return rc;
  }
  rc = mu__pki_commit(&crt, replace, err);
  /* Without replace the key just linked is ours alone: take it back so neither is written. */
  if (rc != 0 && !replace) unlink(key_path);
  return rc;
}
