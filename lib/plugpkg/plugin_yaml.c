/* Parsing plugin.yaml (plugin_yaml.h) with lib/config's YAML walker: one callback per
 * top-level field, each refusing what it does not accept with the field's line. */
#include "lib/plugpkg/plugin_yaml.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bundle/version.h"
#include "lib/config/yaml_doc.h"

#define SCHEMA_MAX_DEPTH 16
#define SCHEMA_MAX_JSON (32 * 1024)

typedef struct parse_ctx {
  mu_plugin_pkg *p;
  unsigned seen; /* bit per required field */
} parse_ctx;

enum { SEEN_TYPE = 1, SEEN_VERSION = 2, SEEN_ABI = 4, SEEN_OS = 8, SEEN_ARCH = 16, SEEN_LIBRARY = 32 };

static int scalar(mu_yaml_field *f, char *out, size_t size, mu_err *err) {
  if (mu_yaml_node_kind(f->value) != MU_YAML_SCALAR)
    return mu_err_set(err, MU_EINVAL, "expected a string, got %s", mu_yaml_kind_name(mu_yaml_node_kind(f->value)));
  const char *t = mu_yaml_node_text(f->value);
  if (strlen(t) >= size) return mu_err_set(err, MU_EINVAL, "longer than %zu bytes", size - 1);
  for (const char *c = t; *c; c++)
    if (iscntrl((unsigned char)*c)) return mu_err_set(err, MU_EINVAL, "contains a control character");
  snprintf(out, size, "%s", t);
  return 0;
}

static int type_ok(const char *t) {
  if (*t == '\0' || strlen(t) > 64) return 0;
  for (; *t; t++)
    if (!islower((unsigned char)*t) && !isdigit((unsigned char)*t) && *t != '-' && *t != '_') return 0;
  return 1;
}

/* A requirement or file name: [A-Za-z0-9._+-], not starting with '.' or '-'. */
static int name_ok(const char *t) {
  if (*t == '\0' || *t == '.' || *t == '-' || strlen(t) > MU_PLUGIN_YAML_NAME_MAX) return 0;
  for (; *t; t++)
    if (!isalnum((unsigned char)*t) && *t != '.' && *t != '_' && *t != '-' && *t != '+') return 0;
  return 1;
}

static int name_list(mu_yaml_node list, const char *what, char **out, size_t *n, mu_err *err) {
  if (mu_yaml_node_kind(list) == MU_YAML_NULL) return 0;
  if (mu_yaml_node_kind(list) != MU_YAML_LIST)
    return mu_err_set(err, MU_EINVAL, "%s: expected a list of names, got %s", what,
                      mu_yaml_kind_name(mu_yaml_node_kind(list)));
  size_t len = mu_yaml_node_len(list);
  if (len > MU_PLUGIN_YAML_MAX_REQUIRES)
    return mu_err_set(err, MU_EINVAL, "%s: more than %d entries", what, MU_PLUGIN_YAML_MAX_REQUIRES);
  for (size_t i = 0; i < len; i++) {
    mu_yaml_node it = mu_yaml_node_item(list, i);
    const char *t = mu_yaml_node_kind(it) == MU_YAML_SCALAR ? mu_yaml_node_text(it) : NULL;
    if (t == NULL || !name_ok(t))
      return mu_err_set(err, MU_EINVAL, "%s[%zu]: want a program name ([A-Za-z0-9._+-], no '/')", what, i);
    out[*n] = strdup(t);
    if (out[*n] == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    (*n)++;
  }
  return 0;
}

static int requires_field(mu_plugin_pkg *p, mu_yaml_node map, mu_err *err) {
  if (mu_yaml_node_kind(map) == MU_YAML_NULL) return 0;
  if (mu_yaml_node_kind(map) != MU_YAML_MAP)
    return mu_err_set(err, MU_EINVAL, "expected a mapping (binaries, interpreters), got %s",
                      mu_yaml_kind_name(mu_yaml_node_kind(map)));
  int seen_b = 0, seen_i = 0;
  for (size_t i = 0; i < mu_yaml_node_len(map); i++) {
    const char *k = mu_yaml_node_text(mu_yaml_node_key(map, i));
    mu_yaml_node v = mu_yaml_node_value(map, i);
    int rc;
    if (k != NULL && strcmp(k, "binaries") == 0 && !seen_b++) {
      rc = name_list(v, "binaries", p->binaries, &p->n_binaries, err);
    } else if (k != NULL && strcmp(k, "interpreters") == 0 && !seen_i++) {
      rc = name_list(v, "interpreters", p->interpreters, &p->n_interpreters, err);
    } else {
      rc = mu_err_set(err, MU_EINVAL, "%s: unknown or repeated key (want binaries, interpreters)", k ? k : "?");
    }
    if (rc != 0) return rc;
  }
  return 0;
}

/* YAML -> JSON for the schema: mappings, lists, and scalars typed as YAML 1.2 core would
 * (true/false, null, integers, decimals; everything else a string). */
static json_t *to_json(mu_yaml_node n, int depth, mu_err *err) {
  if (depth > SCHEMA_MAX_DEPTH) {
    mu_err_set(err, MU_EINVAL, "nested deeper than %d", SCHEMA_MAX_DEPTH);
    return NULL;
  }
  switch (mu_yaml_node_kind(n)) {
    case MU_YAML_NULL: return json_null();
    case MU_YAML_SCALAR: {
      const char *t = mu_yaml_node_text(n);
      if (strcmp(t, "true") == 0) return json_true();
      if (strcmp(t, "false") == 0) return json_false();
      char *end = NULL;
      errno = 0;
      long long v = strtoll(t, &end, 10);
      if (*t != '\0' && end != NULL && *end == '\0' && errno == 0) return json_integer(v);
      errno = 0;
      double d = strtod(t, &end);
      if (*t != '\0' && end != NULL && *end == '\0' && errno == 0 && (isdigit((unsigned char)*t) || *t == '-'))
        return json_real(d);
      return json_string(t);
    }
    case MU_YAML_LIST: {
      json_t *a = json_array();
      for (size_t i = 0; a != NULL && i < mu_yaml_node_len(n); i++) {
        json_t *v = to_json(mu_yaml_node_item(n, i), depth + 1, err);
        if (v == NULL || json_array_append_new(a, v) != 0) {
          json_decref(a);
          return NULL;
        }
      }
      return a;
    }
    case MU_YAML_MAP: {
      json_t *o = json_object();
      for (size_t i = 0; o != NULL && i < mu_yaml_node_len(n); i++) {
        const char *k = mu_yaml_node_text(mu_yaml_node_key(n, i));
        if (k == NULL || json_object_get(o, k) != NULL) {
          mu_err_set(err, MU_EINVAL, "a key that is not a string, or repeated");
          json_decref(o);
          return NULL;
        }
        json_t *v = to_json(mu_yaml_node_value(n, i), depth + 1, err);
        if (v == NULL || json_object_set_new(o, k, v) != 0) {
          json_decref(o);
          return NULL;
        }
      }
      return o;
    }
  }
  return NULL;
}

static int schema_field(mu_plugin_pkg *p, mu_yaml_node n, mu_err *err) {
  if (mu_yaml_node_kind(n) == MU_YAML_NULL) return 0;
  if (mu_yaml_node_kind(n) != MU_YAML_MAP)
    return mu_err_set(err, MU_EINVAL, "expected a mapping (a JSON schema), got %s",
                      mu_yaml_kind_name(mu_yaml_node_kind(n)));
  json_t *j = to_json(n, 0, err);
  if (j == NULL) return err->code ? err->code : mu_err_set(err, MU_ENOMEM, "out of memory");
  p->config_schema_json = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  if (p->config_schema_json == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  if (strlen(p->config_schema_json) > SCHEMA_MAX_JSON)
    return mu_err_set(err, MU_EINVAL, "more than %d bytes as JSON", SCHEMA_MAX_JSON);
  return 0;
}

static int on_field(void *arg, mu_yaml_field *f, mu_err *err) {
  parse_ctx *c = arg;
  mu_plugin_pkg *p = c->p;
  int rc;
  if (strcmp(f->name, "type") == 0) {
    rc = scalar(f, p->type, sizeof p->type, err);
    if (rc == 0 && !type_ok(p->type)) rc = mu_err_set(err, MU_EINVAL, "\"%s\": want [a-z0-9_-]{1,64}", p->type);
    c->seen |= SEEN_TYPE;
  } else if (strcmp(f->name, "version") == 0) {
    rc = scalar(f, p->version, sizeof p->version, err);
    if (rc == 0) rc = mu_bundle_version_check(p->version, err);
    c->seen |= SEEN_VERSION;
  } else if (strcmp(f->name, "abi_version") == 0) {
    char t[16];
    rc = scalar(f, t, sizeof t, err);
    char *end = NULL;
    unsigned long v = rc == 0 ? strtoul(t, &end, 10) : 0;
    if (rc == 0 && (!isdigit((unsigned char)t[0]) || *end != '\0' || v == 0 || v > 1000))
      rc = mu_err_set(err, MU_EINVAL, "\"%s\": want a whole number from 1 to 1000", t);
    p->abi_version = (uint32_t)v;
    c->seen |= SEEN_ABI;
  } else if (strcmp(f->name, "os") == 0) {
    rc = scalar(f, p->os, sizeof p->os, err);
    if (rc == 0 && !name_ok(p->os)) rc = mu_err_set(err, MU_EINVAL, "\"%s\": want e.g. linux, or any", p->os);
    c->seen |= SEEN_OS;
  } else if (strcmp(f->name, "arch") == 0) {
    rc = scalar(f, p->arch, sizeof p->arch, err);
    if (rc == 0 && !name_ok(p->arch)) rc = mu_err_set(err, MU_EINVAL, "\"%s\": want e.g. x86_64, or any", p->arch);
    c->seen |= SEEN_ARCH;
  } else if (strcmp(f->name, "library") == 0) {
    rc = scalar(f, p->library, sizeof p->library, err);
    if (rc == 0 &&
        (!name_ok(p->library) || strlen(p->library) < 4 || strcmp(p->library + strlen(p->library) - 3, ".so") != 0))
      rc = mu_err_set(err, MU_EINVAL, "\"%s\": want the .so's file name (NAME.so, no '/')", p->library);
    c->seen |= SEEN_LIBRARY;
  } else if (strcmp(f->name, "description") == 0) {
    rc = mu_yaml_node_kind(f->value) == MU_YAML_NULL ? 0 : scalar(f, p->description, sizeof p->description, err);
  } else if (strcmp(f->name, "requires") == 0) {
    rc = requires_field(p, f->value, err);
  } else if (strcmp(f->name, "config_schema") == 0) {
    rc = schema_field(p, f->value, err);
  } else {
    rc = mu_err_set(err, MU_EINVAL,
                    "unknown field (want type, version, abi_version, os, arch, library, description, requires, "
                    "config_schema)");
  }
  return rc;
}

static const struct {
  unsigned bit;
  const char *name;
} required[] = {{SEEN_TYPE, "type"}, {SEEN_VERSION, "version"}, {SEEN_ABI, "abi_version"},
                {SEEN_OS, "os"},     {SEEN_ARCH, "arch"},       {SEEN_LIBRARY, "library"}};

static int finish(const mu_yaml_doc *doc, const char *name, mu_plugin_pkg **ret, mu_err *err) {
  mu_plugin_pkg *p = calloc(1, sizeof *p);
  if (p == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  parse_ctx c = {.p = p};
  int rc = mu_yaml_doc_walk(doc, on_field, &c, err);
  for (size_t i = 0; rc == 0 && i < sizeof required / sizeof required[0]; i++)
    if (!(c.seen & required[i].bit))
      rc = mu_err_set(err, MU_EINVAL, "%s: field '%s' is required", name, required[i].name);
  if (rc != 0) {
    mu_plugin_pkg_free(p);
    return rc;
  }
  *ret = p;
  return 0;
}

int mu_plugin_pkg_parse(const char *name, const char *text, size_t len, mu_plugin_pkg **ret, mu_err *err) {
  if (len > MU_PLUGIN_YAML_MAX_BYTES)
    return mu_err_set(err, MU_ENOSPC, "%s: %zu bytes, over the cap of %d", name, len, MU_PLUGIN_YAML_MAX_BYTES);
  mu_yaml_doc *doc = NULL;
  int rc = mu_yaml_doc_parse(name, text, len, &doc, err);
  if (rc != 0) return rc;
  rc = finish(doc, name, ret, err);
  mu_yaml_doc_free(doc);
  return rc;
}

int mu_plugin_pkg_load(const char *path, mu_plugin_pkg **ret, mu_err *err) {
  mu_yaml_doc *doc = NULL;
  int rc = mu_yaml_doc_load(path, MU_PLUGIN_YAML_MAX_BYTES, &doc, err);
  if (rc != 0) return rc;
  rc = finish(doc, path, ret, err);
  mu_yaml_doc_free(doc);
  return rc;
}

void mu_plugin_pkg_free(mu_plugin_pkg *p) {
  if (p == NULL) return;
  for (size_t i = 0; i < p->n_binaries; i++) free(p->binaries[i]);
  for (size_t i = 0; i < p->n_interpreters; i++) free(p->interpreters[i]);
  free(p->config_schema_json);
  free(p);
}

void mu_plugin_pkg_bundle_name(const char *type, char *buf, size_t size) { snprintf(buf, size, "plugin-%s", type); }
