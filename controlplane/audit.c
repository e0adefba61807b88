/* Making audit records (audit.h): the actor from the gate's verdict on the call (or an agent,
 * or musterd itself), the outcome, bounded and redacted details; one log line each, then
 * handed to audit_store.c. Gate denials pass a per-second limiter first; task starts come
 * from the agents' STARTING events. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit_int.h"
#include "controlplane/authz.h"
#include "controlplane/daemon.h"
#include "controlplane/scheduler.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

/* The daemon of this process, for mu_audit (the call form that names none). */
static mu_daemon *compat_daemon;

/* "anonymous", "token:ci-bot", "agent:web-1": the log line's who=. */
static void who_text(const mu_audit_rec *r, char *buf, size_t size) {
  if (strcmp(r->caller_name, r->caller_kind) == 0 || r->caller_name[0] == '\0')
    snprintf(buf, size, "%s", r->caller_kind);
  else snprintf(buf, size, "%s:%s", r->caller_kind, r->caller_name);
}

static void log_line(const mu_audit_rec *r) {
  char who[MU_AUDIT_SHORT_MAX + MU_AUDIT_NAME_MAX + 2];
  who_text(r, who, sizeof who);
  mu_info("audit", "peer=%s who=%s action=%s target=%s%s%s outcome=%s", r->address[0] ? r->address : "-", who,
          r->action, r->target[0] ? r->target : "-", r->params[0] ? " " : "", r->params, r->outcome);
}

static void record(mu_daemon *d, const mu_caller *who, const char *action, const char *target, mu_audit_result result,
                   const char *reason, const char *params) {
  mu_audit_log *al = d->audit_log;
  char outcome[MU_AUDIT_TEXT_MAX];
  if (result == MU_AUDIT_OK) snprintf(outcome, sizeof outcome, "ok");
  else
    snprintf(outcome, sizeof outcome, "%s: %s", result == MU_AUDIT_DENIED ? "denied" : "refused",
             reason && reason[0] ? reason : "(no reason given)");
  mu_audit_rec in = {.time_ms = mu_now_ms(),
                     .seq = al ? ++al->seq : 0,
                     .member = d->cfg.member_id,
                     .action = action,
                     .target = target,
                     .params = params,
                     .outcome = outcome};
  mu_audit_rec_set_caller(&in, who, d->cfg.member_id);
  mu_audit_rec *r = mu_audit_rec_pack(&in);
  if (r == NULL) {
    mu_error("audit", "out of memory: the record of %s on %s is lost", action, target);
    return;
  }
  log_line(r);
  if (al == NULL) {
    free(r);
    return;
  }
  al->recorded++;
  mu_audit_store_add(al, r);
}

static void vrecord(mu_daemon *d, const mu_caller *who, const char *action, const char *target, mu_audit_result result,
                    const char *reason, const char *fmt, va_list ap) {
  char params[4 * MU_AUDIT_TEXT_MAX];
  vsnprintf(params, sizeof params, fmt ? fmt : "", ap);
  record(d, who, action, target ? target : "", result, reason, params);
}

/* The gate's verdict on call, or (a call that bypassed the gate) an anonymous caller at its
 * peer address, in *tmp. */
static const mu_caller *caller_of(mu_rpc_call *call, mu_caller *tmp) {
  if (call == NULL) return NULL;
  const mu_caller *c = mu_authz_caller(call);
  if (c != NULL) return c;
  memset(tmp, 0, sizeof *tmp);
  snprintf(tmp->name, sizeof tmp->name, "anonymous");
  char *peer = mu_rpc_call_peer(call);
  snprintf(tmp->address, sizeof tmp->address, "%s", peer ? peer : "");
  free(peer);
  return tmp;
}

void mu_audit_caller_copy(mu_rpc_call *call, mu_caller *ret) {
  mu_caller tmp;
  const mu_caller *c = caller_of(call, &tmp);
  if (c != NULL) {
    *ret = *c;
  } else {
    memset(ret, 0, sizeof *ret);
    snprintf(ret->name, sizeof ret->name, "anonymous");
  }
}

void mu_audit_record(mu_daemon *d, mu_rpc_call *call, const char *action, const char *target, mu_audit_result result,
                     const char *reason, const char *params_fmt, ...) {
  mu_caller tmp;
  va_list ap;
  va_start(ap, params_fmt);
  vrecord(d, caller_of(call, &tmp), action, target, result, reason, params_fmt, ap);
  va_end(ap);
}

void mu_audit_record_as(mu_daemon *d, const mu_caller *who, const char *action, const char *target,
                        mu_audit_result result, const char *reason, const char *params_fmt, ...) {
  va_list ap;
  va_start(ap, params_fmt);
  vrecord(d, who, action, target, result, reason, params_fmt, ap);
  va_end(ap);
}

void mu_audit(mu_rpc_call *call, const char *action, const char *fmt, ...) {
  char details[4 * MU_AUDIT_TEXT_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(details, sizeof details, fmt, ap);
  va_end(ap);
  if (compat_daemon == NULL) {
    mu_info("audit", "action=%s %s", action, details);
    return;
  }
  mu_audit_result result = MU_AUDIT_OK;
  char *at = strstr(details, "denied: ");
  if (at != NULL) result = MU_AUDIT_DENIED;
  if (at == NULL) {
    at = strstr(details, "refused: ");
    if (at != NULL) result = MU_AUDIT_REFUSED;
  }
  const char *reason = NULL;
  if (at != NULL) {
    reason = strchr(at, ' ') + 1;
    *at = '\0';
  }
  /* the target: a leading job=, agent=, name=, ... */
  static const char *const keys[] = {"job=", "agent=", "name=", "bundle=", "secret=", "token="};
  char target[MU_AUDIT_TARGET_MAX] = "";
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strncmp(details, keys[i], strlen(keys[i])) == 0) {
      const char *v = details + strlen(keys[i]);
      snprintf(target, sizeof target, "%.*s", (int)strcspn(v, " "), v);
      break;
    }
  mu_caller tmp;
  record(compat_daemon, caller_of(call, &tmp), action, target, result, reason, details);
}

/* --- gate denials --- */

static void summarize(mu_daemon *d, uint64_t n) {
  mu_audit_log *al = d->audit_log;
  char why[400];
  snprintf(why, sizeof why,
           "%llu more denials within one second were not recorded one by one "
           "(audit_denials_per_second=%u)",
           (unsigned long long)n, (unsigned)d->cfg.audit_denials_per_second);
  mu_audit_record_as(d, NULL, "authz.denied", "*", MU_AUDIT_DENIED, why, "suppressed=%llu last='%s'",
                     (unsigned long long)n, al->last_denied);
}

static void on_denial_timer(uv_timer_t *t) {
  mu_audit_log *al = t->data;
  al->denial_armed = 0;
  if (al->closing) return;
  uint64_t n = mu_audit_limiter_flush(&al->limiter, mu_mono_ms());
  if (n > 0) summarize(al->d, n);
}

void mu_audit_denial(mu_daemon *d, const mu_caller *c, const char *address, const char *method, const char *msg) {
  mu_audit_log *al = d->audit_log;
  if (al == NULL) return;
  int64_t now = mu_mono_ms();
  uint64_t summary = 0;
  int admit = mu_audit_limiter_admit(&al->limiter, now, &summary);
  if (summary > 0) summarize(d, summary);
  if (!admit) {
    al->suppressed++;
    snprintf(al->last_denied, sizeof al->last_denied, "%.200s from %.80s", method, address);
    if (!al->denial_armed) { /* reports the count even if nothing else comes */
      int64_t left = al->limiter.window_start + 1000 - now;
      al->denial_armed = 1;
      uv_timer_start(&al->denial_timer, on_denial_timer, (uint64_t)(left > 0 ? left : 0) + 1, 0);
    }
    return;
  }
  mu_caller anon = {0};
  if (c == NULL) {
    snprintf(anon.name, sizeof anon.name, "anonymous");
    snprintf(anon.address, sizeof anon.address, "%s", address);
    c = &anon;
  }
  record(d, c, "authz.denied", method, MU_AUDIT_DENIED, msg, "");
}

/* --- task starts --- */

void mu_audit_task_start(mu_daemon *d, mu_agent *a, mu_rpc_call *call, const Muster__V1__TaskEvent *ev) {
  const Muster__V1__TaskStartAudit *sa = ev->start_audit;
  if (sa == NULL) return;
  mu_job *job = mu_sched_find(d->sched, ev->job_id);
  mu_host_run *h = NULL;
  mu_task_run *tr = job ? mu_job_task(job, ev->task_id, &h) : NULL;
  if (tr != NULL && tr->attempt == ev->attempt && tr->state >= MUSTER__V1__TASK_STATE__STARTING)
    return; /* a resend of a start already recorded */
  const mu_caller *proven = call ? mu_authz_caller(call) : NULL;
  mu_caller who = {.kind = MU_CALLER_AGENT};
  snprintf(who.name, sizeof who.name, "%s", a->id);
  snprintf(who.address, sizeof who.address, "%s", proven ? proven->address : (a->peer ? a->peer : ""));
  mu_audit_record_as(d, &who, "task.start", ev->task_id, MU_AUDIT_OK, NULL,
                     "job=%.100s attempt=%u user=%.64s type=%.32s command=%.80s of=%.16s%s%.80s", ev->job_id,
                     ev->attempt, sa->run_as[0] ? sa->run_as : "(agent's user)", sa->type,
                     sa->command_digest[0] ? sa->command_digest : "-", sa->digest_of,
                     sa->bundle_digest[0] ? " bundle=" : "", sa->bundle_digest);
}

/* --- life cycle --- */

int mu_audit_open(mu_daemon *d, mu_err *err) {
  mu_audit_log *al = calloc(1, sizeof *al);
  if (al == NULL) return mu_err_set(err, MU_ENOMEM, "audit: out of memory");
  al->d = d;
  al->limiter.per_sec = d->cfg.audit_denials_per_second;
  mu_audit_ring_init(&al->ring, d->cfg.audit_max_records, d->cfg.audit_retention_ms);
  uv_timer_init(d->loop, &al->denial_timer);
  al->denial_timer.data = al;
  al->refs = 1;
  mu_audit_store_init(al);
  d->audit_log = al;
  compat_daemon = d;
  return 0;
}

static void on_timer_closed(uv_handle_t *h) { mu_audit_unref(h->data); }

void mu_audit_close(mu_daemon *d) {
  mu_audit_log *al = d->audit_log;
  if (al == NULL) return;
  if (al->limiter.suppressed > 0) summarize(d, al->limiter.suppressed);
  al->closing = 1;
  mu_audit_store_close(al);
  d->audit_log = NULL;
  compat_daemon = NULL;
  uv_timer_stop(&al->denial_timer);
  uv_close((uv_handle_t *)&al->denial_timer, on_timer_closed);
}

const mu_audit_ring *mu_audit_ring_of(const mu_daemon *d) { return d->audit_log ? &d->audit_log->ring : NULL; }

void mu_audit_pending(const mu_daemon *d, mu_audit_rec *const **ret_recs, size_t *ret_n) {
  mu_audit_log *al = d->audit_log;
  *ret_recs = al ? al->pending : NULL;
  *ret_n = al ? al->n_pending : 0;
}

void mu_audit_metrics(const mu_daemon *d, mu_prom *p) {
  const mu_audit_log *al = d->audit_log;
  if (al == NULL) return;
  const struct {
    const char *name, *type, *help;
    double value;
  } rows[] = {
      {"muster_audit_records_total", "counter", "Audit records made by this member (each is also a log line).",
       (double)al->recorded},
      {"muster_audit_stored_total", "counter", "Audit records stored (etcd by the leader, or memory with --no-etcd).",
       (double)al->stored},
      {"muster_audit_dropped_total", "counter",
       "Audit records not stored: write queue full, or leadership lost before the write (they "
       "are in the log).",
       (double)al->dropped},
      {"muster_audit_denials_suppressed_total", "counter",
       "Gate denials over audit_denials_per_second, counted in summary records.", (double)al->suppressed},
      {"muster_audit_pruned_total", "counter", "Audit records deleted past audit_max_records or audit_retention.",
       (double)al->pruned},
      {"muster_audit_pending", "gauge", "Audit records waiting to be written to etcd.", (double)al->n_pending},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    mu_prom_add(p, rows[i].name, rows[i].type, rows[i].help, "", rows[i].value);
}
