/* "N" or "P%": a count or a percentage of something counted later (max concurrency, max
 * errors). Shared by the control plane's rollout and the CLI's flags. */
#ifndef MU_BASE_COUNT_OR_PCT_H
#define MU_BASE_COUNT_OR_PCT_H

#include <stdint.h>

#include "lib/base/err.h"

/* Parses "N" (0..1000000: *ret_count = N, *ret_pct = 0) or "P%" (1..100: *ret_count = 0,
 * *ret_pct = P). MU_EINVAL with a message quoting text otherwise. */
int mu_count_or_pct_parse(const char *text, uint32_t *ret_count, uint32_t *ret_pct, mu_err *err);

#endif
