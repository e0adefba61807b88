/* YAML nodes written out as JSON text (yaml_json.h), into one growing, bounded buffer. */
#include "lib/config/yaml_json.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct out {
  char *buf;
  size_t len, cap, max;
  bool over;
} out;

static void put(out *o, const char *s, size_t n) {
  if (o->over) return;
  if (o->len + n + 1 > o->max) {
    o->over = true;
    return;
  }
  if (o->len + n + 1 > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n + 1) cap *= 2;
    char *nb = realloc(o->buf, cap);
    if (nb == NULL) {
      o->over = true;
      return;
    }
    o->buf = nb;
    o->cap = cap;
  }
  memcpy(o->buf + o->len, s, n);
  o->len += n;
  o->buf[o->len] = '\0';
}

static void put_str(out *o, const char *s) {
  put(o, "\"", 1);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    char esc[8];
    if (*c == '"' || *c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*c;
      put(o, esc, 2);
    } else if (*c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", *c);
      put(o, esc, 6);
    } else {
      put(o, (const char *)c, 1);
    }
  }
  put(o, "\"", 1);
}

/* A JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_number(const char *s) {
  const char *p = s;
  if (*p == '-') p++;
  if (*p == '0') p++;
  else if (*p >= '1' && *p <= '9')
    while (*p >= '0' && *p <= '9') p++;
  else return false;
  if (*p == '.') {
    p++;
    if (!(*p >= '0' && *p <= '9')) return false;
    while (*p >= '0' && *p <= '9') p++;
  }
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-') p++;
    if (!(*p >= '0' && *p <= '9')) return false;
    while (*p >= '0' && *p <= '9') p++;
  }
  return *p == '\0';
}

static int node(out *o, mu_yaml_node n, int depth, mu_err *err) {
  if (depth > MU_YAML_JSON_MAX_DEPTH)
    return mu_err_set(err, MU_EINVAL, "line %d: nested deeper than %d", mu_yaml_node_line(n), MU_YAML_JSON_MAX_DEPTH);
  switch (mu_yaml_node_kind(n)) {
    case MU_YAML_NULL: put(o, "null", 4); break;
    case MU_YAML_SCALAR: {
      const char *t = mu_yaml_node_text(n);
      if (is_number(t) || strcmp(t, "true") == 0 || strcmp(t, "false") == 0) put(o, t, strlen(t));
      else put_str(o, t);
      break;
    }
    case MU_YAML_LIST:
      put(o, "[", 1);
      for (size_t i = 0; i < mu_yaml_node_len(n); i++) {
        if (i > 0) put(o, ",", 1);
        int rc = node(o, mu_yaml_node_item(n, i), depth + 1, err);
        if (rc != 0) return rc;
      }
      put(o, "]", 1);
      break;
    case MU_YAML_MAP:
      put(o, "{", 1);
      for (size_t i = 0; i < mu_yaml_node_len(n); i++) {
        mu_yaml_node k = mu_yaml_node_key(n, i);
        if (mu_yaml_node_kind(k) != MU_YAML_SCALAR)
          return mu_err_set(err, MU_EINVAL, "line %d: a key must be a plain string", mu_yaml_node_line(k));
        if (i > 0) put(o, ",", 1);
        put_str(o, mu_yaml_node_text(k));
        put(o, ":", 1);
        int rc = node(o, mu_yaml_node_value(n, i), depth + 1, err);
        if (rc != 0) return rc;
      }
      put(o, "}", 1);
      break;
  }
  return 0;
}

int mu_yaml_node_json(mu_yaml_node n, size_t max_bytes, char **ret, mu_err *err) {
  out o = {.max = max_bytes};
  int rc = node(&o, n, 0, err);
  if (rc == 0 && o.over) rc = mu_err_set(err, MU_ENOSPC, "more than %zu bytes as JSON", max_bytes);
  if (rc == 0 && o.buf == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  if (rc != 0) {
    free(o.buf);
    return rc;
  }
  *ret = o.buf;
  return 0;
}
