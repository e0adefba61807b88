/* Scan results cached per image digest + feed version: DIR/<format>-<digest hex>-<feed
 * version, 16 hex or "none">.json, written atomically. At most max_entries files are kept
 * (the least recently written go first); a damaged file is a miss and is removed. */
#ifndef MU_IMAGESCAN_CACHE_H
#define MU_IMAGESCAN_CACHE_H

#include <jansson.h>
#include <stddef.h>

#include "lib/base/err.h"

/* *ret (the caller's) on a hit; MU_ENOENT on a miss. */
int mu_scan_cache_get(const char *dir, const char *digest, const char *feed_version, json_t **ret, mu_err *err);

/* Stores result (borrowed); max_entries 0 = 256. */
int mu_scan_cache_put(const char *dir, const char *digest, const char *feed_version, const json_t *result,
                      size_t max_entries, mu_err *err);

#endif
