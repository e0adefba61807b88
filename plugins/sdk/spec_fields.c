/* Field access and errors for task specs (spec_fields.h): alias lookup, typed getters that
 * name the field they refuse, unknown-key detection, durations, and the parsed view of the
 * spec and config JSON a plugin is handed. */
#include "spec_fields.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muster_plugin.h"

int muster_field_fail(char *errbuf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, MUSTER_ERRBUF_SIZE, fmt, ap);
  va_end(ap);
  return -EINVAL;
}

json_t *muster_field_get(const json_t *obj, const char *camel, const char *snake) {
  if (!json_is_object(obj)) return NULL;
  json_t *v = json_object_get(obj, camel);
  if (v == NULL && snake != NULL) v = json_object_get(obj, snake);
  return json_is_null(v) ? NULL : v;
}

int muster_field_string(const json_t *obj, const char *camel, const char *snake, const char *field, const char **ret,
                        char *errbuf) {
  json_t *v = muster_field_get(obj, camel, snake);
  if (v == NULL) return 0;
  if (!json_is_string(v)) return muster_field_fail(errbuf, "%s: must be a string", field);
  const char *s = json_string_value(v);
  if (strlen(s) != json_string_length(v)) return muster_field_fail(errbuf, "%s: contains a NUL byte", field);
  *ret = s;
  return 0;
}

int muster_field_int(const json_t *obj, const char *camel, const char *snake, const char *field, int64_t lo, int64_t hi,
                     int64_t *ret, char *errbuf) {
  json_t *v = muster_field_get(obj, camel, snake);
  if (v == NULL) return 0;
  long long n = 0;
  bool ok = false;
  if (json_is_integer(v)) {
    n = json_integer_value(v);
    ok = true;
  } else if (json_is_string(v)) {
    const char *s = json_string_value(v);
    char *end = NULL;
    errno = 0;
    n = strtoll(s, &end, 10);
    ok = *s != '\0' && !isspace((unsigned char)*s) && *end == '\0' && errno == 0;
  }
  if (!ok || n < lo || n > hi)
    return muster_field_fail(errbuf, "%s: must be a number from %lld to %lld", field, (long long)lo, (long long)hi);
  *ret = n;
  return 0;
}

int muster_field_bool(const json_t *obj, const char *camel, const char *snake, const char *field, bool *ret,
                      char *errbuf) {
  json_t *v = muster_field_get(obj, camel, snake);
  if (v == NULL) return 0;
  if (json_is_boolean(v)) {
    *ret = json_is_true(v);
    return 0;
  }
  const char *s = json_string_value(v);
  if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
    *ret = strcmp(s, "true") == 0;
    return 0;
  }
  return muster_field_fail(errbuf, "%s: must be true or false", field);
}

int muster_duration_parse(const char *text, int64_t *ret_ms) {
  if (text == NULL || *text == '\0') return -EINVAL;
  const char *p = text;
  double total = 0;
  while (*p) {
    char *end;
    if (!isdigit((unsigned char)*p)) return -EINVAL;
    double v = strtod(p, &end);
    if (end == p || v < 0) return -EINVAL;
    p = end;
    double unit;
    if (strncmp(p, "ms", 2) == 0) unit = 1, p += 2;
    else if (*p == 's') unit = 1000, p++;
    else if (*p == 'm') unit = 60000, p++;
    else if (*p == 'h') unit = 3600000, p++;
    else if (*p == 'd') unit = 86400000, p++;
    else if (*p == '\0' && total == 0) unit = 1000; /* a bare number: seconds */
    else return -EINVAL;
    total += v * unit;
    if (total > 1e15) return -EINVAL;
  }
  *ret_ms = (int64_t)total;
  return 0;
}

int muster_field_duration(const json_t *obj, const char *camel, const char *snake, const char *field, int64_t min_ms,
                          int64_t *ret_ms, char *errbuf) {
  const char *text = NULL;
  int rc = muster_field_string(obj, camel, snake, field, &text, errbuf);
  if (rc != 0 || text == NULL || *text == '\0') return rc;
  int64_t ms = 0;
  if (muster_duration_parse(text, &ms) != 0)
    return muster_field_fail(errbuf, "%s: bad duration \"%.64s\" (e.g. \"5s\", \"500ms\")", field, text);
  if (ms < min_ms)
    return muster_field_fail(errbuf, "%s: %.64s is below the minimum of %lld ms", field, text, (long long)min_ms);
  *ret_ms = ms;
  return 0;
}

int muster_field_list(const json_t *obj, const char *camel, const char *snake, const char *field, const char *of,
                      size_t max, json_t **ret, char *errbuf) {
  json_t *v = muster_field_get(obj, camel, snake);
  if (v == NULL) return 0;
  if (!json_is_array(v))
    return muster_field_fail(errbuf, "%s: must be a list%s%s", field, of ? " of " : "", of ? of : "");
  if (json_array_size(v) > max) return muster_field_fail(errbuf, "%s: more than %zu entries", field, max);
  *ret = v;
  return 0;
}

int muster_field_object(const json_t *obj, const char *camel, const char *snake, const char *field, const char *of,
                        json_t **ret, char *errbuf) {
  json_t *v = muster_field_get(obj, camel, snake);
  if (v == NULL) return 0;
  if (!json_is_object(v))
    return muster_field_fail(errbuf, "%s: must be an object%s%s", field, of ? " of " : "", of ? of : "");
  *ret = v;
  return 0;
}

int muster_fields_check_known(const json_t *obj, const char *section, const char *const *known, size_t n,
                              char *errbuf) {
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)obj, key, val) {
    bool ok = false;
    for (size_t i = 0; i < n && !ok; i++) ok = strcmp(key, known[i]) == 0;
    if (!ok) return muster_field_fail(errbuf, "%s.%s: unknown field", section, key);
  }
  return 0;
}

int muster_spec_view_open(const char *spec_json, const char *config_json, const char *section, muster_spec_view *ret,
                          char *errbuf) {
  memset(ret, 0, sizeof *ret);
  json_error_t je;
  ret->spec = json_loads(spec_json ? spec_json : "{}", 0, &je);
  if (ret->spec == NULL) return muster_field_fail(errbuf, "spec: bad JSON: %s", je.text);
  ret->config = json_loads(config_json ? config_json : "{}", 0, &je);
  if (ret->config == NULL) return muster_field_fail(errbuf, "%s: bad JSON: %s", section, je.text);
  if (!json_is_object(ret->spec)) return muster_field_fail(errbuf, "spec: must be an object");
  if (!json_is_object(ret->config)) return muster_field_fail(errbuf, "%s: must be an object", section);
  return muster_field_list(ret->spec, "secrets", NULL, "secrets", NULL, (size_t)-1, &ret->secrets, errbuf);
}

void muster_spec_view_close(muster_spec_view *view) {
  json_decref(view->spec);
  json_decref(view->config);
  memset(view, 0, sizeof *view);
}
