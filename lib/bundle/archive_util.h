/* Internal to //lib/bundle: the one place that decides which libarchive formats and filters a
 * bundle may use. Readers accept only tar, compressed with zstd or gzip through the linked
 * libraries (never an external program); writers emit restricted pax with fixed options. */
#ifndef MU_BUNDLE_ARCHIVE_UTIL_H
#define MU_BUNDLE_ARCHIVE_UTIL_H

#include <archive.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "lib/bundle/bundle.h"

/* Opens a reader over data (borrowed; must outlive the reader). Caller frees *ret with
 * archive_read_free. Returns 0 or MU_EINVAL / MU_ENOMEM / MU_ENOTSUP. */
int mu_archive_reader_open(const uint8_t *data, size_t len, struct archive **ret, mu_err *err);

/* Sets format (pax restricted) and the filter on a fresh writer, with options that keep the
 * output byte-for-byte reproducible (no gzip timestamp, a given level). level 0 is the default
 * (zstd 3, as `zstd` and `tar --zstd`; gzip 6); else zstd 1..19, gzip 1..9 (MU_EINVAL outside).
 * zstd compresses on `threads` worker threads (0: one per CPU, at most MU_ARCHIVE_MAX_THREADS).
 * zstd's multi-threaded format does not depend on the number of workers, so the same input
 * gives the same bytes on any machine; a libzstd built without threads falls back to its
 * single-threaded format (other bytes, the same content). */
#define MU_ARCHIVE_MAX_THREADS 4
int mu_archive_writer_setup(struct archive *a, mu_bundle_compress compress, int level, int threads, mu_err *err);

#endif
