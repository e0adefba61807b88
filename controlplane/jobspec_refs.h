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

#endif
