/* The agent's handle on `muster-exec --server`: one long-lived helper process, started with
 * posix_spawn, that starts task processes for the supervisor from its own small address space
 * (vfork + exec per task, reaped with wait4 there) instead of a fork and a helper exec per task.
 * Requests and the task's pipe ends go over a socketpair (exec_server_proto.h).
 *
 * Crashes: when the server dies, the processes it had started are killed (their process groups,
 * and their cgroups through the supervisor) and end "killed by signal 9" with a message naming
 * the exec server; the next spawn starts a new server. A request the server cannot take (over
 * MU_XS_MAX_REQ bytes, socket buffer full, server not startable) falls back to the one-shot
 * helper. A helper that exits before it says it is ready (e.g. an older muster-exec without
 * --server) has started nothing: the requests sent to it fail with exit code 126 ("could not
 * start it") and every later spawn uses the one-shot helper.
 *
 * All calls on the loop thread. The process must ignore SIGPIPE. */
#ifndef MU_EXEC_SERVER_H
#define MU_EXEC_SERVER_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "lib/base/err.h"

typedef struct mu_exec_server mu_exec_server;

typedef struct mu_exec_server_stats {
  uint64_t starts;    /* server processes started (1 + restarts) */
  uint64_t spawns;    /* tasks started through it */
  uint64_t fallbacks; /* requests sent to the one-shot helper instead */
  uint64_t lost;      /* tasks ended because the server died */
} mu_exec_server_stats;

/* A handle on the server (helper_path: muster-exec), which starts with the first spawn, so an
 * agent that runs nothing has no server process. *ret is owned by the caller, released with
 * mu_exec_server_close once no process it started is still running. MU_ENOENT/MU_EIO when the
 * helper is missing or not executable, with the reason. */
int mu_exec_server_new(uv_loop_t *loop, const char *helper_path, mu_exec_server **ret, mu_err *err);

/* The server's pid now (0 while none runs); for tests and diagnostics. */
pid_t mu_exec_server_pid(const mu_exec_server *s);

void mu_exec_server_stats_get(const mu_exec_server *s, mu_exec_server_stats *ret);

/* Stops the server (it exits when its socket closes), waits until it is reaped, frees s and
 * calls cb(arg) (cb may be NULL). */
void mu_exec_server_close(mu_exec_server *s, void (*cb)(void *arg), void *arg);

#endif
