/* Livy batch answers and requests (spark_livy.h) with jansson; every copied string is bounded
 * by its field's buffer. */
#include "spark_livy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_str(char *dst, size_t size, json_t *v) {
  const char *s = json_string_value(v);
  snprintf(dst, size, "%s", s ? s : "");
}

/* One Batch object → *ret; -1 with why when it has no usable id or state. */
static int fill_batch(json_t *b, mu_spark_livy_batch *ret, char *why) {
  memset(ret, 0, sizeof *ret);
  json_t *id = json_object_get(b, "id");
  if (!json_is_integer(id) || json_integer_value(id) < 0) {
    snprintf(why, MU_SPARK_TEXT_MAX, "no batch \"id\" (a non-negative integer) in the answer");
    return -1;
  }
  snprintf(ret->id, sizeof ret->id, "%lld", (long long)json_integer_value(id));
  copy_str(ret->state, sizeof ret->state, json_object_get(b, "state"));
  if (ret->state[0] == '\0') {
    snprintf(why, MU_SPARK_TEXT_MAX, "no batch \"state\" in the answer");
    return -1;
  }
  copy_str(ret->name, sizeof ret->name, json_object_get(b, "name"));
  copy_str(ret->app_id, sizeof ret->app_id, json_object_get(b, "appId"));
  json_t *info = json_object_get(b, "appInfo");
  copy_str(ret->spark_ui_url, sizeof ret->spark_ui_url, json_object_get(info, "sparkUiUrl"));
  copy_str(ret->driver_log_url, sizeof ret->driver_log_url, json_object_get(info, "driverLogUrl"));
  return 0;
}

int mu_spark_livy_batch_parse(const char *body, size_t len, mu_spark_livy_batch *ret, char *why) {
  json_t *j = mu_spark_json_object(body, len, why);
  if (j == NULL) return -1;
  int rc = fill_batch(j, ret, why);
  json_decref(j);
  return rc;
}

char *mu_spark_livy_log_text(const char *body, size_t len, size_t max_bytes, char *why) {
  json_t *j = mu_spark_json_object(body, len, why);
  if (j == NULL) return NULL;
  json_t *log = json_object_get(j, "log");
  char *out = NULL;
  if (!json_is_array(log)) {
    snprintf(why, MU_SPARK_TEXT_MAX, "no \"log\" array in the answer");
    goto done;
  }
  /* from the newest line back, as many as fit */
  size_t n = json_array_size(log), first = n, total = 0;
  while (first > 0) {
    const char *line = json_string_value(json_array_get(log, first - 1));
    size_t l = (line ? strlen(line) : 0) + 1;
    if (total + l > max_bytes) break;
    total += l;
    first--;
  }
  out = malloc(total + 1);
  if (out == NULL) {
    snprintf(why, MU_SPARK_TEXT_MAX, "out of memory");
    goto done;
  }
  size_t o = 0;
  for (size_t i = first; i < n; i++) {
    const char *line = json_string_value(json_array_get(log, i));
    size_t l = line ? strlen(line) : 0;
    memcpy(out + o, line ? line : "", l);
    o += l;
    out[o++] = '\n';
  }
  out[o] = '\0';
done:
  json_decref(j);
  return out;
}

/* Whether name carries "[<tag>-a<digits>]". */
static bool name_has_tag(const char *name, const char *tag) {
  size_t tl = strlen(tag);
  for (const char *p = strchr(name, '['); p != NULL; p = strchr(p + 1, '[')) {
    if (strncmp(p + 1, tag, tl) != 0 || strncmp(p + 1 + tl, "-a", 2) != 0) continue;
    const char *d = p + 3 + tl;
    if (*d < '0' || *d > '9') continue;
    while (*d >= '0' && *d <= '9') d++;
    if (*d == ']') return true;
  }
  return false;
}

int mu_spark_livy_find(const char *body, size_t len, const char *tag, mu_spark_livy_batch *ret, char *why) {
  json_t *j = mu_spark_json_object(body, len, why);
  if (j == NULL) return -1;
  json_t *sessions = json_object_get(j, "sessions");
  int found = 0;
  long long best = -1;
  if (!json_is_array(sessions)) {
    snprintf(why, MU_SPARK_TEXT_MAX, "no \"sessions\" list in the answer");
    found = -1;
  } else {
    size_t i;
    json_t *b;
    json_array_foreach(sessions, i, b) {
      mu_spark_livy_batch one;
      char ignore[MU_SPARK_TEXT_MAX];
      if (!json_is_object(b) || fill_batch(b, &one, ignore) != 0 || !name_has_tag(one.name, tag)) continue;
      long long id = json_integer_value(json_object_get(b, "id"));
      if (id > best) { /* the newest: Livy's ids grow */
        best = id;
        *ret = one;
        found = 1;
      }
    }
  }
  json_decref(j);
  return found;
}

mu_spark_app_phase mu_spark_livy_phase(const char *state) {
  static const struct {
    const char *s;
    mu_spark_app_phase p;
  } map[] = {{"not_started", MU_SPARK_APP_PENDING}, {"starting", MU_SPARK_APP_PENDING},
             {"recovering", MU_SPARK_APP_PENDING},  {"idle", MU_SPARK_APP_RUNNING},
             {"busy", MU_SPARK_APP_RUNNING},        {"running", MU_SPARK_APP_RUNNING},
             {"success", MU_SPARK_APP_SUCCEEDED},   {"error", MU_SPARK_APP_FAILED},
             {"dead", MU_SPARK_APP_FAILED},         {"killed", MU_SPARK_APP_KILLED}};
  for (size_t i = 0; i < sizeof map / sizeof *map; i++)
    if (strcmp(state, map[i].s) == 0) return map[i].p;
  return MU_SPARK_APP_TRANSIENT; /* shutting_down, and words a newer Livy may add */
}

static void put_list(json_t *o, const char *key, const char *const *items, size_t n) {
  if (n == 0) return;
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(items[i]));
  json_object_set_new(o, key, a);
}

static void put_str(json_t *o, const char *key, const char *v) {
  if (v != NULL) json_object_set_new(o, key, json_string(v));
}

static void put_uint(json_t *o, const char *key, unsigned v) {
  if (v != 0) json_object_set_new(o, key, json_integer(v));
}

char *mu_spark_livy_create_body(const mu_spark_livy_create *c) {
  json_t *o = json_object();
  if (o == NULL) return NULL;
  put_str(o, "file", c->file);
  put_str(o, "className", c->class_name);
  put_str(o, "name", c->name);
  put_str(o, "queue", c->queue);
  put_str(o, "driverMemory", c->driver_memory);
  put_str(o, "executorMemory", c->executor_memory);
  put_str(o, "proxyUser", c->proxy_user);
  put_uint(o, "driverCores", c->driver_cores);
  put_uint(o, "executorCores", c->executor_cores);
  put_uint(o, "numExecutors", c->num_executors);
  json_t *args = json_array();
  for (size_t i = 0; i < c->n_args; i++) json_array_append_new(args, json_string(c->args[i]));
  json_object_set_new(o, "args", args);
  put_list(o, "jars", c->jars, c->n_jars);
  put_list(o, "pyFiles", c->py_files, c->n_py_files);
  put_list(o, "files", c->files, c->n_files);
  put_list(o, "archives", c->archives, c->n_archives);
  json_t *conf = json_object();
  for (size_t i = 0; i < c->n_conf; i++) json_object_set_new(conf, c->conf_keys[i], json_string(c->conf_values[i]));
  json_object_set_new(o, "conf", conf);
  char *out = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return out;
}
