/* An out-of-process plugin, agent side: one muster-plugin-host process per plugin type,
 * spoken to over a socketpair (pmsg.h, pchan.h), presented to the runner as an ordinary
 * muster_plugin descriptor whose callbacks forward to that process. The host API calls the
 * plugin makes there come back as messages and are carried out here on the real task (output,
 * progress, params, finish, supervised processes, logs), so the runner cannot tell the
 * difference, except that validate() runs in the host process when the task starts (the agent
 * never waits on it): a spec the plugin refuses fails at start rather than at assign.
 *
 * When the host process dies (a crash in start(), in a callback, at unload) every task of the
 * type still running ends FAILED with "plugin 'TYPE' crashed (SIGSEGV); restarted", its
 * processes are killed, and the process is started again after a backoff that doubles from
 * backoff_min_ms to backoff_max_ms (reset once a host stayed up for backoff_reset_ms). Until it
 * is up again, tasks of the type fail at start with the reason. A host stuck in a plugin
 * callback is found by a watchdog (a PING unanswered for hang_ms while tasks run) and handled
 * like a crash: "plugin 'TYPE' stopped responding (no answer in 10000 ms); restarted". A host
 * that breaks the protocol is killed the same way. Nothing here blocks the loop,
 * except mu_plugin_remote_open's wait for the first HELLO (at agent start, before the loop
 * runs; bounded by hello_timeout_ms). All calls on the loop thread. */
#ifndef MU_PLUGIN_REMOTE_H
#define MU_PLUGIN_REMOTE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/base/err.h"
#include "plugins/sdk/muster_plugin.h"

typedef struct mu_plugin_remote mu_plugin_remote;

typedef struct mu_plugin_remote_opts {
  const char *host_path;    /* muster-plugin-host; required */
  const char *so_path;      /* the plugin; required */
  int hello_timeout_ms;     /* 0 = 5000 */
  int64_t backoff_min_ms;   /* 0 = 100 */
  int64_t backoff_max_ms;   /* 0 = 30000 */
  int64_t backoff_reset_ms; /* 0 = 60000 */
  size_t max_message;       /* bytes per message; 0 = MU_PM_DEFAULT_MAX_BODY */
  size_t max_pending;       /* bytes queued for a host that does not read; 0 = 64 MiB */
  int64_t hang_ms;          /* a host that leaves a PING unanswered this long while it has
                                * tasks is killed as hung ("stopped responding"); 0 = 10000 */
} mu_plugin_remote_opts;

typedef struct mu_plugin_remote_stats {
  int pid;               /* of the host process now, 0 when none */
  uint32_t crashes;      /* host processes that died unasked, hung or broke the protocol */
  uint32_t restarts;     /* host processes started after the first */
  uint32_t tasks_failed; /* tasks ended by a crash */
  uint32_t live_tasks;
} mu_plugin_remote_stats;

/* Starts the host process for so_path and waits (poll, bounded) for its HELLO. MU_EINVAL
 * when the plugin cannot be loaded there (the message is the host's reason: no descriptor,
 * wrong ABI, ...), MU_EIO when the host does not start or answer. opts' strings are copied.
 * *ret: the caller's; mu_plugin_remote_close. On error nothing is left but a killed child
 * the loop reaps. */
int mu_plugin_remote_open(uv_loop_t *loop, const mu_plugin_remote_opts *opts, mu_plugin_remote **ret, mu_err *err);

/* The proxy descriptor (type, version, description as the plugin's), for
 * mu_plugin_host_register_as. Borrowed from r: valid until mu_plugin_remote_close. */
const muster_plugin *mu_plugin_remote_descriptor(const mu_plugin_remote *r);

void mu_plugin_remote_stats_get(const mu_plugin_remote *r, mu_plugin_remote_stats *ret);

/* Sends a PING and calls cb(arg, rtt_us) when the PONG comes (rtt_us < 0: the host went
 * away first). For benchmarks and health checks. */
int mu_plugin_remote_ping(mu_plugin_remote *r, void (*cb)(void *arg, int64_t rtt_us), void *arg);

/* Stops the host process (EOF on its socket: it unloads the plugin and exits; SIGKILL after
 * 2 s) and frees r, then cb(arg). Call once no task of the type runs (after the runner). */
void mu_plugin_remote_close(mu_plugin_remote *r, void (*cb)(void *arg), void *arg);

#endif
