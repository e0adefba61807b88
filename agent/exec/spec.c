/* Parsing the common fields of a muster.v1.TaskSpec from JSON with jansson: each field is
 * looked up by its lowerCamel and snake_case names, checked, and turned into runner settings;
 * the task type is resolved from `type` or from whichever kind section is present. Field
 * access and the "FIELD: PROBLEM" messages are the plugin SDK's (spec_fields.h), so the agent
 * and the plugins name and refuse a field alike. */
#include "agent/exec/spec.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/clock.h"
#include "muster_plugin.h"
#include "spec_fields.h"

static const char *const kinds[] = {"shell", "http", "python", "spark", "flink", "container", "plugin"};

_Static_assert(MU_ERR_MSG_MAX >= MUSTER_ERRBUF_SIZE, "an SDK message must fit a mu_err");

/* An SDK getter's result as a mu_err: its message (already "FIELD: PROBLEM") and code. */
static int field_rc(int rc, const char *errbuf, mu_err *err) {
  if (rc == 0) return 0;
  return mu_err_set(err, rc == -ENOMEM ? MU_ENOMEM : MU_EINVAL, "%s", errbuf);
}

static int get_string(json_t *obj, const char *camel, const char *snake, const char *field, char **ret, mu_err *err) {
  char errbuf[MUSTER_ERRBUF_SIZE];
  const char *v = NULL;
  *ret = NULL;
  int rc = muster_field_string(obj, camel, snake, field, &v, errbuf);
  if (rc != 0 || v == NULL) return field_rc(rc, errbuf, err);
  *ret = strdup(v);
  return *ret ? 0 : mu_err_set(err, MU_ENOMEM, "out of memory");
}

/* proto3 JSON int32: a number or a decimal string, possibly negative. */
static int get_int32(json_t *obj, const char *key, int32_t *ret, mu_err *err) {
  char errbuf[MUSTER_ERRBUF_SIZE];
  int64_t n = 0;
  *ret = 0;
  if (muster_field_int(obj, key, NULL, key, INT32_MIN, INT32_MAX, &n, errbuf) != 0)
    return mu_err_set(err, MU_EINVAL, "%s: must be a whole number from %d to %d", key, INT32_MIN, INT32_MAX);
  *ret = (int32_t)n;
  return 0;
}

static int parse_env(json_t *root, mu_task_spec *s, mu_err *err) {
  json_t *env = muster_field_get(root, "env", NULL);
  if (env == NULL) return 0;
  if (!json_is_object(env)) return mu_err_set(err, MU_EINVAL, "env: must be an object of strings");
  size_t n = json_object_size(env);
  if (n > MU_SPEC_MAX_ENV) return mu_err_set(err, MU_EINVAL, "env: more than %d variables", MU_SPEC_MAX_ENV);
  s->env = calloc(n + 1, sizeof *s->env);
  if (s->env == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  const char *k;
  json_t *v;
  json_object_foreach(env, k, v) {
    if (*k == '\0' || strchr(k, '=') != NULL) return mu_err_set(err, MU_EINVAL, "env: bad variable name \"%s\"", k);
    if (!json_is_string(v)) return mu_err_set(err, MU_EINVAL, "env.%s: must be a string", k);
    size_t len = strlen(k) + strlen(json_string_value(v)) + 2;
    char *kv = malloc(len);
    if (kv == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    snprintf(kv, len, "%s=%s", k, json_string_value(v));
    s->env[s->n_env++] = kv;
  }
  return 0;
}

/* secrets: [{name, value, as}] — the values are the ones the control plane resolved at
 * dispatch (the agent puts them in the spec it hands the runner); an entry without one is
 * refused rather than run with an empty secret. */
static int parse_secrets(json_t *root, mu_task_spec *s, mu_err *err) {
  json_t *arr = muster_field_get(root, "secrets", NULL);
  if (arr == NULL) return 0;
  if (!json_is_array(arr)) return mu_err_set(err, MU_EINVAL, "secrets: must be a list");
  size_t n = json_array_size(arr);
  if (n > MU_SPEC_MAX_ENV) return mu_err_set(err, MU_EINVAL, "secrets: too many");
  s->secrets = calloc(n ? n : 1, sizeof *s->secrets);
  if (s->secrets == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(arr, i);
    char field[64];
    snprintf(field, sizeof field, "secrets[%zu]", i);
    if (!json_is_object(e)) return mu_err_set(err, MU_EINVAL, "%s: must be an object", field);
    mu_spec_secret *sec = &s->secrets[s->n_secrets++];
    char *as = NULL;
    if (get_string(e, "name", NULL, field, &sec->name, err) != 0) return err->code;
    if (get_string(e, "value", NULL, field, &sec->value, err) != 0) return err->code;
    if (sec->name == NULL || sec->name[0] == '\0' || strchr(sec->name, '=') || strchr(sec->name, '/'))
      return mu_err_set(err, MU_EINVAL, "%s.name: must be a non-empty name without '=' or '/'", field);
    if (sec->value == NULL)
      return mu_err_set(err, MU_EINVAL,
                        "%s '%s': no value came with the assignment (the control "
                        "plane resolves secrets at dispatch)",
                        field, sec->name);
    if (get_string(e, "as", NULL, field, &as, err) != 0) return err->code;
    json_t *af = muster_field_get(e, "asFile", "as_file");
    sec->as_file = (af != NULL && json_is_true(af)) || (as != NULL && strcmp(as, "file") == 0);
    int bad_as = as != NULL && as[0] != '\0' && strcmp(as, "file") != 0 && strcmp(as, "env") != 0;
    free(as);
    if (bad_as) return mu_err_set(err, MU_EINVAL, "%s.as: \"env\" or \"file\"", field);
  }
  return 0;
}

static int parse_resources(json_t *root, mu_task_spec *s, mu_err *err) {
  json_t *res = muster_field_get(root, "resources", NULL);
  if (res == NULL) return 0;
  if (!json_is_object(res)) return mu_err_set(err, MU_EINVAL, "resources: must be an object");
  char *text = NULL;
  mu_err sub = {0};
  int rc = get_string(res, "memory", NULL, "resources.memory", &text, err);
  if (rc != 0) return rc;
  if (text != NULL && *text != '\0' && mu_size_parse(text, &s->limits.memory_bytes, &sub) != 0) {
    free(text);
    return mu_err_set(err, MU_EINVAL, "resources.memory: %s", sub.msg);
  }
  free(text);
  rc = get_string(res, "outputLimit", "output_limit", "resources.outputLimit", &text, err);
  if (rc != 0) return rc;
  if (text != NULL && *text != '\0' && mu_size_parse(text, &s->output_limit, &sub) != 0) {
    free(text);
    return mu_err_set(err, MU_EINVAL, "resources.outputLimit: %s", sub.msg);
  }
  free(text);
  rc = get_string(res, "cpu", NULL, "resources.cpu", &text, err);
  if (rc != 0) return rc;
  if (text != NULL && *text != '\0') {
    char *end;
    double cores = strtod(text, &end);
    if (end == text || *end != '\0' || !(cores > 0) || cores > 4096) {
      rc = mu_err_set(err, MU_EINVAL, "resources.cpu: \"%s\" is not a positive number of cores", text);
      free(text);
      return rc;
    }
    s->limits.cpu_cores = cores;
  }
  free(text);
  char errbuf[MUSTER_ERRBUF_SIZE];
  int64_t pids = 0;
  rc = muster_field_int(res, "pids", NULL, "resources.pids", 0, UINT32_MAX, &pids, errbuf);
  if (rc != 0) return field_rc(rc, errbuf, err);
  s->limits.pids = (uint32_t)pids;
  return 0;
}

/* Finds the kind section and the type it implies; checks it agrees with `type`. */
static int resolve_type(json_t *root, mu_task_spec *s, mu_err *err) {
  const char *kind = NULL;
  json_t *section = NULL;
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
    json_t *v = muster_field_get(root, kinds[i], NULL);
    if (v == NULL) continue;
    if (kind != NULL)
      return mu_err_set(err, MU_EINVAL, "spec has both \"%s\" and \"%s\" sections; give one", kind, kinds[i]);
    if (!json_is_object(v)) return mu_err_set(err, MU_EINVAL, "%s: must be an object", kinds[i]);
    kind = kinds[i];
    section = v;
  }
  char *type = NULL;
  if (get_string(root, "type", NULL, "type", &type, err) != 0) return err->code;
  if (type != NULL && *type == '\0') {
    free(type);
    type = NULL;
  }
  if (kind != NULL && strcmp(kind, "plugin") == 0) {
    char *ptype = NULL, *cfg = NULL;
    if (get_string(section, "type", NULL, "plugin.type", &ptype, err) != 0) goto fail;
    if (get_string(section, "configJson", "config_json", "plugin.configJson", &cfg, err) != 0) {
      free(ptype);
      goto fail;
    }
    if (ptype == NULL || *ptype == '\0') {
      free(ptype);
      free(cfg);
      mu_err_set(err, MU_EINVAL, "plugin.type: required");
      goto fail;
    }
    if (type != NULL && strcmp(type, ptype) != 0 && strcmp(type, "plugin") != 0) {
      mu_err_set(err, MU_EINVAL, "type \"%s\" does not match plugin.type \"%s\"", type, ptype);
      free(ptype);
      free(cfg);
      goto fail;
    }
    free(type);
    s->type = ptype;
    if (cfg == NULL || *cfg == '\0') {
      free(cfg);
      cfg = strdup("{}");
    }
    s->config_json = cfg;
    return s->config_json ? 0 : mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  if (type == NULL && kind == NULL) return mu_err_set(err, MU_EINVAL, "type: required (or a shell/http/... section)");
  if (type != NULL && kind != NULL && strcmp(type, kind) != 0) {
    mu_err_set(err, MU_EINVAL, "type \"%s\" does not match the \"%s\" section", type, kind);
    goto fail;
  }
  s->type = type != NULL ? type : strdup(kind);
  s->config_json = section != NULL ? json_dumps(section, JSON_COMPACT) : strdup("{}");
  if (s->type == NULL || s->config_json == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  return 0;
fail:
  free(type);
  return err->code;
}

int mu_task_spec_parse(const char *json, mu_task_spec **ret, mu_err *err) {
  json_error_t jerr;
  json_t *root = json_loads(json ? json : "", 0, &jerr);
  if (root == NULL)
    return mu_err_set(err, MU_EINVAL, "task spec: bad JSON at line %d column %d: %s", jerr.line, jerr.column,
                      jerr.text);
  mu_task_spec *s = calloc(1, sizeof *s);
  int rc;
  if (s == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto fail;
  }
  if (!json_is_object(root)) {
    rc = mu_err_set(err, MU_EINVAL, "task spec: must be a JSON object");
    goto fail;
  }
  char *timeout = NULL, *stdin_text = NULL;
  rc = get_string(root, "name", NULL, "name", &s->name, err);
  if (rc != 0) goto fail;
  rc = get_string(root, "timeout", NULL, "timeout", &timeout, err);
  if (rc != 0) goto fail;
  if (timeout != NULL && *timeout != '\0') {
    mu_err sub = {0};
    rc = mu_duration_parse(timeout, &s->timeout_ms, &sub);
    free(timeout);
    if (rc != 0) {
      rc = mu_err_set(err, MU_EINVAL, "timeout: %s", sub.msg);
      goto fail;
    }
  } else {
    free(timeout);
  }
  rc = get_string(root, "workingDir", "working_dir", "workingDir", &s->working_dir, err);
  if (rc != 0) goto fail;
  if (s->working_dir != NULL && *s->working_dir == '\0') {
    free(s->working_dir);
    s->working_dir = NULL;
  }
  rc = get_string(root, "runAs", "run_as", "runAs", &s->run_as, err);
  if (rc != 0) goto fail;
  rc = get_string(root, "stdin", NULL, "stdin", &stdin_text, err);
  if (rc != 0) goto fail;
  if (stdin_text != NULL) {
    s->stdin_data = stdin_text;
    s->stdin_len = strlen(stdin_text);
  }
  rc = get_int32(root, "priority", &s->priority, err);
  if (rc != 0) goto fail;
  rc = parse_env(root, s, err);
  if (rc != 0) goto fail;
  rc = parse_secrets(root, s, err);
  if (rc != 0) goto fail;
  rc = parse_resources(root, s, err);
  if (rc != 0) goto fail;
  rc = mu_sandbox_spec_parse(root, &s->sandbox, err);
  if (rc != 0) goto fail;
  rc = resolve_type(root, s, err);
  if (rc != 0) goto fail;
  json_decref(root);
  *ret = s;
  return 0;
fail:
  json_decref(root);
  mu_task_spec_free(s);
  return rc;
}

void mu_task_spec_free(mu_task_spec *s) {
  if (s == NULL) return;
  free(s->name);
  free(s->type);
  for (size_t i = 0; i < s->n_env; i++) free(s->env[i]);
  free(s->env);
  for (size_t i = 0; i < s->n_secrets; i++) {
    free(s->secrets[i].name);
    if (s->secrets[i].value != NULL) explicit_bzero(s->secrets[i].value, strlen(s->secrets[i].value));
    free(s->secrets[i].value);
  }
  free(s->secrets);
  free(s->working_dir);
  free(s->run_as);
  free(s->stdin_data);
  free(s->config_json);
  mu_sandbox_spec_free(&s->sandbox);
  free(s);
}
