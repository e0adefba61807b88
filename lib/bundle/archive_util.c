/* libarchive set-up shared by pack, verify and unpack (see archive_util.h): which formats and
 * filters are allowed in, and how bundles are written so the bytes are reproducible. */
#include "lib/bundle/archive_util.h"

#include <stdio.h>
#include <unistd.h>

int mu_archive_reader_open(const uint8_t *data, size_t len, struct archive **ret, mu_err *err) {
  struct archive *a = archive_read_new();
  if (a == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  int rc = 0;
  /* Register a filter only when its library is linked: libarchive would otherwise fall back
   * to running an external program on untrusted input. */
  if (archive_libzstd_version() != NULL && archive_read_support_filter_zstd(a) != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_ENOTSUP, "libarchive cannot read zstd in-process");
  }
  if (rc == 0 && archive_zlib_version() != NULL && archive_read_support_filter_gzip(a) != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_ENOTSUP, "libarchive cannot read gzip in-process");
  }
  if (rc == 0 && archive_read_support_format_tar(a) != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_ENOTSUP, "libarchive cannot read tar: %s", archive_error_string(a));
  }
  if (rc == 0 && archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
    rc = mu_err_set(err, MU_EINVAL, "archive is truncated or corrupt: %s", archive_error_string(a));
  }
  if (rc != 0) {
    archive_read_free(a);
    return rc;
  }
  *ret = a;
  return 0;
}

int mu_archive_writer_setup(struct archive *a, mu_bundle_compress compress, int level, int threads, mu_err *err) {
  if (compress == MU_BUNDLE_COMPRESS_AUTO) {
    compress = archive_libzstd_version() != NULL ? MU_BUNDLE_COMPRESS_ZSTD : MU_BUNDLE_COMPRESS_GZIP;
  }
  int max_level = compress == MU_BUNDLE_COMPRESS_ZSTD ? 19 : 9;
  if (level < 0 || level > max_level) {
    return mu_err_set(err, MU_EINVAL, "compression level %d: %s takes 1..%d", level,
                      compress == MU_BUNDLE_COMPRESS_ZSTD ? "zstd" : "gzip", max_level);
  }
  char level_text[8];
  snprintf(level_text, sizeof level_text, "%d", level ? level : (compress == MU_BUNDLE_COMPRESS_ZSTD ? 3 : 6));
  /* Without this the compressed stream is padded with zeros to a 10 KiB block, which a zstd
   * reader then takes for a broken second frame. */
  archive_write_set_bytes_in_last_block(a, 1);
  if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK) {
    return mu_err_set(err, MU_ENOTSUP, "libarchive: pax: %s", archive_error_string(a));
  }
  if (compress == MU_BUNDLE_COMPRESS_ZSTD) {
    if (archive_libzstd_version() == NULL || archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
        archive_write_set_filter_option(a, "zstd", "compression-level", level_text) != ARCHIVE_OK) {
      return mu_err_set(err, MU_ENOTSUP, "libarchive cannot write zstd in-process");
    }
    if (threads <= 0) {
      long cpus = sysconf(_SC_NPROCESSORS_ONLN);
      threads = cpus < 1 ? 1 : cpus > MU_ARCHIVE_MAX_THREADS ? MU_ARCHIVE_MAX_THREADS : (int)cpus;
    }
    char threads_text[8];
    snprintf(threads_text, sizeof threads_text, "%d", threads);
    /* older libarchive or a libzstd without threads: one thread, still valid zstd */
    (void)archive_write_set_filter_option(a, "zstd", "threads", threads_text);
  } else {
    if (archive_zlib_version() == NULL || archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
        archive_write_set_filter_option(a, "gzip", "compression-level", level_text) != ARCHIVE_OK) {
      return mu_err_set(err, MU_ENOTSUP, "libarchive cannot write gzip in-process");
    }
    /* The gzip header carries a timestamp by default; a NULL value turns it off. */
    if (archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK) {
      return mu_err_set(err, MU_ENOTSUP, "libarchive: gzip: cannot drop the timestamp");
    }
  }
  return 0;
}
