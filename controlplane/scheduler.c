/* The scheduler (scheduler.h): rollout limits, assignment, task events, retries, LOST
 * tasks and finished jobs. Every pass only looks at state and sends what it can; what leaves
 * the scheduler goes through its hooks. */
#include "controlplane/scheduler.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/job_deps.h"
#include "controlplane/placement.h"
#include "controlplane/targets.h"
#include "lib/base/assert.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"
#include "lib/selector/selector.h"

#define MU_SCHED_TICK_MS 200
#define MU_MAX_PARAMS 256
#define MU_EACCES_SECRET (-EACCES) /* send_assign: the task's secrets were refused */

static void sched_tick(mu_scheduler *s);

/* --- the hooks (scheduler.h): each one optional --- */

static int leading(mu_scheduler *s) { return s->hooks.leading == NULL || s->hooks.leading(s->hooks.ud); }

static int send_msg(mu_scheduler *s, mu_agent *agent, const Muster__V1__ControlMessage *msg, mu_err *err) {
  if (s->hooks.send == NULL) return mu_err_set(err, MU_EAGAIN, "agent %s is not connected", agent->id);
  return s->hooks.send(s->hooks.ud, agent, msg, err);
}

static void mark_task(mu_scheduler *s, mu_job *job, mu_host_run *h, size_t idx) {
  if (s->hooks.task_changed != NULL) s->hooks.task_changed(s->hooks.ud, job, h, idx);
}

static void mark_host(mu_scheduler *s, mu_job *job, mu_host_run *h) {
  for (size_t t = 0; t < job->spec->n_tasks; t++) mark_task(s, job, h, t);
}

static void mark_job(mu_scheduler *s, mu_job *job) {
  if (s->hooks.job_changed != NULL) s->hooks.job_changed(s->hooks.ud, job);
}

static void forget_job(mu_scheduler *s, const char *job_id) {
  if (s->hooks.job_forgotten != NULL) s->hooks.job_forgotten(s->hooks.ud, job_id);
}

static void pass_done(mu_scheduler *s) {
  if (s->hooks.pass_done != NULL) s->hooks.pass_done(s->hooks.ud);
}

/* --- the pass timer and the job list --- */

static void on_sched_timer(uv_timer_t *t) {
  mu_scheduler *s = t->data;
  s->armed = 0;
  sched_tick(s);
}

void mu_sched_init(mu_scheduler *s, const mu_sched_config *cfg, const mu_sched_hooks *hooks) {
  s->cfg = *cfg;
  s->hooks = *hooks;
  uv_timer_init(cfg->loop, &s->timer);
  s->timer.data = s;
}

void mu_sched_reset(mu_scheduler *s) {
  while (s->jobs != NULL) {
    mu_job *j = s->jobs;
    s->jobs = j->next;
    mu_job_free(j);
  }
  s->n_jobs = 0;
}

void mu_sched_close(mu_scheduler *s) {
  s->stopping = 1;
  uv_timer_stop(&s->timer);
  if (!uv_is_closing((uv_handle_t *)&s->timer)) uv_close((uv_handle_t *)&s->timer, NULL);
  mu_sched_reset(s);
}

void mu_sched_free(mu_scheduler *s) { mu_evicted_ring_free(&s->evicted); }

void mu_sched_kick(mu_scheduler *s) {
  if (s->armed || s->stopping) return;
  s->armed = 1;
  uv_timer_start(&s->timer, on_sched_timer, 0, 0);
}

void mu_sched_pass(mu_scheduler *s) {
  if (s->armed) uv_timer_stop(&s->timer);
  s->armed = 0;
  sched_tick(s);
}

void mu_sched_pause(mu_scheduler *s) {
  uv_timer_stop(&s->timer);
  s->armed = 0;
}

void mu_sched_insert(mu_scheduler *s, mu_job *job) {
  mu_job **pp = &s->jobs; /* newest first */
  while (*pp != NULL && (*pp)->created_at_ms > job->created_at_ms) pp = &(*pp)->next;
  job->next = *pp;
  *pp = job;
  s->n_jobs++;
  unsigned long long secs, seq;
  if (sscanf(job->id, "j-%llx-%llu", &secs, &seq) == 2 && seq > s->job_seq) s->job_seq = seq;
}

void mu_sched_remove(mu_scheduler *s, mu_job *job) {
  mu_job **pp = &s->jobs;
  while (*pp != NULL && *pp != job) pp = &(*pp)->next;
  if (*pp != job) return;
  *pp = job->next;
  job->next = NULL;
  s->n_jobs--;
}

void mu_sched_note_evicted(mu_scheduler *s, const mu_job *job) {
  if (mu_job_finished(job))
    mu_evicted_ring_add(&s->evicted, job->id, job->finished_at_ms,
                        mu_now_ms() - job->finished_at_ms < s->cfg.retention.min_age_ms);
}

mu_job *mu_sched_find(mu_scheduler *s, const char *job_id) {
  for (mu_job *j = s->jobs; j != NULL; j = j->next)
    if (strcmp(j->id, job_id) == 0) return j;
  return NULL;
}

void mu_sched_fail_not_found(const mu_scheduler *s, mu_rpc_call *call, const char *job_id) {
  char msg[MU_ERR_MSG_MAX];
  mu_retention_not_found(&s->cfg.retention, &s->evicted, job_id, msg, sizeof msg);
  mu_pb_fail(call, MU_RPC_NOT_FOUND, "%s", msg);
}

/* --- events out --- */

void mu_sched_publish_task(mu_scheduler *s, mu_job *job, mu_host_run *h, size_t idx) {
  Muster__V1__JobEvent ev = MUSTER__V1__JOB_EVENT__INIT;
  Muster__V1__TaskRun run;
  mu_task_run *tr = &h->tasks[idx];
  Muster__V1__TaskRun__OutputParamsEntry *storage = calloc(tr->n_params + 1, sizeof *storage);
  Muster__V1__TaskRun__OutputParamsEntry **ptrs = calloc(tr->n_params + 1, sizeof *ptrs);
  char tail[1024];
  int final = tr->state >= MUSTER__V1__TASK_STATE__SUCCEEDED;
  mu_task_run_view(job, h, idx, &run, storage, ptrs, final ? tail : NULL, sizeof tail);
  Muster__V1__JobCounts counts;
  mu_job_counts_of(job, &counts);
  ev.job_id = job->id;
  ev.task = &run;
  ev.at_ms = mu_now_ms();
  ev.counts = &counts;
  ev.host_done = h->state >= MU_HOST_SUCCEEDED;
  mu_job_publish(job, &ev, tr->task_id, s->cfg.history_bytes);
  free(storage);
  free(ptrs);
}

/* Every task transition goes through here: told to watchers and written to etcd. */
static void publish_task(mu_scheduler *s, mu_job *job, mu_host_run *h, size_t idx) {
  mark_task(s, job, h, idx);
  mu_sched_publish_task(s, job, h, idx);
}

static void publish_job_state(mu_scheduler *s, mu_job *job) {
  Muster__V1__JobEvent ev = MUSTER__V1__JOB_EVENT__INIT;
  ev.job_id = job->id;
  ev.job_state = job->state;
  ev.at_ms = mu_now_ms();
  Muster__V1__JobCounts counts;
  mu_job_counts_of(job, &counts);
  ev.counts = &counts;
  mu_job_publish(job, &ev, NULL, s->cfg.history_bytes);
}

/* --- assignment --- */

static int64_t backoff_ms(const Muster__V1__TaskSpec *spec, uint32_t attempt) {
  int64_t initial = 1000, max = 60000;
  double mult = 2.0;
  if (spec->backoff != NULL) {
    if (spec->backoff->initial[0]) mu_duration_parse(spec->backoff->initial, &initial, NULL);
    if (spec->backoff->max[0]) mu_duration_parse(spec->backoff->max, &max, NULL);
    if (spec->backoff->multiplier > 0) mult = spec->backoff->multiplier;
  }
  double v = (double)initial;
  for (uint32_t i = 1; i < attempt && v < (double)max; i++) v *= mult;
  return v > (double)max ? max : (int64_t)v;
}

static void set_message(mu_task_run *tr, const char *msg) {
  free(tr->message);
  tr->message = msg ? strdup(msg) : NULL;
}

/* Sends the Assign of attempt for task idx of host h; the agent must be connected. */
static int send_assign(mu_scheduler *s, mu_job *job, mu_host_run *h, size_t idx, mu_agent *agent, uint32_t attempt,
                       mu_err *err) {
  mu_task_run *tr = &h->tasks[idx];
  Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
  Muster__V1__Assign a = MUSTER__V1__ASSIGN__INIT;
  /* Output params of earlier tasks on this host, as "<task>.<key>"; a retry also gets those its
   * own earlier attempts set, so a task holding a remote handle (a Flink JobID) finds it again
   * after a failover to another agent. */
  size_t n = 0, upto = attempt > 1 ? idx + 1 : idx;
  for (size_t i = 0; i < upto; i++) n += h->tasks[i].n_params;
  Muster__V1__Assign__ParamsEntry *entries = calloc(n + 1, sizeof *entries);
  Muster__V1__Assign__ParamsEntry **ptrs = calloc(n + 1, sizeof *ptrs);
  char **keys = calloc(n + 1, sizeof *keys);
  if (!entries || !ptrs || !keys) {
    free(entries);
    free(ptrs);
    free(keys);
    return MU_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < upto; i++)
    for (size_t p = 0; p < h->tasks[i].n_params; p++, k++) {
      muster__v1__assign__params_entry__init(&entries[k]);
      size_t len = strlen(job->spec->tasks[i]->name) + strlen(h->tasks[i].params[p].key) + 2;
      keys[k] = malloc(len);
      if (keys[k]) snprintf(keys[k], len, "%s.%s", job->spec->tasks[i]->name, h->tasks[i].params[p].key);
      entries[k].key = keys[k] ? keys[k] : "";
      entries[k].value = h->tasks[i].params[p].value;
      ptrs[k] = &entries[k];
    }
  a.job_id = job->id;
  a.task_id = tr->task_id;
  a.attempt = attempt;
  a.fencing_term = s->term;
  a.spec = job->spec->tasks[idx];
  char bundle_digest[MU_SCHED_DIGEST_SIZE] = "";
  if (a.spec->bundle[0] != '\0' && s->hooks.bundle_digest != NULL)
    s->hooks.bundle_digest(s->hooks.ud, a.spec->bundle, bundle_digest);
  a.bundle_digest = bundle_digest;
  a.n_params = n;
  a.params = ptrs;
  /* The task's secrets, decrypted for this agent only: in this message and nowhere else. */
  int rc = s->hooks.secrets_resolve == NULL
               ? 0
               : s->hooks.secrets_resolve(s->hooks.ud, a.spec, agent, &a.secrets, &a.n_secrets, err);
  if (rc != 0) rc = rc == MU_ENOMEM ? MU_ENOMEM : MU_EACCES_SECRET;
  msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_ASSIGN;
  msg.assign = &a;
  if (rc == 0) rc = send_msg(s, agent, &msg, err);
  if (s->hooks.secrets_free != NULL) s->hooks.secrets_free(a.secrets, a.n_secrets);
  for (size_t i = 0; i < n; i++) free(keys[i]);
  free(keys);
  free(entries);
  free(ptrs);
  return rc;
}

static void task_ended(mu_scheduler *s, mu_job *job, mu_host_run *h, size_t idx);

/* Assigns the next attempt of task idx of host h; the agent must be connected. An attempt
 * whose secrets cannot be resolved for the agent ends FAILED here, saying why. */
static int assign_task(mu_scheduler *s, mu_job *job, mu_host_run *h, size_t idx, mu_agent *agent) {
  mu_task_run *tr = &h->tasks[idx];
  mu_err err = {0};
  int rc = send_assign(s, job, h, idx, agent, tr->attempt + 1, &err);
  if (rc == MU_ENOMEM) return rc;
  if (rc == MU_EACCES_SECRET) {
    mu_warn("sched", "job %s: %s not sent to %s: %s", job->id, tr->task_id, agent->id, err.msg);
    tr->attempt++;
    tr->state = MUSTER__V1__TASK_STATE__FAILED;
    tr->retry_at_mono = 0;
    tr->exit_code = -1;
    tr->started_at_ms = tr->finished_at_ms = mu_now_ms();
    set_message(tr, err.msg);
    task_ended(s, job, h, idx); /* a retry, or the host's end; the pass finishes the job */
    publish_task(s, job, h, idx);
    return 0;
  }
  if (rc == 0) tr->attempt++;
  if (rc != 0) {
    mu_warn("sched", "job %s: assign %s to %s: %s", job->id, tr->task_id, agent->id, err.msg);
    return rc;
  }
  tr->state = MUSTER__V1__TASK_STATE__ASSIGNED;
  tr->retry_at_mono = 0;
  tr->lost_at_mono = 0;
  tr->exit_code = 0;
  tr->signal = 0;
  tr->has_metrics = 0;
  set_message(tr, NULL);
  agent->running++;
  publish_task(s, job, h, idx);
  return 0;
}

/* --- finishing --- */

static void host_end(mu_scheduler *s, mu_job *job, mu_host_run *h, mu_host_state st) {
  (void)s;
  if (h->state == MU_HOST_RUNNING && job->running > 0) job->running--;
  h->state = st;
  switch (st) {
    case MU_HOST_SUCCEEDED: job->succeeded++; break;
    case MU_HOST_FAILED: job->failed++; break;
    case MU_HOST_CANCELLED: job->cancelled++; break;
    case MU_HOST_UNREACHABLE: job->unreachable++; break;
    case MU_HOST_SKIPPED: job->skipped++; break;
    default: break;
  }
  /* these counts decide when the job is finished and what the error budget has spent: a host
   * counted twice would end a job early or fail it over budget */
  MU_ASSERT((size_t)job->running + job->succeeded + job->failed + job->cancelled + job->unreachable + job->skipped <=
            job->n_hosts);
}

/* Cancels hosts that have not started (max errors reached, or the job was cancelled). */
static uint32_t cancel_pending(mu_scheduler *s, mu_job *job, const char *why) {
  uint32_t n = 0;
  for (size_t i = 0; i < job->n_hosts; i++) {
    mu_host_run *h = &job->hosts[i];
    if (h->state != MU_HOST_PENDING) continue;
    for (size_t t = 0; t < job->spec->n_tasks; t++) {
      h->tasks[t].state = MUSTER__V1__TASK_STATE__CANCELLED;
      set_message(&h->tasks[t], why);
    }
    host_end(s, job, h, MU_HOST_CANCELLED);
    mark_host(s, job, h);
    publish_task(s, job, h, 0);
    n++;
  }
  return n;
}

/* Host h never started because its agent (a; NULL when unknown or not placed) could not be
 * reached past the rollout's wait: every task run is UNREACHABLE, and the host counts as
 * unreachable (against max_errors) or, with skip_unreachable, as skipped (not a failure). */
static void host_unreachable(mu_scheduler *s, mu_job *job, mu_host_run *h, const mu_agent *a) {
  int skip = job->rollout.skip_unreachable;
  const char *cause = a != NULL && a->draining && a->session != NULL ? "agent is draining"
                      : h->agent_id                                  ? "agent is disconnected (unreachable)"
                                                                     : "no matching agent is connected";
  char why[160];
  snprintf(why, sizeof why, "%s: %s", skip ? "skipped" : "not started", cause);
  for (size_t t = 0; t < job->spec->n_tasks; t++) {
    h->tasks[t].state = MUSTER__V1__TASK_STATE__UNREACHABLE;
    set_message(&h->tasks[t], why);
  }
  host_end(s, job, h, skip ? MU_HOST_SKIPPED : MU_HOST_UNREACHABLE);
  mark_host(s, job, h);
  publish_task(s, job, h, 0);
  char over[160];
  if (!skip && mu_rollout_over_budget(job->error_budget, job->failed + job->unreachable, over, sizeof over))
    cancel_pending(s, job, over);
}

static void job_maybe_finish(mu_scheduler *s, mu_job *job) {
  if (mu_job_finished(job)) return;
  uint32_t ended = job->succeeded + job->failed + job->cancelled + job->unreachable + job->skipped;
  if (ended < job->n_hosts) return;
  if (job->user_cancelled) job->state = MUSTER__V1__JOB_STATE__JOB_CANCELLED;
  else if (job->failed + job->unreachable + job->cancelled > 0) job->state = MUSTER__V1__JOB_STATE__JOB_FAILED;
  else job->state = MUSTER__V1__JOB_STATE__JOB_SUCCEEDED;
  job->finished_at_ms = mu_now_ms();
  mark_job(s, job);
  mu_info("sched", "job %s finished: %s (%u ok, %u failed, %u unreachable, %u skipped, %u cancelled)", job->id,
          protobuf_c_enum_descriptor_get_value(&muster__v1__job_state__descriptor, job->state)->name, job->succeeded,
          job->failed, job->unreachable, job->skipped, job->cancelled);
  publish_job_state(s, job);
  mu_job_close_watchers(job, MU_RPC_OK, "");
  mu_sched_kick(s); /* jobs waiting for this one (job_deps.h) decide on the next pass */
}

/* A task attempt ended (or was lost); decide what the host does next. */
static void task_ended(mu_scheduler *s, mu_job *job, mu_host_run *h, size_t idx) {
  mu_task_run *tr = &h->tasks[idx];
  const Muster__V1__TaskSpec *spec = job->spec->tasks[idx];
  Muster__V1__TaskState st = tr->state;
  int ok = st == MUSTER__V1__TASK_STATE__SUCCEEDED;
  if (!ok && st != MUSTER__V1__TASK_STATE__CANCELLED && !job->user_cancelled && tr->attempt <= spec->retries) {
    int64_t wait = backoff_ms(spec, tr->attempt);
    tr->retry_at_mono = mu_mono_ms() + wait;
    mu_info("sched", "job %s: %s attempt %u %s; retrying in %lldms", job->id, tr->task_id, tr->attempt,
            tr->message ? tr->message : "failed", (long long)wait);
    return;
  }
  if (ok || (spec->continue_on_error && st != MUSTER__V1__TASK_STATE__CANCELLED)) {
    h->current = idx + 1;
    if (h->current >= job->spec->n_tasks) host_end(s, job, h, MU_HOST_SUCCEEDED);
    /* the next task is assigned by the next pass */
  } else if (st == MUSTER__V1__TASK_STATE__CANCELLED) {
    host_end(s, job, h, MU_HOST_CANCELLED);
  } else {
    host_end(s, job, h, MU_HOST_FAILED);
    char why[160];
    if (mu_rollout_over_budget(job->error_budget, job->failed + job->unreachable, why, sizeof why)) {
      uint32_t n = cancel_pending(s, job, why);
      if (n > 0) mu_warn("sched", "job %s: %s; %u targets cancelled", job->id, why, n);
    }
  }
  mu_sched_kick(s);
}

/* The current attempt of host h is LOST (its agent vanished, or restarted while it ran):
 * retried where the spec allows — for an `any` target placed again on any matching agent —
 * else the host's end. */
static void task_lost(mu_scheduler *s, mu_job *job, mu_host_run *h, const char *why) {
  mu_task_run *tr = &h->tasks[h->current];
  size_t idx = h->current;
  tr->state = MUSTER__V1__TASK_STATE__LOST;
  tr->lost_at_mono = 0;
  set_message(tr, why);
  tr->finished_at_ms = mu_now_ms();
  if (job->spec->target->any[0] != '\0' && tr->attempt <= job->spec->tasks[idx]->retries) {
    publish_task(s, job, h, idx);
    /* fail over: the retry is placed again, on any matching agent that is connected */
    free(h->agent_id);
    h->agent_id = NULL;
    h->waiting_since_mono = 0;
    h->state = MU_HOST_PENDING;
    if (job->running > 0) job->running--;
    tr->retry_at_mono = 0;
    tr->state = MUSTER__V1__TASK_STATE__PENDING;
    mark_task(s, job, h, idx);
    return;
  }
  task_ended(s, job, h, idx);
  publish_task(s, job, h, idx);
}

/* Forgets finished jobs past the retention (job_retention.h), remembering their ids. */
static void evict_old_jobs(mu_scheduler *s) {
  if (s->n_jobs <= s->cfg.retention.max_kept) return;
  mu_retention_job *view = calloc(s->n_jobs, sizeof *view);
  bool *evict = calloc(s->n_jobs, sizeof *evict);
  size_t n = 0, young = 0;
  int64_t now = mu_now_ms();
  for (mu_job *j = s->jobs; view != NULL && evict != NULL && j != NULL && n < s->n_jobs; j = j->next)
    view[n++] = (mu_retention_job){mu_job_finished(j), j->finished_at_ms};
  size_t gone = view && evict ? mu_retention_plan(&s->cfg.retention, view, n, now, evict, &young) : 0;
  mu_job **pp = &s->jobs;
  for (size_t i = 0; gone > 0 && i < n && *pp != NULL; i++) {
    mu_job *j = *pp;
    if (!evict[i]) {
      pp = &j->next;
      continue;
    }
    *pp = j->next;
    mu_evicted_ring_add(&s->evicted, j->id, j->finished_at_ms, now - j->finished_at_ms < s->cfg.retention.min_age_ms);
    forget_job(s, j->id);
    mu_job_free(j);
    s->n_jobs--;
  }
  s->jobs_evicted += gone;
  s->jobs_evicted_young += young;
  if (young > 0) {
    char age[32];
    mu_retention_format_duration(s->cfg.retention.min_age_ms, age, sizeof age);
    mu_warn("sched",
            "%zu finished jobs forgotten while younger than jobs_kept_min_age (%s): "
            "more than max_jobs_kept_hard (%zu) jobs were held; %llu so far",
            young, age, s->cfg.retention.hard_cap, (unsigned long long)s->jobs_evicted_young);
  }
  free(view);
  free(evict);
}

/* What a scoped operator may submit: its task types only, and an "any" target placed only
 * inside its scope (the scope is added to the any-selector). Hosts are checked once resolved. */
static int authorize_spec(const mu_caller *caller, Muster__V1__JobSpec *spec, mu_err *err) {
  if (caller == NULL || caller->role >= MU_ACCESS_ADMIN) return 0;
  for (size_t i = 0; i < spec->n_tasks; i++) {
    int rc = mu_authz_check_type(caller, spec->tasks[i]->type, err);
    if (rc != 0) return rc;
  }
  Muster__V1__Target *t = spec->target;
  if (caller->scope[0] == '\0' || t == NULL || t->any[0] == '\0') return 0;
  size_t n = strlen(t->any) + strlen(caller->scope) + 2;
  char *scoped = malloc(n);
  if (scoped == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  snprintf(scoped, n, "%s,%s", t->any, caller->scope);
  if (t->any != protobuf_c_empty_string) free(t->any);
  t->any = scoped;
  return 0;
}

static int type_known(void *ud, const char *type) {
  mu_scheduler *s = ud;
  return mu_targets_type_known(s->cfg.registry, type);
}

static int bundle_resolve(void *ud, const char *ref, char *msg, size_t msg_size) {
  mu_scheduler *s = ud;
  return s->hooks.bundle_resolve(s->hooks.ud, ref, msg, msg_size);
}

int mu_sched_admit(mu_scheduler *s, Muster__V1__JobSpec *spec, const mu_caller *caller, mu_rollout *ret_rollout,
                   char ***ret_ids, size_t *ret_n, mu_err *err) {
  mu_jobspec_limits limits = {.max_tasks = s->cfg.max_tasks,
                              .max_task_runs = s->cfg.max_task_runs,
                              .type_known = type_known,
                              .bundle_resolve = s->hooks.bundle_resolve ? bundle_resolve : NULL,
                              .ud = s};
  char **ids = NULL;
  size_t n = 0;
  int rc = mu_jobspec_validate(spec, &limits, ret_rollout, err);
  if (rc == 0) rc = authorize_spec(caller, spec, err);
  if (rc == 0) rc = mu_job_deps_admit(s, NULL, spec, err);
  if (rc == 0) rc = mu_queue_check(&s->cfg.queues, spec->queue, err);
  if (rc == 0) rc = mu_targets_resolve(s->cfg.registry, spec->target, &ids, &n, err);
  if (rc == 0 && s->hooks.check_targets != NULL) rc = s->hooks.check_targets(s->hooks.ud, caller, ids, n, err);
  if (rc == 0) rc = mu_targets_check_types(s->cfg.registry, spec, ids, n, err);
  if (rc == 0) rc = mu_targets_filter_pins(s->cfg.registry, spec, ids, &n, err);
  if (rc == 0) rc = mu_place_admit(s->cfg.registry, spec, ids, n, err);
  if (rc == 0 && s->hooks.check_secrets != NULL) rc = s->hooks.check_secrets(s->hooks.ud, spec, ids, n, err);
  if (rc == 0 && n * spec->n_tasks > s->cfg.max_task_runs)
    rc = mu_err_set(err, MU_EINVAL, "job has %zu task runs (%zu targets x %zu tasks); the limit is %u",
                    n * spec->n_tasks, n, spec->n_tasks, s->cfg.max_task_runs);
  if (rc != 0) {
    free(ids);
    protobuf_c_message_free_unpacked(&spec->base, NULL);
    return rc;
  }
  *ret_ids = ids;
  *ret_n = n;
  return 0;
}

void mu_sched_new_id(mu_scheduler *s, char id[MU_SCHED_ID_SIZE]) {
  s->job_seq++;
  snprintf(id, MU_SCHED_ID_SIZE, "j-%llx-%llu", (unsigned long long)(mu_now_ms() / 1000),
           (unsigned long long)s->job_seq);
}

int mu_sched_submit(mu_scheduler *s, Muster__V1__JobSpec *spec, const mu_caller *caller, mu_job **ret_job,
                    mu_err *err) {
  return mu_sched_submit_id(s, NULL, spec, caller, ret_job, err);
}

int mu_sched_submit_id(mu_scheduler *s, const char *job_id, Muster__V1__JobSpec *spec, const mu_caller *caller,
                       mu_job **ret_job, mu_err *err) {
  mu_rollout rollout;
  char **ids = NULL;
  size_t n = 0;
  if (job_id != NULL && mu_sched_find(s, job_id) != NULL) {
    protobuf_c_message_free_unpacked(&spec->base, NULL);
    return mu_err_set(err, MU_EEXIST, "job %s exists already", job_id);
  }
  int rc = mu_sched_admit(s, spec, caller, &rollout, &ids, &n, err);
  if (rc != 0) return rc;
  char id[MU_SCHED_ID_SIZE];
  if (job_id == NULL) mu_sched_new_id(s, id);
  else snprintf(id, sizeof id, "%s", job_id);
  if (spec->name[0] == '\0') {
    spec->name = strdup("job");
  }
  mu_job *job = mu_job_new(id, spec, &rollout, ids, n, s->cfg.tail_bytes);
  free(ids);
  if (job == NULL) {
    protobuf_c_message_free_unpacked(&spec->base, NULL);
    return mu_err_set(err, MU_ENOMEM, "out of memory creating the job");
  }
  job->next = s->jobs;
  s->jobs = job;
  s->n_jobs++;
  job->ready = !s->cfg.durable;
  job->submit_pending = !job->ready; /* dispatched once etcd has it (mu_persist_submit) */
  mu_info("sched", "job %s '%s': %zu targets, %zu tasks, concurrency %u", job->id, spec->name, job->n_hosts,
          spec->n_tasks, job->concurrency);
  evict_old_jobs(s);
  *ret_job = job;
  mu_sched_kick(s);
  return 0;
}

void mu_sched_set_queues(mu_scheduler *s, const mu_queue_table *t) {
  s->cfg.queues = *t;
  if (s->cfg.loop != NULL) mu_sched_kick(s); /* else not started yet: it starts with these */
}

int mu_sched_hold(mu_scheduler *s, mu_job *job, int hold, mu_err *err) {
  if (mu_job_finished(job))
    return mu_err_set(err, MU_EINVAL, "job %s already finished (%s)", job->id,
                      protobuf_c_enum_descriptor_get_value(&muster__v1__job_state__descriptor, job->state)->name);
  if ((job->held_by_user != 0) == (hold != 0))
    return mu_err_set(err, MU_EINVAL, "job %s is %s", job->id, hold ? "already held" : "not held by an operator");
  job->held_by_user = hold != 0;
  mark_job(s, job);
  if (hold && job->state == MUSTER__V1__JOB_STATE__JOB_RUNNING) {
    job->state = MUSTER__V1__JOB_STATE__JOB_HELD; /* a release takes effect at the next pass */
    publish_job_state(s, job);
  }
  mu_sched_kick(s);
  return 0;
}

int mu_sched_cancel(mu_scheduler *s, mu_job *job, const char *reason, uint32_t *ret_cancelled, mu_err *err) {
  return mu_sched_cancel_ex(s, job, reason, 0, ret_cancelled, err);
}

int mu_sched_cancel_ex(mu_scheduler *s, mu_job *job, const char *reason, int force, uint32_t *ret_cancelled,
                       mu_err *err) {
  if (mu_job_finished(job))
    return mu_err_set(err, MU_EINVAL, "job %s already finished (%s)", job->id,
                      protobuf_c_enum_descriptor_get_value(&muster__v1__job_state__descriptor, job->state)->name);
  char why[300];
  snprintf(why, sizeof why, "%s", reason && reason[0] ? reason : "cancelled by an operator");
  job->user_cancelled = 1;
  mark_job(s, job);
  uint32_t n = cancel_pending(s, job, why);
  for (size_t i = 0; i < job->n_hosts; i++) {
    mu_host_run *h = &job->hosts[i];
    if (h->state != MU_HOST_RUNNING) continue;
    mu_task_run *tr = &h->tasks[h->current];
    mu_agent *a = h->agent_id ? mu_registry_find(s->cfg.registry, h->agent_id) : NULL;
    int active = tr->state == MUSTER__V1__TASK_STATE__ASSIGNED || tr->state == MUSTER__V1__TASK_STATE__STARTING ||
                 tr->state == MUSTER__V1__TASK_STATE__RUNNING;
    n++;
    if (active && a != NULL && a->session != NULL) {
      Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
      Muster__V1__Cancel c = MUSTER__V1__CANCEL__INIT;
      c.task_id = tr->task_id;
      c.attempt = tr->attempt;
      c.reason = why;
      c.force = force != 0;
      msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_CANCEL;
      msg.cancel = &c;
      if (send_msg(s, a, &msg, NULL) == 0) continue; /* CANCELLED comes back as an event */
    }
    if (active && a != NULL && a->running > 0) a->running--;
    tr->state = MUSTER__V1__TASK_STATE__CANCELLED;
    set_message(tr, why);
    host_end(s, job, h, MU_HOST_CANCELLED);
    publish_task(s, job, h, h->current);
  }
  *ret_cancelled = n;
  job_maybe_finish(s, job);
  return 0;
}

/* --- events from agents --- */

static void store_param(mu_task_run *tr, const char *key, const char *value) {
  for (size_t i = 0; i < tr->n_params; i++)
    if (strcmp(tr->params[i].key, key) == 0) {
      free(tr->params[i].value);
      tr->params[i].value = strdup(value);
      return;
    }
  if (tr->n_params >= MU_MAX_PARAMS) return;
  mu_kv_pair *grown = realloc(tr->params, (tr->n_params + 1) * sizeof *grown);
  if (grown == NULL) return;
  tr->params = grown;
  grown[tr->n_params].key = strdup(key);
  grown[tr->n_params].value = strdup(value);
  tr->n_params++;
}

void mu_sched_on_event(mu_scheduler *s, mu_agent *agent, const Muster__V1__TaskEvent *ev) {
  if (ev->sequence > agent->ack_seq) agent->ack_seq = ev->sequence;
  mu_sched_kick(s); /* flushes the ack */
  mu_job *job = mu_sched_find(s, ev->job_id);
  mu_host_run *h = NULL;
  mu_task_run *tr = job ? mu_job_task(job, ev->task_id, &h) : NULL;
  if (tr != NULL && h->agent_id != NULL && strcmp(h->agent_id, agent->id) == 0 && ev->attempt > tr->attempt &&
      (size_t)(tr - h->tasks) == h->current && (h->state == MU_HOST_RUNNING || h->state == MU_HOST_PENDING) &&
      !mu_job_finished(job) && !job->submit_pending) {
    /* An attempt assigned by an earlier leader whose record never reached etcd: the agent
     * runs it, so adopt it rather than assign (and run) the task again. */
    mu_info("sched", "job %s: adopting %s attempt %u reported by %s", job->id, tr->task_id, ev->attempt, agent->id);
    tr->attempt = ev->attempt;
    tr->state = MUSTER__V1__TASK_STATE__ASSIGNED;
    tr->retry_at_mono = 0;
    tr->lost_at_mono = 0;
    if (h->state == MU_HOST_PENDING) {
      h->state = MU_HOST_RUNNING;
      job->running++;
    }
    agent->running++;
    mark_task(s, job, h, h->current);
  }
  if (tr == NULL || h->agent_id == NULL || strcmp(h->agent_id, agent->id) != 0 || ev->attempt != tr->attempt) {
    mu_debug("sched", "agent %s: event for unknown or stale task %s/%s attempt %u", agent->id, ev->job_id, ev->task_id,
             ev->attempt);
    return;
  }
  size_t idx = (size_t)(tr - h->tasks);
  tr->lost_at_mono = 0;
  int final_before = tr->state >= MUSTER__V1__TASK_STATE__SUCCEEDED;
  switch (ev->event_case) {
    case MUSTER__V1__TASK_EVENT__EVENT_STATE: {
      const Muster__V1__StateChange *sc = ev->state;
      if (final_before || tr->retry_at_mono > 0) return; /* duplicate after a resend */
      tr->state = sc->state;
      if (sc->state == MUSTER__V1__TASK_STATE__RUNNING && tr->started_at_ms == 0) tr->started_at_ms = ev->at_ms;
      if (sc->state >= MUSTER__V1__TASK_STATE__SUCCEEDED) {
        tr->exit_code = sc->exit_code;
        tr->signal = sc->signal;
        set_message(tr, sc->message);
        tr->finished_at_ms = ev->at_ms;
        if (sc->metrics != NULL) {
          tr->metrics = *sc->metrics;
          tr->metrics.base.unknown_fields = NULL;
          tr->metrics.base.n_unknown_fields = 0;
          tr->has_metrics = 1;
        }
        if (agent->running > 0) agent->running--;
        task_ended(s, job, h, idx); /* decides on a retry before anyone is told */
        publish_task(s, job, h, idx);
        /* TaskLogs followers of this task are done */
        for (mu_watcher *w = job->watchers; w != NULL;) {
          mu_watcher *next = w->next;
          if (w->task_id != NULL && w->task_id[0] != '\0' && mu_task_id_matches(job, tr->task_id, w->task_id)) {
            mu_watcher_unlink(w);
            mu_rpc_call_finish(w->call, MU_RPC_OK, "", NULL);
          }
          w = next;
        }
        job_maybe_finish(s, job);
      } else {
        publish_task(s, job, h, idx);
      }
      return;
    }
    case MUSTER__V1__TASK_EVENT__EVENT_OUTPUT: {
      mu_tail_append(&tr->tail, ev->output->data.data, ev->output->data.len);
      Muster__V1__JobEvent je = MUSTER__V1__JOB_EVENT__INIT;
      Muster__V1__TaskRun run = MUSTER__V1__TASK_RUN__INIT;
      run.job_id = job->id;
      run.task_id = tr->task_id;
      run.task_name = job->spec->tasks[idx]->name;
      run.agent_id = h->agent_id;
      run.attempt = tr->attempt;
      run.state = tr->state;
      je.job_id = job->id;
      je.task = &run;
      je.output = ev->output;
      je.at_ms = ev->at_ms;
      mu_job_publish(job, &je, tr->task_id, s->cfg.history_bytes);
      return;
    }
    case MUSTER__V1__TASK_EVENT__EVENT_PROGRESS: {
      Muster__V1__JobEvent je = MUSTER__V1__JOB_EVENT__INIT;
      Muster__V1__TaskRun run = MUSTER__V1__TASK_RUN__INIT;
      run.job_id = job->id;
      run.task_id = tr->task_id;
      run.agent_id = h->agent_id;
      run.attempt = tr->attempt;
      run.state = tr->state;
      je.job_id = job->id;
      je.task = &run;
      je.progress = ev->progress;
      je.at_ms = ev->at_ms;
      mu_job_publish(job, &je, NULL, s->cfg.history_bytes);
      return;
    }
    case MUSTER__V1__TASK_EVENT__EVENT_PARAMS:
      for (size_t i = 0; i < ev->params->n_params; i++) {
        store_param(tr, ev->params->params[i]->key, ev->params->params[i]->value);
        if (s->hooks.param_set != NULL)
          s->hooks.param_set(s->hooks.ud, job, h, idx, ev->params->params[i]->key, ev->params->params[i]->value);
      }
      /* written before the event is acked: a param (a Spark application id) must survive a
       * failover of the control plane as much as a state change does */
      mark_task(s, job, h, idx);
      return;
    default: return;
  }
}

/* The attempts the agent's Hello says its previous process was running: LOST now, not after
 * the grace period. Only the current attempt of a host placed on this agent and still active
 * here matches, so a repeated or stale list changes nothing. */
static void lost_by_restart(mu_scheduler *s, mu_agent *agent) {
  const Muster__V1__Hello *hello = agent->hello_msg ? agent->hello_msg->hello : NULL;
  for (size_t i = 0; hello != NULL && i < hello->n_lost_attempts; i++) {
    const Muster__V1__LostAttempt *la = hello->lost_attempts[i];
    mu_job *j = mu_sched_find(s, la->job_id);
    mu_host_run *h = NULL;
    mu_task_run *tr = j != NULL && !mu_job_finished(j) && !j->submit_pending ? mu_job_task(j, la->task_id, &h) : NULL;
    if (tr == NULL || h->state != MU_HOST_RUNNING || h->agent_id == NULL || strcmp(h->agent_id, agent->id) != 0 ||
        (size_t)(tr - h->tasks) != h->current || tr->attempt != la->attempt ||
        tr->state < MUSTER__V1__TASK_STATE__ASSIGNED || tr->state > MUSTER__V1__TASK_STATE__RUNNING)
      continue;
    mu_warn("sched", "job %s: %s attempt %u: LOST: agent %s restarted while it ran", j->id, tr->task_id, tr->attempt,
            agent->id);
    task_lost(s, j, h, "agent restarted (previous process ended while the task ran)");
  }
}

void mu_sched_on_agent_up(mu_scheduler *s, mu_agent *agent) {
  lost_by_restart(s, agent);
  agent->running = 0;
  agent->acked_seq = 0;
  agent->ack_seq = 0;
  /* Tasks still running there keep counting against its slots. Whether they still run is
   * for the agent's first heartbeat to say (mu_sched_on_heartbeat): until then their LOST
   * timers go on. An Assign it may never have received is sent again with the same attempt;
   * the agent runs each (task, attempt) at most once. */
  for (mu_job *j = s->jobs; j != NULL; j = j->next) {
    if (mu_job_finished(j) || j->submit_pending) continue;
    mu_host_run *h = mu_job_host(j, agent->id);
    if (h != NULL && h->state == MU_HOST_RUNNING && h->current < j->spec->n_tasks) {
      mu_task_run *tr = &h->tasks[h->current];
      if (tr->state >= MUSTER__V1__TASK_STATE__ASSIGNED && tr->state <= MUSTER__V1__TASK_STATE__RUNNING) {
        agent->running++;
        if (tr->lost_at_mono > 0) agent->lost_check = 1;
        if (tr->state == MUSTER__V1__TASK_STATE__ASSIGNED) send_assign(s, j, h, h->current, agent, tr->attempt, NULL);
      }
    }
  }
  mu_sched_kick(s);
}

/* The first heartbeat after a reconnect: when the agent runs at least as many tasks as it has
 * here, they survived (a failover, a dropped stream) and are not lost; otherwise (a restarted
 * agent) their LOST timers go on unless events about them arrive. */
void mu_sched_on_heartbeat(mu_scheduler *s, mu_agent *agent, uint32_t running_tasks) {
  agent->lost_check = 0;
  if (running_tasks < agent->running) return;
  for (mu_job *j = s->jobs; j != NULL; j = j->next) {
    if (mu_job_finished(j)) continue;
    mu_host_run *h = mu_job_host(j, agent->id);
    if (h != NULL && h->state == MU_HOST_RUNNING && h->current < j->spec->n_tasks)
      h->tasks[h->current].lost_at_mono = 0;
  }
}

void mu_sched_on_agent_down(mu_scheduler *s, mu_agent *agent) {
  int64_t now = mu_mono_ms();
  for (mu_job *j = s->jobs; j != NULL; j = j->next) {
    if (mu_job_finished(j)) continue;
    for (size_t i = 0; i < j->n_hosts; i++) {
      mu_host_run *h = &j->hosts[i];
      if (h->state != MU_HOST_RUNNING || h->agent_id == NULL || strcmp(h->agent_id, agent->id)) continue;
      mu_task_run *tr = &h->tasks[h->current];
      if (tr->state >= MUSTER__V1__TASK_STATE__ASSIGNED && tr->state <= MUSTER__V1__TASK_STATE__RUNNING &&
          tr->lost_at_mono == 0)
        tr->lost_at_mono = now;
    }
  }
  mu_sched_kick(s);
}

/* --- the dispatch pass --- */

/* A pending host's reason to wait, on its current task run (shown by `muster status`), published
 * when it changes; NULL clears it. */
static void set_waiting(mu_scheduler *s, mu_job *job, mu_host_run *h, const char *why) {
  mu_task_run *tr = &h->tasks[h->current];
  const char *now = tr->message ? tr->message : "";
  if (strcmp(now, why ? why : "") == 0) return;
  set_message(tr, why && why[0] ? why : NULL);
  publish_task(s, job, h, h->current);
}

static int agent_has_slot(const mu_agent *a) {
  const Muster__V1__Hello *h = a->hello_msg ? a->hello_msg->hello : NULL;
  uint32_t slots = h && h->capacity && h->capacity->slots ? h->capacity->slots : 1;
  return a->running < slots;
}

static void place_host(mu_host_run *h, mu_agent *a, const mu_job *job) {
  free(h->agent_id);
  h->agent_id = strdup(a->id);
  for (size_t t = 0; t < job->spec->n_tasks; t++) {
    char tid[400];
    snprintf(tid, sizeof tid, "%s/%s/%s", job->id, a->id, job->spec->tasks[t]->name);
    free(h->tasks[t].task_id);
    h->tasks[t].task_id = strdup(tid);
  }
}

/* The index of type in the fleet-wide type limits, or -1. */
static int type_limit_of(const mu_scheduler *s, const char *type) {
  for (size_t i = 0; i < s->cfg.n_type_limits && i < MU_PLACE_MAX_TYPES; i++)
    if (strcmp(s->cfg.type_limits[i].type, type) == 0) return (int)i;
  return -1;
}

/* Counts the running attempts of each limited type (at the start of a pass). */
static void count_types(mu_scheduler *s, mu_placement *p) {
  if (s->cfg.n_type_limits == 0) return;
  for (mu_job *j = s->jobs; j != NULL; j = j->next) {
    if (mu_job_finished(j)) continue;
    for (size_t i = 0; i < j->n_hosts; i++) {
      const mu_host_run *h = &j->hosts[i];
      if (h->state != MU_HOST_RUNNING || h->current >= j->spec->n_tasks) continue;
      const mu_task_run *tr = &h->tasks[h->current];
      int k = type_limit_of(s, j->spec->tasks[h->current]->type);
      if (k >= 0 && tr->state >= MUSTER__V1__TASK_STATE__ASSIGNED && tr->state <= MUSTER__V1__TASK_STATE__RUNNING)
        p->type_running[k]++;
    }
  }
}

/* 1 when task idx of job may start under the fleet-wide type limits; else the host says why. */
static int type_allows(mu_scheduler *s, mu_placement *p, mu_job *job, mu_host_run *h, size_t idx) {
  int k = type_limit_of(s, job->spec->tasks[idx]->type);
  if (k < 0 || p->type_running[k] < s->cfg.type_limits[k].max) return 1;
  char why[MU_PLACE_WHY];
  snprintf(why, sizeof why, "waiting: fleet-wide limit of %u running %s tasks reached (type_limits)",
           s->cfg.type_limits[k].max, s->cfg.type_limits[k].type);
  if (h->tasks[idx].state == MUSTER__V1__TASK_STATE__PENDING) set_waiting(s, job, h, why);
  return 0;
}

/* assign_task, counted against the fleet-wide type limits. */
static int start_task(mu_scheduler *s, mu_placement *p, mu_job *job, mu_host_run *h, size_t idx, mu_agent *a) {
  int rc = assign_task(s, job, h, idx, a);
  int k = type_limit_of(s, job->spec->tasks[idx]->type);
  if (rc == 0 && k >= 0) p->type_running[k]++;
  return rc;
}

/* Starts at most budget new hosts (*ret_started counts them); why_not, when set, is what the
 * pending hosts past the budget say (held, a queue at its limit). Returns 1 when the job still
 * needs timed attention (retries, waits, grace). */
static int dispatch_job(mu_scheduler *s, mu_placement *p, mu_job *job, int64_t now, const char *why_not, size_t budget,
                        size_t *ret_started) {
  int timed = 0;
  *ret_started = 0;
  for (size_t i = 0; i < job->n_hosts; i++) {
    mu_host_run *h = &job->hosts[i];
    if (h->state != MU_HOST_RUNNING) continue;
    mu_task_run *tr = &h->tasks[h->current];
    mu_agent *a = mu_registry_find(s->cfg.registry, h->agent_id);
    if (tr->lost_at_mono > 0) {
      timed = 1;
      if (now - tr->lost_at_mono > s->cfg.heartbeat_timeout_ms) {
        if (a != NULL && a->running > 0 && a->session == NULL) a->running--;
        task_lost(s, job, h, "agent disconnected and did not report back within the grace period");
      }
      continue;
    }
    if (tr->retry_at_mono > 0) {
      timed = 1;
      if (now < tr->retry_at_mono || a == NULL || a->session == NULL || !agent_has_slot(a) ||
          !type_allows(s, p, job, h, h->current))
        continue;
      start_task(s, p, job, h, h->current, a);
      continue;
    }
    if (tr->state == MUSTER__V1__TASK_STATE__PENDING && a != NULL && a->session != NULL && agent_has_slot(a) &&
        type_allows(s, p, job, h, h->current))
      start_task(s, p, job, h, h->current, a);
    else if (tr->state == MUSTER__V1__TASK_STATE__PENDING) timed = 1;
  }
  /* batches: the next batch starts when the current one has ended */
  if (job->rollout.batch > 0) {
    int open = 0;
    for (size_t i = 0; i < job->n_hosts; i++)
      if (job->hosts[i].batch == job->batch_current &&
          (job->hosts[i].state == MU_HOST_PENDING || job->hosts[i].state == MU_HOST_RUNNING))
        open = 1;
    if (!open) job->batch_current++;
  }
  for (size_t i = 0; i < job->n_hosts && job->running < job->concurrency; i++) {
    mu_host_run *h = &job->hosts[i];
    if (h->state != MU_HOST_PENDING) continue;
    if (job->rollout.batch > 0 && h->batch != job->batch_current) continue;
    if (*ret_started >= budget) { /* held, its queue at its limit, or this turn's share used */
      timed = 1;
      if (why_not == NULL) break;
      set_waiting(s, job, h, why_not);
      continue;
    }
    if (!type_allows(s, p, job, h, h->current)) {
      timed = 1;
      continue;
    }
    char why[MU_PLACE_WHY] = "";
    mu_agent *a = h->agent_id ? mu_registry_find(s->cfg.registry, h->agent_id) : mu_place_any(p, job, why, sizeof why);
    if (a == NULL && why[0] != '\0') { /* agents match, none has room: wait for capacity */
      h->waiting_since_mono = 0;
      set_waiting(s, job, h, why);
      timed = 1;
      continue;
    }
    if (a == NULL || a->session == NULL || a->draining) {
      if (h->waiting_since_mono == 0) h->waiting_since_mono = now;
      if (now - h->waiting_since_mono >= job->rollout.disconnected_wait_ms) {
        host_unreachable(s, job, h, a);
      } else {
        timed = 1;
      }
      continue;
    }
    mu_place_need(job);
    if (!agent_has_slot(a) || !mu_place_fits(job, a, why, sizeof why)) {
      if (why[0] != '\0') set_waiting(s, job, h, why);
      timed = 1;
      continue;
    }
    if (h->agent_id == NULL) place_host(h, a, job);
    h->state = MU_HOST_RUNNING;
    job->running++;
    if (start_task(s, p, job, h, h->current, a) != 0) {
      h->state = MU_HOST_PENDING;
      job->running--;
      timed = 1;
    } else {
      mu_place_take(job, a); /* before the next decision of this pass */
      (*ret_started)++;
    }
  }
  job_maybe_finish(s, job);
  return timed && !mu_job_finished(job);
}

/* Acks what was applied; with etcd only what etcd holds (an agent resends anything unacked
 * to the next leader, so nothing acked may be lost by a failover). */
static void flush_acks(mu_scheduler *s) {
  for (size_t i = 0; i < s->cfg.registry->n; i++) {
    mu_agent *a = s->cfg.registry->agents[i];
    uint64_t upto = a->ack_seq;
    if (s->cfg.durable && a->durable_seq < upto) upto = a->durable_seq;
    if (a->session == NULL || upto <= a->acked_seq) continue;
    Muster__V1__ControlMessage msg = MUSTER__V1__CONTROL_MESSAGE__INIT;
    Muster__V1__Ack ack = MUSTER__V1__ACK__INIT;
    ack.sequence = upto;
    msg.msg_case = MUSTER__V1__CONTROL_MESSAGE__MSG_ACK;
    msg.ack = &ack;
    if (send_msg(s, a, &msg, NULL) == 0) a->acked_seq = upto;
  }
}

void mu_sched_recount(mu_job *job) {
  job->running = job->succeeded = job->failed = job->cancelled = job->unreachable = 0;
  job->skipped = 0;
  size_t first_open = (size_t)-1;
  for (size_t i = 0; i < job->n_hosts; i++) {
    const mu_host_run *h = &job->hosts[i];
    switch (h->state) {
      case MU_HOST_RUNNING: job->running++; break;
      case MU_HOST_SUCCEEDED: job->succeeded++; break;
      case MU_HOST_FAILED: job->failed++; break;
      case MU_HOST_CANCELLED: job->cancelled++; break;
      case MU_HOST_UNREACHABLE: job->unreachable++; break;
      case MU_HOST_SKIPPED: job->skipped++; break;
      default: break;
    }
    if ((h->state == MU_HOST_PENDING || h->state == MU_HOST_RUNNING) && h->batch < first_open) first_open = h->batch;
  }
  if (job->rollout.batch > 0 && first_open != (size_t)-1) job->batch_current = first_open;
}

void mu_sched_publish_job_end(mu_scheduler *s, mu_job *job) {
  publish_job_state(s, job);
  mu_job_close_watchers(job, MU_RPC_OK, "");
}

/* The busy share (percent) of the connected, non-draining agents' slots, from placement's sums. */
static uint32_t fleet_busy_pct(const mu_registry *reg) {
  int64_t cap = 0, used = 0;
  for (size_t i = 0; i < reg->n; i++) {
    const mu_agent *a = reg->agents[i];
    if (a->session == NULL || a->draining) continue;
    cap += a->cap.slots;
    used += a->alloc.slots < a->cap.slots ? a->alloc.slots : a->cap.slots;
  }
  return cap > 0 ? (uint32_t)(used * 100 / cap) : 0;
}

/* A job in the pass's order: its priority after aging. */
typedef struct ordered {
  mu_job *job;
  int64_t priority;
} ordered;

/* priority + 1 per priority_aging of age, so a low priority is never starved for long. */
static int64_t aged_priority(const mu_scheduler *s, const mu_job *j, int64_t now_ms) {
  int64_t p = j->spec->priority;
  if (s->cfg.priority_aging_ms > 0 && now_ms > j->created_at_ms)
    p += (now_ms - j->created_at_ms) / s->cfg.priority_aging_ms;
  return p;
}

static int job_order(const void *pa, const void *pb) {
  const ordered *oa = pa, *ob = pb;
  const mu_job *a = oa->job, *b = ob->job;
  if (oa->priority != ob->priority) return oa->priority > ob->priority ? -1 : 1;
  if (a->created_at_ms != b->created_at_ms) return a->created_at_ms < b->created_at_ms ? -1 : 1;
  /* the same millisecond: submission order ("j-<secs>-<seq>") */
  const char *da = strrchr(a->id, '-'), *db = strrchr(b->id, '-');
  unsigned long long sa = da ? strtoull(da + 1, NULL, 10) : 0, sb = db ? strtoull(db + 1, NULL, 10) : 0;
  return sa < sb ? -1 : sa > sb;
}

static int dispatchable(const mu_job *j) {
  return !mu_job_finished(j) && j->ready && !j->submit_pending && (j->deps_done || j->spec->n_after == 0);
}

/* One pass's dispatch state, for the queues' callback (queues.h). */
typedef struct pass_ctx {
  mu_scheduler *s;
  mu_placement *p;
  const ordered *order;
  int64_t now;
  int degrade; /* the fleet is past hold_above */
  char held[MU_PLACE_WHY];
  int timed;
} pass_ctx;

static int has_pending(const mu_job *job) {
  for (size_t i = 0; i < job->n_hosts; i++)
    if (job->hosts[i].state == MU_HOST_PENDING) return 1;
  return 0;
}

/* JOB_HELD while an operator holds it or degradation withholds a pending host; RUNNING after. */
static void set_held(mu_scheduler *s, mu_job *job, int held) {
  Muster__V1__JobState want = held ? MUSTER__V1__JOB_STATE__JOB_HELD : MUSTER__V1__JOB_STATE__JOB_RUNNING;
  if (mu_job_finished(job) || job->state == want || job->state == MUSTER__V1__JOB_STATE__JOB_PENDING) return;
  job->state = want;
  mark_job(s, job);
  publish_job_state(s, job);
}

static size_t dispatch_one(void *ud, size_t i, size_t budget, const char *why) {
  pass_ctx *c = ud;
  mu_job *job = c->order[i].job;
  if (mu_job_finished(job)) return 0;
  const char *hold = job->held_by_user ? "held: by an operator (muster release resumes it)"
                     : c->degrade && c->order[i].priority < c->s->cfg.hold_priority_floor ? c->held
                                                                                          : NULL;
  size_t started = 0;
  c->timed |= dispatch_job(c->s, c->p, job, c->now, hold ? hold : why, hold ? 0 : budget, &started);
  set_held(c->s, job, job->held_by_user || (hold != NULL && has_pending(job)));
  return started;
}

/* Job j's queue among the pass's; a queue removed since it was submitted: default. */
static size_t queue_index(const mu_queue_def *const *defs, size_t nq, size_t dflt, const mu_job *j) {
  const char *name = j->spec->queue;
  if (name == NULL || name[0] == '\0') return dflt;
  for (size_t q = 0; q < nq; q++)
    if (strcmp(defs[q]->name, name) == 0) return q;
  return dflt;
}

/* Dispatches the pass's n ordered jobs with the fair share across queues (queues.h). */
static int queue_pass(mu_scheduler *s, pass_ctx *c, size_t n) {
  const mu_queue_table *t = &s->cfg.queues;
  const mu_queue_def *defs[MU_QUEUE_MAX + 1];
  uint32_t running[MU_QUEUE_MAX + 1] = {0};
  size_t nq = 0, dflt;
  for (; nq < t->n && nq < MU_QUEUE_MAX; nq++) defs[nq] = &t->q[nq];
  const mu_queue_def *d = mu_queue_find(t, "");
  for (dflt = 0; dflt < nq && defs[dflt] != d; dflt++) continue;
  if (dflt == nq) defs[nq++] = d;
  size_t *queue = calloc(n + 1, sizeof *queue);
  if (queue == NULL) return MU_ENOMEM;
  for (size_t i = 0; i < n; i++) queue[i] = queue_index(defs, nq, dflt, c->order[i].job);
  for (mu_job *j = s->jobs; j != NULL; j = j->next)
    if (!mu_job_finished(j)) running[queue_index(defs, nq, dflt, j)] += j->running;
  int rc = mu_queue_pass(defs, nq, queue, n, running, dispatch_one, c);
  free(queue);
  return rc;
}

static void sched_tick(mu_scheduler *s) {
  if (!leading(s)) return; /* followers and deposed leaders never dispatch */
  int64_t now = mu_mono_ms();
  size_t n = 0;
  for (mu_job *j = s->jobs; j != NULL; j = j->next) /* job_deps.h: start, wait or end */
    if (!mu_job_finished(j) && j->ready && !j->submit_pending) (void)mu_job_deps_gate(s, j);
  for (mu_job *j = s->jobs; j != NULL; j = j->next) n += dispatchable(j);
  /* Nothing to place: skip the pass over every agent (capacity, allocation, type counts),
   * which, run for each agent's Hello at 100,000 agents, made registration quadratic. */
  ordered *order = n > 0 ? calloc(n + 1, sizeof *order) : NULL;
  int timed = 0;
  if (order != NULL) {
    size_t k = 0;
    int64_t now_ms = mu_now_ms();
    for (mu_job *j = s->jobs; j != NULL; j = j->next)
      if (dispatchable(j)) {
        order[k].job = j;
        order[k++].priority = aged_priority(s, j, now_ms);
      }
    qsort(order, k, sizeof *order, job_order); /* aged priority first, then oldest first */
    mu_placement p;
    mu_place_begin(&p, s->cfg.registry, s->jobs);
    count_types(s, &p);
    uint32_t busy = s->cfg.hold_above > 0 ? fleet_busy_pct(s->cfg.registry) : 0;
    pass_ctx c = {
        .s = s, .p = &p, .order = order, .now = now, .degrade = s->cfg.hold_above > 0 && busy > s->cfg.hold_above};
    snprintf(c.held, sizeof c.held,
             "held: the fleet is %u%% busy (hold_above %u%%) and this job's "
             "priority is below hold_priority_floor %d; it starts when load falls",
             busy, s->cfg.hold_above, s->cfg.hold_priority_floor);
    if (queue_pass(s, &c, k) != 0) {
      mu_warn("sched", "out of memory sorting jobs into queues; dispatch waits a pass");
      c.timed = 1;
    }
    timed |= c.timed;
    mu_place_end(&p);
    s->placements += p.decisions;
    free(order);
  }
  flush_acks(s);
  pass_done(s); /* also makes the events applied so far durable, for the next acks */
  if (timed && !s->armed && !s->stopping) {
    s->armed = 1;
    uv_timer_start(&s->timer, on_sched_timer, MU_SCHED_TICK_MS, 0);
  }
}

void mu_sched_takeover(mu_scheduler *s, int64_t grace, size_t *ret_jobs, size_t *ret_running, size_t *ret_dropped) {
  int64_t now = mu_mono_ms();
  size_t jobs = 0, running = 0, dropped = 0;
  for (mu_job **pp = &s->jobs; *pp != NULL;) {
    mu_job *j = *pp;
    if (!j->ready) { /* an interrupted submission: its client never heard success */
      mu_warn("cluster", "job %s has no ready marker (interrupted submission); deleting it", j->id);
      forget_job(s, j->id);
      *pp = j->next;
      s->n_jobs--;
      mu_job_free(j);
      dropped++;
      continue;
    }
    jobs++;
    pp = &j->next;
    if (mu_job_finished(j)) continue;
    for (size_t i = 0; i < j->n_hosts; i++) {
      mu_host_run *h = &j->hosts[i];
      if (h->state == MU_HOST_PENDING) h->waiting_since_mono = now + grace; /* waits start later */
      if (h->state != MU_HOST_RUNNING || h->current >= j->spec->n_tasks) continue;
      mu_task_run *tr = &h->tasks[h->current];
      if (tr->state < MUSTER__V1__TASK_STATE__ASSIGNED || tr->state > MUSTER__V1__TASK_STATE__RUNNING) continue;
      /* A task is called LOST heartbeat_timeout after lost_at_mono: shift it so that happens
       * takeover_grace from now unless the agent comes back. */
      int64_t at = now + grace - s->cfg.heartbeat_timeout_ms;
      tr->lost_at_mono = at > 0 ? at : 1;
      running++;
    }
  }
  *ret_jobs = jobs;
  *ret_running = running;
  *ret_dropped = dropped;
}
