/* The control plane's events: how a module tells the modules above it what happened without
 * including them. The gateway publishes what agents do (up, down, heartbeat, task events and
 * the replies routed to one module); the cluster publishes what happens to this member's role
 * and to the state it reads from etcd (elected, deposed, a new leader elsewhere, a snapshot
 * load, one record, a takeover). Listeners are subscribed once at start (wiring.c), are
 * called synchronously on the loop thread in the order they subscribed, and must not
 * subscribe or unsubscribe from inside a call. docs/architecture.md draws who listens. */
#ifndef MU_CP_EVENTS_H
#define MU_CP_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "controlplane/registry.h"
#include "lib/base/err.h"
#include "muster/v1/agent.pb-c.h"

#define MU_EVENTS_MAX_LISTENERS 16

/* What agents do, published by the gateway. Every member may be NULL. */
typedef struct mu_agent_listener {
  void *ud;
  /* Hello accepted (the registry says connected), Welcome sent. */
  void (*up)(void *ud, mu_agent *agent);
  /* Its stream ended or was replaced; the registry says disconnected. stopping: the daemon
   * is shutting down (nothing should be written or rescheduled). */
  void (*down)(void *ud, mu_agent *agent, int stopping);
  /* A Heartbeat (metrics present; the registry holds the message). */
  void (*heartbeat)(void *ud, mu_agent *agent, const Muster__V1__Heartbeat *hb);
  void (*task_event)(void *ud, mu_agent *agent, const Muster__V1__TaskEvent *ev);
  void (*log_reply)(void *ud, mu_agent *agent, const Muster__V1__LogRequestReply *rep);
  void (*bundle_request)(void *ud, mu_agent *agent, const Muster__V1__BundleRequest *req);
  /* The agent (not connected) is about to be forgotten (`muster agents rm`, agent_gc_after,
   * or a follower seeing agents/<id> deleted): drop every pointer to it; it is freed next. */
  void (*forgotten)(void *ud, mu_agent *agent);
} mu_agent_listener;

/* What happens to this member and to the state it reads, published by the cluster. */
typedef struct mu_cluster_listener {
  void *ud;
  /* Elected for term (the cluster's role is LEADER, state not loaded yet). */
  void (*elected)(void *ud, uint64_t term);
  /* No longer the leader; redirect_to: the member agents should go to, or NULL (unknown, or
   * etcd unreachable: agents stay connected, nothing is scheduled or written). */
  void (*deposed)(void *ud, const char *reason, const char *redirect_to);
  /* Another member leads now (this one follows): agents should go to address. */
  void (*leader_elsewhere)(void *ud, const char *address);
  /* The leader known to etcd changed (any role): presence of older terms is stale. */
  void (*leader_changed)(void *ud, const char *address, int64_t term);
  /* A fresh snapshot of the prefix follows (records, then snapshot_end). */
  void (*snapshot_begin)(void *ud);
  /* One record under the prefix (rel_key without it); value NULL: deleted. leading: the
   * leader loading its state (no watcher events are published). */
  void (*record)(void *ud, const char *rel_key, const char *value, size_t len, int leading);
  /* The records of a snapshot, or of one watch batch, have all been given. */
  void (*records_end)(void *ud, int snapshot);
  /* The loaded leader takes over: agents have grace_ms to come back. */
  void (*takeover)(void *ud, uint64_t term, int64_t grace_ms);
} mu_cluster_listener;

typedef struct mu_events {
  mu_agent_listener agent[MU_EVENTS_MAX_LISTENERS];
  size_t n_agent;
  mu_cluster_listener cluster[MU_EVENTS_MAX_LISTENERS];
  size_t n_cluster;
} mu_events;

/* Subscribes (copied). MU_ENOSPC past MU_EVENTS_MAX_LISTENERS. */
int mu_events_on_agent(mu_events *ev, const mu_agent_listener *l, mu_err *err);
int mu_events_on_cluster(mu_events *ev, const mu_cluster_listener *l, mu_err *err);

/* Publishing: each calls the listeners that have that member, in order. */
void mu_events_agent_up(const mu_events *ev, mu_agent *agent);
void mu_events_agent_down(const mu_events *ev, mu_agent *agent, int stopping);
void mu_events_agent_heartbeat(const mu_events *ev, mu_agent *agent, const Muster__V1__Heartbeat *hb);
void mu_events_agent_task_event(const mu_events *ev, mu_agent *agent, const Muster__V1__TaskEvent *e);
void mu_events_agent_log_reply(const mu_events *ev, mu_agent *agent, const Muster__V1__LogRequestReply *rep);
void mu_events_agent_bundle_request(const mu_events *ev, mu_agent *agent, const Muster__V1__BundleRequest *req);
void mu_events_agent_forgotten(const mu_events *ev, mu_agent *agent);

void mu_events_elected(const mu_events *ev, uint64_t term);
void mu_events_deposed(const mu_events *ev, const char *reason, const char *redirect_to);
void mu_events_leader_elsewhere(const mu_events *ev, const char *address);
void mu_events_leader_changed(const mu_events *ev, const char *address, int64_t term);
void mu_events_snapshot_begin(const mu_events *ev);
void mu_events_record(const mu_events *ev, const char *rel_key, const char *value, size_t len, int leading);
void mu_events_records_end(const mu_events *ev, int snapshot);
void mu_events_takeover(const mu_events *ev, uint64_t term, int64_t grace_ms);

#endif
