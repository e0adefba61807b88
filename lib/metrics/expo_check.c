/* The exposition-format checker (expo_check.h): one pass over the lines, a cursor per line,
 * a small table of the families TYPEd so far (bounded: past it TYPE lines are not tracked). */
#include "lib/metrics/expo_check.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TYPED 512

typedef struct cursor {
  const char *p, *end;
} cursor;

static int is_name_char(char c, int first, int colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return 1;
  if (colon && c == ':') return 1;
  return !first && c >= '0' && c <= '9';
}

/* Reads a name into out (cut at size-1 bytes); 0 when there is none. */
static size_t read_name(cursor *c, int colon, char *out, size_t size) {
  size_t n = 0;
  while (c->p < c->end && is_name_char(*c->p, n == 0, colon)) {
    if (n + 1 < size) out[n] = *c->p;
    n++;
    c->p++;
  }
  out[n < size ? n : size - 1] = '\0';
  return n;
}

/* A number as Prometheus reads one (Go's ParseFloat: also +Inf, -Inf, NaN). */
static int read_number(cursor *c) {
  char buf[64];
  size_t n = 0;
  while (c->p < c->end && *c->p != ' ' && *c->p != '\t') {
    if (n + 1 >= sizeof buf) return 0;
    buf[n++] = *c->p++;
  }
  buf[n] = '\0';
  if (n == 0) return 0;
  if (strcmp(buf, "+Inf") == 0 || strcmp(buf, "-Inf") == 0 || strcmp(buf, "NaN") == 0) return 1;
  for (size_t i = 0; i < n; i++)
    if (strchr("0123456789+-.eE", buf[i]) == NULL) return 0;
  char *e = NULL;
  errno = 0;
  double v = strtod(buf, &e);
  (void)v;
  return e == buf + n;
}

/* {name="value",...}: names valid, values with only \\ \" \n escapes. */
static const char *read_labels(cursor *c) {
  c->p++; /* '{' */
  int first = 1;
  for (;;) {
    if (c->p < c->end && *c->p == '}') {
      c->p++;
      return NULL;
    }
    if (!first) {
      if (c->p >= c->end || *c->p != ',') return "expected ',' or '}' between labels";
      c->p++;
      if (c->p < c->end && *c->p == '}') {
        c->p++;
        return NULL; /* a trailing comma is allowed */
      }
    }
    first = 0;
    char name[128];
    if (read_name(c, 0, name, sizeof name) == 0) return "a label name is missing or invalid";
    if (c->p >= c->end || *c->p != '=') return "expected '=' after a label name";
    c->p++;
    if (c->p >= c->end || *c->p != '"') return "a label value must be quoted";
    c->p++;
    for (;;) {
      if (c->p >= c->end) return "a label value is not closed";
      char ch = *c->p++;
      if (ch == '"') break;
      if (ch == '\\') {
        if (c->p >= c->end || strchr("\\\"n", *c->p) == NULL)
          return "a label value has an escape other than \\\\, \\\" or \\n";
        c->p++;
      }
    }
  }
}

static int typed_before(char typed[][128], size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(typed[i], name) == 0) return 1;
  return 0;
}

int mu_prom_check(const char *text, size_t len, size_t *ret_samples, mu_err *err) {
  size_t n_typed = 0, samples = 0, line_no = 0;
  if (len > 0 && text[len - 1] != '\n') return mu_err_set(err, MU_EINVAL, "the text does not end with a newline");
  char(*typed)[128] = malloc(MAX_TYPED * sizeof *typed);
  if (typed == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    cursor c = {p, nl};
    line_no++;
    const char *why = NULL;
    if (memchr(p, '\0', (size_t)(nl - p)) != NULL) {
      why = "a NUL byte";
    } else if (c.p < c.end && *c.p == '#') {
      c.p++;
      if (c.end - c.p >= 6 && (memcmp(c.p, " HELP ", 6) == 0 || memcmp(c.p, " TYPE ", 6) == 0)) {
        int is_type = c.p[1] == 'T';
        c.p += 6;
        char name[128];
        if (read_name(&c, 1, name, sizeof name) == 0) {
          why = "HELP or TYPE without a metric name";
        } else if (is_type) {
          static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
          int known = 0;
          if (c.p < c.end && *c.p == ' ') {
            c.p++;
            for (size_t i = 0; i < 5; i++)
              if ((size_t)(c.end - c.p) == strlen(types[i]) && memcmp(c.p, types[i], strlen(types[i])) == 0) known = 1;
          }
          if (!known) why = "TYPE needs one of counter, gauge, histogram, summary, untyped";
          else if (typed_before(typed, n_typed, name)) why = "a second TYPE line for one metric";
          else if (n_typed < MAX_TYPED) strcpy(typed[n_typed++], name);
        } else if (c.p < c.end && *c.p != ' ') {
          why = "HELP name must be followed by a space";
        } else {
          for (const char *q = c.p; q + 1 < c.end && why == NULL; q++)
            if (*q == '\\' && q[1] != '\\' && q[1] != 'n') why = "HELP text has a bad escape";
            else if (*q == '\\') q++;
        }
      }
    } else if (c.p < c.end) {
      char name[128];
      if (read_name(&c, 1, name, sizeof name) == 0) why = "a sample without a metric name";
      if (why == NULL && c.p < c.end && *c.p == '{') why = read_labels(&c);
      if (why == NULL && (c.p >= c.end || *c.p != ' ')) why = "expected a space before the value";
      if (why == NULL) {
        c.p++;
        if (!read_number(&c)) why = "the value is not a number";
      }
      if (why == NULL && c.p < c.end) {
        c.p++; /* the line is not NUL-terminated: read the digits within it, not with strtoll */
        const char *q = c.p < c.end && *c.p == '-' ? c.p + 1 : c.p;
        size_t digits = 0;
        while (q < c.end && *q >= '0' && *q <= '9' && digits <= 19) q++, digits++;
        if (q != c.end || digits == 0 || digits > 19) why = "the timestamp is not an integer";
      }
      samples++;
    }
    if (why != NULL) {
      free(typed);
      return mu_err_set(err, MU_EINVAL, "line %zu: %s: %.*s", line_no, why, (int)(nl - p > 120 ? 120 : nl - p), p);
    }
    p = nl + 1;
  }
  free(typed);
  if (ret_samples != NULL) *ret_samples = samples;
  return 0;
}
