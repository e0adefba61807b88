/* Plugin parameter schemas (pschema.h): a small subset of JSON Schema, checked with jansson. */
#include "lib/pschema/pschema.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *load(const char *text, const char *name, mu_err *err) {
  if (text == NULL || strlen(text) > MU_PSCHEMA_MAX_BYTES) {
    mu_err_set(err, MU_EINVAL, "%s: missing or over %u bytes", name, MU_PSCHEMA_MAX_BYTES);
    return NULL;
  }
  json_error_t je;
  json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
  if (j == NULL) mu_err_set(err, MU_EINVAL, "%s: not JSON: %s (line %d)", name, je.text, je.line);
  return j;
}

static const char *type_of(const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
  }
}

static bool type_ok(const char *want, const json_t *v) {
  if (want == NULL) return true;
  const char *have = type_of(v);
  if (strcmp(want, "number") == 0) return json_is_number(v);
  return strcmp(want, have) == 0;
}

static void known_keys(const json_t *sec, char *buf, size_t cap) {
  size_t n = 0;
  const char *k;
  json_t *v;
  buf[0] = '\0';
  json_object_foreach((json_t *)sec, k, v) {
    if (n >= cap) break;
    int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", k);
    if (w < 0) break;
    n += (size_t)w;
  }
  if (n >= cap && cap > 4) strcpy(buf + cap - 4, "...");
}

static int check_one(const char *what, const char *key, const json_t *rule, const json_t *v, mu_err *err) {
  if (!json_is_object(rule)) return 0; /* a rule we do not understand checks nothing */
  const char *type = json_string_value(json_object_get(rule, "type"));
  if (!type_ok(type, v)) return mu_err_set(err, MU_EINVAL, "%s.%s: want %s, got %s", what, key, type, type_of(v));
  const json_t *en = json_object_get(rule, "enum");
  if (json_is_array(en) && json_array_size(en) > 0) {
    bool found = false;
    for (size_t i = 0; i < json_array_size(en) && !found; i++) found = json_equal(json_array_get(en, i), (json_t *)v);
    if (!found) {
      char *choices = json_dumps(en, JSON_COMPACT);
      int rc = mu_err_set(err, MU_EINVAL, "%s.%s: not one of %s", what, key, choices ? choices : "the allowed values");
      free(choices);
      return rc;
    }
  }
  if (json_is_number(v)) {
    double x = json_number_value(v);
    const json_t *mn = json_object_get(rule, "minimum"), *mx = json_object_get(rule, "maximum");
    if (json_is_number(mn) && x < json_number_value(mn))
      return mu_err_set(err, MU_EINVAL, "%s.%s: %g is under the minimum %g", what, key, x, json_number_value(mn));
    if (json_is_number(mx) && x > json_number_value(mx))
      return mu_err_set(err, MU_EINVAL, "%s.%s: %g is over the maximum %g", what, key, x, json_number_value(mx));
  }
  return 0;
}

int mu_pschema_check(const char *schema_json, const char *section, const char *value_json, const char *what,
                     mu_err *err) {
  json_t *schema = load(schema_json, "plugin schema", err);
  if (schema == NULL) return MU_EINVAL;
  json_t *value = load(value_json, what, err);
  int rc = 0;
  if (value == NULL) {
    rc = MU_EINVAL;
    goto done;
  }
  if (!json_is_object(value)) {
    rc = mu_err_set(err, MU_EINVAL, "%s: want an object, got %s", what, type_of(value));
    goto done;
  }
  const json_t *sec = json_object_get(schema, section);
  if (!json_is_object(sec)) goto done;
  const char *k;
  json_t *v;
  json_object_foreach(value, k, v) {
    const json_t *rule = json_object_get(sec, k);
    if (rule == NULL) {
      char known[400];
      known_keys(sec, known, sizeof known);
      rc = mu_err_set(err, MU_EINVAL, "%s.%s: unknown key (known: %s)", what, k, known[0] ? known : "none");
      goto done;
    }
    rc = check_one(what, k, rule, v, err);
    if (rc != 0) goto done;
  }
  json_object_foreach((json_t *)sec, k, v) {
    if (json_is_true(json_object_get(v, "required")) && json_object_get(value, k) == NULL) {
      rc = mu_err_set(err, MU_EINVAL, "%s.%s: required", what, k);
      goto done;
    }
  }
done:
  json_decref(schema);
  json_decref(value);
  return rc;
}

int mu_pschema_help(const char *schema_json, const char *section, char **ret, mu_err *err) {
  json_t *schema = load(schema_json, "plugin schema", err);
  if (schema == NULL) return MU_EINVAL;
  const json_t *sec = json_object_get(schema, section);
  size_t cap = 256, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL) {
    json_decref(schema);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  buf[0] = '\0';
  const char *k;
  json_t *rule;
  json_object_foreach((json_t *)(json_is_object(sec) ? sec : NULL), k, rule) {
    const char *type = json_string_value(json_object_get(rule, "type"));
    const char *help = json_string_value(json_object_get(rule, "help"));
    char line[1024], extra[200] = "";
    const json_t *en = json_object_get(rule, "enum");
    char *enums = json_is_array(en) ? json_dumps(en, JSON_COMPACT) : NULL;
    const json_t *mn = json_object_get(rule, "minimum");
    if (enums != NULL) snprintf(extra, sizeof extra, ", one of %s", enums);
    else if (json_is_number(mn)) snprintf(extra, sizeof extra, ", >= %g", json_number_value(mn));
    free(enums);
    int n = snprintf(line, sizeof line, "  %-20s %s%s%s%s%s\n", k, type ? type : "any",
                     json_is_true(json_object_get(rule, "required")) ? ", required" : "", extra, help ? "  " : "",
                     help ? help : "");
    if (n < 0) continue;
    size_t l = strlen(line);
    if (len + l + 1 > cap) {
      while (len + l + 1 > cap) cap *= 2;
      char *nb = realloc(buf, cap);
      if (nb == NULL) {
        free(buf);
        json_decref(schema);
        return mu_err_set(err, MU_ENOMEM, "out of memory");
      }
      buf = nb;
    }
    memcpy(buf + len, line, l + 1);
    len += l;
  }
  json_decref(schema);
  *ret = buf;
  return 0;
}
