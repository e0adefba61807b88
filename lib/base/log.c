/* Stderr logger with a level threshold set once by main. */
#include "lib/base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/base/err.h"
#include "lib/base/trace.h"

static mu_log_level log_threshold = MU_LOG_INFO;
static mu_log_format log_format = MU_LOG_TEXT;

void mu_log_set_level(mu_log_level level) { log_threshold = level; }
void mu_log_set_format(mu_log_format format) { log_format = format; }

int mu_log_parse_format(const char *s, mu_log_format *ret_format) {
  if (strcmp(s, "text") == 0) *ret_format = MU_LOG_TEXT;
  else if (strcmp(s, "json") == 0) *ret_format = MU_LOG_JSON;
  else return MU_EINVAL;
  return 0;
}

/* text as a JSON string body into out (bounded; a cut never splits an escape). */
static size_t json_escape(const char *text, char *out, size_t size) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)text; *p && n + 7 < size; p++) {
    if (*p == '"' || *p == '\\') {
      out[n++] = '\\';
      out[n++] = (char)*p;
    } else if (*p < 0x20) {
      n += (size_t)snprintf(out + n, size - n, "\\u%04x", *p);
    } else {
      out[n++] = (char)*p;
    }
  }
  out[n] = '\0';
  return n;
}

static void log_json(const char *ts, const char *level, const char *component, const char *msg) {
  char line[4600], esc[4200], job[128], trace[MU_TRACE_ID_HEX];
  json_escape(msg, esc, sizeof esc);
  int n = snprintf(line, sizeof line,
                   "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\","
                   "\"msg\":\"%s\"",
                   ts, level, component, esc);
  if (n > 0 && (size_t)n < sizeof line && mu_trace_find_job_id(msg, job, sizeof job) == 0) {
    mu_trace_id(job, trace);
    n += snprintf(line + n, sizeof line - (size_t)n, ",\"job_id\":\"%s\",\"trace_id\":\"%s\"", job, trace);
  }
  if (n > 0 && (size_t)n < sizeof line - 2) fprintf(stderr, "%s}\n", line);
}

int mu_log_parse_level(const char *s, mu_log_level *ret_level) {
  static const char *const names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, names[i]) == 0) {
      *ret_level = (mu_log_level)i;
      return 0;
    }
  }
  return MU_EINVAL;
}

void mu_log(mu_log_level level, const char *component, const char *fmt, ...) {
  static const char *const tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  static const char *const names[] = {"debug", "info", "warn", "error"};
  if (level < log_threshold) return;
  if (log_format == MU_LOG_JSON) {
    char ts_text[40], msg[2048];
    struct timespec now;
    struct tm t;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &t);
    snprintf(ts_text, sizeof ts_text, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
             t.tm_hour, t.tm_min, t.tm_sec, now.tv_nsec / 1000000);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_json(ts_text, names[level], component, msg);
    return;
  }
  char line[2048];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n =
      snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ", tm.tm_year + 1900, tm.tm_mon + 1,
               tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, tags[level], component);
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s\n", line); /* one write per line keeps lines whole between processes */
}
