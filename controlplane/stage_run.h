/* The scheduler's side of stages (stages.h). A job with stages holds no hosts of its own: each
 * pass, mu_stage_run_step starts its next stage as the job "<job>.<stage>" (the stage's spec
 * with its ${stages.*} values put in, submitted like any job and stored through the
 * job_submitted hook), waits for it, records its end in the job (stage_runs, stored in the
 * job record) and decides the next stage by its `when`. Progress is recovered after a leader
 * change from both records: a stage job that exists has started (even if the job's record
 * did not say so yet), so no stage runs twice; a stage recorded as running whose job never
 * reached etcd is started again, so none is lost. Loop thread only. */
#ifndef MU_CP_STAGE_RUN_H
#define MU_CP_STAGE_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "controlplane/scheduler.h"

/* mu_sched_admit for a job with stages: validation of every stage (jobspec.h), the job's own
 * dependencies and queue, then for each stage the checks of a job of its own (permissions,
 * targets, task types, secrets, task-run limit), problems named "stages[K]...". spec is
 * freed on error only. *ret_rollout is zero, *ret_ids NULL and *ret_n 0 on success. */
int mu_stage_run_admit(mu_scheduler *s, Muster__V1__JobSpec *spec, const mu_caller *caller, mu_rollout *ret_rollout,
                       char ***ret_ids, size_t *ret_n, mu_err *err);

/* One pass for a job with stages that may run (ready, its dependencies done): records
 * stages that ended, starts the next one or skips it, and ends the job after the last. */
void mu_stage_run_step(mu_scheduler *s, mu_job *job);

/* Cancels a job with stages: its running stage's job is cancelled (force as in
 * mu_sched_cancel_ex), the stages not started are not run; the job ends at the next pass.
 * *ret_cancelled counts the stage job's targets cancelled. MU_EINVAL when it already ended. */
int mu_stage_run_cancel(mu_scheduler *s, mu_job *job, const char *reason, int force, uint32_t *ret_cancelled,
                        mu_err *err);

/* Fills the counts of view's stages (mu_job_view of job) from the stage jobs held, and the
 * job's own counts as their sum (every stage's targets by state). */
void mu_stage_run_view(mu_scheduler *s, const mu_job *job, Muster__V1__Job *view);

/* Publishes stage k's state to the job's watchers (a JobEvent with stage set). */
void mu_stage_run_publish(mu_scheduler *s, mu_job *job, size_t k);

#endif
