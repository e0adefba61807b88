/* The agent registry: every agent the control plane has seen, its last Hello, its latest
 * host metrics and whether its stream is connected. Bounded by max_agents. Lives on the
 * loop thread. */
#ifndef MU_CP_REGISTRY_H
#define MU_CP_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "controlplane/resources.h"
#include "lib/base/err.h"
#include "muster/v1/admin.pb-c.h"
#include "muster/v1/agent.pb-c.h"

typedef struct mu_agent_session mu_agent_session;

typedef struct mu_agent {
  char *id;
  Muster__V1__AgentMessage *hello_msg;     /* owned; ->hello is the last Hello */
  Muster__V1__AgentMessage *heartbeat_msg; /* owned; ->heartbeat, NULL before the first */
  Muster__V1__AgentState state;
  int64_t connected_at_ms;
  int64_t last_heartbeat_ms; /* wall clock, for display */
  int64_t last_seen_mono_ms; /* monotonic, for the timeout */
  char *peer;
  char *disconnect_reason;
  mu_agent_session *session; /* the live stream, NULL when disconnected */
  uint32_t running;          /* task attempts assigned and not finished */
  uint64_t ack_seq;          /* highest event sequence applied */
  uint64_t acked_seq;        /* highest sequence acked to the agent */
  /* etcd mode (persist.c): acks go out only for what etcd holds */
  uint64_t durable_seq; /* highest sequence whose effects are in etcd */
  uint64_t flush_seq;   /* ack_seq when the write in flight started */
  int persist_dirty;    /* the agents/<id> record changed */
  int64_t last_seen_ms; /* from etcd on followers (wall clock) */
  /* presence (presence.c) */
  char session_id[160];   /* "<id>-<connected_at_ms>" of the current stream */
  int presence_dirty;     /* leader: presence/<id> must be (re)written */
  int presence_stored;    /* leader: a presence key of ours may exist */
  uint64_t presence_term; /* follower: term in presence/<id>, 0 when none */
  int lost_check;         /* reconnected with tasks in flight: the first
                                              heartbeat says whether they still run */
  int draining;           /* DrainAgent: no new host runs start here (kept in
                                              agents/<id>, so it survives failovers) */
  /* placement: the scheduler's, recomputed at every pass (resources.h) */
  mu_res cap;         /* what it declares */
  uint64_t hello_gen; /* counts hello_msg changes (mu_agent_set_hello) */
  uint64_t cap_gen;   /* the hello_gen cap was computed at */
  mu_res alloc;       /* what running hosts reserve on it */
  uint64_t place_gen; /* placement.c: holds the job being placed */
} mu_agent;

typedef struct mu_registry {
  mu_agent **agents; /* sorted by id */
  size_t n, cap, max;
  size_t connected;
} mu_registry;

void mu_registry_init(mu_registry *reg, size_t max_agents);
void mu_registry_free(mu_registry *reg);

mu_agent *mu_registry_find(const mu_registry *reg, const char *id);
/* Index of the first agent whose id sorts after id ("" or NULL: 0): where a page that
 * follows the agent id starts, whether or not id is still there. */
size_t mu_registry_after(const mu_registry *reg, const char *id);
/* Finds or adds the agent id. MU_ENOSPC when max_agents would be exceeded. */
int mu_registry_upsert(mu_registry *reg, const char *id, mu_agent **ret, mu_err *err);

/* Removes a (not connected: its session must be NULL) from the registry and frees it. Whoever
 * holds the pointer must have let go (events.h agent_forgotten). */
void mu_registry_remove(mu_registry *reg, mu_agent *a);

/* Whether a disconnected agent is due to be forgotten: not connected, and last heard from
 * (its last heartbeat, or not_before when later: when this member started watching) more
 * than after_ms before now_ms. after_ms 0 = never. Wall clock milliseconds. */
int mu_agent_gc_due(const mu_agent *a, int64_t after_ms, int64_t not_before_ms, int64_t now_ms);

/* Replaces a's Hello (taken; the old one is freed) and counts the change. */
void mu_agent_set_hello(mu_agent *a, Muster__V1__AgentMessage *hello_msg);

/* Connected/disconnected bookkeeping (keeps reg->connected right). hello_msg is taken. */
void mu_registry_set_connected(mu_registry *reg, mu_agent *a, Muster__V1__AgentMessage *hello_msg, const char *peer,
                               mu_agent_session *session, int64_t now_ms, int64_t mono_ms);
void mu_registry_set_disconnected(mu_registry *reg, mu_agent *a, const char *reason);

/* The state shown to users: AGENT_DRAINING for a connected agent that is draining. */
Muster__V1__AgentState mu_agent_shown_state(const mu_agent *a);

/* The value of label key on agent a, else of its built-in fact of that name (os, cpus, ...),
 * else NULL (a mu_selector lookup function). */
const char *mu_agent_label(const void *agent, const char *key);

/* Fills info with borrowed pointers into a (valid until a changes); labels are built into
 * label_storage (n_labels entries) and entry_ptrs. */
void mu_agent_to_info(const mu_agent *a, Muster__V1__AgentInfo *info, Muster__V1__AgentInfo__LabelsEntry *label_storage,
                      Muster__V1__AgentInfo__LabelsEntry **entry_ptrs);

#endif
