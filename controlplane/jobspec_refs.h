/* ${...} references in a job's task specs, checked at submit so none reaches a shell unresolved.
 *
 * A reference is "${" NAME "." KEY "}" made only of letters, digits and "._-" (so a shell's
 * own "${VAR}", "${VAR:-x}" or "${#VAR}" is not one; "${a.b}" is a "bad substitution" in
 * every shell, so it can only be meant for us). It must name:
 *   - an output param of a task that runs earlier in the list: ${TASK.KEY}, or
 *   - a secrets entry of the task, in an http, container, spark, flink or plugin field: ${secret.NAME}.
 * ${param.KEY} is a job template's param (templates/params.h): dispatch replaces every one
 * before the job is checked here, so one that reaches submit is refused as such (unless a
 * task is named "param"). 
 * In a stage of a job with stages (stages.h) a reference may also name an earlier stage:
 * ${stages.STAGE.HOST.TASK.KEY} (an output param of TASK of that stage on HOST) or
 * ${stages.STAGE.ok_hosts|failed_hosts|hosts} (comma-separated agent ids); the musterd
 * replaces them when the stage starts.
 * "$${" is the escape: the agent turns it into a literal "${" and it is never a reference. */
#ifndef MU_CP_JOBSPEC_REFS_H
#define MU_CP_JOBSPEC_REFS_H

#include <stddef.h>

#include "muster/v1/job.pb-c.h"

/* Called once per problem, with the field path first ("tasks[1].shell.script: ..."). */
typedef void (*mu_jobspec_refs_report)(void *ud, const char *problem);

/* Checks every string field of spec->tasks[index] (env, args, scripts, URLs, plugin config,
 * ...) against the task names of spec (defaults already filled in). */
void mu_jobspec_refs_check(const Muster__V1__JobSpec *spec, size_t index, mu_jobspec_refs_report report, void *ud);

/* The same for the job spec of stage `stage` of the job with stages `parent` (stages.h): its
 * ${stages.*} references must name an earlier stage (and a task of it). parent NULL is
 * mu_jobspec_refs_check. */
void mu_jobspec_refs_check_stage(const Muster__V1__JobSpec *spec, size_t index, const Muster__V1__JobSpec *parent,
                                 size_t stage, mu_jobspec_refs_report report, void *ud);

/* A ${stages.*} reference taken apart (pointers into the reference's text and the parent). */
typedef enum {
  MU_STAGE_REF_OUTPUT = 0,
  MU_STAGE_REF_OK_HOSTS,
  MU_STAGE_REF_FAILED_HOSTS,
  MU_STAGE_REF_HOSTS
} mu_stage_ref_kind;
typedef struct mu_stage_ref {
  size_t stage; /* index in parent->stages */
  mu_stage_ref_kind kind;
  const char *host; /* MU_STAGE_REF_OUTPUT: host_len bytes, then the task's index and the key */
  size_t host_len;
  size_t task;
  const char *key;
  size_t key_len;
} mu_stage_ref;

/* Parses body (n bytes, "stages.STAGE...." without "${" and "}") against parent's stages.
 * 0, or -1 with why ("no stage 'x' in this job"). The stage's position is not checked. */
int mu_stage_ref_parse(const Muster__V1__JobSpec *parent, const char *body, size_t n, mu_stage_ref *ret, char *why,
                       size_t why_size);

#endif
