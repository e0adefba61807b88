/* Stages (docs/scheduling.md#stages): a job whose spec has `stages:` runs each stage, one
 * after another, as a job of its own named "<job>.<stage>" with the stage's target, rollout
 * and tasks. This module is the part without daemon state: the shape rules of such a spec,
 * each stage's job spec, which stage runs next, the job's end state, and the ${stages.*}
 * values put into a stage's spec when it starts. The scheduler's side (stage_run.h) starts the
 * stage jobs and keeps the progress. */
#ifndef MU_CP_STAGES_H
#define MU_CP_STAGES_H

#include <stddef.h>

#include "lib/base/err.h"
#include "muster/v1/job.pb-c.h"

#define MU_STAGES_MAX 32         /* stages per job */
#define MU_STAGE_NAME_MAX 64     /* characters of a stage name */
#define MU_STAGE_VALUE_MAX 65536 /* bytes of one ${stages.*} value (a long ok_hosts list) */

typedef enum {
  MU_STAGE_PENDING = 0,
  MU_STAGE_RUNNING,
  MU_STAGE_SUCCEEDED,
  MU_STAGE_FAILED,
  MU_STAGE_SKIPPED,
  MU_STAGE_CANCELLED,
} mu_stage_state;

/* "pending", "running", ... (StageStatus.state); and back: 0, or -1 for an unknown name. */
const char *mu_stage_state_name(mu_stage_state st);
int mu_stage_state_parse(const char *name, mu_stage_state *ret);

/* Called once per problem, field path first ("stages[1].name: ..."). */
typedef void (*mu_stages_report)(void *ud, const char *problem);

/* The shape of a job with stages: no target, rollout or tasks beside stages; at most
 * MU_STAGES_MAX stages, each named (letters, digits, "_", "-"; unique) with a known `when`.
 * Fills in default task names ("task-N") of every stage, as validation would. What each stage
 * holds is checked as its own job (jobspec.h). */
void mu_stages_check(Muster__V1__JobSpec *spec, mu_stages_report report, void *ud);

/* The job spec of stage k of spec: the stage's target, rollout and tasks, with the job's
 * priority, labels and queue, named "<name>/<stage>". Owned by the caller (free_unpacked); NULL
 * when out of memory. */
Muster__V1__JobSpec *mu_stages_spec(const Muster__V1__JobSpec *spec, size_t k);

/* The id of a stage's job: "<job_id>.<stage>". 0, or MU_EINVAL when it does not fit. */
int mu_stage_job_id(const char *job_id, const char *stage, char *out, size_t size);
/* For a stage job's id, the length of its job's id (before the "."); 0 for any other id. */
size_t mu_stage_parent_len(const char *job_id);

/* Whether stage k runs, given the end states of stages [0, k) and its `when`: "success" (or
 * ""): none of them failed; "always"; "on_failure": one failed (a cancelled stage counts as
 * failed). A cancelled job runs no more stages. */
int mu_stages_should_run(const mu_stage_state *ended, size_t k, const char *when, int job_cancelled);
/* The job's end state once every stage ended: CANCELLED when cancelled, FAILED when a stage
 * failed or was cancelled, else SUCCEEDED. */
Muster__V1__JobState mu_stages_final(const mu_stage_state *ended, size_t n, int job_cancelled);

/* The value of one ${stages.*} reference (jobspec_refs.h mu_stage_ref) as *ret_value (caller
 * frees), or non-zero with why. */
struct mu_stage_ref;
typedef int (*mu_stage_lookup)(void *ud, const struct mu_stage_ref *ref, char **ret_value, char *why, size_t why_size);

/* Replaces every ${stages.*} reference in the task specs of child (stage k of parent; owned,
 * built by mu_stages_spec) by its value. "$${" stays as it is (the agent's escape). Errors:
 * MU_EINVAL naming the field and the reference (a host that did not run, an output not set),
 * MU_ENOMEM. */
int mu_stages_substitute(Muster__V1__JobSpec *child, const Muster__V1__JobSpec *parent, size_t k,
                         mu_stage_lookup lookup, void *ud, mu_err *err);

#endif
