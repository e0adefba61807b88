/* The spec's `conf` map: spark.* properties, sorted, secrets substituted; a key a field sets
 * (spark.driver.memory beside driver_memory) or the plugin owns (waitAppCompletion) is refused. */
#include "spark_spec_conf.h"

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
#include "spark_spec_read.h"
#include "spark_spec_check.h"

/* conf keys a field of the spec sets: setting both is refused. */
static const struct {
  const char *conf, *field;
} owned_conf[] = {
    {"spark.master", "master"},
    {"spark.submit.deployMode", "deploy_mode"},
    {"spark.app.name", "name"},
    {"spark.driver.memory", "driver_memory"},
    {"spark.driver.cores", "driver_cores"},
    {"spark.executor.memory", "executor_memory"},
    {"spark.executor.cores", "executor_cores"},
    {"spark.executor.instances", "num_executors"},
    {"spark.yarn.queue", "queue"},
    {"spark.kubernetes.namespace", "namespace"},
    {"spark.jars", "jars"},
    {"spark.submit.pyFiles", "py_files"},
    {"spark.files", "files"},
    {"spark.archives", "archives"},
    {"spark.jars.packages", "packages"},
    {"spark.dynamicAllocation.enabled", "dynamic_allocation"},
    {"spark.dynamicAllocation.minExecutors", "dynamic_allocation"},
    {"spark.dynamicAllocation.maxExecutors", "dynamic_allocation"},
    {"spark.dynamicAllocation.initialExecutors", "dynamic_allocation"},
    {"spark.kerberos.principal", "principal"},
    {"spark.kerberos.keytab", "keytab"},
    {"spark.yarn.principal", "principal"},
    {"spark.yarn.keytab", "keytab"},
};

/* conf keys the plugin itself sets, for tracking and kill: never from the spec. */
static const char *const plugin_conf[] = {
    "spark.yarn.submit.waitAppCompletion",
    "spark.kubernetes.submission.waitAppCompletion",
    "spark.standalone.submit.waitAppCompletion",
};

static bool field_set(const mu_spark_spec *s, const char *field) {
  if (strcmp(field, "master") == 0 || strcmp(field, "deploy_mode") == 0) return true;
  if (strcmp(field, "name") == 0) return s->name != NULL;
  if (strcmp(field, "driver_memory") == 0) return s->driver_memory != NULL;
  if (strcmp(field, "driver_cores") == 0) return s->driver_cores > 0;
  if (strcmp(field, "executor_memory") == 0) return s->executor_memory != NULL;
  if (strcmp(field, "executor_cores") == 0) return s->executor_cores > 0;
  if (strcmp(field, "num_executors") == 0) return s->num_executors > 0;
  if (strcmp(field, "queue") == 0) return s->queue != NULL;
  if (strcmp(field, "namespace") == 0) return s->namespace_ != NULL;
  if (strcmp(field, "jars") == 0) return s->jars.n > 0;
  if (strcmp(field, "py_files") == 0) return s->py_files.n > 0;
  if (strcmp(field, "files") == 0) return s->files.n > 0;
  if (strcmp(field, "archives") == 0) return s->archives.n > 0;
  if (strcmp(field, "packages") == 0) return s->packages.n > 0;
  if (strcmp(field, "dynamic_allocation") == 0) return s->dyn_enabled;
  if (strcmp(field, "principal") == 0) return s->principal != NULL;
  if (strcmp(field, "keytab") == 0) return s->keytab != NULL;
  return false;
}

static int kv_cmp(const void *a, const void *b) {
  return strcmp(((const mu_spark_kv *)a)->key, ((const mu_spark_kv *)b)->key);
}

int spark_spec_read_conf(spark_spec_parser *ps, json_t *o, mu_spark_spec *s) {
  json_t *v = NULL;
  int orc = muster_field_object(o, "conf", NULL, "spark.conf", "strings", &v, ps->errbuf);
  if (orc != 0 || v == NULL) return orc;
  if (json_object_size(v) > MU_SPARK_MAX_ITEMS)
    return muster_field_fail(ps->errbuf, "spark.conf: more than %d entries", MU_SPARK_MAX_ITEMS);
  s->conf = calloc(json_object_size(v) + 1, sizeof *s->conf);
  if (s->conf == NULL) return -ENOMEM;
  const char *key;
  json_t *val;
  json_object_foreach(v, key, val) {
    char f[300];
    snprintf(f, sizeof f, "spark.conf.%.200s", key);
    if (strncmp(key, "spark.", 6) != 0 || key[6] == '\0')
      return muster_field_fail(ps->errbuf,
                               "%s: not a Spark property (keys start with \"spark.\"; spark-submit ignores others)", f);
    for (const char *p = key; *p; p++)
      if (!isalnum((unsigned char)*p) && strchr("._-[]", *p) == NULL)
        return muster_field_fail(ps->errbuf, "%s: bad character in key", f);
    char *text = NULL;
    if (json_is_string(val)) text = strdup(json_string_value(val));
    else if (json_is_integer(val) || json_is_boolean(val) || json_is_real(val)) text = json_dumps(val, JSON_ENCODE_ANY);
    else return muster_field_fail(ps->errbuf, "%s: must be a string", f);
    if (text == NULL) return -ENOMEM;
    int rc = muster_secret_refs_substitute(ps->secrets, text, f, &s->conf[s->n_conf].value, ps->errbuf);
    free(text);
    if (rc != 0) return rc;
    s->conf[s->n_conf].key = strdup(key);
    if (s->conf[s->n_conf].key == NULL) return -ENOMEM;
    s->n_conf++;
    if (spark_spec_has_ctl(s->conf[s->n_conf - 1].value))
      return muster_field_fail(ps->errbuf, "%s: control characters are not allowed", f);
  }
  qsort(s->conf, s->n_conf, sizeof *s->conf, kv_cmp);
  return 0;
}

int spark_spec_check_conf(const mu_spark_spec *s, char *errbuf) {
  for (size_t i = 0; i < s->n_conf; i++) {
    for (size_t k = 0; k < sizeof owned_conf / sizeof *owned_conf; k++)
      if (strcmp(s->conf[i].key, owned_conf[k].conf) == 0 && field_set(s, owned_conf[k].field)) {
        return muster_field_fail(errbuf, "spark.conf.%s: conflicts with spark.%s (set one of them)", s->conf[i].key,
                                 owned_conf[k].field);
      }
    for (size_t k = 0; k < sizeof plugin_conf / sizeof *plugin_conf; k++)
      if (strcmp(s->conf[i].key, plugin_conf[k]) == 0) {
        return muster_field_fail(
            errbuf, "spark.conf.%s: set by Muster, which detaches in cluster mode and tracks the application itself",
            s->conf[i].key);
      }
  }
  return 0;
}
