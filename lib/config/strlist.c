/* mu_strlist: a bounded, owned list of strings with comma splitting for config values
 * ("10.0.0.1:7400,10.0.0.2:7400"). Operations are all-or-nothing. */
#include "lib/config/strlist.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mu_strlist_init(mu_strlist *list) {
  list->items = NULL;
  list->n = 0;
  list->max = MU_STRLIST_MAX_DEFAULT;
}

void mu_strlist_free(mu_strlist *list) {
  for (size_t i = 0; i < list->n; i++) free(list->items[i]);
  free(list->items);
  list->items = NULL;
  list->n = 0;
}

int mu_strlist_append(mu_strlist *list, const char *s, mu_err *err) {
  if (list->n >= list->max) return mu_err_set(err, MU_ENOSPC, "too many items (max %zu)", list->max);
  char *copy = strdup(s);
  char **items = copy ? realloc(list->items, (list->n + 1) * sizeof *items) : NULL;
  if (items == NULL) {
    free(copy);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  list->items = items;
  items[list->n++] = copy;
  return 0;
}

int mu_strlist_copy(mu_strlist *dst, const mu_strlist *src, mu_err *err) {
  mu_strlist tmp;
  mu_strlist_init(&tmp);
  tmp.max = dst->max > src->n ? dst->max : src->n;
  for (size_t i = 0; i < src->n; i++) {
    int rc = mu_strlist_append(&tmp, src->items[i], err);
    if (rc < 0) {
      mu_strlist_free(&tmp);
      return rc;
    }
  }
  tmp.max = dst->max;
  mu_strlist_free(dst);
  *dst = tmp;
  return 0;
}

int mu_strlist_split(mu_strlist *list, const char *text, mu_err *err) {
  int rc = 0;
  mu_strlist tmp;
  mu_strlist_init(&tmp);
  tmp.max = list->max;
  rc = mu_strlist_copy(&tmp, list, err);
  if (rc < 0) return rc;
  const char *p = text;
  for (size_t pos = 1;; pos++) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    while (len > 0 && isspace((unsigned char)*p)) {
      p++;
      len--;
    }
    while (len > 0 && isspace((unsigned char)p[len - 1])) len--;
    if (len == 0) {
      rc = mu_err_set(err, MU_EINVAL, "item %zu is empty", pos);
      goto fail;
    }
    char *item = strndup(p, len);
    if (item == NULL) {
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      goto fail;
    }
    rc = mu_strlist_append(&tmp, item, err);
    free(item);
    if (rc < 0) goto fail;
    if (comma == NULL) break;
    p = comma + 1;
  }
  mu_strlist_free(list);
  *list = tmp;
  return 0;
fail:
  mu_strlist_free(&tmp);
  return rc;
}

size_t mu_strlist_join(const mu_strlist *list, const char *sep, char *buf, size_t size) {
  size_t need = 0;
  if (size > 0) buf[0] = '\0';
  for (size_t i = 0; i < list->n; i++) {
    int w = snprintf(buf ? buf + (need < size ? need : size) : NULL, need < size ? size - need : 0, "%s%s",
                     i ? sep : "", list->items[i]);
    if (w > 0) need += (size_t)w;
  }
  return need;
}
