/* A strict reader of Prometheus' text exposition format (0.0.4), for tests and the fuzz
 * target: says whether text is well formed — every line a "# HELP name text", "# TYPE name
 * counter|gauge|histogram|summary|untyped", another comment, or a sample
 * `name{label="value",...} number [timestamp]` with valid names, escapes and numbers, each
 * sample's family TYPEd at most once and before its samples, ending in a newline. */
#ifndef MU_METRICS_EXPO_CHECK_H
#define MU_METRICS_EXPO_CHECK_H

#include <stddef.h>

#include "lib/base/err.h"

/* 0 when text[0..len) is well formed, else MU_EINVAL naming the line and what is wrong.
 * *ret_samples (may be NULL) gets the number of sample lines. */
int mu_prom_check(const char *text, size_t len, size_t *ret_samples, mu_err *err);

#endif
