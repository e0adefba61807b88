/* Inside the audit log (audit.c records, audit_store.c keeps, audit_query.c lists). */
#ifndef MU_CP_AUDIT_INT_H
#define MU_CP_AUDIT_INT_H

#include <uv.h>

#include "controlplane/audit.h"

struct mu_daemon;

typedef struct mu_audit_log {
  struct mu_daemon *d;
  int closing;
  int refs;     /* open timers + etcd calls in flight: freed at 0 once closing */
  uint64_t seq; /* of this member's records */
  /* --no-etcd */
  mu_audit_ring ring;
  /* etcd, leader: records not in etcd yet, oldest first; the first n_writing are being
   * written */
  mu_audit_rec **pending;
  size_t n_pending, cap_pending, n_writing;
  uv_timer_t flush_timer;
  int flush_armed;
  uv_timer_t prune_timer;
  int prune_busy;
  int64_t prune_due; /* monotonic ms of the next pass; 0 = none armed */
  uint64_t stored_since_prune;
  /* gate denials */
  mu_audit_limiter limiter;
  uv_timer_t denial_timer;
  int denial_armed;
  char last_denied[300]; /* "METHOD from ADDRESS" of the last one only counted */
  int queries_reading;   /* ListAudit calls with an etcd read in flight */
  /* /metrics */
  uint64_t recorded, stored, dropped, suppressed, pruned;
} mu_audit_log;

/* audit_store.c */
void mu_audit_store_init(mu_audit_log *al);
/* Takes rec: into the ring, the leader's write queue, or (follower) nowhere. */
void mu_audit_store_add(mu_audit_log *al, mu_audit_rec *rec);
/* Closing: a last write of what is pending (leader), timers closed. */
void mu_audit_store_close(mu_audit_log *al);
/* One reference less; frees al once closing and none is left. */
void mu_audit_unref(mu_audit_log *al);

#endif
