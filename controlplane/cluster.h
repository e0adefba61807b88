/* musterd with etcd (cluster.c): the client, the election (controlplane/ha/leader.h) and the
 * fenced store; the member's role. A follower loads the prefix and watches it to serve reads
 * and redirect everything else; a newly elected leader loads its state and gives agents
 * takeover_grace to come back. The role queries (mu_cluster_leading, _check_write,
 * _etcd_healthy) are what every other module asks; only cluster.c changes the state. */
#ifndef MU_CP_CLUSTER_H
#define MU_CP_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "controlplane/etcd_probe.h"
#include "controlplane/ha/leader.h"
#include "controlplane/ha/store.h"
#include "lib/base/err.h"
#include "lib/etcd/etcd.h"
#include "lib/rpc/rpc.h"

struct mu_daemon;

/* The member's role. SINGLE: --no-etcd, state in memory, always leads. With etcd a member is
 * a FOLLOWER (redirects agents and writes, serves reads from its watched copy) until elected;
 * a LEADER schedules and writes, once its state is loaded (state_ready). */
typedef enum { MU_ROLE_SINGLE = 0, MU_ROLE_FOLLOWER, MU_ROLE_LEADER } mu_role;

typedef struct mu_cluster {
  mu_role role;
  int state_ready; /* leader: state loaded from etcd (SINGLE: always 1) */
  uint64_t term;   /* leader term handed to agents as the fencing term */
  int active;      /* mu_cluster_start ran (its timers exist) */
  mu_etcd_client *etcd;
  mu_leader *leader;
  mu_store *store;
  mu_etcd_watch *watch;        /* follower: the prefix watch keeping its copy hot */
  uint64_t gen;                /* bumps on every role change: late loads are dropped */
  int loading;                 /* a prefix load is in flight */
  uv_timer_t retry_timer;      /* retries a failed load */
  int64_t takeover_until_mono; /* leader: agents may reconnect until then */
  char leader_address[300];    /* known leader ("" unknown) */
  int write_failing;           /* the last write failed (etcd unreachable): health */
  char write_error[300];
  void (*stop_cb)(struct mu_daemon *d); /* mu_cluster_stop's callback */
  /* Set by the wiring before mu_cluster_start. reload: what must be listed after a snapshot
   * and before leading or watching (the bundle index; bundles.h mu_bundles_reload), cb runs
   * exactly once. before_close: what still writes through the store ends first (persist,
   * presence); it calls then once done. NULL: nothing. */
  void (*reload)(struct mu_daemon *d, void (*cb)(void *ctx, int rc, const char *msg), void *ctx);
  void (*before_close)(struct mu_daemon *d, void (*then)(struct mu_daemon *d));
  mu_etcd_probe etcd_probe; /* GetCluster's etcd status (etcd_probe.h) */
} mu_cluster;

/* Starts etcd mode (client, election, store, follower load). What happens from then on is
 * published to d->events (events.h: elected, deposed, records, takeover, ...). */
int mu_cluster_start(struct mu_daemon *d, mu_err *err);
/* Resigns and closes everything; done_cb runs once all is closed (maybe from inside). */
void mu_cluster_stop(struct mu_daemon *d, void (*done_cb)(struct mu_daemon *d));
/* True when this member may schedule, accept agents and write (SINGLE, or a loaded leader). */
int mu_cluster_leading(const struct mu_daemon *d);
/* For mutating admin calls: 0 when this member may write now; otherwise the call has been
 * answered UNAVAILABLE (with muster-leader trailing metadata when another member leads). */
int mu_cluster_check_write(struct mu_daemon *d, mu_rpc_call *call);
/* For a read of something this follower does not know (yet: a job just submitted through the
 * leader reaches it with the next etcd watch event): 0 when this member should answer itself
 * (it leads, runs alone, or knows no other leader); otherwise the call has been answered
 * UNAVAILABLE with the muster-leader trailer, so clients ask the leader, and MU_EAGAIN. */
int mu_cluster_redirect_unknown(struct mu_daemon *d, mu_rpc_call *call, const char *what);
/* A write through the store ended (err NULL: it succeeded): the write health below. */
void mu_cluster_note_write(struct mu_daemon *d, const mu_err *err);
/* etcd health for GetCluster and the health service; msg gets the error ("" when healthy). */
int mu_cluster_etcd_healthy(const struct mu_daemon *d, char *msg, size_t size);

#endif
