/* A scan's findings as the admission policy's facts (lib/imagepolicy mu_imgscan_summary): the
 * unfixed findings (no fixedIn) counted by severity, and per severity the age in whole days,
 * at now_s, of the oldest published one (its OSV `published` date, "YYYY-MM-DD[...]"). A
 * finding without a readable date counts as published on 1970-01-01 (fail closed: a grace
 * period never hides a finding whose date is unknown); a date after now_s counts as 0 days.
 *
 * Works on the result JSON (report.h: the findings array, as the cache keeps it and
 * `muster image scan -o json` prints it), so a cached result needs no rescan. Kept apart from
 * match.h: lib/imagepolicy and the matcher each have their own severity enum. */
#ifndef MU_IMAGESCAN_SUMMARY_H
#define MU_IMAGESCAN_SUMMARY_H

#include <jansson.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "lib/imagepolicy/imagepolicy.h"

/* Fills ret (zeroed here) from findings, a JSON array of finding objects. MU_EINVAL when
 * findings is not an array or a finding has no known severity (named by its index and id);
 * ret is then zeroed. */
int mu_scan_summary(const json_t *findings, int64_t now_s, mu_imgscan_summary *ret, mu_err *err);

/* The days since 1970-01-01 of "YYYY-MM-DD..." into *ret; false when it is not such a date. */
bool mu_scan_date_days(const char *text, int64_t *ret);

#endif
