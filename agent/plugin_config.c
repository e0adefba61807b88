/* Plugin configuration sources and their application (plugin_config.h): the YAML's part per
 * type (cfg.plugin_config_json) and the central ones pushed by musterd, central winning. */
#include "agent/plugin_config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/exec/plugin_env.h"
#include "lib/base/log.h"

typedef struct central {
  char type[72];
  char *json;
} central;

struct mu_agent_pconf {
  central c[MU_PLUGIN_MAX];
  size_t n;
};

int mu_agent_pconf_new(mu_agent_pconf **ret, mu_err *err) {
  *ret = calloc(1, sizeof **ret);
  return *ret != NULL ? 0 : mu_err_set(err, MU_ENOMEM, "plugin config: out of memory");
}

void mu_agent_pconf_free(mu_agent_pconf *p) {
  if (p == NULL) return;
  for (size_t i = 0; i < p->n; i++) free(p->c[i].json);
  free(p);
}

static central *find(mu_agent_pconf *p, const char *type) {
  for (size_t i = 0; p != NULL && i < p->n; i++)
    if (strcmp(p->c[i].type, type) == 0) return &p->c[i];
  return NULL;
}

/* The YAML's config for type as JSON text (malloc'd), or NULL. */
static char *yaml_config(const mu_agent_daemon *a, const char *type) {
  if (a->cfg.plugin_config_json == NULL) return NULL;
  json_t *all = json_loads(a->cfg.plugin_config_json, 0, NULL);
  json_t *one = json_object_get(all, type);
  char *s = one != NULL ? json_dumps(one, JSON_COMPACT) : NULL;
  json_decref(all);
  return s;
}

static int apply(mu_agent_daemon *a, const char *type, mu_err *err) {
  central *c = find(a->pconf, type);
  char *yaml = c == NULL ? yaml_config(a, type) : NULL;
  const char *json = c != NULL ? c->json : yaml != NULL ? yaml : "{}";
  int rc = mu_plugin_host_configure(a->plugins, type, json, err);
  if (rc == 0)
    mu_info("plugins", "plugin '%s' configured from %s (%zu bytes)", type,
            c != NULL      ? "the central config"
            : yaml != NULL ? "the agent config"
                           : "defaults",
            strlen(json));
  free(yaml);
  return rc;
}

void mu_agent_plugins_configure(mu_agent_daemon *a) {
  for (size_t i = 0; i < mu_plugin_host_count(a->plugins); i++) {
    const mu_plugin_info *pi = mu_plugin_host_info(a->plugins, i);
    mu_err e = {0};
    if (apply(a, pi->type, &e) != 0) mu_warn("plugins", "%s", e.msg);
    /* an out-of-process plugin answers health asynchronously: ask now, so the answer is there
     * by the time the first Hello reports it */
    char reason[MUSTER_ERRBUF_SIZE];
    (void)mu_plugin_env_health(mu_plugin_host_env_at(a->plugins, i), reason, sizeof reason);
  }
}

int mu_agent_plugin_configure_type(mu_agent_daemon *a, const char *type, mu_err *err) {
  int rc = apply(a, type, err);
  char reason[MUSTER_ERRBUF_SIZE];
  (void)mu_plugin_env_health(mu_plugin_host_env(a->plugins, type), reason, sizeof reason);
  return rc;
}

int mu_agent_plugin_config_push(mu_agent_daemon *a, const char *type, const char *config_json, mu_err *err) {
  if (mu_plugin_host_find(a->plugins, type) == NULL)
    return mu_err_set(err, MU_ENOENT, "plugin '%s': not loaded here", type);
  central *c = find(a->pconf, type);
  char *old = c != NULL ? c->json : NULL;
  if (config_json == NULL || config_json[0] == '\0') { /* removed: back to the YAML's */
    if (c == NULL) return 0;
    *c = a->pconf->c[--a->pconf->n];
    int rc = apply(a, type, err);
    free(old);
    return rc;
  }
  if (old != NULL && strcmp(old, config_json) == 0) return 0; /* the same again (a reconnect) */
  char *copy = strdup(config_json);
  if (copy == NULL) return mu_err_set(err, MU_ENOMEM, "plugin config: out of memory");
  if (c == NULL) {
    if (a->pconf->n >= MU_PLUGIN_MAX) {
      free(copy);
      return mu_err_set(err, MU_ENOSPC, "plugin config: more than %d types", MU_PLUGIN_MAX);
    }
    c = &a->pconf->c[a->pconf->n++];
    snprintf(c->type, sizeof c->type, "%s", type);
  }
  c->json = copy;
  int rc = apply(a, type, err);
  if (rc != 0) { /* refused: keep the previous central one (or none) as the source */
    c->json = old;
    free(copy);
    if (old == NULL) *c = a->pconf->c[--a->pconf->n];
    return rc;
  }
  free(old);
  return 0;
}

const char *mu_agent_plugin_config_of(mu_agent_daemon *a, const char *type) {
  muster_plugin_env *env = mu_plugin_host_env(a->plugins, type);
  return env != NULL ? mu_plugin_env_config(env) : "{}";
}

typedef struct health_block {
  Muster__V1__PluginInfo items[MU_PLUGIN_MAX];
  Muster__V1__PluginInfo *ptrs[MU_PLUGIN_MAX];
  char reasons[MU_PLUGIN_MAX][MUSTER_ERRBUF_SIZE];
} health_block;

int mu_agent_plugin_health_fill(mu_agent_daemon *a, Muster__V1__Heartbeat *hb, void **ret_block, mu_err *err) {
  health_block *b = calloc(1, sizeof *b);
  if (b == NULL) return mu_err_set(err, MU_ENOMEM, "plugin health: out of memory");
  size_t n = 0;
  for (size_t i = 0; i < mu_plugin_host_count(a->plugins) && n < MU_PLUGIN_MAX; i++) {
    int h = mu_plugin_env_health(mu_plugin_host_env_at(a->plugins, i), b->reasons[n], sizeof b->reasons[n]);
    if (h == MUSTER_HEALTH_OK) continue; /* only the unhealthy: a healthy fleet's heartbeats stay small */
    muster__v1__plugin_info__init(&b->items[n]);
    b->items[n].type = (char *)mu_plugin_host_info(a->plugins, i)->type;
    b->items[n].health = h == MUSTER_HEALTH_WARN ? "warn" : "fail";
    b->items[n].health_reason = b->reasons[n];
    b->ptrs[n] = &b->items[n];
    n++;
  }
  hb->n_plugin_health = n;
  hb->plugin_health = n > 0 ? b->ptrs : NULL;
  *ret_block = b;
  return 0;
}
