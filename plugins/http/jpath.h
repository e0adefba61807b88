/* A small JSON path subset for HTTP task conditions and extraction: `$`, then any sequence of
 * `.name`, `['name']` / `["name"]` and `[N]` (N may be negative: from the end). No wildcards,
 * filters or slices. Paths are checked at validation and evaluated on jansson values. */
#ifndef MU_JPATH_H
#define MU_JPATH_H

#include <jansson.h>
#include <stddef.h>

#define MU_JPATH_MAX 512

/* Checks path's syntax. Returns 0, or -EINVAL with errbuf (cap bytes) saying what is wrong
 * ("expected '.' or '[' at offset 3"). */
int mu_jpath_check(const char *path, char *errbuf, size_t cap);

/* Evaluates path on root. Returns the value found (borrowed from root), or NULL when the path
 * is bad or leads nowhere. */
json_t *mu_jpath_eval(json_t *root, const char *path);

/* The value as text for comparison and output params: a string's own text, anything else its
 * compact JSON. Caller frees; NULL when out of memory. */
char *mu_jpath_text(const json_t *v);

#endif
