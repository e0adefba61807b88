/* Job dependencies in the scheduler (docs/scheduling.md#job-dependencies): a job with
 * `after:` is refused at submit unless every entry names a job held now or a schedule that
 * has made one (the entry is then replaced by that schedule's latest job id), and waits PENDING, with Job.waiting_for saying why,
 * until jobdeps/deps.h decides: it starts, or it ends CANCELLED without running ("not run:
 * dependency J ended JOB_FAILED (on: success)"). The decision is taken again on every pass
 * from the stored specs and states, so a new leader picks a waiting job up where the old one
 * left it. Loop thread only. */
#ifndef MU_CP_JOB_DEPS_H
#define MU_CP_JOB_DEPS_H

#include "controlplane/scheduler.h"
#include "lib/base/err.h"

/* At submit (from mu_sched_admit): after and on are well formed, each entry is a job the
 * scheduler holds (a forgotten one is named as such), and no cycle runs through self_id (NULL
 * for a job whose id is not chosen yet). MU_EINVAL with the entry named. */
int mu_job_deps_admit(mu_scheduler *s, const char *self_id, Muster__V1__JobSpec *spec, mu_err *err);

/* Whether job (ready, not finished, with after) may be dispatched now: 1 yes (remembered in
 * job->deps_done), 0 not yet (job->waiting_for says why) or never (the job was ended,
 * CANCELLED, with the reason in end_reason and its task runs' messages). A job that started
 * before (a leader change) is never stopped here. */
int mu_job_deps_gate(mu_scheduler *s, mu_job *job);

/* The ids of finished jobs that unfinished ones still need, for retention (job_retention.h
 * needed): every `after` entry of a job still waiting for its dependencies, and the stage
 * jobs of a job with stages that has not ended (found by its id). Built once per eviction
 * pass; lookups are binary searches. */
typedef struct mu_job_keep {
  const char **ids; /* borrowed from the jobs' specs and ids; sorted */
  size_t n;
} mu_job_keep;

/* 0, or MU_ENOMEM (then nothing is known to be needed: the caller evicts nothing). */
int mu_job_keep_build(mu_scheduler *s, mu_job_keep *ret_keep);
/* 1 when job is needed: its id, or for a stage's job its job's id, is in keep. */
int mu_job_keep_has(const mu_job_keep *keep, const mu_job *job);
void mu_job_keep_free(mu_job_keep *keep);

#endif
