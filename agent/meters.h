/* The agent's operator metrics (docs/observability.md lists each): task attempts by type,
 * their queue waits (assigned → running here), run times, CPU seconds, peak memory, output
 * bytes and block IO bytes from what the supervisor measures (wait4 and the cgroup), OOM kills,
 * refused assignments, plugin load failures. Attempts are remembered from assignment to their end
 * (bounded: MU_AGENT_METERS_TRACKED; past it an attempt is counted with type "unknown").
 * Only with --metrics-listen (a->meters NULL otherwise: every function returns at once).
 * Loop thread only. */
#ifndef MU_AGENT_METERS_H
#define MU_AGENT_METERS_H

#include <stdint.h>

#include "agent/exec/event.h"
#include "lib/base/err.h"
#include "lib/metrics/registry.h"

#define MU_AGENT_METERS_TRACKED 4096

typedef struct mu_agent_meters mu_agent_meters;

int mu_agent_meters_new(mu_agent_meters **ret, mu_err *err);
void mu_agent_meters_free(mu_agent_meters *m);
mu_metrics *mu_agent_meters_registry(mu_agent_meters *m);

/* An Assign taken (before the runner gets it): remembers its type and when. */
void mu_agent_meters_assigned(mu_agent_meters *m, const char *task_id, uint32_t attempt, const char *type,
                              uint64_t memory_limit);
/* A state event of the runner: counts the start and the end (and forgets the attempt). */
void mu_agent_meters_event(mu_agent_meters *m, const mu_task_event *e);
/* An attempt refused before it ran (reported FAILED by the agent itself). */
void mu_agent_meters_refused(mu_agent_meters *m, const char *task_id, uint32_t attempt);
/* Plugins refused at start (counted once). */
void mu_agent_meters_plugin_failures(mu_agent_meters *m, int n);

#endif
