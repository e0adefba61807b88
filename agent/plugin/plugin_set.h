/* The agent's plugins with their isolation: each .so is loaded in the agent's process
 * (trusted: the plugins shipped with Muster, by default) or run by its own
 * muster-plugin-host process (everything else, by default), per the agent config's
 * `plugins: {TYPE: {isolation: in-process|process}}`. Either way it lands in the plugin host
 * table the runner looks types up in; the set owns the out-of-process ones and stops them.
 *
 * Deciding needs the plugin's type: a shipped file (libmuster_TYPE.so, TYPE one of
 * MU_PLUGIN_SHIPPED) is known by its name and loaded in-process unless configured
 * otherwise; any other .so is started in a host process first (which reports its type) and
 * moved in-process only when configured so. Without a muster-plugin-host binary, a plugin
 * that should run out of process is refused (never silently loaded in-process). */
#ifndef MU_PLUGIN_SET_H
#define MU_PLUGIN_SET_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent/exec/plugin_host.h"
#include "agent/plugin/remote.h"
#include "lib/base/err.h"
#include "lib/config/labels.h"

/* The types whose .so ships with Muster (trusted, in-process by default). */
#define MU_PLUGIN_SHIPPED \
  { "shell", "http", "python", "spark", "flink", "container" }

typedef struct mu_plugin_set mu_plugin_set;

/* plugins and settings ("TYPE.isolation" -> "in-process"|"process") are borrowed and must
 * outlive the set; host_path (may be NULL: none found) and opts are copied. */
int mu_plugin_set_new(uv_loop_t *loop, mu_plugin_host *plugins, const mu_labels *settings, const char *host_path,
                      const mu_plugin_remote_opts *opts, mu_plugin_set **ret, mu_err *err);

/* "in-process" or "process" for type: the setting, else the default (shipped or not). */
const char *mu_plugin_set_isolation(const mu_plugin_set *s, const char *type);

/* Loads one .so as its isolation says. Errors as mu_plugin_host_load / mu_plugin_remote_open,
 * and MU_ENOTSUP when it must run out of process and there is no host binary. */
int mu_plugin_set_load(mu_plugin_set *s, const char *path, mu_err *err);

/* Every *.so in dir, in name order; refusals are logged and counted. MU_EIO: dir unreadable. */
int mu_plugin_set_load_dir(mu_plugin_set *s, const char *dir, int *ret_refused, mu_err *err);

/* Hot upgrade (a deploy or rollback, agent/plugin_deploy.c): makes path the active version of
 * want_type, in-process or in a new host process as the type's isolation says; the version it
 * replaces keeps serving the tasks that run on it and is unloaded (its host process stopped)
 * when the last of them ends. Errors as mu_plugin_host_upgrade / mu_plugin_remote_open; the
 * old version stays active on any error. */
int mu_plugin_set_upgrade(mu_plugin_set *s, const char *path, const char *want_type, mu_err *err);

/* The out-of-process plugin serving type, or NULL. */
mu_plugin_remote *mu_plugin_set_remote(const mu_plugin_set *s, const char *type);

/* Sums over the out-of-process plugins: how many, how many have a host process up now, and
 * their host crashes (hangs and protocol breaks included) so far. For /metrics. */
void mu_plugin_set_totals(const mu_plugin_set *s, uint32_t *ret_hosts, uint32_t *ret_up, uint64_t *ret_crashes);

/* Stops every host process and frees the set, then cb(arg) on the loop. After the runner. */
void mu_plugin_set_close(mu_plugin_set *s, void (*cb)(void *arg), void *arg);

#endif
