/* Builds the agent's Hello from its configuration and host facts. */
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

/* One allocation owns the message and everything it points to that is not borrowed. */
typedef struct hello_block {
  Muster__V1__Hello hello; /* first: the pointer handed out */
  Muster__V1__Capacity capacity;
  Muster__V1__Hello__LabelsEntry *entries;
  Muster__V1__Hello__LabelsEntry **entry_ptrs;
  Muster__V1__PluginInfo *plugins;
  Muster__V1__PluginInfo **plugin_ptrs;
} hello_block;

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
    b->plugin_ptrs[i] = &b->plugins[i];
    h->n_plugins++;
  }
  h->plugins = b->plugin_ptrs;
  b->capacity.slots = cfg->slots;
  h->capacity = &b->capacity;
  return h;
}

void mu_hello_free(Muster__V1__Hello *hello) {
  hello_block *b = (hello_block *)hello;
  if (b == NULL) return;
  free(b->entries);
  free(b->entry_ptrs);
  free(b->plugins);
  free(b->plugin_ptrs);
  free(b);
}
