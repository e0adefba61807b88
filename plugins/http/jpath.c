/* The JSON path subset (jpath.h): one walker serves both the syntax check (no document) and
 * the evaluation (a document), so the two can never disagree about what a path means. */
#include "jpath.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_char(char c) {
  return c != '\0' && c != ' ' && c != '\t' && c != '.' && c != '[' && c != ']' && c != '\'' && c != '"';
}

/* Walks path over root (NULL = syntax only). Returns 0 with *ret set (NULL when the path leads
 * nowhere), or -EINVAL with errbuf filled. */
static int walk(const char *path, json_t *root, json_t **ret, char *errbuf, size_t cap) {
  size_t n = strlen(path);
  if (n == 0 || path[0] != '$') {
    snprintf(errbuf, cap, "must start with '$'");
    return -EINVAL;
  }
  if (n > MU_JPATH_MAX) {
    snprintf(errbuf, cap, "longer than %d bytes", MU_JPATH_MAX);
    return -EINVAL;
  }
  json_t *cur = root;
  char key[MU_JPATH_MAX + 1];
  size_t i = 1;
  while (i < n) {
    size_t start = i;
    if (path[i] == '.') {
      i++;
      size_t k = 0;
      while (i < n && name_char(path[i])) key[k++] = path[i++];
      key[k] = '\0';
      if (k == 0) {
        snprintf(errbuf, cap, "empty name at offset %zu", start);
        return -EINVAL;
      }
      cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
    } else if (path[i] == '[' && (path[i + 1] == '\'' || path[i + 1] == '"')) {
      char q = path[i + 1];
      i += 2;
      size_t k = 0;
      while (i < n && path[i] != q) key[k++] = path[i++];
      key[k] = '\0';
      if (i >= n || path[i + 1] != ']') {
        snprintf(errbuf, cap, "unterminated ['name'] at offset %zu", start);
        return -EINVAL;
      }
      i += 2;
      cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
    } else if (path[i] == '[') {
      i++;
      bool neg = path[i] == '-';
      if (neg) i++;
      long long idx = 0;
      size_t digits = 0;
      while (i < n && path[i] >= '0' && path[i] <= '9' && digits < 9) idx = idx * 10 + (path[i++] - '0'), digits++;
      if (digits == 0 || path[i] != ']') {
        snprintf(errbuf, cap, "bad index at offset %zu (want [N], [-N] or ['name'])", start);
        return -EINVAL;
      }
      i++;
      if (json_is_array(cur)) {
        long long size = (long long)json_array_size(cur);
        if (neg) idx = size - idx;
        cur = idx >= 0 && idx < size ? json_array_get(cur, (size_t)idx) : NULL;
      } else {
        cur = NULL;
      }
    } else {
      snprintf(errbuf, cap, "expected '.' or '[' at offset %zu", start);
      return -EINVAL;
    }
  }
  *ret = cur;
  return 0;
}

int mu_jpath_check(const char *path, char *errbuf, size_t cap) {
  json_t *unused = NULL;
  return walk(path, NULL, &unused, errbuf, cap);
}

json_t *mu_jpath_eval(json_t *root, const char *path) {
  char errbuf[128];
  json_t *v = NULL;
  if (root == NULL || walk(path, root, &v, errbuf, sizeof errbuf) != 0) return NULL;
  return v;
}

char *mu_jpath_text(const json_t *v) {
  if (json_is_string(v)) return strndup(json_string_value(v), json_string_length(v));
  return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}
