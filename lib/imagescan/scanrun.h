/* One image's scan from layer blobs already on disk, against an imported feed directory
 * (feed.h), through the result cache (cache.h): what the container helper runs before a
 * policy's max_severity is checked. A cached result for (digest, the feed's current version)
 * is returned without reading a layer or loading the feed; otherwise the layers are read,
 * matched, and the result stored. */
#ifndef MU_IMAGESCAN_SCANRUN_H
#define MU_IMAGESCAN_SCANRUN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/base/err.h"
#include "lib/imagescan/feed.h"
#include "lib/imagescan/inventory.h"

typedef struct mu_scan_run {
  const char *image;                  /* named in the result */
  const char *digest;                 /* the manifest's "sha256:..." */
  const char *user;                   /* the config's User ("" = root) */
  const char *const *layers;          /* blob paths, bottom first */
  size_t n_layers;                    /*  */
  const char *feed_dir;               /* an imported feed (required) */
  const char *cache_dir;              /* NULL: no cache */
  size_t cache_max;                   /* results kept; 0 = 256 */
  const mu_inventory_limits *ilimits; /* NULL: defaults */
  const mu_feed_limits *flimits;      /* NULL: defaults */
} mu_scan_run;

/* The result (report.h) into *ret (the caller's); *ret_cached says whether it came from the
 * cache. MU_ENOENT when feed_dir holds no imported feed, MU_EIO when it cannot be read,
 * MU_ENOSPC a bound of the layers, both naming what. A cache that cannot be written is not
 * an error (the scan stands). */
int mu_scan_run_layers(const mu_scan_run *r, json_t **ret, bool *ret_cached, mu_err *err);

#endif
