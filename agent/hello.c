/* Builds the agent's Hello from its configuration and host facts. */
#include <dlfcn.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/env_facts.h"
#include "agent/exec/plugin_env.h"
#include "lib/host/facts.h"

/* One allocation owns the message and everything it points to that is not borrowed. */
typedef struct hello_block {
  Muster__V1__Hello hello; /* first: the pointer handed out */
  Muster__V1__Capacity capacity;
  Muster__V1__Hello__LabelsEntry *entries;
  Muster__V1__Hello__LabelsEntry **entry_ptrs;
  Muster__V1__PluginInfo *plugins;
  Muster__V1__PluginInfo **plugin_ptrs;
  char **interpreters;
  size_t n_interpreters;
  const char *cached[256]; /* bundle digests, borrowed from the cache */
  mu_host_fact fact_values[MU_HOST_FACT_PAIRS];
  Muster__V1__Fact facts[MU_HOST_FACT_PAIRS];
  Muster__V1__Fact *fact_ptrs[MU_HOST_FACT_PAIRS];
  Muster__V1__AgentEnv env;
  mu_env_facts env_facts;
  char health_reasons[MU_PLUGIN_MAX][MUSTER_ERRBUF_SIZE]; /* PluginInfo.health_reason */
} hello_block;

/* The python plugin exports muster_python_interpreters() (JSON: [{"version","path"}]); the
 * scheduler can then send a task only to agents that have the interpreter it asks for. */
static void add_interpreters(hello_block *b, const mu_plugin_host *plugins) {
  size_t n = plugins ? mu_plugin_host_count(plugins) : 0;
  for (size_t i = 0; i < n; i++) {
    const mu_plugin_info *pi = mu_plugin_host_info(plugins, i);
    if (strcmp(pi->type, "python") != 0) continue;
    void *h = dlopen(pi->path, RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL) return;
    const char *(*fn)(void) = (const char *(*)(void))dlsym(h, "muster_python_interpreters");
    json_t *arr = fn ? json_loads(fn(), 0, NULL) : NULL;
    dlclose(h);
    size_t m = json_array_size(arr);
    b->interpreters = calloc(m + 1, sizeof *b->interpreters);
    for (size_t k = 0; b->interpreters && k < m && k < 64; k++) {
      const char *v = json_string_value(json_object_get(json_array_get(arr, k), "version"));
      const char *path = json_string_value(json_object_get(json_array_get(arr, k), "path"));
      if (v == NULL) continue;
      size_t len = strlen(v) + (path ? strlen(path) : 0) + 16;
      char *s = malloc(len);
      if (s == NULL) continue;
      snprintf(s, len, "python%s=%s", v, path ? path : "");
      b->interpreters[b->n_interpreters++] = s;
    }
    json_decref(arr);
    return;
  }
}

Muster__V1__Hello *mu_hello_build(const mu_agent_daemon *agent) {
  const mu_agent_config *cfg = &agent->cfg;
  hello_block *b = calloc(1, sizeof *b);
  if (b == NULL) return NULL;
  b->entries = calloc(cfg->labels.n + 1, sizeof *b->entries);
  b->entry_ptrs = calloc(cfg->labels.n + 1, sizeof *b->entry_ptrs);
  if (b->entries == NULL || b->entry_ptrs == NULL) {
    mu_hello_free(&b->hello);
    return NULL;
  }
  Muster__V1__Hello *h = &b->hello;
  muster__v1__hello__init(h);
  muster__v1__capacity__init(&b->capacity);
  /* Strings are borrowed from cfg and facts, which outlive the message. */
  h->agent_id = (char *)cfg->id;
  h->hostname = (char *)agent->facts.hostname;
  h->os = (char *)agent->facts.os;
  h->arch = (char *)agent->facts.arch;
  h->cpu_count = agent->facts.cpu_count;
  h->memory_bytes = agent->facts.memory_bytes;
  h->agent_version = MU_AGENT_VERSION;
  h->heartbeat_interval_ms = (uint64_t)cfg->heartbeat_interval_ms;
  for (size_t i = 0; i < cfg->labels.n; i++) {
    muster__v1__hello__labels_entry__init(&b->entries[i]);
    b->entries[i].key = cfg->labels.items[i].key;
    b->entries[i].value = cfg->labels.items[i].value;
    b->entry_ptrs[i] = &b->entries[i];
  }
  h->n_labels = cfg->labels.n;
  h->labels = b->entry_ptrs;
  size_t np = agent->plugins ? mu_plugin_host_count(agent->plugins) : 0;
  b->plugins = calloc(np + 1, sizeof *b->plugins);
  b->plugin_ptrs = calloc(np + 1, sizeof *b->plugin_ptrs);
  for (size_t i = 0; b->plugins && b->plugin_ptrs && i < np; i++) {
    const mu_plugin_info *pi = mu_plugin_host_info(agent->plugins, i);
    muster__v1__plugin_info__init(&b->plugins[i]);
    b->plugins[i].type = (char *)pi->type;
    b->plugins[i].version = (char *)pi->version;
    b->plugins[i].abi_version = pi->abi_version;
    muster_plugin_env *env = mu_plugin_host_env_at(agent->plugins, i); /* SDK v2 */
    int health = mu_plugin_env_health(env, b->health_reasons[i], sizeof b->health_reasons[i]);
    b->plugins[i].health = health == MUSTER_HEALTH_OK ? "ok" : health == MUSTER_HEALTH_WARN ? "warn" : "fail";
    b->plugins[i].health_reason = b->health_reasons[i];
    b->plugins[i].schema_json = (char *)mu_plugin_env_describe(env);
    b->plugin_ptrs[i] = &b->plugins[i];
    h->n_plugins++;
  }
  h->plugins = b->plugin_ptrs;
  add_interpreters(b, agent->plugins);
  h->n_cached_bundles = mu_agent_bundles_cached(agent, b->cached, 256);
  h->cached_bundles = (char **)b->cached;
  if (agent->lost != NULL) { /* borrowed from the agent, which keeps it until acked */
    h->n_lost_attempts = agent->n_lost;
    h->lost_attempts = agent->lost;
  }
  h->n_facts = mu_host_fact_list(&agent->facts, NULL, b->fact_values);
  for (size_t i = 0; i < h->n_facts; i++) {
    muster__v1__fact__init(&b->facts[i]);
    b->facts[i].name = (char *)b->fact_values[i].name;
    b->facts[i].value = b->fact_values[i].value;
    b->fact_ptrs[i] = &b->facts[i];
  }
  h->facts = b->fact_ptrs;
  h->n_interpreters = b->n_interpreters;
  h->interpreters = b->interpreters;
  b->capacity.slots = cfg->slots;
  h->capacity = &b->capacity;
  muster__v1__agent_env__init(&b->env); /* what `muster doctor` checks */
  b->env.limits = (char *)(agent->runner ? mu_runner_limits_mode(agent->runner) : "");
  b->env.plugins_refused = (uint32_t)agent->plugins_refused;
  b->env.exec_helper = agent->exec_helper_found;
  b->env.spool_writable = agent->spool_writable;
  b->env.trust_keys = (uint32_t)cfg->trust_keys.n;
  b->env.allow_unsigned = cfg->allow_unsigned;
  mu_env_facts *ef = &b->env_facts;
  mu_env_facts_gather(ef, cfg->run_as, agent->facts.hostname, agent->plugins);
  b->env.n_run_as_users = ef->n_run_as;
  b->env.run_as_users = ef->run_as_ptrs;
  b->env.n_run_as_missing = ef->n_run_as_missing;
  b->env.run_as_missing = ef->run_as_missing_ptrs;
  b->env.python_cache_dir = ef->python_cache_dir;
  b->env.python_cache_writable = ef->python_cache_writable;
  b->env.python_cache_bytes = ef->python_cache_bytes;
  b->env.container_plugin = ef->container_plugin;
  b->env.n_container_missing = ef->n_container_missing;
  b->env.container_missing = ef->container_missing_ptrs;
  h->env = &b->env;
  return h;
}

void mu_hello_free(Muster__V1__Hello *hello) {
  hello_block *b = (hello_block *)hello;
  if (b == NULL) return;
  free(b->entries);
  free(b->entry_ptrs);
  free(b->plugins);
  free(b->plugin_ptrs);
  for (size_t i = 0; i < b->n_interpreters; i++) free(b->interpreters[i]);
  free(b->interpreters);
  free(b);
}
