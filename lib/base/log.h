/* Logging to stderr: one line per event, "TIME LEVEL component: message". The level is set
 * once at start-up by main (the only process-wide setting). */
#ifndef MU_LOG_H
#define MU_LOG_H

typedef enum { MU_LOG_DEBUG = 0, MU_LOG_INFO, MU_LOG_WARN, MU_LOG_ERROR } mu_log_level;

void mu_log_set_level(mu_log_level level);
/* Parses "debug|info|warn|error"; returns 0 or MU_EINVAL. */
int mu_log_parse_level(const char *s, mu_log_level *ret_level);
void mu_log(mu_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define mu_debug(comp, ...) mu_log(MU_LOG_DEBUG, comp, __VA_ARGS__)
#define mu_info(comp, ...) mu_log(MU_LOG_INFO, comp, __VA_ARGS__)
#define mu_warn(comp, ...) mu_log(MU_LOG_WARN, comp, __VA_ARGS__)
#define mu_error(comp, ...) mu_log(MU_LOG_ERROR, comp, __VA_ARGS__)

#endif
