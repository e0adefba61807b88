/* spark-submit output scanning (spark_output.h). Each marker is the text Spark's client code
 * logs right before the id (yarn Client.scala / YarnClientImpl, RestSubmissionClient,
 * StandaloneSchedulerBackend, k8s LoggingPodStatusWatcher / KubernetesClientApplication,
 * SparkUI); the id after it must have its documented shape. */
#define _GNU_SOURCE /* memmem */
#include "spark_output.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct stream_buf {
  char line[MU_SPARK_LINE_MAX + 1];
  size_t len;
  bool cut; /* the current line is longer than the buffer: the rest is skipped */
} stream_buf;

struct mu_spark_scan {
  stream_buf s[2];
  mu_spark_found f;
};

mu_spark_scan *mu_spark_scan_new(void) {
  mu_spark_scan *s = calloc(1, sizeof *s);
  if (s != NULL) s->f.k8s_exit_code = -1;
  return s;
}

void mu_spark_scan_free(mu_spark_scan *s) { free(s); }

const mu_spark_found *mu_spark_scan_found(const mu_spark_scan *s) { return &s->f; }

/* The text right after marker in line, or NULL. */
static const char *after(const char *line, size_t len, const char *marker, size_t *rest) {
  const char *m = memmem(line, len, marker, strlen(marker));
  if (m == NULL) return NULL;
  const char *p = m + strlen(marker);
  *rest = len - (size_t)(p - line);
  return p;
}

/* application_<digits>_<digits> at p; its length or 0. */
static size_t yarn_id_len(const char *p, size_t n) {
  static const char pre[] = "application_";
  size_t k = sizeof pre - 1, i;
  if (n < k || memcmp(p, pre, k) != 0) return 0;
  i = k;
  size_t d = i;
  while (i < n && isdigit((unsigned char)p[i])) i++;
  if (i == d || i >= n || p[i] != '_') return 0;
  d = ++i;
  while (i < n && isdigit((unsigned char)p[i])) i++;
  return i > d && i < MU_SPARK_ID_MAX ? i : 0;
}

/* <prefix>-<14 digits>-<digits> (driver-…, app-…); its length or 0. */
static size_t spark_id_len(const char *p, size_t n, const char *prefix) {
  size_t k = strlen(prefix), i;
  if (n < k || memcmp(p, prefix, k) != 0) return 0;
  i = k;
  size_t d = i;
  while (i < n && isdigit((unsigned char)p[i])) i++;
  if (i - d < 8 || i >= n || p[i] != '-') return 0;
  d = ++i;
  while (i < n && isdigit((unsigned char)p[i])) i++;
  return i > d && i < MU_SPARK_ID_MAX ? i : 0;
}

/* namespace:pod (DNS labels); its length or 0. */
static size_t k8s_id_len(const char *p, size_t n) {
  size_t i = 0;
  bool colon = false;
  while (i < n && (islower((unsigned char)p[i]) || isdigit((unsigned char)p[i]) || p[i] == '-' || p[i] == '.' ||
                   (p[i] == ':' && !colon))) {
    if (p[i] == ':') colon = true;
    i++;
  }
  return colon && i > 2 && p[0] != ':' && p[i - 1] != ':' && i < MU_SPARK_ID_MAX ? i : 0;
}

static size_t url_len(const char *p, size_t n) {
  if (!((n > 7 && memcmp(p, "http://", 7) == 0) || (n > 8 && memcmp(p, "https://", 8) == 0))) return 0;
  size_t i = 0;
  while (i < n && !isspace((unsigned char)p[i]) && p[i] != ',' && p[i] != ')' && p[i] != '"') i++;
  return i < MU_SPARK_ID_MAX ? i : 0;
}

static bool set_once(char *dst, const char *src, size_t n) {
  if (dst[0] != '\0' || n == 0) return false;
  memcpy(dst, src, n);
  dst[n] = '\0';
  return true;
}

bool mu_spark_scan_line(mu_spark_scan *s, const char *line, size_t len) {
  mu_spark_found *f = &s->f;
  bool news = false;
  size_t rest = 0, n;
  const char *p;
  p = after(line, len, "Submitted application ", &rest);
  n = p != NULL ? yarn_id_len(p, rest) : 0;
  if (n > 0) news |= set_once(f->yarn_app_id, p, n);
  p = after(line, len, "Submitting application ", &rest);
  n = p != NULL ? yarn_id_len(p, rest) : 0;
  if (n > 0 && rest > n && memmem(p + n, rest - n, " to ResourceManager", 19) != NULL)
    news |= set_once(f->yarn_app_id, p, n);
  p = after(line, len, "Application report for ", &rest);
  n = p != NULL ? yarn_id_len(p, rest) : 0;
  if (n > 0) {
    news |= set_once(f->yarn_app_id, p, n);
    size_t r2;
    const char *st = after(p, rest, "(state: ", &r2);
    if (st != NULL && strncmp(f->yarn_app_id, p, n) == 0 && f->yarn_app_id[n] == '\0') {
      size_t k = 0;
      while (k < r2 && k < sizeof f->yarn_state - 1 && isupper((unsigned char)st[k])) k++;
      if (k > 0 && (k != strlen(f->yarn_state) || memcmp(f->yarn_state, st, k) != 0)) {
        memcpy(f->yarn_state, st, k);
        f->yarn_state[k] = '\0';
        news = true;
      }
    }
  }
  p = f->yarn_app_id[0] != '\0' ? after(line, len, "tracking URL: ", &rest) : NULL;
  n = p != NULL ? url_len(p, rest) : 0;
  if (n > 0) news |= set_once(f->tracking_url, p, n);
  p = after(line, len, "Submission successfully created as ", &rest);
  n = p != NULL ? spark_id_len(p, rest, "driver-") : 0;
  if (n > 0) news |= set_once(f->driver_id, p, n);
  p = after(line, len, "Connected to Spark cluster with app ID ", &rest);
  n = p != NULL ? spark_id_len(p, rest, "app-") : 0;
  if (n > 0) news |= set_once(f->standalone_app_id, p, n);
  p = after(line, len, "submission ID ", &rest);
  n = p != NULL ? k8s_id_len(p, rest) : 0;
  if (n > 0) news |= set_once(f->k8s_submission, p, n);
  p = after(line, len, "and started at ", &rest);
  n = p != NULL && memmem(line, len, "SparkUI", 7) != NULL ? url_len(p, rest) : 0;
  if (n > 0) news |= set_once(f->ui_url, p, n);
  p = f->k8s_submission[0] != '\0' ? after(line, len, "xit code: ", &rest) : NULL;
  if (p != NULL && rest > 0 && isdigit((unsigned char)p[0]) && p - 11 >= line && (p[-11] == 'e' || p[-11] == 'E')) {
    int code = 0;
    for (size_t i = 0; i < rest && i < 4 && isdigit((unsigned char)p[i]); i++) code = code * 10 + (p[i] - '0');
    if (code != f->k8s_exit_code) f->k8s_exit_code = code, news = true;
  }
  if (memmem(line, len, "Application submission failed", 29) != NULL && !f->submission_failed) {
    f->submission_failed = true;
    news = true;
  }
  return news;
}

bool mu_spark_scan_feed(mu_spark_scan *s, int stream, const char *data, size_t len) {
  stream_buf *b = &s->s[stream == 2 ? 1 : 0];
  bool news = false;
  for (size_t i = 0; i < len; i++) {
    char c = data[i];
    if (c == '\n') {
      size_t n = b->len;
      if (n > 0 && b->line[n - 1] == '\r') n--;
      news |= mu_spark_scan_line(s, b->line, n);
      b->len = 0;
      b->cut = false;
    } else if (b->len < MU_SPARK_LINE_MAX) {
      b->line[b->len++] = c;
    } else {
      b->cut = true;
    }
  }
  return news;
}

bool mu_spark_scan_end(mu_spark_scan *s) {
  bool news = false;
  for (int k = 0; k < 2; k++) {
    if (s->s[k].len > 0) news |= mu_spark_scan_line(s, s->s[k].line, s->s[k].len);
    s->s[k].len = 0;
  }
  return news;
}

void mu_spark_k8s_status_parse(const char *text, size_t len, mu_spark_k8s_status *ret) {
  memset(ret, 0, sizeof *ret);
  ret->exit_code = -1;
  const char *end = text + len;
  for (const char *line = text; line < end;) {
    const char *nl = memchr(line, '\n', (size_t)(end - line));
    size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
    size_t rest;
    const char *p;
    if (memmem(line, n, "Application not found", 21) != NULL) ret->not_found = true;
    p = after(line, n, "phase: ", &rest);
    if (p != NULL) {
      size_t k = 0;
      while (k < rest && k < sizeof ret->phase - 1 && isalpha((unsigned char)p[k])) k++;
      if (k > 0) {
        memcpy(ret->phase, p, k);
        ret->phase[k] = '\0';
        ret->found = true;
      }
    }
    p = after(line, n, "xit code: ", &rest);
    if (p != NULL && rest > 0 && isdigit((unsigned char)p[0])) {
      int code = 0;
      for (size_t i = 0; i < rest && i < 4 && isdigit((unsigned char)p[i]); i++) code = code * 10 + (p[i] - '0');
      ret->exit_code = code;
    }
    line += n + 1;
  }
  if (ret->found) ret->not_found = false;
}
