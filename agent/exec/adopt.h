/* Re-adopting a running task after an agent restart (the agent's half; the container helper's
 * shim is plugins/container/shim.h). A task whose helper keeps a shim dir in its task dir
 * (`<task dir>/.shim`: pid file, spec.json, output files, then the exit file) outlives the
 * agent's process. The restarted agent, for each attempt its journal says was running, looks
 * for that dir (mu_adopt_probe): the pid file's process must be alive with the same start
 * time. Then the runner (mu_runner_adopt) takes the attempt back as running: the cgroup sweep
 * leaves its group alone, its output after the restart is read from the shim's files, its real
 * exit code is reported, and cancel and the remaining timeout work as for any task (TERM to
 * the shim, which forwards the image's stop signal, then KILL of the whole group). An attempt
 * that cannot be re-adopted is reported LOST and its group swept (killed), as before: nothing
 * is left running unseen. */
#ifndef MU_ADOPT_H
#define MU_ADOPT_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/exec/cgroup.h"
#include "lib/base/err.h"
#include "plugins/sdk/muster_plugin.h"

typedef struct mu_adoptee {
  char task_dir[PATH_MAX];
  char shim_dir[PATH_MAX];
  pid_t pid;               /* the shim (the task's helper) */
  unsigned long long born; /* its start time (clock ticks since boot, /proc/<pid>/stat) */
  int64_t spec_age_ms;     /* how long ago the attempt started (spec.json's mtime) */
  char *spec_json;         /* the attempt's spec (adoptable tasks carry no secret values); owned */
} mu_adoptee;

/* Looks in <spool_dir>/work for the attempt's task dir with a live shim. 0 with *ret filled
 * (free with mu_adoptee_free); MU_ENOENT with the reason in err when there is none to adopt
 * (no task dir, no shim dir, the shim gone or its pid reused). */
int mu_adopt_probe(const char *spool_dir, const char *task_id, uint32_t attempt, mu_adoptee *ret, mu_err *err);

void mu_adoptee_free(mu_adoptee *a);

/* True while the adoptee's shim process still runs (same pid and start time). */
int mu_adoptee_alive(const mu_adoptee *a);

/* The runner's stand-in plugin for a re-adopted attempt: it follows the shim's files and exit
 * on a 50 ms timer, stops it on cancel and timeout, and empties and removes its cgroup at the
 * end. Its user data is made by mu_adopt_state_new (runner.c passes it in). */
extern const muster_plugin mu_adopt_plugin;

typedef struct mu_adopt_state mu_adopt_state;

/* Takes a (its strings are copied) and cg (owned: freed in the plugin's cleanup; may be NULL
 * without cgroups). grace_ms: TERM to KILL. NULL on no memory. */
mu_adopt_state *mu_adopt_state_new(const mu_adoptee *a, mu_cgroup *cg, int64_t grace_ms);

#endif
