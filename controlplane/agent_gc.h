/* Forgetting agents (agent_gc.c): `muster agents rm` (muster.v1.Admin/RemoveAgent) and, on
 * the leader, the agents disconnected longer than agent_gc_after (default 7d, 0 = never).
 * Forgetting drops the registry entry, after every module holding the agent has let go
 * (events.h agent_forgotten); with etcd the leader deletes agents/<id> and presence/<id>
 * through its fenced store (persist.c) and followers forget the agent when their watch sees
 * the delete. Each one is audited (agent.remove, agent.gc) and logged. Loop thread only. */
#ifndef MU_CP_AGENT_GC_H
#define MU_CP_AGENT_GC_H

#include <stdint.h>

#include <uv.h>

#include "controlplane/registry.h"
#include "lib/base/err.h"

struct mu_daemon;

typedef struct mu_agent_gc {
  uv_timer_t timer; /* the leader's sweep of long-disconnected agents */
  int started;
  int64_t since_ms;   /* wall clock: agents count as seen no earlier than this */
  uint64_t forgotten; /* agents forgotten by the sweep */
} mu_agent_gc;

/* Registers Admin/RemoveAgent on the server (before it starts). */
int mu_agent_gc_register(struct mu_daemon *d, mu_err *err);
/* Starts the sweep when agent_gc_after is not 0 (every quarter of it, 200ms..60s). */
void mu_agent_gc_start(struct mu_daemon *d);
void mu_agent_gc_stop(struct mu_daemon *d);
/* One sweep now (what the timer runs): the leader forgets every agent mu_agent_gc_due says. */
void mu_agent_gc_sweep(struct mu_daemon *d);

/* Forgets agent a (not connected) at once: listeners let go, its records are deleted (leader),
 * it leaves the registry and is freed. why is logged. */
void mu_agent_forget(struct mu_daemon *d, mu_agent *a, const char *why);

/* Cluster event (events.h) record: agents/<id> deleted, seen by a follower, forgets the agent
 * (the leader forgot it; a follower holds no stream of its own). */
void mu_agent_gc_on_record(struct mu_daemon *d, const char *rel_key, const char *value);

#endif
