/* A scan's result as one JSON object: what the cache stores and what `muster image scan`
 * prints (as JSON lines or as text). Field names are lowerCamelCase (docs/images.md,
 * "Scanning"):
 *   image, digest, feedVersion, feedRecords, user,
 *   os {id, versionId, codename, prettyName},
 *   packages {dpkg, apk, python, total}, packagesSkipped, packagesBadVersion,
 *   counts {critical, high, medium, low, unknown},
 *   findings [{severity, id, aliases[], package, packageKind, installedVersion, source, sourceVersion,
 *              fixedIn, ecosystem, published, path}],
 *   risks [{riskKind, path, detail}], risksDropped */
#ifndef MU_IMAGESCAN_REPORT_H
#define MU_IMAGESCAN_REPORT_H

#include <jansson.h>
#include <stddef.h>

#include "lib/imagescan/inventory.h"
#include "lib/imagescan/match.h"

typedef struct mu_scan_meta {
  const char *image;        /* as the user named it */
  const char *digest;       /* the manifest's */
  const char *feed_version; /* "none" without a feed */
  size_t feed_records;
  const char *user; /* the image config's User ("" = root) */
} mu_scan_meta;

/* A new object (the caller's), NULL when out of memory. */
json_t *mu_scan_result_json(const mu_scan_meta *m, const mu_inventory *inv, const mu_findings *f);

/* True when user (an image config's User) means root: "", "root", "0", "root:...", "0:...". */
bool mu_user_is_root(const char *user);

#endif
