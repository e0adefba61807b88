/* Reading and checking the spec's conf map. */
#ifndef MU_SPARK_SPEC_CONF_H
#define MU_SPARK_SPEC_CONF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spark_spec.h"
#include "spark_spec_read.h"

/* Reads the conf map into s->conf (sorted by key, values' ${secret.NAME} substituted); each
 * refusal names spark.conf.<key>. 0 or a negative errno with ps->errbuf. */
int spark_spec_read_conf(spark_spec_parser *ps, json_t *o, mu_spark_spec *s);
/* A conf key a field sets while that field is set too, or a key the plugin owns: -EINVAL with
 * errbuf (MUSTER_ERRBUF_SIZE) naming it; else 0. */
int spark_spec_check_conf(const mu_spark_spec *s, char *errbuf);

#endif
