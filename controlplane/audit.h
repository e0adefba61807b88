/* The audit trail (docs/security.md, "Audit"): who did what to what, and how it ended — every
 * mutating admin call, the gate's denials and every task start an agent reports.
 *
 * Each record is one log line under the "audit" component (grep `audit:`) and is stored:
 *   --no-etcd   in a bounded ring in memory (audit_max_records, audit_retention);
 *   etcd        by the leader only, under <prefix>audit/<ms>-<seq>-<member> through its fenced
 *               store (a follower cannot write: the records of what it serves — reads, its
 *               own gate denials — are in its log only). Mutating calls are served by the
 *               leader alone, so every one of them is stored. The leader deletes the oldest
 *               records past audit_max_records or audit_retention, in batches, off the hot
 *               path.
 * Denials at the gate are rate-limited (audit_denials_per_second, the rest summarized in one
 * record a second), so a flood of unauthenticated calls cannot flood etcd. ListAudit
 * (audit_query.c) reads etcd from any member, or the ring. */
#ifndef MU_CP_AUDIT_H
#define MU_CP_AUDIT_H

#include "controlplane/audit_record.h"
#include "lib/metrics/httpd.h"
#include "lib/rpc/rpc.h"
#include "muster/v1/agent.pb-c.h"

struct mu_daemon;
struct mu_caller;
struct mu_agent;

typedef enum {
  MU_AUDIT_OK = 0,  /* done */
  MU_AUDIT_DENIED,  /* the caller may not (authorization) */
  MU_AUDIT_REFUSED, /* the request was wrong or could not be done */
} mu_audit_result;

/* Starts the audit log of d (after the rpc engine exists, before serving). */
int mu_audit_open(struct mu_daemon *d, mu_err *err);
/* Stops its timers; records written to etcd finish (or fail) on their own. */
void mu_audit_close(struct mu_daemon *d);

/* Records one action by the caller the gate attached to call (NULL call: musterd itself).
 * target: what it acted on ("" none). reason: why, for DENIED and REFUSED (outcome "denied:
 * REASON"). params_fmt: short details, printf style (NULL: none) — never pass a secret value;
 * keys that look secret are redacted anyway. */
void mu_audit_record(struct mu_daemon *d, mu_rpc_call *call, const char *action, const char *target,
                     mu_audit_result result, const char *reason, const char *params_fmt, ...)
    __attribute__((format(printf, 7, 8)));
/* The same with an explicit actor (NULL: musterd itself). */
void mu_audit_record_as(struct mu_daemon *d, const struct mu_caller *who, const char *action, const char *target,
                        mu_audit_result result, const char *reason, const char *params_fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* *ret: the caller of call as the gate proved it (anonymous at its peer address when the
 * call bypassed the gate), for records made after the call may be gone. */
void mu_audit_caller_copy(mu_rpc_call *call, struct mu_caller *ret);

/* The gate refused method to caller c (NULL: not identified yet) at address: an authz.denied
 * record, rate-limited. */
void mu_audit_denial(struct mu_daemon *d, const struct mu_caller *c, const char *address, const char *method,
                     const char *msg);

/* An agent's TaskEvent carrying start_audit: a task.start record with the agent as actor,
 * once per attempt (a resent STARTING the scheduler already has is not recorded again).
 * Call before mu_sched_on_event. */
void mu_audit_task_start(struct mu_daemon *d, struct mu_agent *a, mu_rpc_call *call, const Muster__V1__TaskEvent *ev);

/* The records this member holds that ListAudit must see: the ring (--no-etcd) or, on the
 * leader, those not yet in etcd; borrowed until the loop runs again. */
const mu_audit_ring *mu_audit_ring_of(const struct mu_daemon *d);
void mu_audit_pending(const struct mu_daemon *d, mu_audit_rec *const **ret_recs, size_t *ret_n);

/* Adds the audit counters to a /metrics snapshot. */
void mu_audit_metrics(const struct mu_daemon *d, mu_prom *p);

/* audit_query.c: muster.v1.Audit/ListAudit. */
int mu_audit_register(struct mu_daemon *d, mu_err *err);

/* Compatibility for callers written before records (other branches): details become the
 * params, the outcome is read from a "denied"/"refused:" in them. Prefer mu_audit_record. */
void mu_audit(mu_rpc_call *call, const char *action, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
