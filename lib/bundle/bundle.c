/* Shared bundle helpers: default limits, the "sha256:<hex>" digest of archive bytes, and a
 * bounded whole-file reader used by the CLI and the agent to load bundles and .sig files. */
#include "lib/bundle/bundle.h"
#include "lib/hash/sha256.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const mu_unpack_limits default_limits = {
    .max_archive_bytes = 256ull << 20,
    .max_total_bytes = 1ull << 30,
    .max_file_bytes = 512ull << 20,
    .max_entries = 10000,
    .max_manifest_bytes = 4ull << 20,
};

void mu_unpack_limits_default(mu_unpack_limits *ret) { *ret = default_limits; }

const mu_unpack_limits *mu_unpack_limits_or_default(const mu_unpack_limits *limits) {
  return limits != NULL ? limits : &default_limits;
}

void mu_bundle_hex32(const uint8_t in[32], char ret_hex[65]) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    ret_hex[2 * i] = hex[in[i] >> 4];
    ret_hex[2 * i + 1] = hex[in[i] & 0xf];
  }
  ret_hex[64] = '\0';
}

void mu_bundle_digest(const uint8_t *data, size_t len, char ret_digest[MU_BUNDLE_DIGEST_SIZE]) {
  uint8_t sum[crypto_hash_sha256_BYTES];
  /* libcrypto (SHA extensions) first; libsodium only when it cannot allocate its context */
  if (mu_sha256_once(data, len, sum) != 0) crypto_hash_sha256(sum, data, len);
  memcpy(ret_digest, MU_BUNDLE_DIGEST_PREFIX, sizeof MU_BUNDLE_DIGEST_PREFIX - 1);
  mu_bundle_hex32(sum, ret_digest + sizeof MU_BUNDLE_DIGEST_PREFIX - 1);
}

int mu_bundle_digest_check(const char *text, mu_err *err) {
  size_t plen = sizeof MU_BUNDLE_DIGEST_PREFIX - 1;
  if (text == NULL || strncmp(text, MU_BUNDLE_DIGEST_PREFIX, plen) != 0 || strlen(text) != plen + 64) {
    return mu_err_set(err, MU_EINVAL, "digest '%s': want sha256:<64 hex digits>", text != NULL ? text : "");
  }
  for (const char *p = text + plen; *p != '\0'; p++) {
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
      return mu_err_set(err, MU_EINVAL, "digest '%s': want lowercase hex digits", text);
    }
  }
  return 0;
}

int mu_bundle_read_file(const char *path, uint64_t max_bytes, uint8_t **ret_data, size_t *ret_len, mu_err *err) {
  uint8_t *buf = NULL;
  int rc;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return mu_err_set(err, e == ENOENT ? MU_ENOENT : MU_EIO, "file '%s': %s", path, strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    rc = mu_err_set(err, MU_EIO, "file '%s': %s", path, strerror(errno));
    goto fail;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = mu_err_set(err, MU_EINVAL, "file '%s': not a regular file", path);
    goto fail;
  }
  if ((uint64_t)st.st_size > max_bytes) {
    rc = mu_err_set(err, MU_ENOSPC, "file '%s': %lld bytes, over the limit of %llu", path, (long long)st.st_size,
                    (unsigned long long)max_bytes);
    goto fail;
  }
  size_t cap = (size_t)st.st_size;
  buf = malloc(cap + 1);
  if (buf == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "file '%s': out of memory", path);
    goto fail;
  }
  size_t len = 0;
  /* Read until EOF but never past cap: a file that grows while we read is cut off and
   * reported, not followed. */
  for (;;) {
    if (len == cap) {
      char extra;
      ssize_t n = read(fd, &extra, 1);
      if (n > 0) {
        rc = mu_err_set(err, MU_EIO, "file '%s': changed while reading", path);
        goto fail;
      }
      break;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = mu_err_set(err, MU_EIO, "file '%s': %s", path, strerror(errno));
      goto fail;
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  close(fd);
  *ret_data = buf;
  *ret_len = len;
  return 0;
fail:
  free(buf);
  close(fd);
  return rc;
}
