/* muster.v1.Admin/TaskLogs (task_logs.c): a task's full output read from its agent's spool
 * through the agent's stream, falling back to the tail kept here. */
#ifndef MU_CP_TASK_LOGS_H
#define MU_CP_TASK_LOGS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "controlplane/registry.h"
#include "lib/base/err.h"
#include "muster/v1/agent.pb-c.h"

struct mu_daemon;
typedef struct mu_log_fetch mu_log_fetch;

typedef struct mu_task_logs {
  mu_log_fetch *fetches; /* calls in progress */
  size_t n_fetches;
  uint64_t seq;     /* request ids of agent reads */
  uv_timer_t *pump; /* timeouts and paused reads; exists while calls do */
} mu_task_logs;

int mu_task_logs_register(struct mu_daemon *d, mu_err *err);
/* A LogRequestReply from agent (routed by request_id; unknown ids are dropped). */
void mu_task_logs_on_reply(struct mu_daemon *d, mu_agent *agent, const Muster__V1__LogRequestReply *rep);
/* agent's stream ended: its reads fall back to the tail kept here. */
void mu_task_logs_on_agent_down(struct mu_daemon *d, mu_agent *agent);

#endif
