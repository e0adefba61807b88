/* Job specs: validation of a muster.v1.JobSpec before anything is stored, and the parsed
 * rollout limits the scheduler uses (rollout.h). Every problem is named by its field path; all problems
 * are reported at once ("tasks[1].timeout: bad duration ...; target: ..."). */
#ifndef MU_CP_JOBSPEC_H
#define MU_CP_JOBSPEC_H

#include <stddef.h>
#include <stdint.h>

#include "controlplane/rollout.h"
#include "lib/base/err.h"
#include "muster/v1/admin.pb-c.h"
#include "muster/v1/job.pb-c.h"

/* What an agent and execve() take. A spec over one of these would fail on every host, so
 * it is refused at submit, naming the field and the limit. The agent keeps its own copies
 * (agent/exec/spec.h MU_SPEC_MAX_ENV, runas.c, plugins/shell and plugins/python *_MAX_ARGS):
 * change them together. */
#define MU_JOBSPEC_MAX_ENV 1024  /* env variables, and secrets, per task */
#define MU_JOBSPEC_MAX_ARGS 4096 /* shell.args, shell.command, python.args */
#define MU_JOBSPEC_MAX_ARG_BYTES \
  131071 /* one argument or "K=V": Linux's MAX_ARG_STRLEN
                                                 (32 pages) less its NUL */
#define MU_JOBSPEC_MAX_EXEC_BYTES \
  (1u << 20)                                   /* arguments and environment together, each with
                                                 its NUL: half the usual 2 MiB ARG_MAX, the
                                                 rest left for the agent's own variables */
#define MU_JOBSPEC_MAX_SCRIPT_BYTES (4u << 20) /* shell.script (a script file's cap too) */
#define MU_JOBSPEC_MAX_SANDBOX_PATHS 64        /* sandbox.writable, sandbox.hidden */
#define MU_JOBSPEC_MAX_RUN_AS 63               /* characters of run_as "user[:group]" */

typedef struct mu_jobspec_limits {
  uint32_t max_tasks;     /* tasks per job */
  uint32_t max_task_runs; /* targets x tasks */
  /* Task types agents can serve beyond the built-in six (plugin types from Hello). */
  int (*type_known)(void *ud, const char *type);
  /* Resolves a task's bundle reference to a stored bundle: 0, or non-zero with msg (e.g.
   * "bundle 'x@1' not found"). NULL refuses every bundle. */
  int (*bundle_resolve)(void *ud, const char *ref, char *msg, size_t msg_size);
  void *ud;
  /* Set by the validation of a job with stages for each stage's job spec: the job with
   * stages and the stage's index (${stages.*} references, jobspec_refs.h). NULL otherwise. */
  const Muster__V1__JobSpec *stages_of;
  size_t stage;
} mu_jobspec_limits;

/* Validates spec and fills in defaults in place (task names "task-N", types from the oneof).
 * A job with stages (stages.h) is checked stage by stage, each as the job mu_stages_spec makes
 * of it, problems named "stages[K]...."; *ret_rollout is then zero. Returns 0 or MU_EINVAL
 * with every problem in err. */
int mu_jobspec_validate(Muster__V1__JobSpec *spec, const mu_jobspec_limits *limits, mu_rollout *ret_rollout,
                        mu_err *err);

/* An owned deep copy of spec (mu_pb_dup: no pack/unpack; caller frees with
 * protobuf_c_message_free_unpacked); NULL when out of memory. */
Muster__V1__JobSpec *mu_jobspec_copy(const Muster__V1__JobSpec *spec);

/* The one-task job of a RunAdhoc request (`muster run [--type T] -- CMD`), not yet validated.
 * The command becomes a task of its type: shell (one string is a script, several an argv),
 * python (`-c CODE [ARGS]`, `-m MODULE [ARGS]` or `SCRIPT [ARGS]`) or http (`[METHOD] URL`).
 * On success *ret_spec is owned by the caller (protobuf_c_message_free_unpacked). Errors:
 * MU_EINVAL naming the field ("command: required ..."), MU_ENOMEM. */
int mu_jobspec_adhoc(const Muster__V1__RunAdhocRequest *req, Muster__V1__JobSpec **ret_spec, mu_err *err);

#endif
