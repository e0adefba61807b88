/* Bundles: the common pieces every bundle module shares — the digest string, the size and
 * count limits that bound packing and unpacking, and a bounded whole-file reader.
 * See docs/bundles.md for the format; pack.h, keys.h, verify.h, unpack.h and version.h for
 * the operations. */
#ifndef MU_BUNDLE_H
#define MU_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

/* "sha256:" + 64 hex digits + NUL. */
#define MU_BUNDLE_DIGEST_SIZE 72
#define MU_BUNDLE_DIGEST_PREFIX "sha256:"
/* The first entry of every bundle. */
#define MU_BUNDLE_MANIFEST_NAME "MANIFEST.json"
/* Longest path (bytes) of any entry inside a bundle. */
#define MU_BUNDLE_PATH_MAX 1024

/* Compression of new bundles. AUTO picks zstd when libarchive has libzstd, else gzip. */
typedef enum {
  MU_BUNDLE_COMPRESS_AUTO = 0,
  MU_BUNDLE_COMPRESS_ZSTD,
  MU_BUNDLE_COMPRESS_GZIP,
} mu_bundle_compress;

/* Bounds on one bundle. Packing applies the same bounds, so `muster bundle pack` never makes a
 * bundle an agent with default limits would refuse. Every field must be > 0. */
typedef struct mu_unpack_limits {
  uint64_t max_archive_bytes;  /* compressed bundle bytes held in memory (default 256 MiB) */
  uint64_t max_total_bytes;    /* sum of unpacked file sizes (default 1 GiB) */
  uint64_t max_file_bytes;     /* one unpacked file (default 512 MiB) */
  uint64_t max_entries;        /* files + dirs + symlinks, manifest excluded (default 10000) */
  uint64_t max_manifest_bytes; /* MANIFEST.json (default 4 MiB) */
} mu_unpack_limits;

/* Fills *ret with the defaults above. */
void mu_unpack_limits_default(mu_unpack_limits *ret);

/* Returns limits, or a pointer to static defaults when limits is NULL (read-only). */
const mu_unpack_limits *mu_unpack_limits_or_default(const mu_unpack_limits *limits);

/* Writes "sha256:<hex of sha256(data)>" into ret_digest. */
void mu_bundle_digest(const uint8_t *data, size_t len, char ret_digest[MU_BUNDLE_DIGEST_SIZE]);

/* Checks that text is "sha256:" + 64 lowercase hex digits. Returns 0 or MU_EINVAL. */
int mu_bundle_digest_check(const char *text, mu_err *err);

/* Hex-encodes 32 bytes into 65 chars (NUL-terminated). */
void mu_bundle_hex32(const uint8_t in[32], char ret_hex[65]);

/* Reads a whole regular file of at most max_bytes. On success *ret_data (caller frees with
 * free(); NUL-terminated for convenience, the NUL not counted) and *ret_len are set.
 * Errors: MU_ENOENT (missing), MU_ENOSPC (over max_bytes), MU_EIO, MU_EINVAL (not a file). */
int mu_bundle_read_file(const char *path, uint64_t max_bytes, uint8_t **ret_data, size_t *ret_len, mu_err *err);

#endif
