/* Label sets: validation of keys and values, "k=v,k2=v2" parsing and formatting. Used by the
 * agent config (its own labels) and by anything that reads selector-like strings. Every
 * operation either succeeds completely or leaves the set as it was. */
#include "lib/config/labels.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mu_labels_init(mu_labels *labels) { mu_labels_init_max(labels, MU_LABELS_MAX_DEFAULT); }

void mu_labels_init_max(mu_labels *labels, size_t max) {
  labels->items = NULL;
  labels->n = 0;
  labels->max = max;
}

void mu_labels_free(mu_labels *labels) {
  for (size_t i = 0; i < labels->n; i++) {
    free(labels->items[i].key);
    free(labels->items[i].value);
  }
  free(labels->items);
  labels->items = NULL;
  labels->n = 0;
}

static int key_char_ok(char c) { return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-' || c == '/'; }

static int value_char_ok(char c, int flags) {
  if (isalnum((unsigned char)c) || strchr("._:/@+-", c) != NULL) return 1;
  return (flags & MU_LABELS_GLOB) && strchr("*?[]", c) != NULL;
}

int mu_label_key_check(const char *key, mu_err *err) {
  size_t len = strlen(key);
  if (len == 0) return mu_err_set(err, MU_EINVAL, "empty label key");
  if (len > MU_LABEL_KEY_MAX)
    return mu_err_set(err, MU_EINVAL, "label key '%.20s...' is %zu bytes long (max %d)", key, len, MU_LABEL_KEY_MAX);
  if (!isalnum((unsigned char)key[0]))
    return mu_err_set(err, MU_EINVAL, "label key '%s' must start with a letter or digit", key);
  for (size_t i = 0; i < len; i++)
    if (!key_char_ok(key[i]))
      return mu_err_set(err, MU_EINVAL,
                        "label key '%s' has a bad character at position %zu (allowed: "
                        "letters, digits, . _ - /)",
                        key, i + 1);
  return 0;
}

int mu_label_value_check(const char *key, const char *value, int flags, mu_err *err) {
  size_t len = strlen(value);
  if (len > MU_LABEL_VALUE_MAX)
    return mu_err_set(err, MU_EINVAL, "label '%s': value is %zu bytes long (max %d)", key, len, MU_LABEL_VALUE_MAX);
  for (size_t i = 0; i < len; i++)
    if (!value_char_ok(value[i], flags))
      return mu_err_set(err, MU_EINVAL,
                        "label '%s': value \"%s\" has a bad character at position %zu "
                        "(allowed: letters, digits, . _ : / @ + -%s)",
                        key, value, i + 1, (flags & MU_LABELS_GLOB) ? " * ? [ ]" : "");
  return 0;
}

static ssize_t find(const mu_labels *labels, const char *key) {
  for (size_t i = 0; i < labels->n; i++)
    if (strcmp(labels->items[i].key, key) == 0) return (ssize_t)i;
  return -1;
}

int mu_labels_set(mu_labels *labels, const char *key, const char *value, int flags, mu_err *err) {
  int rc = mu_label_key_check(key, err);
  if (rc < 0) return rc;
  rc = mu_label_value_check(key, value, flags, err);
  if (rc < 0) return rc;
  char *v = strdup(value);
  if (v == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  ssize_t at = find(labels, key);
  if (at >= 0) {
    free(labels->items[at].value);
    labels->items[at].value = v;
    return 0;
  }
  if (labels->n >= labels->max) {
    free(v);
    return mu_err_set(err, MU_ENOSPC, "too many labels (max %zu), cannot add '%s'", labels->max, key);
  }
  char *k = strdup(key);
  mu_label *items = k ? realloc(labels->items, (labels->n + 1) * sizeof *items) : NULL;
  if (items == NULL) {
    free(k);
    free(v);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  labels->items = items;
  items[labels->n].key = k;
  items[labels->n].value = v;
  labels->n++;
  return 0;
}

const char *mu_labels_get(const mu_labels *labels, const char *key) {
  ssize_t at = find(labels, key);
  return at >= 0 ? labels->items[at].value : NULL;
}

int mu_labels_copy(mu_labels *dst, const mu_labels *src, mu_err *err) {
  mu_labels tmp;
  mu_labels_init_max(&tmp, dst->max > src->n ? dst->max : src->n);
  for (size_t i = 0; i < src->n; i++) {
    /* src may hold glob values (a selector): copy what is there. */
    int rc = mu_labels_set(&tmp, src->items[i].key, src->items[i].value, MU_LABELS_GLOB, err);
    if (rc < 0) {
      mu_labels_free(&tmp);
      return rc;
    }
  }
  tmp.max = dst->max;
  mu_labels_free(dst);
  *dst = tmp;
  return 0;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *end = s + strlen(s);
  while (end > s && isspace((unsigned char)end[-1])) end--;
  *end = '\0';
  return s;
}

int mu_labels_parse(mu_labels *labels, const char *text, int flags, mu_err *err) {
  int rc = 0;
  mu_labels tmp;
  mu_labels_init_max(&tmp, labels->max);
  char *copy = strdup(text);
  if (copy == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  rc = mu_labels_copy(&tmp, labels, err);
  if (rc < 0) goto fail;
  if (*trim(copy) == '\0') goto done; /* "" is the empty set */
  mu_labels seen;                     /* keys already given in this text, to refuse repeats */
  mu_labels_init_max(&seen, (size_t)-1);
  char *save = NULL;
  size_t pos = 0;
  /* strtok_r would skip empty items silently; split by hand so "a=1,,b=2" is an error. */
  for (char *item = copy; item != NULL; pos++) {
    char *comma = strchr(item, ',');
    if (comma != NULL) *comma = '\0';
    save = comma ? comma + 1 : NULL;
    char *it = trim(item);
    char *eq = strchr(it, '=');
    if (*it == '\0') {
      rc = mu_err_set(err, MU_EINVAL, "label %zu is empty (expected KEY=VALUE[,KEY=VALUE...])", pos + 1);
      break;
    }
    if (eq == NULL) {
      rc = mu_err_set(err, MU_EINVAL, "label '%s': expected KEY=VALUE", it);
      break;
    }
    *eq = '\0';
    char *key = trim(it);
    char *value = trim(eq + 1);
    if (mu_labels_get(&seen, key) != NULL) {
      rc = mu_err_set(err, MU_EINVAL, "label '%s' given twice", key);
      break;
    }
    rc = mu_labels_set(&tmp, key, value, flags, err);
    if (rc < 0) break;
    rc = mu_labels_set(&seen, key, "", 0, err);
    if (rc < 0) break;
    item = save;
  }
  mu_labels_free(&seen);
  if (rc < 0) goto fail;
done:
  free(copy);
  mu_labels_free(labels);
  *labels = tmp;
  return 0;
fail:
  free(copy);
  mu_labels_free(&tmp);
  return rc;
}

size_t mu_labels_format(const mu_labels *labels, char *buf, size_t size) {
  size_t need = 0;
  if (size > 0) buf[0] = '\0';
  for (size_t i = 0; i < labels->n; i++) {
    int w = snprintf(buf ? buf + (need < size ? need : size) : NULL, need < size ? size - need : 0, "%s%s=%s",
                     i ? "," : "", labels->items[i].key, labels->items[i].value);
    if (w > 0) need += (size_t)w;
  }
  return need;
}
