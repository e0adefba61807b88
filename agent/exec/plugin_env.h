/* SDK v2's plugin env (muster_plugin.h): one per loaded plugin, holding what the plugin-wide
 * hooks work on — the plugin's state, its metric families (in a registry the agent renders on
 * /metrics under muster_plugin_<type>_*), the configuration last applied and the last health
 * seen — and the muster_plugin_api table those hooks are handed. An ABI 1 plugin has an env
 * too (nothing calls into it). Loop thread only. */
#ifndef MU_PLUGIN_ENV_H
#define MU_PLUGIN_ENV_H

#include <stddef.h>

#include "lib/base/err.h"
#include "lib/base/log.h"
#include "lib/metrics/registry.h"
#include "plugins/sdk/muster_plugin.h"

#define MU_PLUGIN_CONFIG_MAX (256u * 1024) /* bytes of one plugin's configuration JSON */
#define MU_PLUGIN_SCHEMA_MAX (64u * 1024)  /* bytes of a describe() schema kept */

/* desc is borrowed (the loaded plugin's, valid until mu_plugin_env_free); reg (may be NULL:
 * metric updates do nothing) is borrowed too. *ret: mu_plugin_env_free. */
int mu_plugin_env_new(const muster_plugin *desc, mu_metrics *reg, muster_plugin_env **ret, mu_err *err);
/* Calls the plugin's shutdown() (ABI 2, once configured), then frees env. NULL is fine. */
void mu_plugin_env_free(muster_plugin_env *env);

const muster_plugin *mu_plugin_env_desc(const muster_plugin_env *env);
/* The agent's muster_plugin_api table. Static, never NULL. */
const muster_plugin_api *mu_plugin_api(void);

/* Applies config_json (NULL or "" = "{}") with the plugin's configure() (ABI 2 and present);
 * MU_EINVAL with the plugin's reason when it refuses (the previous configuration stays),
 * MU_ENOSPC past MU_PLUGIN_CONFIG_MAX. Remembers what was applied. */
int mu_plugin_env_configure(muster_plugin_env *env, const char *config_json, mu_err *err);
/* The configuration last applied ("{}" before any). Borrowed. */
const char *mu_plugin_env_config(const muster_plugin_env *env);

/* Asks health() (ABI 2 and present, else OK) and remembers the answer. reason (cap bytes)
 * gets the one-line reason, "" when none. Returns MUSTER_HEALTH_*. */
int mu_plugin_env_health(muster_plugin_env *env, char *reason, size_t cap);

/* describe()'s schema, "" when the plugin has none (ABI 1, NULL hook, or not JSON-sized).
 * Borrowed from the plugin; valid while it is loaded. */
const char *mu_plugin_env_describe(muster_plugin_env *env);

/* The agent's log level for a plugin's (the host API's log and the plugin API's). */
mu_log_level mu_plugin_log_level(muster_log_level level);

/* The family registered under the plugin's own metric name (without the prefix), or NULL. For
 * the out-of-process proxy, which mirrors a host process's families here, and tests. */
muster_metric *mu_plugin_env_metric(const muster_plugin_env *env, const char *name);

#endif
