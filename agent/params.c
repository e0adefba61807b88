/* Output params of earlier tasks on this host, made visible to the next task: every
 * "${task.key}" in the spec's strings is replaced by its value, and each param is also in the
 * environment as MUSTER_PARAM_<TASK>_<KEY> (upper-case, other characters as '_'). "$${" is
 * the escape for a literal "${" (controlplane/jobspec_refs.h refuses unresolvable references). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

#define MU_PARAMS_MAX_STRING (1u << 20)

static const char *lookup(const Muster__V1__Assign *as, const char *name, size_t len) {
  for (size_t i = 0; i < as->n_params; i++)
    if (strlen(as->params[i]->key) == len && memcmp(as->params[i]->key, name, len) == 0) return as->params[i]->value;
  return NULL;
}

/* Returns a new string with ${...} replaced, or NULL when nothing changed (or too big). */
static char *substitute(const Muster__V1__Assign *as, const char *s) {
  if (strstr(s, "${") == NULL) return NULL;
  size_t cap = strlen(s) + 256, len = 0;
  char *out = malloc(cap);
  int changed = 0;
  if (out == NULL) return NULL;
  for (const char *p = s; *p;) {
    int escaped = p[0] == '$' && p[1] == '$' && p[2] == '{'; /* "$${": a literal "${" */
    const char *end = !escaped && p[0] == '$' && p[1] == '{' ? strchr(p + 2, '}') : NULL;
    const char *val = end ? lookup(as, p + 2, (size_t)(end - p - 2)) : NULL;
    const char *piece = val ? val : escaped ? p + 1 : p;
    size_t n = val ? strlen(val) : escaped ? 2 : 1;
    if (len + n + 1 > cap) {
      cap = (len + n + 1) * 2;
      if (cap > MU_PARAMS_MAX_STRING) {
        free(out);
        return NULL;
      }
      char *g = realloc(out, cap);
      if (g == NULL) {
        free(out);
        return NULL;
      }
      out = g;
    }
    memcpy(out + len, piece, n);
    len += n;
    if (val) {
      changed = 1;
      p = end + 1;
    } else if (escaped) {
      changed = 1;
      p += 3;
    } else {
      p++;
    }
  }
  out[len] = '\0';
  if (!changed) {
    free(out);
    return NULL;
  }
  return out;
}

static void walk(const Muster__V1__Assign *as, json_t *j) {
  if (json_is_object(j)) {
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
      if (json_is_string(v)) {
        char *s = substitute(as, json_string_value(v));
        if (s != NULL) {
          json_object_set_new(j, key, json_string(s));
          free(s);
        }
      } else {
        walk(as, v);
      }
    }
  } else if (json_is_array(j)) {
    for (size_t i = 0; i < json_array_size(j); i++) {
      json_t *v = json_array_get(j, i);
      if (json_is_string(v)) {
        char *s = substitute(as, json_string_value(v));
        if (s != NULL) {
          json_array_set_new(j, i, json_string(s));
          free(s);
        }
      } else {
        walk(as, v);
      }
    }
  }
}

void mu_params_apply(const Muster__V1__Assign *as, json_t *spec) {
  walk(as, spec); /* also with no params: "$${" escapes become "${" */
  if (as->n_params == 0) return;
  json_t *env = json_object_get(spec, "env");
  if (env == NULL) {
    env = json_object();
    json_object_set_new(spec, "env", env);
  }
  for (size_t i = 0; i < as->n_params; i++) {
    char name[256];
    int n = snprintf(name, sizeof name, "MUSTER_PARAM_%s", as->params[i]->key);
    if (n <= 0 || (size_t)n >= sizeof name) continue;
    for (char *c = name; *c; c++) *c = isalnum((unsigned char)*c) ? (char)toupper((unsigned char)*c) : '_';
    if (json_object_get(env, name) == NULL) json_object_set_new(env, name, json_string(as->params[i]->value));
  }
}
