/* Label selectors: "role=web,dc=eu*,!canary,tier!=db,gpu,cpus>=8". Terms are comma-separated
 * and all must hold: `k=v` (v may be a glob), `k!=v`, `k` (label present), `!k` (label
 * absent), and numeric comparisons `k>=n`, `k<=n`, `k>n`, `k<n` (a value that is not a
 * number never matches them). Used by job targets, agent listings and scopes. */
#ifndef MU_SELECTOR_H
#define MU_SELECTOR_H

#include <stddef.h>

#include "lib/base/err.h"

typedef struct mu_selector mu_selector;

/* Parses text; an empty text matches everything. Caller frees with mu_selector_free. Errors
 * name the bad term: "selector term 3 '=web': empty label key". */
int mu_selector_parse(const char *text, mu_selector **ret, mu_err *err);
void mu_selector_free(mu_selector *sel);

/* Label lookup supplied by the caller: value of key or NULL. */
typedef const char *(*mu_selector_lookup_fn)(const void *labels, const char *key);

int mu_selector_matches(const mu_selector *sel, mu_selector_lookup_fn lookup, const void *labels);

#endif
