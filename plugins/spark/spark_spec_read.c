/* Reading the spark section's fields (proto3 JSON, lowerCamel or snake_case) through the SDK's
 * spec_fields.h, each bounded, secrets substituted where a field allows ${secret.NAME}, credentials
 * only as references. */
#include "spark_spec_read.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muster_plugin.h"
#include "secret_refs.h"
#include "spec_fields.h"
#include "spark_spec.h"

int spark_spec_read_str(spark_spec_parser *ps, json_t *o, const char *camel, const char *snake, const char *field,
                        bool subst, char **ret) {
  const char *t = NULL;
  int rc = muster_field_string(o, camel, snake, field, &t, ps->errbuf);
  if (rc != 0 || t == NULL || *t == '\0') return rc; /* proto3: empty is unset */
  size_t max = strcmp(field, "spark.sql") == 0 ? MU_SPARK_MAX_SQL : MU_SPARK_MAX_STRING;
  if (strlen(t) > max) return muster_field_fail(ps->errbuf, "%s: longer than %zu bytes", field, max);
  if (subst) return muster_secret_refs_substitute(ps->secrets, t, field, ret, ps->errbuf);
  return (*ret = strdup(t)) ? 0 : -ENOMEM;
}

/* A credential: only as a ${secret.NAME} reference, so its value is masked wherever it could
 * show and never sits in a job file. */
int spark_spec_read_secret(spark_spec_parser *ps, json_t *o, const char *camel, const char *snake, const char *field,
                           char **ret) {
  json_t *v = muster_field_get(o, camel, snake);
  if (json_is_string(v) && *json_string_value(v) != '\0' && strstr(json_string_value(v), "${secret.") == NULL)
    return muster_field_fail(
        ps->errbuf, "%s: must be a ${secret.NAME} reference (a credential is never written in the spec)", field);
  return spark_spec_read_str(ps, o, camel, snake, field, true, ret);
}

int spark_spec_read_list(spark_spec_parser *ps, json_t *o, const char *camel, const char *snake, const char *field,
                         bool subst, mu_spark_list *ret) {
  json_t *v = muster_field_get(o, camel, snake);
  if (v == NULL) return 0;
  if (json_is_string(v))
    return muster_field_fail(ps->errbuf, "%s: must be a list of strings (an argv, never one shell string)", field);
  int lrc = muster_field_list(o, camel, snake, field, "strings", MU_SPARK_MAX_ITEMS, &v, ps->errbuf);
  if (lrc != 0) return lrc;
  ret->items = calloc(json_array_size(v) + 1, sizeof *ret->items);
  if (ret->items == NULL) return -ENOMEM;
  size_t i;
  json_t *e;
  json_array_foreach(v, i, e) {
    char f[160];
    snprintf(f, sizeof f, "%s[%zu]", field, i);
    if (!json_is_string(e)) return muster_field_fail(ps->errbuf, "%s: must be a string", f);
    const char *t = json_string_value(e);
    if (strlen(t) > MU_SPARK_MAX_STRING)
      return muster_field_fail(ps->errbuf, "%s: longer than %d bytes", f, MU_SPARK_MAX_STRING);
    int rc = subst ? muster_secret_refs_substitute(ps->secrets, t, f, &ret->items[ret->n], ps->errbuf)
                   : ((ret->items[ret->n] = strdup(t)) ? 0 : -ENOMEM);
    if (rc != 0) return rc;
    ret->n++;
  }
  return 0;
}

int spark_spec_read_uint(spark_spec_parser *ps, json_t *o, const char *camel, const char *snake, const char *field,
                         uint32_t hi, uint32_t *ret) {
  int64_t v = -1;
  int rc = muster_field_int(o, camel, snake, field, 0, hi, &v, ps->errbuf);
  if (rc == 0 && v >= 0) *ret = (uint32_t)v;
  return rc;
}

int spark_spec_read_bool(spark_spec_parser *ps, json_t *o, const char *camel, const char *snake, const char *field,
                         bool *ret) {
  return muster_field_bool(o, camel, snake, field, ret, ps->errbuf);
}

int spark_spec_read_duration(spark_spec_parser *ps, json_t *o, const char *camel, const char *snake, const char *field,
                             int64_t min_ms, int64_t *ret) {
  return muster_field_duration(o, camel, snake, field, min_ms, ret, ps->errbuf);
}
