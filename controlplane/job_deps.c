/* Dependencies of jobs in the scheduler (see job_deps.h): the decisions are jobdeps/deps.c;
 * this file looks the dependencies up among the scheduler's jobs and acts on the verdict. */
#include "controlplane/job_deps.h"

#include <stdlib.h>
#include <string.h>

#include "controlplane/jobdeps/deps.h"
#include "controlplane/stages.h"
#include "lib/base/log.h"

/* Edges for the cycle search: a held job's after list. */
static size_t job_after(void *ud, const char *node, const char *const **ret_after) {
  mu_job *j = mu_sched_find(ud, node);
  if (j == NULL || j->spec->n_after == 0) return 0;
  *ret_after = (const char *const *)j->spec->after;
  return j->spec->n_after;
}

/* after[i] names no held job: a schedule's latest job replaces it, or the refusal says why. */
static int resolve_schedule(mu_scheduler *s, Muster__V1__JobSpec *spec, size_t i, mu_err *err) {
  char job_id[MU_SCHED_ID_SIZE + 64];
  int found = s->hooks.schedule_latest_job
                  ? s->hooks.schedule_latest_job(s->hooks.ud, spec->after[i], job_id, sizeof job_id)
                  : -1;
  if (found == 0)
    return mu_err_set(err, MU_EINVAL, "after[%zu]: schedule '%.64s' has not made a job yet", i, spec->after[i]);
  if (found > 0 && mu_sched_find(s, job_id) != NULL) {
    char *id = strdup(job_id);
    if (id == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
    free(spec->after[i]);
    spec->after[i] = id;
    return 0;
  }
  char msg[MU_ERR_MSG_MAX - 64];
  mu_retention_not_found(&s->cfg.retention, &s->evicted, found > 0 ? job_id : spec->after[i], msg, sizeof msg);
  return mu_err_set(err, MU_EINVAL, "after[%zu]: %s%s", i, msg, found > 0 ? "" : " and no schedule of that name");
}

int mu_job_deps_admit(mu_scheduler *s, const char *self_id, Muster__V1__JobSpec *spec, mu_err *err) {
  mu_dep_on on;
  int rc = mu_dep_on_parse(spec->on, &on, err);
  if (rc == 0 && spec->n_after == 0 && spec->on != NULL && spec->on[0] != '\0')
    rc = mu_err_set(err, MU_EINVAL, "on: '%.32s' without after", spec->on);
  if (rc == 0) rc = mu_dep_after_check((const char *const *)spec->after, spec->n_after, err);
  for (size_t i = 0; rc == 0 && i < spec->n_after; i++)
    if (mu_sched_find(s, spec->after[i]) == NULL) rc = resolve_schedule(s, spec, i, err);
  if (rc == 0) rc = mu_dep_cycle_check(self_id, (const char *const *)spec->after, spec->n_after, job_after, s, err);
  return rc;
}

/* Whether anything of job ran or was placed (it started under an earlier leader). */
static int job_started(const mu_job *job) {
  for (size_t i = 0; i < job->n_hosts; i++) {
    const mu_host_run *h = &job->hosts[i];
    if (h->state != MU_HOST_PENDING || h->current > 0) return 1;
    for (size_t t = 0; t < job->spec->n_tasks; t++)
      if (h->tasks[t].attempt > 0) return 1;
  }
  for (size_t k = 0; job->stage_runs != NULL && k < job->spec->n_stages; k++)
    if (job->stage_runs[k].state != MU_STAGE_PENDING) return 1;
  return 0;
}

static void set_waiting(mu_job *job, const char *why) {
  if (job->waiting_for == NULL ? why == NULL : why != NULL && strcmp(job->waiting_for, why) == 0) return;
  free(job->waiting_for);
  job->waiting_for = why ? strdup(why) : NULL;
}

/* The dependencies allow job to start: it is RUNNING from now on (stored). */
static int may_start(mu_scheduler *s, mu_job *job) {
  job->deps_done = 1;
  set_waiting(job, NULL);
  if (job->state == MUSTER__V1__JOB_STATE__JOB_PENDING) {
    job->state = MUSTER__V1__JOB_STATE__JOB_RUNNING;
    if (s->hooks.job_changed != NULL) s->hooks.job_changed(s->hooks.ud, job);
  }
  return 1;
}

int mu_job_deps_gate(mu_scheduler *s, mu_job *job) {
  if (job->deps_done || job->spec->n_after == 0) return 1;
  if (job_started(job)) return may_start(s, job);
  mu_dep_on on = MU_DEP_ON_SUCCESS;
  (void)mu_dep_on_parse(job->spec->on, &on, NULL); /* checked at submit */
  size_t n = job->spec->n_after > MU_DEP_AFTER_MAX ? MU_DEP_AFTER_MAX : job->spec->n_after;
  mu_dep_state deps[MU_DEP_AFTER_MAX];
  for (size_t i = 0; i < n; i++) {
    const mu_job *d = mu_sched_find(s, job->spec->after[i]);
    deps[i] = (mu_dep_state){.name = job->spec->after[i],
                             .job_id = job->spec->after[i],
                             .state = d ? d->state : MUSTER__V1__JOB_STATE__JOB_STATE_UNSPECIFIED,
                             .forgotten = d == NULL};
  }
  char reason[MU_DEP_REASON_MAX];
  mu_dep_verdict v = mu_dep_decide(deps, n, on, reason, sizeof reason);
  if (v == MU_DEP_RUN) {
    mu_info("sched", "job %s: %s", job->id, reason);
    return may_start(s, job);
  }
  if (v == MU_DEP_WAIT) {
    set_waiting(job, reason);
    return 0;
  }
  mu_info("sched", "job %s: %s", job->id, reason);
  set_waiting(job, NULL);
  free(job->end_reason);
  job->end_reason = strdup(reason);
  uint32_t cancelled = 0;
  mu_err err = {0};
  if (mu_sched_cancel(s, job, reason, &cancelled, &err) != 0) mu_warn("sched", "job %s: %s", job->id, err.msg);
  return 0;
}

static int cmp_id(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

int mu_job_keep_build(mu_scheduler *s, mu_job_keep *ret_keep) {
  size_t n = 0;
  for (const mu_job *j = s->jobs; j != NULL; j = j->next) {
    if (mu_job_finished(j)) continue;
    if (!j->deps_done) n += j->spec->n_after;
    n += j->stage_runs != NULL;
  }
  ret_keep->ids = NULL;
  ret_keep->n = 0;
  if (n == 0) return 0;
  const char **ids = calloc(n, sizeof *ids);
  if (ids == NULL) return MU_ENOMEM;
  size_t k = 0;
  for (const mu_job *j = s->jobs; j != NULL && k < n; j = j->next) {
    if (mu_job_finished(j)) continue;
    for (size_t i = 0; !j->deps_done && i < j->spec->n_after && k < n; i++) ids[k++] = j->spec->after[i];
    if (j->stage_runs != NULL && k < n) ids[k++] = j->id;
  }
  qsort(ids, k, sizeof *ids, cmp_id);
  ret_keep->ids = ids;
  ret_keep->n = k;
  return 0;
}

int mu_job_keep_has(const mu_job_keep *keep, const mu_job *job) {
  if (keep->n == 0) return 0;
  const char *id = job->id;
  if (bsearch(&id, keep->ids, keep->n, sizeof *keep->ids, cmp_id) != NULL) return 1;
  size_t plen = mu_stage_parent_len(job->id);
  char parent[160];
  if (plen == 0 || plen >= sizeof parent) return 0;
  memcpy(parent, job->id, plen);
  parent[plen] = '\0';
  const char *p = parent;
  return bsearch(&p, keep->ids, keep->n, sizeof *keep->ids, cmp_id) != NULL;
}

void mu_job_keep_free(mu_job_keep *keep) {
  free(keep->ids);
  keep->ids = NULL;
  keep->n = 0;
}
