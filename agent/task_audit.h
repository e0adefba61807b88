/* What the agent tells the control plane about each task attempt it starts
 * (TaskEvent.start_audit: a task.start audit record there) and the audit line it logs: the
 * user the task runs as, its type, and a sha256 of what runs — the shell script or inline
 * code, the command line (argv joined by spaces, as the shell plugin's own audit line hashes
 * it), or else the type's section of the spec with secret-looking fields dropped. Never the
 * environment, secrets or stdin. The facts are taken when the assign is handed to the runner
 * (after ${task.key} substitution) and given back when the runner reports STARTING. */
#ifndef MU_AGENT_TASK_AUDIT_H
#define MU_AGENT_TASK_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/bundle/bundle.h"
#include "muster/v1/agent.pb-c.h"

typedef struct mu_task_audit {
  char task_id[512];
  uint32_t attempt;
  char run_as[130]; /* the spec's run_as, else this agent's own user */
  char type[64];
  char digest[MU_BUNDLE_DIGEST_SIZE]; /* "sha256:<hex>" */
  char digest_of[16];                 /* "script", "command" or "spec" */
  char bundle[MU_BUNDLE_DIGEST_SIZE]; /* "" for none */
} mu_task_audit;

/* The attempts assigned and not started yet, at most max of them (more are not audited,
 * with a warning). Caller frees with mu_task_audits_free. NULL when out of memory. */
typedef struct mu_task_audits mu_task_audits;
mu_task_audits *mu_task_audits_new(size_t max);
void mu_task_audits_free(mu_task_audits *ta);

/* Fills *ret from a task spec in its JSON form (borrowed). */
void mu_task_audit_describe(const json_t *spec, const char *bundle_digest, mu_task_audit *ret);
/* Notes the attempt's facts (from its spec, as mu_task_audit_describe); a later add for the
 * same attempt replaces them. */
void mu_task_audits_add(mu_task_audits *ta, const char *task_id, uint32_t attempt, const json_t *spec,
                        const char *bundle_digest);
/* Moves the facts of task_id/attempt into *ret: 0, or MU_ENOENT when none were noted. */
int mu_task_audits_take(mu_task_audits *ta, const char *task_id, uint32_t attempt, mu_task_audit *ret);
/* The STARTING event of task_id/attempt: takes its facts into *store, points *ret at them
 * and logs the agent's audit line ("audit: task.start ..."). 0, or MU_ENOENT when none were
 * noted (nothing logged). */
int mu_task_audits_start(mu_task_audits *ta, const char *job_id, const char *task_id, uint32_t attempt,
                         mu_task_audit *store, Muster__V1__TaskStartAudit *ret);
/* Forgets them (the attempt ended or was refused before it started). */
void mu_task_audits_drop(mu_task_audits *ta, const char *task_id, uint32_t attempt);

#endif
