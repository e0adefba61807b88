/* Agent presence in etcd (presence.c): <prefix>presence/<agent-id> exists while the agent is
 * connected to the leader, under one lease the leader grants per term and keeps alive. Puts
 * and deletes ride on persist.c's flush batch (it calls mu_presence_add_ops); followers derive connected/disconnected from
 * the watched keys. */
#ifndef MU_CP_PRESENCE_H
#define MU_CP_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "controlplane/ha/store.h"
#include "controlplane/registry.h"
#include "lib/base/err.h"

struct mu_daemon;

typedef struct mu_presence {
  int64_t lease;    /* etcd lease id; 0 while none is granted */
  uint64_t gen;     /* cluster gen the lease (or the call in flight) belongs to */
  int busy;         /* a grant or keep-alive is in flight */
  uv_timer_t timer; /* keep-alive every TTL/3, retries */
  /* Set by the wiring: a lease was granted, presence can be written (a flush soon). */
  void (*granted)(struct mu_daemon *d);
} mu_presence;

void mu_presence_init(struct mu_daemon *d);
/* Elected: grants this term's lease (presence is written once it exists). */
void mu_presence_on_elected(struct mu_daemon *d);
/* Deposed: stops the keep-alive and revokes the lease (its keys vanish at once). */
void mu_presence_on_deposed(struct mu_daemon *d);
/* Revokes the lease (if any) and closes the timer; done runs once (maybe from inside). */
void mu_presence_stop(struct mu_daemon *d, void (*done)(struct mu_daemon *d));
/* Adds a put (connected, under the lease) or delete (disconnected) for every agent whose
 * presence changed to the flush batch b. Agents wait while no lease is granted. */
int mu_presence_add_ops(struct mu_daemon *d, mu_store_batch *b, mu_err *err);
/* A flush failed: presence is re-marked; MU_ENOENT (lease gone) grants a new lease. */
void mu_presence_write_failed(struct mu_daemon *d, const mu_err *err);
/* Follower: a presence key put (value) or deleted (value NULL). Bad values are logged with
 * the key and skipped. */
void mu_presence_apply(struct mu_daemon *d, const char *id, const char *value, size_t len);
/* Follower: recomputes every agent's state from presence (after a leader change). */
void mu_presence_refresh(struct mu_daemon *d);
void mu_presence_refresh_agent(struct mu_daemon *d, mu_agent *a);
/* Cluster events (events.h): the leader known to etcd changed (refreshes followers' view). */
void mu_presence_on_leader_changed(struct mu_daemon *d);
/* A fresh snapshot follows: forget every presence seen. */
void mu_presence_reset(struct mu_daemon *d);

#endif
