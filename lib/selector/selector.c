/* Label selector parsing and matching (glob values through fnmatch). */
#include "lib/selector/selector.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MU_SELECTOR_MAX_TERMS 64

typedef enum { TERM_EQ, TERM_NE, TERM_PRESENT, TERM_ABSENT, TERM_GE, TERM_LE, TERM_GT, TERM_LT } term_kind;

typedef struct term {
  term_kind kind;
  char *key;
  char *value;
  double number; /* TERM_GE .. TERM_LT */
} term;

/* The comparison operators, longest first so ">=" is not read as ">". */
static const struct {
  const char *op;
  term_kind kind;
} comparisons[] = {{">=", TERM_GE}, {"<=", TERM_LE}, {">", TERM_GT}, {"<", TERM_LT}};

/* A finite decimal number and nothing else ("8", "15.5", "-1"); 0 or -1. */
static int parse_number(const char *text, double *ret) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (end == text || *end != '\0' || errno != 0 || !isfinite(v)) return -1;
  for (const char *c = text; *c; c++)
    if (!isdigit((unsigned char)*c) && strchr("+-.", *c) == NULL) return -1; /* no 0x, inf */
  *ret = v;
  return 0;
}

struct mu_selector {
  size_t n;
  term terms[MU_SELECTOR_MAX_TERMS];
};

void mu_selector_free(mu_selector *sel) {
  if (sel == NULL) return;
  for (size_t i = 0; i < sel->n; i++) {
    free(sel->terms[i].key);
    free(sel->terms[i].value);
  }
  free(sel);
}

static int valid_key(const char *k) {
  if (*k == '\0') return 0;
  for (; *k; k++)
    if (!isalnum((unsigned char)*k) && strchr("._-/", *k) == NULL) return 0;
  return 1;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

int mu_selector_parse(const char *text, mu_selector **ret, mu_err *err) {
  mu_selector *sel = calloc(1, sizeof *sel);
  char *copy = strdup(text ? text : "");
  int rc = 0;
  if (sel == NULL || copy == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto fail;
  }
  char *save = NULL;
  size_t idx = 0;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    idx++;
    char *t = trim(tok);
    if (*t == '\0') continue;
    if (sel->n == MU_SELECTOR_MAX_TERMS) {
      rc = mu_err_set(err, MU_EINVAL, "selector has more than %d terms", MU_SELECTOR_MAX_TERMS);
      goto fail;
    }
    term *tm = &sel->terms[sel->n];
    char *ne = strstr(t, "!=");
    char *eq = strchr(t, '=');
    char *cmp = NULL;
    size_t c = 0;
    for (; c < sizeof comparisons / sizeof *comparisons; c++) {
      cmp = strstr(t, comparisons[c].op);
      if (cmp != NULL) break;
    }
    if (cmp != NULL && (eq == NULL || cmp < eq)) {
      size_t oplen = strlen(comparisons[c].op);
      *cmp = '\0';
      tm->kind = comparisons[c].kind;
      tm->key = strdup(trim(t));
      tm->value = strdup(trim(cmp + oplen));
      if (tm->value != NULL && parse_number(tm->value, &tm->number) != 0) {
        sel->n++;
        rc = mu_err_set(err, MU_EINVAL, "selector term %zu: '%s' compares with '%s', which is not a number", idx,
                        comparisons[c].op, tm->value);
        goto fail;
      }
    } else if (ne != NULL) {
      *ne = '\0';
      tm->kind = TERM_NE;
      tm->key = strdup(trim(t));
      tm->value = strdup(trim(ne + 2));
    } else if (eq != NULL) {
      *eq = '\0';
      tm->kind = TERM_EQ;
      tm->key = strdup(trim(t));
      tm->value = strdup(trim(eq + 1));
    } else if (*t == '!') {
      tm->kind = TERM_ABSENT;
      tm->key = strdup(trim(t + 1));
    } else {
      tm->kind = TERM_PRESENT;
      tm->key = strdup(t);
    }
    sel->n++;
    if (tm->key == NULL || (tm->kind != TERM_PRESENT && tm->kind != TERM_ABSENT && tm->value == NULL)) {
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      goto fail;
    }
    if (!valid_key(tm->key)) {
      rc = mu_err_set(err, MU_EINVAL,
                      "selector term %zu: bad label key '%s' (letters, digits, '.', '_', '-', "
                      "'/' only)",
                      idx, tm->key);
      goto fail;
    }
    if (tm->value != NULL && strpbrk(tm->value, "=<>") != NULL) {
      rc = mu_err_set(err, MU_EINVAL, "selector term %zu: value '%s' contains '=', '<' or '>'", idx, tm->value);
      goto fail;
    }
  }
  free(copy);
  *ret = sel;
  return 0;
fail:
  free(copy);
  mu_selector_free(sel);
  return rc;
}

int mu_selector_matches(const mu_selector *sel, mu_selector_lookup_fn lookup, const void *labels) {
  for (size_t i = 0; i < sel->n; i++) {
    const term *tm = &sel->terms[i];
    const char *v = lookup(labels, tm->key);
    switch (tm->kind) {
      case TERM_PRESENT:
        if (v == NULL) return 0;
        break;
      case TERM_ABSENT:
        if (v != NULL) return 0;
        break;
      case TERM_EQ:
        if (v == NULL || fnmatch(tm->value, v, 0) != 0) return 0;
        break;
      case TERM_NE:
        if (v != NULL && fnmatch(tm->value, v, 0) == 0) return 0;
        break;
      default: { /* a comparison: a value that is not a number never matches */
        double n;
        if (v == NULL || parse_number(v, &n) != 0) return 0;
        int ok = tm->kind == TERM_GE   ? n >= tm->number
                 : tm->kind == TERM_LE ? n <= tm->number
                 : tm->kind == TERM_GT ? n > tm->number
                                       : n < tm->number;
        if (!ok) return 0;
        break;
      }
    }
  }
  return 1;
}
