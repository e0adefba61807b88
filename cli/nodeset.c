/* Node set fold and expand (nodeset.h): the clush syntax for many similar host names. */
#include "cli/nodeset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- folding --- */

/* One name split around its last run of digits: prefix, number, suffix. */
typedef struct split_name {
  const char *name;
  size_t pre_len; /* digits start here; == strlen(name) when there are none */
  size_t num_len; /* 0: no number (or too long to be one) */
  unsigned long num;
  size_t pad; /* width when the number has a leading zero ("007"), else 0 */
} split_name;

static int has_special(const char *s) { return strpbrk(s, "[],") != NULL; }

static void split(const char *name, split_name *ret) {
  size_t len = strlen(name), end = len;
  memset(ret, 0, sizeof *ret);
  ret->name = name;
  while (end > 0 && (name[end - 1] < '0' || name[end - 1] > '9')) end--;
  size_t start = end;
  while (start > 0 && name[start - 1] >= '0' && name[start - 1] <= '9') start--;
  if (end == start || end - start > 9 || has_special(name)) {
    ret->pre_len = len;
    return;
  }
  ret->pre_len = start;
  ret->num_len = end - start;
  ret->num = strtoul(name + start, NULL, 10);
  ret->pad = name[start] == '0' && ret->num_len > 1 ? ret->num_len : 0;
}

/* Group order: the text before the number, the text after it, no number first, padding,
 * then the number; names of one group end up next to each other, ascending. */
static int cmp_split(const void *a, const void *b) {
  const split_name *x = a, *y = b;
  size_t m = x->pre_len < y->pre_len ? x->pre_len : y->pre_len;
  int c = memcmp(x->name, y->name, m);
  if (c != 0) return c;
  if (x->pre_len != y->pre_len) return x->pre_len < y->pre_len ? -1 : 1;
  c = strcmp(x->name + x->pre_len + x->num_len, y->name + y->pre_len + y->num_len);
  if (c != 0) return c;
  if ((x->num_len == 0) != (y->num_len == 0)) return x->num_len == 0 ? -1 : 1;
  if (x->pad != y->pad) return x->pad < y->pad ? -1 : 1;
  return x->num < y->num ? -1 : x->num > y->num;
}

static int same_group(const split_name *x, const split_name *y) {
  return x->num_len > 0 && y->num_len > 0 && x->pre_len == y->pre_len && strncmp(x->name, y->name, x->pre_len) == 0 &&
         x->pad == y->pad && strcmp(x->name + x->pre_len + x->num_len, y->name + y->pre_len + y->num_len) == 0;
}

typedef struct strbuf {
  char *s;
  size_t len, cap;
  int failed;
} strbuf;

static void put(strbuf *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (b->len + n + 1 > cap) cap *= 2;
    char *g = realloc(b->s, cap);
    if (g == NULL) {
      b->failed = 1;
      return;
    }
    b->s = g;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

static void put_num(strbuf *b, unsigned long v, size_t pad) {
  char num[32];
  int n = snprintf(num, sizeof num, "%0*lu", (int)pad, v);
  put(b, num, (size_t)n);
}

char *mu_nodeset_fold(const char *const *names, size_t n) {
  split_name *v = calloc(n + 1, sizeof *v);
  strbuf b = {0};
  if (v == NULL) return NULL;
  for (size_t i = 0; i < n; i++) split(names[i], &v[i]);
  qsort(v, n, sizeof *v, cmp_split);
  put(&b, "", 0);
  for (size_t i = 0; i < n;) {
    if (i > 0) put(&b, ",", 1);
    size_t j = i + 1;
    while (j < n &&
           (same_group(&v[i], &v[j]) || (v[i].num_len == 0 && v[j].num_len == 0 && strcmp(v[i].name, v[j].name) == 0)))
      j++;
    /* a group of one number (duplicates aside) is written as the plain name */
    int single = v[i].num_len == 0 || v[j - 1].num == v[i].num;
    if (single) {
      put(&b, v[i].name, strlen(v[i].name));
      i = j;
      continue;
    }
    put(&b, v[i].name, v[i].pre_len);
    put(&b, "[", 1);
    for (size_t k = i; k < j;) {
      size_t e = k;
      while (e + 1 < j && (v[e + 1].num == v[e].num || v[e + 1].num == v[e].num + 1)) e++;
      if (k > i) put(&b, ",", 1);
      put_num(&b, v[k].num, v[i].pad);
      if (v[e].num != v[k].num) {
        put(&b, "-", 1);
        put_num(&b, v[e].num, v[i].pad);
      }
      k = e + 1;
    }
    put(&b, "]", 1);
    const char *suffix = v[i].name + v[i].pre_len + v[i].num_len;
    put(&b, suffix, strlen(suffix));
    i = j;
  }
  free(v);
  if (b.failed) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

/* --- expanding --- */

typedef struct name_list {
  char **names;
  size_t n, cap, max;
} name_list;

static int list_add(name_list *l, const char *s, size_t len, mu_err *err) {
  if (l->n >= l->max) return mu_err_set(err, MU_ENOSPC, "node set: more than %zu names", l->max);
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    char **g = realloc(l->names, cap * sizeof *g);
    if (g == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    l->names = g;
    l->cap = cap;
  }
  char *c = malloc(len + 1);
  if (c == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  memcpy(c, s, len);
  c[len] = '\0';
  l->names[l->n++] = c;
  return 0;
}

/* Reads a decimal number of 1..9 digits at *p; its width in *ret_width. */
static int read_num(const char **p, unsigned long *ret, size_t *ret_width) {
  const char *s = *p;
  size_t w = 0;
  while (s[w] >= '0' && s[w] <= '9') w++;
  if (w == 0 || w > 9) return -1;
  *ret = strtoul(s, NULL, 10);
  *ret_width = w;
  *p = s + w;
  return 0;
}

/* Expands item[0..len) with done[0..done_len) already expanded before it. */
static int expand_item(name_list *l, const char *item, size_t len, const char *set, char *done, size_t done_len,
                       mu_err *err) {
  const char *open = memchr(item, '[', len);
  if (open == NULL) {
    if (memchr(item, ']', len) != NULL)
      return mu_err_set(err, MU_EINVAL, "node set: ']' without '[' at %zu",
                        (size_t)((const char *)memchr(item, ']', len) - set));
    memcpy(done + done_len, item, len);
    return list_add(l, done, done_len + len, err);
  }
  const char *close = memchr(open, ']', len - (size_t)(open - item));
  if (close == NULL) return mu_err_set(err, MU_EINVAL, "node set: '[' at %zu is not closed", (size_t)(open - set));
  size_t pre = (size_t)(open - item);
  if (memchr(item, ']', pre) != NULL)
    return mu_err_set(err, MU_EINVAL, "node set: ']' without '[' before %zu", (size_t)(open - set));
  memcpy(done + done_len, item, pre);
  const char *p = open + 1;
  for (;;) {
    unsigned long lo, hi;
    size_t w, w2;
    if (read_num(&p, &lo, &w) != 0)
      return mu_err_set(err, MU_EINVAL, "node set: expected a number of 1 to 9 digits at %zu", (size_t)(p - set));
    hi = lo;
    size_t pad = (p - w)[0] == '0' && w > 1 ? w : 0;
    if (*p == '-') {
      p++;
      if (read_num(&p, &hi, &w2) != 0)
        return mu_err_set(err, MU_EINVAL, "node set: expected the end of the range at %zu", (size_t)(p - set));
      if (hi < lo)
        return mu_err_set(err, MU_EINVAL, "node set: range %lu-%lu at %zu runs backwards", lo, hi, (size_t)(p - set));
    }
    if (hi - lo >= l->max - l->n + 1) return mu_err_set(err, MU_ENOSPC, "node set: more than %zu names", l->max);
    for (unsigned long v = lo; v <= hi; v++) {
      int k = snprintf(done + done_len + pre, 16, "%0*lu", (int)pad, v);
      int rc = expand_item(l, close + 1, len - (size_t)(close + 1 - item), set, done, done_len + pre + (size_t)k, err);
      if (rc != 0) return rc;
    }
    if (*p == ']') break;
    if (*p != ',') return mu_err_set(err, MU_EINVAL, "node set: expected ',', '-' or ']' at %zu", (size_t)(p - set));
    p++;
  }
  return 0;
}

int mu_nodeset_expand(const char *set, size_t max, char ***ret_names, size_t *ret_n, mu_err *err) {
  name_list l = {.max = max};
  size_t set_len = strlen(set);
  /* the longest name: the set's text with every bracket replaced by a 9-digit number */
  char *done = malloc(set_len * 9 + 16);
  int rc = 0;
  if (done == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  const char *p = set;
  for (;;) {
    const char *q = p;
    int depth = 0;
    while (*q && (depth > 0 || *q != ',')) {
      if (*q == '[') depth++;
      else if (*q == ']' && depth > 0) depth--;
      q++;
    }
    if (q == p) {
      rc = mu_err_set(err, MU_EINVAL, "node set: empty name at %zu", (size_t)(p - set));
      goto fail;
    }
    rc = expand_item(&l, p, (size_t)(q - p), set, done, 0, err);
    if (rc != 0) goto fail;
    if (*q == '\0') break;
    p = q + 1;
  }
  free(done);
  *ret_names = l.names;
  *ret_n = l.n;
  return 0;
fail:
  free(done);
  mu_nodeset_names_free(l.names, l.n);
  return rc;
}

void mu_nodeset_names_free(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}
