/* A bounded list of owned strings, for config fields such as control addresses, etcd
 * endpoints and trust key paths. */
#ifndef MU_STRLIST_H
#define MU_STRLIST_H

#include <stddef.h>

#include "lib/base/err.h"

#define MU_STRLIST_MAX_DEFAULT 64

/* Owns items and each string; free with mu_strlist_free. Call mu_strlist_init first. */
typedef struct mu_strlist {
  char **items;
  size_t n;
  size_t max; /* bound on n */
} mu_strlist;

void mu_strlist_init(mu_strlist *list); /* max = MU_STRLIST_MAX_DEFAULT */
/* Frees every string; the list is empty (and reusable) afterwards. */
void mu_strlist_free(mu_strlist *list);
/* Appends a copy of s. MU_ENOSPC when full ("too many items (max N)"), MU_ENOMEM. */
int mu_strlist_append(mu_strlist *list, const char *s, mu_err *err);
/* Replaces dst's items with copies of src's. On error dst is unchanged. */
int mu_strlist_copy(mu_strlist *dst, const mu_strlist *src, mu_err *err);
/* Splits "a, b,c" on commas (trimming spaces) and appends each item; an empty item is an
 * error. On error list is unchanged. */
int mu_strlist_split(mu_strlist *list, const char *text, mu_err *err);
/* Joins with sep into buf (always NUL-terminated when size > 0); returns the needed length. */
size_t mu_strlist_join(const mu_strlist *list, const char *sep, char *buf, size_t size);

#endif
