/* Agent registry: a sorted array of agents with binary search by id (thousands of agents,
 * lookups on every message, inserts only on first contact). */
#include "controlplane/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mu_registry_init(mu_registry *reg, size_t max_agents) {
  memset(reg, 0, sizeof *reg);
  reg->max = max_agents ? max_agents : 10000;
}

static void agent_free(mu_agent *a) {
  if (a->hello_msg) protobuf_c_message_free_unpacked(&a->hello_msg->base, NULL);
  if (a->heartbeat_msg) protobuf_c_message_free_unpacked(&a->heartbeat_msg->base, NULL);
  free(a->id);
  free(a->peer);
  free(a->disconnect_reason);
  free(a);
}

void mu_registry_free(mu_registry *reg) {
  for (size_t i = 0; i < reg->n; i++) agent_free(reg->agents[i]);
  free(reg->agents);
  memset(reg, 0, sizeof *reg);
}

static size_t lower_bound(const mu_registry *reg, const char *id) {
  size_t lo = 0, hi = reg->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(reg->agents[mid]->id, id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

size_t mu_registry_after(const mu_registry *reg, const char *id) {
  if (id == NULL || id[0] == '\0') return 0;
  size_t i = lower_bound(reg, id);
  if (i < reg->n && strcmp(reg->agents[i]->id, id) == 0) i++;
  return i;
}

mu_agent *mu_registry_find(const mu_registry *reg, const char *id) {
  size_t i = lower_bound(reg, id);
  if (i < reg->n && strcmp(reg->agents[i]->id, id) == 0) return reg->agents[i];
  return NULL;
}

int mu_registry_upsert(mu_registry *reg, const char *id, mu_agent **ret, mu_err *err) {
  size_t i = lower_bound(reg, id);
  if (i < reg->n && strcmp(reg->agents[i]->id, id) == 0) {
    *ret = reg->agents[i];
    return 0;
  }
  if (reg->n >= reg->max)
    return mu_err_set(err, MU_ENOSPC, "agent registry full (%zu agents, max_agents=%zu)", reg->n, reg->max);
  if (reg->n == reg->cap) {
    size_t cap = reg->cap ? reg->cap * 2 : 64;
    mu_agent **grown = realloc(reg->agents, cap * sizeof *grown);
    if (grown == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    reg->agents = grown;
    reg->cap = cap;
  }
  mu_agent *a = calloc(1, sizeof *a);
  if (a != NULL) a->id = strdup(id);
  if (a == NULL || a->id == NULL) {
    free(a);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  a->state = MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED;
  memmove(&reg->agents[i + 1], &reg->agents[i], (reg->n - i) * sizeof *reg->agents);
  reg->agents[i] = a;
  reg->n++;
  *ret = a;
  return 0;
}

void mu_registry_remove(mu_registry *reg, mu_agent *a) {
  size_t i = lower_bound(reg, a->id);
  if (i >= reg->n || reg->agents[i] != a) return;
  if (a->session != NULL && reg->connected > 0) reg->connected--;
  memmove(&reg->agents[i], &reg->agents[i + 1], (reg->n - i - 1) * sizeof *reg->agents);
  reg->n--;
  agent_free(a);
}

int mu_agent_gc_due(const mu_agent *a, int64_t after_ms, int64_t not_before_ms, int64_t now_ms) {
  if (after_ms <= 0 || a->session != NULL || a->state != MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED) return 0;
  int64_t seen = a->last_heartbeat_ms > not_before_ms ? a->last_heartbeat_ms : not_before_ms;
  return now_ms - seen > after_ms;
}

void mu_agent_set_hello(mu_agent *a, Muster__V1__AgentMessage *hello_msg) {
  if (a->hello_msg) protobuf_c_message_free_unpacked(&a->hello_msg->base, NULL);
  a->hello_msg = hello_msg;
  a->hello_gen++;
}

void mu_registry_set_connected(mu_registry *reg, mu_agent *a, Muster__V1__AgentMessage *hello_msg, const char *peer,
                               mu_agent_session *session, int64_t now_ms, int64_t mono_ms) {
  mu_agent_set_hello(a, hello_msg);
  if (a->session == NULL) reg->connected++;
  a->session = session;
  a->state = MUSTER__V1__AGENT_STATE__AGENT_CONNECTED;
  a->connected_at_ms = now_ms;
  snprintf(a->session_id, sizeof a->session_id, "%s-%lld", a->id, (long long)now_ms);
  a->last_heartbeat_ms = now_ms;
  a->last_seen_mono_ms = mono_ms;
  free(a->peer);
  a->peer = strdup(peer ? peer : "");
  free(a->disconnect_reason);
  a->disconnect_reason = NULL;
}

void mu_registry_set_disconnected(mu_registry *reg, mu_agent *a, const char *reason) {
  if (a->session != NULL) reg->connected--;
  a->session = NULL;
  a->state = MUSTER__V1__AGENT_STATE__AGENT_DISCONNECTED;
  free(a->disconnect_reason);
  a->disconnect_reason = strdup(reason ? reason : "");
}

const char *mu_agent_label(const void *agent, const char *key) {
  const mu_agent *a = agent;
  if (a->hello_msg == NULL || a->hello_msg->hello == NULL) return NULL;
  const Muster__V1__Hello *h = a->hello_msg->hello;
  for (size_t i = 0; i < h->n_labels; i++)
    if (strcmp(h->labels[i]->key, key) == 0) return h->labels[i]->value;
  for (size_t i = 0; i < h->n_facts; i++) /* built-in facts: labels of the same name win */
    if (strcmp(h->facts[i]->name, key) == 0) return h->facts[i]->value;
  return NULL;
}

Muster__V1__AgentState mu_agent_shown_state(const mu_agent *a) {
  if (a->draining && a->state == MUSTER__V1__AGENT_STATE__AGENT_CONNECTED)
    return MUSTER__V1__AGENT_STATE__AGENT_DRAINING;
  return a->state;
}

void mu_agent_to_info(const mu_agent *a, Muster__V1__AgentInfo *info, Muster__V1__AgentInfo__LabelsEntry *label_storage,
                      Muster__V1__AgentInfo__LabelsEntry **entry_ptrs) {
  muster__v1__agent_info__init(info);
  info->agent_id = a->id;
  info->state = mu_agent_shown_state(a);
  info->connected_at_ms = a->connected_at_ms;
  info->last_heartbeat_ms = a->last_heartbeat_ms;
  info->peer = a->peer ? a->peer : "";
  info->disconnect_reason = a->disconnect_reason ? a->disconnect_reason : "";
  const Muster__V1__Hello *h = a->hello_msg ? a->hello_msg->hello : NULL;
  if (h != NULL) {
    info->hostname = h->hostname;
    info->os = h->os;
    info->arch = h->arch;
    info->cpu_count = h->cpu_count;
    info->memory_bytes = h->memory_bytes;
    info->agent_version = h->agent_version;
    info->n_plugins = h->n_plugins;
    info->plugins = h->plugins;
    info->capacity = h->capacity;
    info->n_facts = h->n_facts; /* the same message type: borrowed like the plugins */
    info->facts = h->facts;
    info->n_interpreters = h->n_interpreters;
    info->interpreters = h->interpreters;
    for (size_t i = 0; i < h->n_labels; i++) {
      muster__v1__agent_info__labels_entry__init(&label_storage[i]);
      label_storage[i].key = h->labels[i]->key;
      label_storage[i].value = h->labels[i]->value;
      entry_ptrs[i] = &label_storage[i];
    }
    info->n_labels = h->n_labels;
    info->labels = entry_ptrs;
  }
  if (a->heartbeat_msg != NULL && a->heartbeat_msg->heartbeat != NULL) {
    info->metrics = a->heartbeat_msg->heartbeat->metrics;
    info->last_heartbeat_sent_at_ms = a->heartbeat_msg->heartbeat->sent_at_ms;
  }
  if (h != NULL) info->env = h->env;
}
