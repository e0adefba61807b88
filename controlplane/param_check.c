/* Third-party task parameters checked at submit against their type's schema (param_check.h). */
#include "controlplane/param_check.h"

#include <stdio.h>
#include <string.h>

#include "lib/pschema/pschema.h"

static const char *schema_in(const mu_agent *a, const char *type) {
  const Muster__V1__Hello *h = a != NULL && a->hello_msg != NULL ? a->hello_msg->hello : NULL;
  for (size_t i = 0; h != NULL && i < h->n_plugins; i++)
    if (strcmp(h->plugins[i]->type, type) == 0 && h->plugins[i]->schema_json != NULL &&
        h->plugins[i]->schema_json[0] != '\0')
      return h->plugins[i]->schema_json;
  return NULL;
}

/* The schema of type from the targets (ids), or from any agent when the target is "any". */
static const char *schema_of(const mu_registry *reg, const char *type, char *const *ids, size_t n) {
  if (n == 0 || ids[0] == NULL) {
    for (size_t i = 0; i < reg->n; i++) {
      const char *s = schema_in(reg->agents[i], type);
      if (s != NULL) return s;
    }
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    const char *s = schema_in(mu_registry_find(reg, ids[i]), type);
    if (s != NULL) return s;
  }
  return NULL;
}

int mu_param_check(const mu_registry *reg, const Muster__V1__JobSpec *spec, char *const *ids, size_t n, mu_err *err) {
  for (size_t t = 0; t < spec->n_tasks; t++) {
    const Muster__V1__TaskSpec *ts = spec->tasks[t];
    if (ts->kind_case != MUSTER__V1__TASK_SPEC__KIND_PLUGIN || ts->plugin == NULL) continue;
    const char *schema = schema_of(reg, ts->plugin->type, ids, n);
    if (schema == NULL) continue;
    const char *cfg = ts->plugin->config_json != NULL && ts->plugin->config_json[0] ? ts->plugin->config_json : "{}";
    int rc = mu_pschema_check(schema, "params", cfg, ts->plugin->type, err);
    if (rc != 0) {
      mu_err_prefix(err, "task %s", ts->name);
      return rc;
    }
  }
  return 0;
}
