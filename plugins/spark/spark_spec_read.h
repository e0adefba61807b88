/* Reading one field of the spark section (string, secret, list, number, bool, duration), each
 * refusal naming the field in the parser's errbuf. */
#ifndef MU_SPARK_SPEC_READ_H
#define MU_SPARK_SPEC_READ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spark_spec.h"

/* What every reader needs: the task's secrets (for ${secret.NAME}) and the error buffer
 * (MUSTER_ERRBUF_SIZE) a refusal is written to. */
typedef struct spark_spec_parser {
  json_t *secrets;
  char *errbuf;
} spark_spec_parser;

/* Each reads o's field by its lowerCamel or snake_case name (snake may be NULL) into *ret, leaving
 * it unset when absent or empty (proto3); field is the name refusals use ("spark.queue"). 0, or a
 * negative errno with ps->errbuf. subst: ${secret.NAME} replaced by the secret's value. */
int spark_spec_read_str(spark_spec_parser *ps, json_t *o, const char *camel, const char *snake, const char *field,
                        bool subst, char **ret);
/* A credential: only as a ${secret.NAME} reference, so its value is masked wherever it could
 * show and never sits in a job file. */
int spark_spec_read_secret(spark_spec_parser *ps, json_t *o, const char *camel, const char *snake, const char *field,
                           char **ret);
int spark_spec_read_list(spark_spec_parser *ps, json_t *o, const char *camel, const char *snake, const char *field,
                         bool subst, mu_spark_list *ret);
int spark_spec_read_uint(spark_spec_parser *ps, json_t *o, const char *camel, const char *snake, const char *field,
                         uint32_t hi, uint32_t *ret);
int spark_spec_read_bool(spark_spec_parser *ps, json_t *o, const char *camel, const char *snake, const char *field,
                         bool *ret);
int spark_spec_read_duration(spark_spec_parser *ps, json_t *o, const char *camel, const char *snake, const char *field,
                             int64_t min_ms, int64_t *ret);

#endif
