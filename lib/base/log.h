/* Logging to stderr: one line per event, "TIME LEVEL component: message", or with
 * --log-format json one JSON object per line: {"ts","level","component","msg"} plus
 * "trace_id" (lib/base/trace.h) when the message names a job. Level and format are set once at
 * start-up by main (the only process-wide settings). */
#ifndef MU_LOG_H
#define MU_LOG_H

typedef enum { MU_LOG_DEBUG = 0, MU_LOG_INFO, MU_LOG_WARN, MU_LOG_ERROR } mu_log_level;

typedef enum { MU_LOG_TEXT = 0, MU_LOG_JSON } mu_log_format;

void mu_log_set_level(mu_log_level level);
void mu_log_set_format(mu_log_format format);
/* Parses "text|json"; returns 0 or MU_EINVAL. */
int mu_log_parse_format(const char *s, mu_log_format *ret_format);
/* Parses "debug|info|warn|error"; returns 0 or MU_EINVAL. */
int mu_log_parse_level(const char *s, mu_log_level *ret_level);
void mu_log(mu_log_level level, const char *component, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define mu_debug(comp, ...) mu_log(MU_LOG_DEBUG, comp, __VA_ARGS__)
#define mu_info(comp, ...) mu_log(MU_LOG_INFO, comp, __VA_ARGS__)
#define mu_warn(comp, ...) mu_log(MU_LOG_WARN, comp, __VA_ARGS__)
#define mu_error(comp, ...) mu_log(MU_LOG_ERROR, comp, __VA_ARGS__)

#endif
