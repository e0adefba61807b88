/* Requirement parsing for the python task type: a strict subset of pip's requirements file
 * format and of PEP 508, enough to refuse a malformed file with the line that is wrong before
 * anything is built, and to normalise a set into the text the environment cache key hashes
 * (and pip installs). pyproject.toml is scanned for [project] dependencies only. */
#define _GNU_SOURCE
#include "plugins/python/reqs.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct strvec {
  char **v;
  size_t n, cap;
} strvec;

static int vec_push(strvec *s, char *str) {
  if (str == NULL) return -ENOMEM;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    char **v = realloc(s->v, cap * sizeof *v);
    if (v == NULL) {
      free(str);
      return -ENOMEM;
    }
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = str;
  return 0;
}

static void vec_free(strvec *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
}

static int errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
  return -EINVAL;
}

/* A growing string. */
typedef struct sbuf {
  char *s;
  size_t n, cap;
  bool oom;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = (b->n + n + 1) * 2;
    char *p = realloc(b->s, cap);
    if (p == NULL) {
      b->oom = true;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = '\0';
}
static void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }
static void sb_addc(sbuf *b, char c) { sb_addn(b, &c, 1); }

static bool name_char(char c) { return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-'; }
static bool version_char(char c) {
  return isalnum((unsigned char)c) || c == '.' || c == '*' || c == '+' || c == '!' || c == '-' || c == '_';
}
static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t') p++;
  return p;
}

/* Appends a project name normalised as PEP 503 does: lower case, runs of -_. become "-". */
static void add_name(sbuf *b, const char *s, size_t n) {
  bool sep = false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '-' || c == '_' || c == '.') {
      sep = true;
      continue;
    }
    if (sep) sb_addc(b, '-');
    sep = false;
    sb_addc(b, (char)tolower((unsigned char)c));
  }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Parses one requirement (no options) or, when allow_hashes, with trailing --hash options.
 * On success *ret is the normalised line (caller frees). `what` names the place for errors. */
static int parse_req(const char *line, bool allow_hashes, const char *what, char **ret, char *err, size_t cap) {
  sbuf out = {0};
  strvec hashes = {0};
  int rc = -EINVAL;
  const char *p = skip_ws(line);
  const char *start = p;
  if (!isalnum((unsigned char)*p)) {
    if (strchr(line, '/') != NULL || strstr(line, "://") != NULL)
      errf(err, cap, "%s: \"%s\": paths and URLs are not supported, name a package from the wheelhouse or index", what,
           line);
    else errf(err, cap, "%s: cannot parse \"%s\" (want NAME[extras] [op VERSION] [; marker])", what, line);
    goto done;
  }
  while (name_char(*p)) p++;
  add_name(&out, start, (size_t)(p - start));
  p = skip_ws(p);
  if (*p == '[') {
    strvec extras = {0};
    p++;
    for (;;) {
      p = skip_ws(p);
      const char *e = p;
      while (name_char(*p)) p++;
      if (p == e) break;
      sbuf x = {0};
      add_name(&x, e, (size_t)(p - e));
      if (x.oom || vec_push(&extras, x.s) != 0) break;
      p = skip_ws(p);
      if (*p == ',') p++;
    }
    p = skip_ws(p);
    if (*p != ']' || extras.n == 0) {
      vec_free(&extras);
      errf(err, cap, "%s: bad extras in \"%s\"", what, line);
      goto done;
    }
    p++;
    qsort(extras.v, extras.n, sizeof *extras.v, cmp_str);
    sb_addc(&out, '[');
    for (size_t i = 0; i < extras.n; i++) {
      if (i) sb_addc(&out, ',');
      sb_add(&out, extras.v[i]);
    }
    sb_addc(&out, ']');
    vec_free(&extras);
  }
  p = skip_ws(p);
  if (*p == '@') {
    errf(err, cap, "%s: \"%s\": direct URL references are not supported", what, line);
    goto done;
  }
  bool paren = *p == '(';
  if (paren) p++;
  for (bool first = true;; first = false) {
    p = skip_ws(p);
    static const char *const ops[] = {"===", "==", "!=", "<=", ">=", "~=", "<", ">"};
    const char *op = NULL;
    for (size_t i = 0; i < sizeof ops / sizeof *ops && op == NULL; i++)
      if (strncmp(p, ops[i], strlen(ops[i])) == 0) op = ops[i];
    if (op == NULL) {
      if (!first) {
        errf(err, cap, "%s: \"%s\": a version operator (==, >=, ...) must follow \",\"", what, line);
        goto done;
      }
      break;
    }
    p = skip_ws(p + strlen(op));
    const char *v = p;
    while (version_char(*p)) p++;
    if (p == v) {
      errf(err, cap, "%s: \"%s\": missing version after \"%s\"", what, line, op);
      goto done;
    }
    if (!first) sb_addc(&out, ',');
    sb_add(&out, op);
    sb_addn(&out, v, (size_t)(p - v));
    p = skip_ws(p);
    if (*p != ',') break;
    p++;
  }
  p = skip_ws(p);
  if (paren) {
    if (*p != ')') {
      errf(err, cap, "%s: \"%s\": missing \")\"", what, line);
      goto done;
    }
    p = skip_ws(p + 1);
  }
  if (*p == ';') {
    p = skip_ws(p + 1);
    const char *end = allow_hashes ? strstr(p, "--hash") : NULL;
    if (end == NULL) end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (end == p) {
      errf(err, cap, "%s: \"%s\": empty environment marker after \";\"", what, line);
      goto done;
    }
    sb_add(&out, " ; ");
    bool space = false;
    for (const char *q = p; q < end; q++) {
      if (*q == ' ' || *q == '\t') {
        space = true;
        continue;
      }
      if (space) sb_addc(&out, ' ');
      space = false;
      sb_addc(&out, *q);
    }
    p = skip_ws(end);
  }
  while (allow_hashes && strncmp(p, "--hash", 6) == 0) {
    p += 6;
    if (*p == '=') p++;
    else p = skip_ws(p);
    const char *h = p;
    while (isalnum((unsigned char)*p) || *p == ':') p++;
    const char *colon = memchr(h, ':', (size_t)(p - h));
    if (colon == NULL || colon == h || colon + 1 == p) {
      errf(err, cap, "%s: \"%s\": --hash wants ALGORITHM:HEXDIGEST", what, line);
      goto done;
    }
    char *hs = strndup(h, (size_t)(p - h));
    if (vec_push(&hashes, hs) != 0) {
      errf(err, cap, "out of memory");
      goto done;
    }
    p = skip_ws(p);
  }
  if (*p != '\0') {
    errf(err, cap, "%s: cannot parse \"%s\" at \"%s\"", what, line, p);
    goto done;
  }
  if (hashes.n > 1) qsort(hashes.v, hashes.n, sizeof *hashes.v, cmp_str);
  for (size_t i = 0; i < hashes.n; i++) {
    sb_add(&out, " --hash=");
    sb_add(&out, hashes.v[i]);
  }
  if (out.oom) {
    errf(err, cap, "out of memory");
    goto done;
  }
  *ret = out.s;
  out.s = NULL;
  rc = 0;
done:
  free(out.s);
  vec_free(&hashes);
  return rc;
}

/* Joins the sorted lines into *ret_norm. */
static int finish(strvec *lines, char **ret_norm, size_t *ret_count, char *err, size_t cap) {
  if (lines->n > 1) qsort(lines->v, lines->n, sizeof *lines->v, cmp_str);
  sbuf b = {0};
  sb_add(&b, "");
  size_t count = 0;
  for (size_t i = 0; i < lines->n; i++) {
    if (i > 0 && strcmp(lines->v[i], lines->v[i - 1]) == 0) continue; /* duplicates */
    sb_add(&b, lines->v[i]);
    sb_addc(&b, '\n');
    if (lines->v[i][0] != '-') count++;
  }
  if (b.oom) {
    free(b.s);
    return errf(err, cap, "out of memory");
  }
  *ret_norm = b.s;
  *ret_count = count;
  return 0;
}

static int check_option(const char *l, const char *what, strvec *lines, char *err, size_t cap) {
  if (strcmp(l, "--require-hashes") == 0) return vec_push(lines, strdup(l)) == 0 ? 0 : errf(err, cap, "out of memory");
  if (strncmp(l, "-r", 2) == 0 || strncmp(l, "-c", 2) == 0 || strncmp(l, "--requirement", 13) == 0 ||
      strncmp(l, "--constraint", 12) == 0)
    return errf(err, cap, "%s: \"%s\": includes (-r/-c) are not supported; list every requirement in one file", what,
                l);
  if (strncmp(l, "-e", 2) == 0 || strncmp(l, "--editable", 10) == 0)
    return errf(err, cap, "%s: \"%s\": editable installs are not supported", what, l);
  if (strncmp(l, "-i", 2) == 0 || strncmp(l, "--index-url", 11) == 0 || strncmp(l, "--extra-index-url", 17) == 0 ||
      strncmp(l, "-f", 2) == 0 || strncmp(l, "--find-links", 12) == 0 || strncmp(l, "--no-index", 10) == 0)
    return errf(err, cap, "%s: \"%s\": set python.indexUrl or python.wheelhouse in the task spec instead", what, l);
  return errf(err, cap, "%s: unknown option \"%s\"", what, l);
}

int py_reqs_parse_txt(const char *text, const char *label, char **ret_norm, size_t *ret_count, char *err,
                      size_t errcap) {
  strvec lines = {0};
  sbuf logical = {0};
  int rc = 0, lineno = 0, first_line = 0;
  const char *p = text;
  while (rc == 0 && *p != '\0') {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    lineno++;
    if (logical.n == 0) first_line = lineno;
    char *raw = strndup(p, len);
    p += len + (nl ? 1 : 0);
    if (raw == NULL) {
      rc = errf(err, errcap, "out of memory");
      break;
    }
    size_t n = strlen(raw);
    while (n > 0 && (raw[n - 1] == '\r' || raw[n - 1] == ' ' || raw[n - 1] == '\t')) raw[--n] = '\0';
    bool cont = n > 0 && raw[n - 1] == '\\';
    if (cont) raw[--n] = '\0';
    /* A comment starts at "#" at the start or after whitespace. */
    for (char *c = raw; *c; c++)
      if (*c == '#' && (c == raw || c[-1] == ' ' || c[-1] == '\t')) {
        *c = '\0';
        break;
      }
    sb_add(&logical, raw);
    if (cont) sb_addc(&logical, ' ');
    free(raw);
    if (cont && *p != '\0') continue;
    if (logical.oom) {
      rc = errf(err, errcap, "out of memory");
      break;
    }
    const char *l = skip_ws(logical.s);
    char *end = logical.s + strlen(logical.s);
    while (end > l && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
    char what[600];
    snprintf(what, sizeof what, "%s line %d", label, first_line);
    if (*l == '-') {
      rc = check_option(l, what, &lines, err, errcap);
    } else if (*l != '\0') {
      char *norm = NULL;
      rc = parse_req(l, true, what, &norm, err, errcap);
      if (rc == 0 && vec_push(&lines, norm) != 0) rc = errf(err, errcap, "out of memory");
    }
    if (rc == 0 && lines.n > PY_REQS_MAX_LINES)
      rc = errf(err, errcap, "%s: more than %d requirements", label, PY_REQS_MAX_LINES);
    logical.n = 0;
    logical.s[0] = '\0';
  }
  if (rc == 0) rc = finish(&lines, ret_norm, ret_count, err, errcap);
  free(logical.s);
  vec_free(&lines);
  return rc;
}

/* Reads a TOML basic or literal string starting at *pp (at the quote); *pp moves past it. */
static int toml_string(const char **pp, char **ret) {
  const char *p = *pp;
  char q = *p++;
  if (q == '"' && p[0] == '"' && p[1] == '"') return -EINVAL; /* multi-line strings: not here */
  sbuf b = {0};
  sb_add(&b, "");
  while (*p != q) {
    if (*p == '\0' || *p == '\n') {
      free(b.s);
      return -EINVAL;
    }
    if (q == '"' && *p == '\\') {
      p++;
      char c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
      if (c == '\0') {
        free(b.s);
        return -EINVAL;
      }
      sb_addc(&b, c);
      p++;
      continue;
    }
    sb_addc(&b, *p++);
  }
  *pp = p + 1;
  if (b.oom) {
    free(b.s);
    return -ENOMEM;
  }
  *ret = b.s;
  return 0;
}

int py_reqs_parse_pyproject(const char *text, const char *label, char **ret_norm, size_t *ret_count, char *err,
                            size_t errcap) {
  strvec lines = {0};
  int rc = 0, lineno = 1;
  bool in_project = false, found = false;
  const char *p = text;
  while (rc == 0 && *p != '\0' && !found) {
    const char *l = p;
    while (*l == ' ' || *l == '\t') l++;
    const char *nl = strchr(p, '\n');
    if (*l == '[') {
      const char *e = l + 1;
      while (*e == ' ') e++;
      in_project = l[1] != '[' && strncmp(e, "project", 7) == 0 && (e[7] == ']' || e[7] == ' ');
    } else if (in_project && strncmp(l, "dependencies", 12) == 0 && (l[12] == ' ' || l[12] == '=')) {
      const char *q = skip_ws(l + 12);
      bool eq = *q == '=';
      if (eq) q = skip_ws(q + 1);
      if (!eq || *q != '[') {
        rc = errf(err, errcap, "%s line %d: [project] dependencies must be a list of strings", label, lineno);
        break;
      }
      q++;
      found = true;
      for (;;) {
        while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n' || *q == ',') {
          if (*q == '\n') lineno++;
          q++;
        }
        if (*q == '#') {
          while (*q != '\0' && *q != '\n') q++;
          continue;
        }
        if (*q == ']') break;
        char *s = NULL;
        if ((*q != '"' && *q != '\'') || toml_string(&q, &s) != 0) {
          rc = errf(err, errcap, "%s line %d: [project] dependencies: expected a quoted string", label, lineno);
          break;
        }
        char what[600], *norm = NULL;
        snprintf(what, sizeof what, "%s line %d", label, lineno);
        rc = parse_req(s, false, what, &norm, err, errcap);
        free(s);
        if (rc == 0 && vec_push(&lines, norm) != 0) rc = errf(err, errcap, "out of memory");
        if (rc == 0 && lines.n > PY_REQS_MAX_LINES)
          rc = errf(err, errcap, "%s: more than %d requirements", label, PY_REQS_MAX_LINES);
        if (rc != 0) break;
      }
      break;
    }
    if (nl == NULL) break;
    p = nl + 1;
    lineno++;
  }
  if (rc == 0) rc = finish(&lines, ret_norm, ret_count, err, errcap);
  vec_free(&lines);
  return rc;
}
