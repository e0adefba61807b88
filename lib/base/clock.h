/* Time helpers: wall-clock and monotonic milliseconds, and duration strings ("30s", "1h30m",
 * "250ms") as used in job files and configs. */
#ifndef MU_CLOCK_H
#define MU_CLOCK_H

#include <stdint.h>

#include "lib/base/err.h"

int64_t mu_now_ms(void);  /* CLOCK_REALTIME, ms since the epoch */
int64_t mu_mono_ms(void); /* CLOCK_MONOTONIC, ms */

/* Parses a duration: a sequence of <number><unit> with units ms, s, m, h, d ("1h30m", "2.5s").
 * A bare number is seconds. Returns 0 or MU_EINVAL with a message quoting the text. */
int mu_duration_parse(const char *text, int64_t *ret_ms, mu_err *err);

/* Parses a size: a number with an optional unit K, M, G, T (powers of 1024; KiB/KB/k accepted)
 * or B. Returns 0 or MU_EINVAL. */
int mu_size_parse(const char *text, uint64_t *ret_bytes, mu_err *err);

#endif
