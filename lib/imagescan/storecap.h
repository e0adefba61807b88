/* The scan's blob store kept under a size bound. A scan's store (plugins/container's layout,
 * blobs only: scans unpack nothing) is a cache: any blob can be fetched or copied again, so
 * the least recently used blobs (by mtime, which mu_scan_store_touch refreshes for the image
 * just scanned) are removed until the store is at most max_bytes; the blobs named in keep
 * never are, and neither is anything of the container plugin's own (rootfs/, refs/). */
#ifndef MU_IMAGESCAN_STORECAP_H
#define MU_IMAGESCAN_STORECAP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

/* Refreshes the mtime of each path (the blobs of the image just scanned). */
void mu_scan_store_touch(const char *const *paths, size_t n);

/* Removes the oldest blobs of store/blobs/sha256 until their total is at most max_bytes,
 * keeping the paths in keep; *ret_removed (may be NULL) counts what went. */
int mu_scan_store_trim(const char *store, uint64_t max_bytes, const char *const *keep, size_t n_keep,
                       size_t *ret_removed, mu_err *err);

#endif
