/* The metrics registry (registry.h): families in registration order, each an array of series
 * found through a small open-addressing table keyed by the label values, rendered as
 * Prometheus text. Bounds: MU_METRIC_MAX_LABELS names, max_series series per family (then
 * updates are dropped and counted), MU_METRIC_MAX_VALUE bytes per label value. */
#include "lib/metrics/registry.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROM_MAX (4u << 20) /* mu_prom's bound (httpd.h) */

typedef struct series {
  char *values[MU_METRIC_MAX_LABELS]; /* sanitised copies, one allocation at values[0] */
  double value;                       /* counter, gauge */
  uint64_t *buckets;                  /* histogram: n_buckets + 1 (non-cumulative) */
  double sum;
  uint64_t count;
} series;

struct mu_metric {
  mu_metric *next;
  char *name, *help;
  mu_metric_type type;
  char *labels[MU_METRIC_MAX_LABELS];
  size_t n_labels;
  double buckets[MU_METRIC_MAX_BUCKETS];
  size_t n_buckets;
  size_t max_series;
  series *series;
  size_t n_series;
  uint32_t *index; /* slot → series number + 1 (0: empty); index_cap slots, a power of 2 */
  size_t index_cap;
  uint64_t dropped;
};

struct mu_metrics {
  mu_metric *head, *tail;
};

mu_metrics *mu_metrics_new(void) { return calloc(1, sizeof(mu_metrics)); }

mu_metric *mu_metrics_find(const mu_metrics *m, const mu_metric_desc *d) {
  for (mu_metric *f = m->head; f != NULL; f = f->next) {
    if (strcmp(f->name, d->name) != 0) continue;
    if (f->type != d->type) return NULL;
    size_t n = 0;
    for (; n < MU_METRIC_MAX_LABELS && d->labels[n] != NULL; n++)
      if (n >= f->n_labels || strcmp(f->labels[n], d->labels[n]) != 0) return NULL;
    if (n != f->n_labels) return NULL;
    if (f->type == MU_METRIC_HISTOGRAM &&
        (d->n_buckets != f->n_buckets || memcmp(d->buckets, f->buckets, d->n_buckets * sizeof *d->buckets) != 0))
      return NULL;
    return f;
  }
  return NULL;
}

static void series_free(series *s) {
  free(s->values[0]);
  free(s->buckets);
}

static void family_clear(mu_metric *f) {
  for (size_t i = 0; f->series != NULL && i < f->n_series; i++) series_free(&f->series[i]);
  f->n_series = 0;
  if (f->index != NULL) memset(f->index, 0, f->index_cap * sizeof *f->index);
}

static void family_free(mu_metric *f) {
  family_clear(f);
  free(f->series);
  free(f->index);
  for (size_t i = 0; i < f->n_labels; i++) free(f->labels[i]);
  free(f->name);
  free(f->help);
  free(f);
}

void mu_metrics_free(mu_metrics *m) {
  if (m == NULL) return;
  mu_metric *f = m->head;
  while (f != NULL) {
    mu_metric *next = f->next;
    family_free(f);
    f = next;
  }
  free(m);
}

/* --- registration --- */

static int name_ok(const char *s, int colon) {
  if (s == NULL || s[0] == '\0') return 0;
  for (size_t i = 0; s[i]; i++) {
    char c = s[i];
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return 0;
  }
  return 1;
}

static int check_desc(const mu_metrics *m, const mu_metric_desc *d, size_t *ret_n_labels, mu_err *err) {
  if (!name_ok(d->name, 1))
    return mu_err_set(err, MU_EINVAL, "metric name '%s' is not [a-zA-Z_:][a-zA-Z0-9_:]*", d->name ? d->name : "");
  if (d->type != MU_METRIC_COUNTER && d->type != MU_METRIC_GAUGE && d->type != MU_METRIC_HISTOGRAM)
    return mu_err_set(err, MU_EINVAL, "metric %s: unknown type %d", d->name, (int)d->type);
  size_t len = strlen(d->name);
  if (d->type == MU_METRIC_COUNTER && (len < 6 || strcmp(d->name + len - 6, "_total") != 0))
    return mu_err_set(err, MU_EINVAL, "counter %s: a counter's name ends in _total", d->name);
  for (const mu_metric *f = m->head; f != NULL; f = f->next)
    if (strcmp(f->name, d->name) == 0) return mu_err_set(err, MU_EINVAL, "metric %s is registered twice", d->name);
  size_t n = 0;
  while (n <= MU_METRIC_MAX_LABELS && d->labels[n] != NULL) {
    const char *l = d->labels[n];
    if (!name_ok(l, 0) || strncmp(l, "__", 2) == 0)
      return mu_err_set(err, MU_EINVAL,
                        "metric %s: label name '%s' is not [a-zA-Z_][a-zA-Z0-9_]* "
                        "without a leading __",
                        d->name, l);
    if (d->type == MU_METRIC_HISTOGRAM && strcmp(l, "le") == 0)
      return mu_err_set(err, MU_EINVAL, "histogram %s: 'le' is the bucket label", d->name);
    for (size_t j = 0; j < n; j++)
      if (strcmp(d->labels[j], l) == 0)
        return mu_err_set(err, MU_EINVAL, "metric %s: label '%s' given twice", d->name, l);
    n++;
  }
  if (n > MU_METRIC_MAX_LABELS)
    return mu_err_set(err, MU_EINVAL, "metric %s: more than %d labels", d->name, MU_METRIC_MAX_LABELS);
  if (d->type == MU_METRIC_HISTOGRAM) {
    if (d->n_buckets == 0 || d->n_buckets > MU_METRIC_MAX_BUCKETS || d->buckets == NULL)
      return mu_err_set(err, MU_EINVAL, "histogram %s: 1 to %d buckets, got %zu", d->name, MU_METRIC_MAX_BUCKETS,
                        d->n_buckets);
    for (size_t i = 0; i < d->n_buckets; i++)
      if (!isfinite(d->buckets[i]) || (i > 0 && d->buckets[i] <= d->buckets[i - 1]))
        return mu_err_set(err, MU_EINVAL,
                          "histogram %s: buckets must be finite and strictly "
                          "ascending (bucket %zu)",
                          d->name, i);
  }
  *ret_n_labels = n;
  return 0;
}

int mu_metrics_add(mu_metrics *m, const mu_metric_desc *d, mu_metric **ret, mu_err *err) {
  size_t n_labels = 0;
  int rc = check_desc(m, d, &n_labels, err);
  if (rc != 0) return rc;
  mu_metric *f = calloc(1, sizeof *f);
  if (f == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  f->type = d->type;
  f->name = strdup(d->name);
  f->help = strdup(d->help ? d->help : "");
  f->n_labels = n_labels;
  for (size_t i = 0; i < n_labels; i++) f->labels[i] = strdup(d->labels[i]);
  f->n_buckets = d->type == MU_METRIC_HISTOGRAM ? d->n_buckets : 0;
  if (f->n_buckets > 0) memcpy(f->buckets, d->buckets, f->n_buckets * sizeof(double));
  f->max_series = d->max_series ? d->max_series : MU_METRIC_DEFAULT_SERIES;
  f->index_cap = 8;
  while (f->index_cap < f->max_series * 2) f->index_cap *= 2;
  f->series = calloc(f->max_series, sizeof *f->series);
  f->index = calloc(f->index_cap, sizeof *f->index);
  int ok = f->name && f->help && f->series && f->index;
  for (size_t i = 0; i < n_labels; i++) ok = ok && f->labels[i];
  if (!ok) {
    family_free(f);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  if (m->tail != NULL) m->tail->next = f;
  else m->head = f;
  m->tail = f;
  *ret = f;
  return 0;
}

int mu_metrics_add_all(mu_metrics *m, const mu_metric_def *defs, size_t n, mu_err *err) {
  for (size_t i = 0; i < n; i++) {
    int rc = mu_metrics_add(m, &defs[i].desc, defs[i].ret, err);
    if (rc != 0) return rc;
  }
  return 0;
}

/* --- series lookup --- */

/* The kept form of a label value: printable ASCII, at most MU_METRIC_MAX_VALUE bytes. */
static size_t clean_value(const char *v, char *out) {
  size_t n = 0;
  for (; v != NULL && v[n] != '\0' && n < MU_METRIC_MAX_VALUE; n++) {
    unsigned char c = (unsigned char)v[n];
    out[n] = c < 0x20 || c >= 0x7f ? '_' : (char)c;
  }
  out[n] = '\0';
  return n;
}

static uint64_t hash_values(char clean[][MU_METRIC_MAX_VALUE + 1], size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    for (const char *p = clean[i]; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull; /* a separator no clean value holds */
  }
  return h;
}

static int series_matches(const series *s, char clean[][MU_METRIC_MAX_VALUE + 1], size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s->values[i], clean[i]) != 0) return 0;
  return 1;
}

/* The series of values, created when absent; NULL past max_series (counted) or no memory. */
static series *lookup(mu_metric *f, const char *const *values, int create) {
  char clean[MU_METRIC_MAX_LABELS][MU_METRIC_MAX_VALUE + 1];
  size_t total = 0;
  for (size_t i = 0; i < f->n_labels; i++) total += clean_value(values != NULL ? values[i] : NULL, clean[i]) + 1;
  size_t mask = f->index_cap - 1;
  size_t slot = (size_t)hash_values(clean, f->n_labels) & mask;
  while (f->index[slot] != 0) {
    series *s = &f->series[f->index[slot] - 1];
    if (series_matches(s, clean, f->n_labels)) return s;
    slot = (slot + 1) & mask;
  }
  if (!create) return NULL;
  if (f->n_series >= f->max_series) {
    f->dropped++;
    return NULL;
  }
  series *s = &f->series[f->n_series];
  memset(s, 0, sizeof *s);
  char *buf = malloc(total + 1);
  if (buf == NULL) return NULL;
  char *p = buf;
  for (size_t i = 0; i < f->n_labels; i++) {
    size_t l = strlen(clean[i]);
    memcpy(p, clean[i], l + 1);
    s->values[i] = p;
    p += l + 1;
  }
  s->values[0] = buf; /* the allocation (and the first value, when there is one) */
  if (f->type == MU_METRIC_HISTOGRAM) {
    s->buckets = calloc(f->n_buckets + 1, sizeof *s->buckets);
    if (s->buckets == NULL) {
      free(buf);
      return NULL;
    }
  }
  f->n_series++;
  f->index[slot] = (uint32_t)f->n_series;
  return s;
}

void mu_metric_add(mu_metric *f, const char *const *values, double v) {
  if (f == NULL || f->type == MU_METRIC_HISTOGRAM || isnan(v)) return;
  if (f->type == MU_METRIC_COUNTER && v < 0) return;
  series *s = lookup(f, values, 1);
  if (s != NULL) s->value += v;
}

void mu_metric_set(mu_metric *f, const char *const *values, double v) {
  if (f == NULL || f->type != MU_METRIC_GAUGE) return;
  series *s = lookup(f, values, 1);
  if (s != NULL) s->value = v;
}

void mu_metric_observe(mu_metric *f, const char *const *values, double v) {
  if (f == NULL || f->type != MU_METRIC_HISTOGRAM || isnan(v)) return;
  series *s = lookup(f, values, 1);
  if (s == NULL) return;
  size_t b = 0;
  while (b < f->n_buckets && v > f->buckets[b]) b++;
  s->buckets[b]++;
  s->sum += v;
  s->count++;
}

void mu_metric_clear(mu_metric *f) {
  if (f != NULL && f->type == MU_METRIC_GAUGE) family_clear(f);
}

double mu_metric_value(const mu_metric *f, const char *const *values) {
  if (f == NULL) return 0;
  series *s = lookup((mu_metric *)f, values, 0);
  if (s == NULL) return 0;
  return f->type == MU_METRIC_HISTOGRAM ? (double)s->count : s->value;
}

size_t mu_metric_series(const mu_metric *f) { return f ? f->n_series : 0; }

/* --- rendering --- */

void mu_prom_printf(mu_prom *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n <= 0 || p->len + (size_t)n + 1 > PROM_MAX) return;
  if (p->len + (size_t)n + 1 > p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 4096;
    while (cap < p->len + (size_t)n + 1) cap *= 2;
    char *g = realloc(p->buf, cap);
    if (g == NULL) return;
    p->buf = g;
    p->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(p->buf + p->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  p->len += (size_t)n;
}

/* The shortest %g form that reads back as v; +Inf, -Inf, NaN as Prometheus spells them. */
static void fmt_num(double v, char out[40]) {
  if (isnan(v)) {
    strcpy(out, "NaN");
    return;
  }
  if (isinf(v)) {
    strcpy(out, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  for (int prec = 6; prec <= 17; prec++) {
    snprintf(out, 40, "%.*g", prec, v);
    if (strtod(out, NULL) == v) return;
  }
}

/* Escapes HELP text (\\ and \n) or a label value (also \"). Values are clean ASCII, but
 * help text is anyone's. */
static void escape(const char *s, int quote, char *out, size_t size) {
  size_t o = 0;
  for (; *s && o + 3 < size; s++) {
    if (*s == '\\' || *s == '\n' || (quote && *s == '"')) {
      out[o++] = '\\';
      out[o++] = *s == '\n' ? 'n' : *s;
    } else {
      out[o++] = *s;
    }
  }
  out[o] = '\0';
}

/* {a="x",b="y"} plus an extra label (le) when given; "" when there is nothing to print. */
static void label_text(const mu_metric *f, const series *s, const char *extra_name, const char *extra_value, char *out,
                       size_t size) {
  size_t o = 0;
  out[0] = '\0';
  if (f->n_labels == 0 && extra_name == NULL) return;
  o += (size_t)snprintf(out + o, size - o, "{");
  for (size_t i = 0; i < f->n_labels && o < size; i++) {
    char v[2 * MU_METRIC_MAX_VALUE + 4];
    escape(s->values[i], 1, v, sizeof v);
    o += (size_t)snprintf(out + o, size - o, "%s%s=\"%s\"", i ? "," : "", f->labels[i], v);
  }
  if (extra_name != NULL && o < size)
    o += (size_t)snprintf(out + o, size - o, "%s%s=\"%s\"", f->n_labels ? "," : "", extra_name, extra_value);
  if (o < size) snprintf(out + o, size - o, "}");
}

static void render_family(const mu_metric *f, mu_prom *out) {
  static const char *const type_name[] = {"", "counter", "gauge", "histogram"};
  char help[1024];
  escape(f->help, 0, help, sizeof help);
  mu_prom_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, help, f->name, type_name[f->type]);
  char labels[MU_METRIC_MAX_LABELS * (2 * MU_METRIC_MAX_VALUE + 80) + 64], num[40];
  for (size_t i = 0; i < f->n_series; i++) {
    const series *s = &f->series[i];
    if (f->type != MU_METRIC_HISTOGRAM) {
      label_text(f, s, NULL, NULL, labels, sizeof labels);
      fmt_num(s->value, num);
      mu_prom_printf(out, "%s%s %s\n", f->name, labels, num);
      continue;
    }
    uint64_t cum = 0;
    for (size_t b = 0; b <= f->n_buckets; b++) {
      char le[40];
      fmt_num(b < f->n_buckets ? f->buckets[b] : INFINITY, le);
      cum += s->buckets[b];
      label_text(f, s, "le", le, labels, sizeof labels);
      mu_prom_printf(out, "%s_bucket%s %llu\n", f->name, labels, (unsigned long long)cum);
    }
    label_text(f, s, NULL, NULL, labels, sizeof labels);
    fmt_num(s->sum, num);
    mu_prom_printf(out, "%s_sum%s %s\n%s_count%s %llu\n", f->name, labels, num, f->name, labels,
                   (unsigned long long)s->count);
  }
}

void mu_metrics_render_as(const mu_metrics *m, const char *dropped_name, mu_prom *out) {
  for (const mu_metric *f = m->head; f != NULL; f = f->next) render_family(f, out);
  mu_prom_printf(out,
                 "# HELP %s Updates dropped because their "
                 "metric already held its maximum number of label sets.\n"
                 "# TYPE %s counter\n",
                 dropped_name, dropped_name);
  for (const mu_metric *f = m->head; f != NULL; f = f->next)
    mu_prom_printf(out, "%s{metric=\"%s\"} %llu\n", dropped_name, f->name, (unsigned long long)f->dropped);
}

void mu_metrics_render(const mu_metrics *m, mu_prom *out) {
  mu_metrics_render_as(m, "muster_metrics_series_dropped_total", out);
}
