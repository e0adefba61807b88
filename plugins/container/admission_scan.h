/* The second half of image admission (docs/images.md#admission-policy): a policy's
 * max_severity, checked after the pull put the image's layers in the store and before the
 * container starts. The layers are scanned by lib/imagescan against the agent's feed (the
 * helper's config "scan_feed_dir": the plugin's MUSTER_CONTAINER_SCAN_FEED_DIR, from the
 * agent's container_scan_feed_dir, else MUSTER_FEED_DIR), through the scan cache in
 * <store>/scan-cache (per manifest digest + feed version: a warm start does not rescan).
 * No feed configured, or one that cannot be read, refuses the image naming the config key
 * (fail closed). Only muster-container-full has it (the scanner needs libarchive). */
#ifndef MU_CTR_ADMISSION_SCAN_H
#define MU_CTR_ADMISSION_SCAN_H

#include "lib/base/err.h"
#include "plugins/container/admission.h"
#include "plugins/container/image.h"

/* When adm->scan_pending: scans img (pulled into store) and evaluates every policy's
 * max_severity with the scan's summary. 0 when allowed (or nothing was pending); MU_EPERM
 * with adm->refused, adm->report and err naming every violation when refused. progress_fd
 * (-1: none) gets a "progress" line saying what was scanned. */
int mu_ctr_admission_scan(mu_ctr_admission *adm, const char *store, const mu_image *img, int progress_fd, mu_err *err);

#endif
