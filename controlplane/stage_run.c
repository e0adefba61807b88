/* Jobs with stages in the scheduler (stage_run.h): each stage is a job "<job>.<stage>" started
 * by the pass after the one before it ended; its end is recorded in the job with stages. The
 * decisions themselves (next stage, end state, ${stages.*} values) are stages.c. */
#include "controlplane/stage_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/jobspec_refs.h"
#include "controlplane/stages.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

#define MU_STAGE_ID_SIZE (MU_SCHED_ID_SIZE + MU_STAGE_NAME_MAX + 2)

/* "stages[K]." before a problem that starts with a field path, "stages[K] 'NAME': " before any
 * other, so `muster submit` points at the stage in the file either way. */
static int stage_err(mu_err *err, size_t k, const char *name) {
  char msg[MU_ERR_MSG_MAX];
  snprintf(msg, sizeof msg, "%s", err->msg);
  int path = strncmp(msg, "target", 6) == 0 || strncmp(msg, "tasks[", 6) == 0 || strncmp(msg, "rollout", 7) == 0;
  if (strncmp(msg, "stages[", 7) == 0) return err->code; /* validation named it already */
  if (path) return mu_err_set(err, err->code, "stages[%zu].%s", k, msg);
  return mu_err_set(err, err->code, "stages[%zu] '%.64s': %s", k, name, msg);
}

int mu_stage_run_admit(mu_scheduler *s, Muster__V1__JobSpec *spec, const mu_caller *caller, mu_rollout *ret_rollout,
                       char ***ret_ids, size_t *ret_n, mu_err *err) {
  int rc = mu_sched_admit_stage(s, spec, caller, NULL, 0, ret_rollout, NULL, NULL, err);
  if (rc != 0) return rc; /* spec freed */
  for (size_t k = 0; rc == 0 && k < spec->n_stages; k++) {
    Muster__V1__JobSpec *child = mu_stages_spec(spec, k);
    if (child == NULL) {
      rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      break;
    }
    mu_rollout ro;
    char **ids = NULL;
    size_t n = 0;
    rc = mu_sched_admit_stage(s, child, caller, spec, k, &ro, &ids, &n, err); /* takes child on error */
    if (rc != 0) {
      rc = stage_err(err, k, spec->stages[k]->name);
      break;
    }
    /* a scoped caller's `any` was narrowed to its scope (authorize_spec): the stage keeps that */
    Muster__V1__Target *t = spec->stages[k]->target;
    if (t != NULL && child->target != NULL && strcmp(t->any, child->target->any) != 0) {
      char *any = strdup(child->target->any);
      if (any == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
      else {
        if (t->any != protobuf_c_empty_string) free(t->any);
        t->any = any;
      }
    }
    free(ids);
    protobuf_c_message_free_unpacked(&child->base, NULL);
  }
  if (rc != 0) {
    protobuf_c_message_free_unpacked(&spec->base, NULL);
    return rc;
  }
  memset(ret_rollout, 0, sizeof *ret_rollout);
  ret_rollout->max_errors = -1;
  *ret_ids = NULL;
  *ret_n = 0;
  return 0;
}

/* --- events and records --- */

static void stage_changed(mu_scheduler *s, mu_job *job, size_t k) {
  if (s->hooks.job_changed != NULL) s->hooks.job_changed(s->hooks.ud, job);
  mu_stage_run_publish(s, job, k);
}

void mu_stage_run_publish(mu_scheduler *s, mu_job *job, size_t k) {
  Muster__V1__JobEvent ev = MUSTER__V1__JOB_EVENT__INIT;
  Muster__V1__StageStatus st = MUSTER__V1__STAGE_STATUS__INIT;
  Muster__V1__JobCounts counts = MUSTER__V1__JOB_COUNTS__INIT;
  const mu_stage_run *r = &job->stage_runs[k];
  char id[MU_STAGE_ID_SIZE] = "";
  st.name = job->spec->stages[k]->name;
  st.state = (char *)mu_stage_state_name(r->state);
  st.message = r->message ? r->message : "";
  if (r->state != MU_STAGE_PENDING && r->state != MU_STAGE_SKIPPED &&
      mu_stage_job_id(job->id, st.name, id, sizeof id) == 0) {
    st.job_id = id;
    const mu_job *child = mu_sched_find(s, id);
    if (child != NULL) mu_job_counts_of(child, &counts);
  }
  st.counts = &counts;
  ev.job_id = job->id;
  ev.at_ms = mu_now_ms();
  ev.stage = &st;
  mu_job_publish(job, &ev, NULL, s->cfg.history_bytes);
}

static void set_stage(mu_scheduler *s, mu_job *job, size_t k, mu_stage_state st, const char *message) {
  mu_stage_run *r = &job->stage_runs[k];
  int same_msg = message == NULL ? r->message == NULL : r->message != NULL && strcmp(r->message, message) == 0;
  if (r->state == st && same_msg) return;
  r->state = st;
  free(r->message);
  r->message = message != NULL ? strdup(message) : NULL;
  mu_info("sched", "job %s: stage %s %s%s%s", job->id, job->spec->stages[k]->name, mu_stage_state_name(st),
          message ? ": " : "", message ? message : "");
  stage_changed(s, job, k);
}

/* --- ${stages.*} values --- */

typedef struct lookup_ctx {
  mu_scheduler *s;
  const mu_job *job;
} lookup_ctx;

static int join_hosts(const mu_job *child, mu_stage_ref_kind kind, char **ret_value, char *why, size_t why_size) {
  size_t cap = 1;
  for (size_t i = 0; i < child->n_hosts; i++)
    if (child->hosts[i].agent_id != NULL) cap += strlen(child->hosts[i].agent_id) + 1;
  if (cap > MU_STAGE_VALUE_MAX) {
    snprintf(why, why_size, "the host list is longer than %d bytes", MU_STAGE_VALUE_MAX);
    return -1;
  }
  char *v = calloc(1, cap);
  if (v == NULL) {
    snprintf(why, why_size, "out of memory");
    return -1;
  }
  size_t len = 0;
  for (size_t i = 0; i < child->n_hosts; i++) {
    const mu_host_run *h = &child->hosts[i];
    int take = kind == MU_STAGE_REF_HOSTS ? 1
               : kind == MU_STAGE_REF_OK_HOSTS
                   ? h->state == MU_HOST_SUCCEEDED
                   : h->state == MU_HOST_FAILED || h->state == MU_HOST_UNREACHABLE || h->state == MU_HOST_CANCELLED;
    if (!take || h->agent_id == NULL) continue;
    len += (size_t)snprintf(v + len, cap - len, "%s%s", len ? "," : "", h->agent_id);
  }
  *ret_value = v;
  return 0;
}

static int lookup(void *ud, const mu_stage_ref *ref, char **ret_value, char *why, size_t why_size) {
  lookup_ctx *c = ud;
  const Muster__V1__Stage *st = c->job->spec->stages[ref->stage];
  char id[MU_STAGE_ID_SIZE];
  const mu_job *child = mu_stage_job_id(c->job->id, st->name, id, sizeof id) == 0 ? mu_sched_find(c->s, id) : NULL;
  if (child == NULL) {
    snprintf(why, why_size, "stage '%.64s' did not run (%s)", st->name,
             mu_stage_state_name(c->job->stage_runs[ref->stage].state));
    return -1;
  }
  if (ref->kind != MU_STAGE_REF_OUTPUT) return join_hosts(child, ref->kind, ret_value, why, why_size);
  int hn = (int)(ref->host_len > 128 ? 128 : ref->host_len);
  for (size_t i = 0; i < child->n_hosts; i++) {
    const mu_host_run *h = &child->hosts[i];
    if (h->agent_id == NULL || strlen(h->agent_id) != ref->host_len ||
        strncmp(h->agent_id, ref->host, ref->host_len) != 0 || ref->task >= child->spec->n_tasks)
      continue;
    const mu_task_run *tr = &h->tasks[ref->task];
    for (size_t p = 0; p < tr->n_params; p++)
      if (strlen(tr->params[p].key) == ref->key_len && strncmp(tr->params[p].key, ref->key, ref->key_len) == 0) {
        *ret_value = strdup(tr->params[p].value);
        if (*ret_value == NULL) snprintf(why, why_size, "out of memory");
        return *ret_value == NULL ? -1 : 0;
      }
    snprintf(why, why_size, "task '%.64s' on %.*s set no output '%.*s' in stage '%.64s'",
             child->spec->tasks[ref->task]->name, hn, ref->host, (int)(ref->key_len > 64 ? 64 : ref->key_len), ref->key,
             st->name);
    return -1;
  }
  snprintf(why, why_size, "host '%.*s' was no target of stage '%.64s'", hn, ref->host, st->name);
  return -1;
}

/* Starts stage k as the job id; 0, or an error saying why it cannot start. */
static int start_stage(mu_scheduler *s, mu_job *job, size_t k, const char *id, mu_err *err) {
  Muster__V1__JobSpec *child = mu_stages_spec(job->spec, k);
  if (child == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  lookup_ctx c = {.s = s, .job = job};
  int rc = mu_stages_substitute(child, job->spec, k, lookup, &c, err);
  if (rc != 0) {
    protobuf_c_message_free_unpacked(&child->base, NULL);
    return rc;
  }
  mu_job *cj = NULL;
  rc = mu_sched_submit_id(s, id, child, NULL, &cj, err); /* takes child */
  if (rc != 0) return rc;
  if (s->hooks.job_submitted != NULL) s->hooks.job_submitted(s->hooks.ud, cj); /* may free cj */
  return 0;
}

static mu_stage_state child_end(const mu_job *child) {
  switch (child->state) {
    case MUSTER__V1__JOB_STATE__JOB_SUCCEEDED: return MU_STAGE_SUCCEEDED;
    case MUSTER__V1__JOB_STATE__JOB_CANCELLED: return MU_STAGE_CANCELLED;
    default: return MU_STAGE_FAILED;
  }
}

static int stage_ended(mu_stage_state st) {
  return st == MU_STAGE_SUCCEEDED || st == MU_STAGE_FAILED || st == MU_STAGE_SKIPPED || st == MU_STAGE_CANCELLED;
}

/* The targets of every stage job held, by state: what a job with stages counts. */
static void stage_counts(mu_scheduler *s, const mu_job *job, Muster__V1__JobCounts *sum) {
  muster__v1__job_counts__init(sum);
  for (size_t k = 0; k < job->spec->n_stages; k++) {
    char id[MU_STAGE_ID_SIZE];
    const mu_job *child =
        mu_stage_job_id(job->id, job->spec->stages[k]->name, id, sizeof id) == 0 ? mu_sched_find(s, id) : NULL;
    if (child == NULL) continue;
    Muster__V1__JobCounts c;
    mu_job_counts_of(child, &c);
    sum->targets += c.targets;
    sum->pending += c.pending;
    sum->running += c.running;
    sum->succeeded += c.succeeded;
    sum->failed += c.failed;
    sum->cancelled += c.cancelled;
    sum->unreachable += c.unreachable;
    sum->skipped += c.skipped;
  }
}

static void finish_job(mu_scheduler *s, mu_job *job, const mu_stage_state *ended, size_t n) {
  job->state = mu_stages_final(ended, n, job->user_cancelled);
  job->finished_at_ms = mu_now_ms();
  size_t ran = 0, failed = 0;
  for (size_t k = 0; k < n; k++) {
    ran += ended[k] != MU_STAGE_SKIPPED && ended[k] != MU_STAGE_CANCELLED;
    failed += ended[k] == MU_STAGE_FAILED;
  }
  mu_info("sched", "job %s finished: %s (%zu stages, %zu ran, %zu failed)", job->id,
          protobuf_c_enum_descriptor_get_value(&muster__v1__job_state__descriptor, job->state)->name, n, ran, failed);
  if (s->hooks.job_changed != NULL) s->hooks.job_changed(s->hooks.ud, job);
  Muster__V1__JobEvent ev = MUSTER__V1__JOB_EVENT__INIT; /* the end, with every stage's targets */
  Muster__V1__JobCounts counts;
  stage_counts(s, job, &counts);
  ev.job_id = job->id;
  ev.job_state = job->state;
  ev.at_ms = mu_now_ms();
  ev.counts = &counts;
  mu_job_publish(job, &ev, NULL, s->cfg.history_bytes);
  mu_job_close_watchers(job, MU_RPC_OK, "");
  mu_sched_kick(s); /* jobs waiting for this one */
}

/* JOB_HELD while an operator holds it (no new stage starts), RUNNING once released. */
static void follow_hold(mu_scheduler *s, mu_job *job) {
  Muster__V1__JobState want = job->held_by_user ? MUSTER__V1__JOB_STATE__JOB_HELD : MUSTER__V1__JOB_STATE__JOB_RUNNING;
  if (job->state == want || job->state == MUSTER__V1__JOB_STATE__JOB_PENDING) return;
  job->state = want;
  if (s->hooks.job_changed != NULL) s->hooks.job_changed(s->hooks.ud, job);
  mu_sched_publish_job_state(s, job);
}

void mu_stage_run_step(mu_scheduler *s, mu_job *job) {
  const Muster__V1__JobSpec *spec = job->spec;
  size_t n = spec->n_stages < MU_STAGES_MAX ? spec->n_stages : MU_STAGES_MAX;
  mu_stage_state ended[MU_STAGES_MAX] = {MU_STAGE_PENDING};
  follow_hold(s, job);
  for (size_t k = 0; k < n; k++) {
    mu_stage_run *r = &job->stage_runs[k];
    const Muster__V1__Stage *st = spec->stages[k];
    char id[MU_STAGE_ID_SIZE];
    if (mu_stage_job_id(job->id, st->name, id, sizeof id) != 0) return; /* checked at submit */
    mu_job *child = mu_sched_find(s, id);
    if (child != NULL) {
      if (!stage_ended(r->state)) set_stage(s, job, k, MU_STAGE_RUNNING, NULL); /* its record may lag */
      if (child->submit_pending || !mu_job_finished(child)) {
        if (job->user_cancelled && !child->user_cancelled && !mu_job_finished(child)) {
          uint32_t c = 0;
          mu_err err = {0};
          (void)mu_sched_cancel(s, child, job->end_reason ? job->end_reason : "the job was cancelled", &c, &err);
        }
        return;
      }
      if (!stage_ended(r->state)) {
        char msg[160] = "";
        if (child->state != MUSTER__V1__JOB_STATE__JOB_SUCCEEDED)
          snprintf(msg, sizeof msg, "%u of %zu targets failed, %u unreachable, %u cancelled", child->failed,
                   child->n_hosts, child->unreachable, child->cancelled);
        set_stage(s, job, k, child_end(child), msg[0] ? msg : NULL);
      }
      ended[k] = r->state;
      continue;
    }
    if (stage_ended(r->state)) { /* skipped, could not start, or its job was forgotten since */
      ended[k] = r->state;
      continue;
    }
    /* pending, or recorded as running while its job never reached etcd: (re)start it */
    if (job->held_by_user) return;
    if (!mu_stages_should_run(ended, k, st->when, job->user_cancelled)) {
      const char *why = job->user_cancelled                   ? "with the job"
                        : strcmp(st->when, "on_failure") == 0 ? "no earlier stage failed (when: on_failure)"
                                                              : "an earlier stage failed";
      set_stage(s, job, k, job->user_cancelled ? MU_STAGE_CANCELLED : MU_STAGE_SKIPPED, why);
      ended[k] = r->state;
      continue;
    }
    mu_err err = {0};
    int rc = start_stage(s, job, k, id, &err);
    if (rc == 0) {
      set_stage(s, job, k, MU_STAGE_RUNNING, NULL);
      return;
    }
    if (rc == MU_ENOMEM) { /* a later pass tries again */
      mu_warn("sched", "job %s: stage %s not started: %s", job->id, st->name, err.msg);
      return;
    }
    char msg[MU_ERR_MSG_MAX + 32];
    snprintf(msg, sizeof msg, "not started: %s", err.msg);
    set_stage(s, job, k, MU_STAGE_FAILED, msg);
    ended[k] = r->state;
  }
  finish_job(s, job, ended, n);
}

int mu_stage_run_cancel(mu_scheduler *s, mu_job *job, const char *reason, int force, uint32_t *ret_cancelled,
                        mu_err *err) {
  *ret_cancelled = 0;
  job->user_cancelled = 1;
  if (job->end_reason == NULL && reason != NULL && reason[0] != '\0') job->end_reason = strdup(reason);
  if (s->hooks.job_changed != NULL) s->hooks.job_changed(s->hooks.ud, job);
  int running = 0;
  for (size_t k = 0; k < job->spec->n_stages && job->stage_runs != NULL; k++) {
    char id[MU_STAGE_ID_SIZE];
    mu_job *child =
        mu_stage_job_id(job->id, job->spec->stages[k]->name, id, sizeof id) == 0 ? mu_sched_find(s, id) : NULL;
    if (child == NULL || mu_job_finished(child)) continue;
    running = 1;
    int rc = mu_sched_cancel_ex(s, child, reason, force, ret_cancelled, err);
    if (rc != 0) return rc;
  }
  if (!running) { /* no stage job to wait for (between stages, or waiting for `after`) */
    size_t n = job->spec->n_stages < MU_STAGES_MAX ? job->spec->n_stages : MU_STAGES_MAX;
    mu_stage_state ended[MU_STAGES_MAX];
    for (size_t k = 0; k < n; k++) {
      if (!stage_ended(job->stage_runs[k].state)) set_stage(s, job, k, MU_STAGE_CANCELLED, "with the job");
      ended[k] = job->stage_runs[k].state;
    }
    finish_job(s, job, ended, n);
    return 0;
  }
  mu_sched_kick(s); /* the next pass ends the job once its stage job ended */
  return 0;
}

void mu_stage_run_view(mu_scheduler *s, const mu_job *job, Muster__V1__Job *view) {
  if (job->stage_runs == NULL) return;
  for (size_t k = 0; k < view->n_stages; k++) {
    Muster__V1__StageStatus *st = view->stages[k];
    if (st->job_id == NULL || st->job_id[0] == '\0' || st->counts == NULL) continue;
    const mu_job *child = mu_sched_find(s, st->job_id);
    if (child != NULL) mu_job_counts_of(child, st->counts);
  }
  if (view->counts == NULL) return;
  stage_counts(s, job, view->counts);
  view->targets = view->counts->targets;
  view->pending = view->counts->pending;
  view->running = view->counts->running;
  view->succeeded = view->counts->succeeded;
  view->failed = view->counts->failed;
}
